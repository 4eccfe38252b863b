"""A PostgreSQL server of a test's own, in a temporary folder, that the test may freeze or kill.

Tests that need a database server to hang (SIGSTOP) must never do that to a shared server: this
one is made with ``initdb`` and run with ``pg_ctl`` on a free port of 127.0.0.1, and removed
afterwards. As root (PostgreSQL refuses to run as root) it runs as the ``postgres`` user.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg


def _binary(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


def _run_as() -> dict[str, Any]:
    if os.geteuid() != 0:
        return {}
    try:
        account = pwd.getpwnam("postgres")
    except KeyError:
        return {"unavailable": "running as root and there is no postgres user"}
    return {"user": account.pw_uid, "group": account.pw_gid}


def unavailable() -> str | None:
    """Why no throwaway server can be made here, or None."""
    if not (_binary("initdb") and _binary("pg_ctl")):
        return "initdb and pg_ctl not found"
    reason: str | None = _run_as().get("unavailable")
    return reason


@dataclass
class Server:
    url: str
    """SQLAlchemy URL of its database ``test``."""
    data: Path

    def postmaster_pid(self) -> int:
        return int((self.data / "postmaster.pid").read_text().split()[0])

    def processes(self) -> list[int]:
        """The postmaster and every process it started."""
        postmaster = self.postmaster_pid()
        children = []
        for stat in glob.glob("/proc/[0-9]*/stat"):
            try:
                fields = Path(stat).read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == postmaster:
                children.append(int(stat.split("/")[2]))
        return [postmaster, *children]

    def freeze(self) -> None:
        """SIGSTOP the whole server: it accepts TCP connections (the kernel does) and answers
        nothing, not even a cancel request."""
        for pid in self.processes():  # the postmaster first: it starts no one meanwhile
            os.kill(pid, signal.SIGSTOP)

    def freeze_postmaster(self) -> None:
        """SIGSTOP the postmaster alone: the connections open keep answering, and a new one is
        accepted by the kernel and then never answered."""
        os.kill(self.postmaster_pid(), signal.SIGSTOP)

    def thaw(self) -> None:
        for pid in self.processes():
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:  # a backend that ended meanwhile
                pass


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def throwaway_postgres() -> Iterator[Server]:
    """A running server with an empty database ``test``; stopped and removed on exit."""
    run_as = _run_as()
    initdb, pg_ctl = _binary("initdb"), _binary("pg_ctl")
    assert initdb and pg_ctl and "unavailable" not in run_as, unavailable()
    home = Path(tempfile.mkdtemp(prefix="pytm4srv-pg-"))
    data = home / "data"
    port = _free_port()
    if run_as:
        os.chown(home, run_as["user"], run_as["group"])
    env = os.environ | {"LC_ALL": "C"}

    def run(*args: str) -> None:
        subprocess.run(args, check=True, capture_output=True, env=env, cwd=home, **run_as)

    options = f"-c listen_addresses=127.0.0.1 -p {port} -k {home} -c fsync=off"
    server = Server(f"postgresql+psycopg://pytm4srv@127.0.0.1:{port}/test", data)
    try:
        run(initdb, "-D", str(data), "-U", "pytm4srv", "-E", "UTF8", "--auth=trust", "--no-sync")
        run(pg_ctl, "-D", str(data), "-l", str(home / "log"), "-o", options, "-w", "start")
        with psycopg.connect(f"host=127.0.0.1 port={port} user=pytm4srv dbname=postgres") as conn:
            conn.autocommit = True
            conn.execute("CREATE DATABASE test")
        yield server
    finally:
        if (data / "postmaster.pid").exists():
            server.thaw()
            subprocess.run(
                [pg_ctl, "-D", str(data), "-m", "immediate", "stop"],
                capture_output=True,
                env=env,
                cwd=home,
                **run_as,
            )
        shutil.rmtree(home, ignore_errors=True)
