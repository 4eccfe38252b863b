"""Faults against a live server: gunicorn as ``scripts/serve`` runs it (tests/live.py).

- Slow clients: connections that trickle their headers hold one thread each, never the service.
- A database that waits (a lock held by another connection) or hangs (a throwaway PostgreSQL
  server frozen with SIGSTOP, tests/throwaway_postgres.py): every request answers 503 within
  the database timeout, nothing is written that the client was not told of, and the service
  answers again as soon as the database does.
- Bodies sent chunked are held to ``MAX_CONTENT_LENGTH`` like the others; the header errors
  gunicorn answers itself are those docs/API.md (Limits) lists.

Every test is bounded: a fixed number of requests, each with a client timeout.
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from pytm4srv.db import WATCHDOG_GRACE, make_engine
from pytm4srv.errors import RETRY_AFTER
from pytm4srv.models import MachineHold
from tests.conftest import alembic_config, migrated_database
from tests.live import Answer, Live, call, gunicorn, seed
from tests.test_db_timeouts import locked
from tests.throwaway_postgres import throwaway_postgres, unavailable

HOLDS = "/api/machines/holds/"
MACHINES = "/api/machines/"
#: Slack on a loaded machine, on top of the bounds the service promises.
SLACK = 3.0

pytestmark = pytest.mark.slow


@pytest.fixture
def served(tmp_path: Path) -> Any:
    """gunicorn over a fresh database of the suite's kind: (live server, token, database URL)."""

    def serve(**settings: str) -> Any:
        return _Served(tmp_path, settings)

    return serve


class _Served:
    def __init__(self, tmp_path: Path, settings: dict[str, str]) -> None:
        self.tmp_path, self.settings = tmp_path, settings

    def __enter__(self) -> tuple[Live, str, str]:
        self._database = migrated_database(self.tmp_path)
        url = self._database.__enter__()
        token = seed(url)
        self._server = gunicorn(url, self.tmp_path / "gunicorn.log", **self.settings)
        return self._server.__enter__(), token, url

    def __exit__(self, *exc: Any) -> None:
        try:
            self._server.__exit__(*exc)
        finally:
            self._database.__exit__(*exc)


def count_holds(url: str) -> int:
    engine = make_engine(url)
    try:
        with Session(engine) as session:
            return session.scalar(select(func.count()).select_from(MachineHold)) or 0
    finally:
        engine.dispose()


def assert_clean_log(log: Path) -> None:
    text = log.read_text()
    assert "Traceback" not in text
    assert "WORKER TIMEOUT" not in text


# --- slow clients ---------------------------------------------------------------------------------

#: Slow connections, three times what took the service down with 2 synchronous workers.
SLOW_CLIENTS = 6
SLOW_SECONDS = 6.0
#: Longest a probe may take while the slow clients trickle.
PROBE_BOUND = 2.0


