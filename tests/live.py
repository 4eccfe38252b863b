"""A live server for tests: gunicorn on 127.0.0.1, started from the repository's
``gunicorn.conf.py`` exactly as ``scripts/serve`` starts it, and a small HTTP client for it."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from pytm4srv.db import make_engine
from pytm4srv.models import Machine, Role, User
from pytm4srv.users.tokens import hash_token, new_token
from tests.conftest import REPO

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def seed(url: str, role: Role = Role.ADMIN) -> str:
    """A user (its token is returned) and a machine, in the database at ``url``."""
    token = new_token()
    engine = make_engine(url)
    with Session(engine) as session:
        session.add(User(name="a", role=role, token_hash=hash_token(token), created=now()))
        session.add(Machine(name="m"))
        session.commit()
    engine.dispose()
    return token


def now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Live:
    base: str
    log: Path
    port: int
    #: gunicorn's master process; its workers are its children.
    pid: int = 0

    def workers(self) -> list[int]:
        children = Path(f"/proc/{self.pid}/task/{self.pid}/children").read_text()
        return [int(pid) for pid in children.split()]


@contextmanager
def gunicorn(url: str, log: Path, **settings: str) -> Iterator[Live]:
    """gunicorn as ``scripts/serve`` runs it, over the database at ``url``; ``settings`` are
    more ``PYTM4SRV_*`` variables (without the prefix)."""
    port = free_port()
    env = os.environ | {"PYTM4SRV_DATABASE_URL": url, "PYTM4SRV_BIND": f"127.0.0.1:{port}"}
    env |= {f"PYTM4SRV_{name}": value for name, value in settings.items()}
    command = [str(BIN / "gunicorn"), "--config", str(REPO / "gunicorn.conf.py")]
    with log.open("w") as out:
        process = subprocess.Popen(
            [*command, "pytm4srv:create_app()"], cwd=REPO, env=env, stdout=out, stderr=out
        )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                urllib.request.urlopen(f"{base}/api/openapi.json", timeout=2).close()
                break
            except OSError:
                if process.poll() is not None:
                    raise RuntimeError(f"gunicorn exited: {log.read_text()}") from None
                time.sleep(0.1)
        else:
            raise RuntimeError("gunicorn did not start")
        yield Live(base, log, port, process.pid)
    finally:
        process.terminate()
        process.wait(timeout=30)


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: Any
    seconds: float


def call(
    base: str,
    method: str,
    path: str,
    token: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
    timeout: float = 30,
) -> Answer:
    """One request; the answer whatever its status, with how long it took."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base + path, data=data, method=method)
    request.add_header("Authorization", f"Bearer {token}")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    started = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, answer_headers, raw = response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        status, answer_headers, raw = error.code, dict(error.headers), error.read()
    seconds = time.monotonic() - started
    return Answer(status, answer_headers, json.loads(raw) if raw else None, seconds)
