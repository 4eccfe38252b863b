"""A cron run in a process of its own, for the multi-process materializer tests.

Kept apart from the test module so that a spawned process imports only the app, not pytest.
"""

from __future__ import annotations

import time
from typing import Any

from pytm4srv import create_app
from pytm4srv.holds import materialize as materialize_module


def run_materialize(url: str, now: str, barrier: Any, results: Any, slow: float = 0.0) -> None:
    """``flask holds materialize --now NOW`` on ``url``, started together with the others.

    ``slow``: seconds to spend on each schedule, for a run that is still busy when the next
    one starts.
    """
    try:
        if slow:
            plan = materialize_module.plan

            def slow_plan(*args: Any) -> Any:
                time.sleep(slow)
                return plan(*args)

            materialize_module.plan = slow_plan
        app = create_app({"DATABASE_URL": url, "TIMEZONE": "UTC"})
        runner = app.test_cli_runner()
        barrier.wait(timeout=120)
        # Small batches, so that the runs interleave over the few hundred schedules.
        args = ["holds", "materialize", "--now", now, "--batch-size", "20"]
        result = runner.invoke(args=args)
        results.put((result.exit_code, result.output))
    except BaseException as exc:  # report to the test rather than leave it waiting
        results.put((-1, repr(exc)))