def trickle(port: int, stop: threading.Event) -> None:
    """Start a request and send its headers one byte every half second, never ending them."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"GET /api/machines/ HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        while not stop.wait(0.5):
            sock.sendall(b"z")


def test_slow_clients_do_not_take_the_service_down(served):
    with served() as (live, token, _):
        stop = threading.Event()
        slow = [
            threading.Thread(target=trickle, args=(live.port, stop), daemon=True)
            for _ in range(SLOW_CLIENTS)
        ]
        for thread in slow:
            thread.start()
        probes: list[Answer] = []
        try:
            time.sleep(1.0)  # every slow client is in, holding what it can
            deadline = time.monotonic() + SLOW_SECONDS
            while time.monotonic() < deadline:
                probes.append(call(live.base, "GET", MACHINES, token, timeout=PROBE_BOUND + SLACK))
                time.sleep(0.2)
        finally:
            stop.set()
            for thread in slow:
                thread.join(timeout=10)
        assert len(probes) >= 10
        assert [p.status for p in probes] == [200] * len(probes)
        slowest = max(p.seconds for p in probes)
        assert slowest < PROBE_BOUND, f"slowest probe {slowest:.2f} s"


# --- a database that waits or hangs ---------------------------------------------------------------


def test_a_lock_held_elsewhere_gives_503_in_time_and_then_service(served):
    with served(DB_TIMEOUT="1") as (live, token, url):
        assert call(live.base, "GET", HOLDS, token).status == 200
        with locked(url, "LOCK TABLE machine_holds IN SHARE MODE"):
            with ThreadPoolExecutor(4) as pool:
                body = {"machine_id": 1, "reason": "waited"}
                futures = [
                    pool.submit(call, live.base, "PUT", HOLDS, token, body, timeout=15)
                    for _ in range(4)
                ]
                answers = [future.result() for future in futures]
        for answer in answers:
            assert_timely_503(answer, timeout=1.0)
        assert count_holds(url) == 0
        assert call(live.base, "PUT", HOLDS, token, {"machine_id": 1, "reason": "r"}).status == 201
        assert count_holds(url) == 1
        assert_clean_log(live.log)


def assert_timely_503(answer: Answer, timeout: float) -> None:
    assert answer.status == 503, answer.body
    assert set(answer.body) == {"code", "status", "message", "errors"}
    assert answer.headers["Content-Type"] == "application/json"
    assert answer.headers["Retry-After"] == str(RETRY_AFTER)
    assert answer.seconds < timeout + WATCHDOG_GRACE + SLACK, answer.seconds


NO_THROWAWAY = unavailable()


@pytest.mark.skipif(NO_THROWAWAY is not None, reason=f"no throwaway PostgreSQL: {NO_THROWAWAY}")
def test_a_frozen_database_gives_503_in_time_writes_nothing_and_service_resumes(tmp_path):
    with throwaway_postgres() as server:
        command.upgrade(alembic_config(server.url), "head")
        token = seed(server.url)
        with gunicorn(server.url, tmp_path / "gunicorn.log", DB_TIMEOUT="2") as live:
            body = {"machine_id": 1, "reason": "before"}
            assert call(live.base, "PUT", HOLDS, token, body).status == 201
            for _ in range(4):
                assert call(live.base, "GET", HOLDS, token).status == 200
            time.sleep(1.5)  # the pooled connections are now idle: the next use pings them

            server.freeze()
            try:
                with ThreadPoolExecutor(12) as pool:
                    puts = [
                        pool.submit(
                            call, live.base, "PUT", HOLDS, token, {**body, "reason": f"{n}"}
                        )
                        for n in range(8)
                    ]
                    gets = [pool.submit(call, live.base, "GET", HOLDS, token) for _ in range(4)]
                    answers = [future.result() for future in puts + gets]
            finally:
                server.thaw()

            for answer in answers:
                assert_timely_503(answer, timeout=2.0)
            recovered = [call(live.base, "GET", HOLDS, token, timeout=10) for _ in range(6)]
            assert [answer.status for answer in recovered] == [200] * 6
            assert [hold["reason"] for hold in recovered[-1].body] == ["before"]
            assert call(live.base, "PUT", HOLDS, token, {**body, "reason": "after"}).status == 201
            assert count_holds(server.url) == 2
            assert_clean_log(live.log)


@pytest.mark.skipif(NO_THROWAWAY is not None, reason=f"no throwaway PostgreSQL: {NO_THROWAWAY}")
def test_a_request_that_needs_a_new_connection_to_a_frozen_postmaster_answers_in_time(tmp_path):
    """The pooled connections still answer, but the postmaster, which would start a new one,
    is frozen: requests beyond the pool's open connections wait for a connection that never
    comes, and still answer 503 within the timeout and the watchdog's grace."""
    with throwaway_postgres() as server:
        command.upgrade(alembic_config(server.url), "head")
        token = seed(server.url)
        settings = {"DB_TIMEOUT": "3", "WORKERS": "1", "THREADS": "8"}
        with gunicorn(server.url, tmp_path / "gunicorn.log", **settings) as live:
            assert call(live.base, "GET", HOLDS, token).status == 200  # one pooled connection
            server.freeze_postmaster()
            try:
                with ThreadPoolExecutor(6) as pool:
                    answers = list(
                        pool.map(lambda _: call(live.base, "GET", HOLDS, token), range(6))
                    )
            finally:
                server.thaw()
            statuses = [answer.status for answer in answers]
            assert 503 in statuses and set(statuses) <= {200, 503}, statuses
            # The promise: the timeout and the grace, plus what HTTP itself takes here.
            assert max(answer.seconds for answer in answers) < 3 + WATCHDOG_GRACE + 0.5, [
                round(answer.seconds, 2) for answer in answers
            ]
            for answer in answers:
                if answer.status == 503:
                    assert_timely_503(answer, timeout=3.0)
            recovered = [call(live.base, "GET", HOLDS, token, timeout=10) for _ in range(4)]
            assert [answer.status for answer in recovered] == [200] * 4
            assert_clean_log(live.log)


