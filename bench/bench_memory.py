"""Memory a big answer adds to a worker's peak: a list of 1000 holds (and of 1000 holds in effect
now), a preview of 1000 instants.

    .venv/bin/python bench/bench_memory.py

Each measurement runs in a fresh subprocess holding the app (as a gunicorn worker does), called
through the Flask test client on the 1 000 000-hold database of ``bench/generate.py``. The child
first warms up with the same request at a small size (10 holds / 10 instants), so imports and
caches are in place, then makes the big request once and reports what it added to the peak:

- RSS: the peak resident size during the request (VmHWM, reset just before it through
  /proc/self/clear_refs) minus the resident size before it;
- tracemalloc: the peak of Python allocations during the request minus those live before it.

Target: under 20 MB each. Takes a few seconds.
"""

from __future__ import annotations

import argparse
import gc
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from _support import BIG_DB, bench_token, load_average, machine_description, require_database

LIMIT_MB = 20
NOW = int(time.time())
PREVIEW = "/api/machines/holds/schedules/previewSchedule"
HOURLY = {"frequency": "H", "time_of_day": "00:00", "weekdays": 31}
LAST_MONDAY = {"frequency": "M", "time_of_day": "06:30", "weekdays": 1, "indices": [-1]}
CASES: dict[str, tuple[str, str, str, dict[str, Any] | None]] = {
    # name: (method, warm-up path, measured path, JSON body)
    "list 1000 holds": (
        "GET",
        "/api/machines/holds/?limit=10",
        "/api/machines/holds/?limit=1000",
        None,
    ),
    # Holds in effect now over all machines: at 1 000 000 holds, thousands (the open ones).
    "active_at=now, 1000": (
        "GET",
        f"/api/machines/holds/?active_at={NOW}&limit=10",
        f"/api/machines/holds/?active_at={NOW}&limit=1000",
        None,
    ),
    "preview 1000, hourly": ("POST", f"{PREVIEW}?count=10", f"{PREVIEW}?count=1000", HOURLY),
    "preview 1000, monthly": ("POST", f"{PREVIEW}?count=10", f"{PREVIEW}?count=1000", LAST_MONDAY),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", default=BIG_DB, help=f"database ({BIG_DB})")
    parser.add_argument("--child", choices=list(CASES), help=argparse.SUPPRESS)
    parser.add_argument("--metric", choices=["rss", "tracemalloc"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    url = require_database(args.db, "1000000")
    if args.child:
        print(json.dumps(child(url, args.child, args.metric)))
        return 0

    print(f"machine: {machine_description()}; {load_average()}")
    print("method: fresh subprocess per measurement, Flask test client, warm-up at size 10")
    missed = False
    for case in CASES:
        results = {}
        for metric in ("rss", "tracemalloc"):
            out = subprocess.run(
                [sys.executable, __file__, "--db", args.db, "--child", case, "--metric", metric],
                capture_output=True,
                text=True,
                timeout=300,
            )
            if out.returncode != 0:
                print(f"  {case}: {metric} measurement failed:\n{out.stdout}{out.stderr}")
                missed = True
                continue
            results[metric] = json.loads(out.stdout.strip().splitlines()[-1])
        if not results:
            continue
        if any("pending" in r for r in results.values()):
            print(f"  {case:<22} pending: {next(iter(results.values()))['pending']}")
            continue
        worst = max(r["added_mb"] for r in results.values())
        missed |= worst >= LIMIT_MB
        detail = "  ".join(f"{m} +{r['added_mb']:.1f} MB" for m, r in results.items())
        size = next(iter(results.values()))["items"]
        print(
            f"  {case:<22} {detail}  ({size} items)  target < {LIMIT_MB} MB"
            f"  {'ok' if worst < LIMIT_MB else 'MISSED'}"
        )
    return 1 if missed else 0


def _status(name: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(name + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"{name} not in /proc/self/status")


def child(url: str, case: str, metric: str) -> dict[str, Any]:
    from pytm4srv import create_app

    method, small, big, body = CASES[case]
    app = create_app({"DATABASE_URL": url})
    if method == "POST" and not any(r.rule.startswith(PREVIEW) for r in app.url_map.iter_rules()):
        return {"pending": f"POST {PREVIEW} does not exist yet"}
    headers = {"Authorization": f"Bearer {bench_token(url)}"}
    client = app.test_client()

    def call(path: str) -> Any:
        if method == "GET":
            response = client.get(path, headers=headers)
        else:
            response = client.post(path, headers=headers, json=body)
        if response.status_code != 200:
            raise RuntimeError(f"{method} {path}: {response.status_code} {response.data[:300]!r}")
        return response

    for _ in range(3):
        call(small)
    gc.collect()
    if metric == "tracemalloc":
        import tracemalloc

        tracemalloc.start()
        before, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        response = call(big)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        added = peak - before
    else:
        before = _status("VmRSS")
        Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
        response = call(big)
        added = _status("VmHWM") - before
    return {"added_mb": added / 2**20, "items": len(response.get_json())}


if __name__ == "__main__":
    sys.exit(main())