@pytest.mark.skipif(NO_THROWAWAY is not None, reason=f"no throwaway PostgreSQL: {NO_THROWAWAY}")
def test_a_freeze_under_load_loses_and_doubles_nothing_when_clients_retry_with_their_keys(
    tmp_path,
):
    """Clients creating holds, each request with a key of its own, while the server freezes.
    Every answer is a 201 or a timely 503. A request caught in its COMMIT may have been
    written although its client got the 503: retried with its key, it answers that hold; so in
    the end every request has exactly one hold, and no hold lacks its request."""
    with throwaway_postgres() as server:
        command.upgrade(alembic_config(server.url), "head")
        token = seed(server.url)
        with gunicorn(server.url, tmp_path / "gunicorn.log", DB_TIMEOUT="2") as live:
            stop = threading.Event()
            sent: list[tuple[str, Answer]] = []

            def create(key: str) -> Answer:
                body = {"machine_id": 1, "reason": key}
                headers = {"Idempotency-Key": key}
                return call(live.base, "PUT", HOLDS, token, body, headers, timeout=20)

            def client(n: int) -> None:
                for i in range(10_000):
                    if stop.is_set():
                        return
                    key = f"client-{n}-{i}"
                    sent.append((key, create(key)))

            threads = [threading.Thread(target=client, args=(n,)) for n in range(4)]
            for thread in threads:
                thread.start()
            try:
                time.sleep(1.0)
                server.freeze()
                time.sleep(3.5)
            finally:
                server.thaw()
                time.sleep(1.0)
                stop.set()
                for thread in threads:
                    thread.join(timeout=30)

            statuses = [answer.status for _, answer in sent]
            assert set(statuses) <= {201, 503}, statuses
            assert statuses.count(503) >= 4  # every client felt the freeze
            for _, answer in sent:
                if answer.status == 503:
                    assert_timely_503(answer, timeout=2.0)
            final = {}
            for key, answer in sent:
                for _ in range(3):
                    if answer.status == 201:
                        break
                    answer = create(key)
                assert answer.status == 201, answer.body
                final[key] = answer.body
            assert all(hold["reason"] == key for key, hold in final.items())
            assert len({hold["id"] for hold in final.values()}) == len(sent)
            assert count_holds(server.url) == len(sent)
            assert_clean_log(live.log)


# --- bodies and headers ---------------------------------------------------------------------------


def send_chunked(port: int, token: str, body: bytes) -> tuple[int, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
    try:
        chunks = (body[i : i + 500] for i in range(0, len(body), 500))
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        conn.request("PUT", HOLDS, body=chunks, headers=headers, encode_chunked=True)
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


#: A hold's body with empty notes; its notes are filled to make a body of a given size.
HEAD = json.dumps({"machine_id": 1, "reason": "r", "notes": ""}).encode()


def body_of_size(size: int) -> bytes:
    text = HEAD[:-2] + b"x" * (size - len(HEAD)) + HEAD[-2:]
    assert len(text) == size
    return text


def test_a_chunked_body_over_the_limit_is_413_and_one_at_the_limit_is_served(served):
    with served(MAX_CONTENT_LENGTH="2048") as (live, token, url):
        status, answer = send_chunked(live.port, token, body_of_size(2049))
        assert status == 413
        assert answer["code"] == 413 and "2048 bytes" in answer["message"]
        status, answer = send_chunked(live.port, token, body_of_size(2048))
        assert status == 201, answer
        assert answer["notes"] == "x" * (2048 - len(HEAD))
        assert count_holds(url) == 1


def test_a_malformed_chunked_body_is_a_400_envelope(served):
    with served() as (live, token, url):
        status, content_type, rest = raw_request(
            live.port,
            b"PUT /api/machines/holds/ HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
            b"Authorization: Bearer " + token.encode() + b"\r\n"
            b"Content-Type: application/json\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
        )
        assert (status, content_type) == (400, "application/json")
        assert json.loads(rest.split("\r\n\r\n", 1)[1])["code"] == 400
        assert count_holds(url) == 0
        assert_clean_log(live.log)


def raw_request(port: int, head: bytes) -> tuple[int, str, str]:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    status_line, _, rest = data.decode("latin-1").partition("\r\n")
    content_type = next(
        (
            line.split(":", 1)[1].strip()
            for line in rest.split("\r\n")
            if line.lower().startswith("content-type:")
        ),
        "",
    )
    return int(status_line.split()[1]), content_type, rest


@pytest.mark.parametrize(
    ("header", "status"),
    [
        (b"X-Long: " + b"a" * 9000, 431),  # a header line over 8190 bytes
        (b"".join(b"X-%d: 1\r\n" % n for n in range(101)).rstrip(), 431),  # over 100 fields
        (b"Bad Header: 1", 400),  # not a header name
    ],
)
def test_gunicorn_answers_bad_headers_itself_as_documented(served, header, status):
    """In the app's JSON envelope (pytm4srv/serving.py), not gunicorn's HTML page."""
    with served() as (live, _, _):
        got, content_type, rest = raw_request(
            live.port, b"GET /api/machines/ HTTP/1.1\r\nHost: x\r\n" + header + b"\r\n\r\n"
        )
        assert (got, content_type) == (status, "application/json")
        envelope = json.loads(rest.split("\r\n\r\n", 1)[1])
        assert envelope["code"] == status and envelope["errors"] == {}
