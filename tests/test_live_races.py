"""Races against a live server (gunicorn, as served): concurrent changes of one hold, and a
user deleted while their request is in flight. Never a 500 (docs/API.md, Errors)."""

from __future__ import annotations

import http.client
import os
import signal
import sqlite3
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import make_url, select, text
from sqlalchemy.orm import Session

from pytm4srv.db import make_engine
from pytm4srv.models import Machine, MachineHold, User
from tests.conftest import migrated_database
from tests.live import Answer, call, gunicorn, seed

pytestmark = pytest.mark.slow

HOLDS = "/api/machines/holds/"
START = 1_900_000_000
ROUNDS = 40


@pytest.fixture
def served(tmp_path: Path):
    with migrated_database(tmp_path) as url:
        token = seed(url)
        with gunicorn(url, tmp_path / "gunicorn.log") as live:
            yield live, token, url


def machine_id(url: str) -> int:
    (machine,) = stored(url, Machine)
    return int(machine.id)


def test_concurrent_patches_of_one_hold_never_answer_500_nor_store_end_before_start(served):
    live, token, url = served
    body = {"machine_id": machine_id(url), "reason": "r", "start": START, "end": START + 3600}
    hold = call(live.base, "PUT", HOLDS, token, body)
    assert hold.status == 201, hold.body
    path = f"{HOLDS}{hold.body['id']}"
    # Each alone is valid; together they would make end < start.
    changes = ({"start": START + 1800}, {"end": START + 600})
    statuses: list[int] = []
    with ThreadPoolExecutor(2) as pool:
        for _ in range(ROUNDS):
            reset = call(live.base, "PATCH", path, token, {"start": START, "end": START + 3600})
            assert reset.status == 200, reset.body
            barrier = threading.Barrier(2)

            def patch(change: dict[str, int], barrier: threading.Barrier = barrier) -> Answer:
                barrier.wait()
                return call(live.base, "PATCH", path, token, change)

            answers = list(pool.map(patch, changes))
            statuses += [answer.status for answer in answers]
            stored = call(live.base, "GET", path, token)
            assert stored.body["end"] > stored.body["start"], stored.body
            # One of the two won; the other saw the winner's row and was refused.
            assert sorted(answer.status for answer in answers) == [200, 422], [
                (answer.status, answer.body) for answer in answers
            ]
    assert "Traceback" not in live.log.read_text()
    assert statuses.count(200) == ROUNDS


def begin_deleting_user(url: str, user_id: int) -> Any:
    """A transaction that has deleted the user and not committed yet; ``.commit()`` ends it."""
    if url.startswith("sqlite"):
        path = make_url(url).database
        deleter = sqlite3.connect(path, isolation_level=None)
        deleter.execute("PRAGMA foreign_keys = ON")
        deleter.execute("BEGIN IMMEDIATE")  # the write lock, as any writer of the service takes
        deleter.execute("DELETE FROM users WHERE id = ?", (user_id,))
        return _Committing(deleter)
    engine = make_engine(url)
    connection = engine.connect()
    connection.execute(text("DELETE FROM users WHERE id = :id"), {"id": user_id})
    return _Committing(connection, engine)


class _Committing:
    def __init__(self, connection: Any, engine: Any = None) -> None:
        self.connection, self.engine = connection, engine

    def commit(self) -> None:
        self.connection.commit() if self.engine else self.connection.execute("COMMIT")
        self.connection.close()
        if self.engine is not None:
            self.engine.dispose()


def stored(url: str, model: Any) -> list[Any]:
    engine = make_engine(url)
    try:
        with Session(engine) as session:
            return list(session.scalars(select(model)))
    finally:
        engine.dispose()


def test_a_request_whose_user_is_being_deleted_answers_401_and_writes_nothing(served):
    live, token, url = served
    (user,) = stored(url, User)
    body = {"machine_id": machine_id(url), "reason": "r", "start": START}
    deletion = begin_deleting_user(url, user.id)
    with ThreadPoolExecutor(1) as pool:
        answer = pool.submit(call, live.base, "PUT", HOLDS, token, body)
        time.sleep(1.0)
        assert not answer.done()  # it waits for the deletion to end
        deletion.commit()
        result = answer.result(timeout=30)
    assert result.status == 401, result.body
    assert result.body["code"] == 401
    assert stored(url, MachineHold) == []
    assert stored(url, User) == []
    assert "Traceback" not in live.log.read_text()


def test_workers_killed_mid_request_lose_and_double_nothing_when_clients_retry_with_keys(served):
    """Clients create holds, each with a key of its own, while workers are killed with SIGKILL.
    A request cut off may or may not have been committed; retried with its key it answers the
    hold it made, if any. In the end every request has exactly one hold, and no hold lacks its
    request."""
    live, token, url = served
    machine = machine_id(url)
    stop = threading.Event()
    finals: dict[str, Answer] = {}
    cut_off: list[str] = []

    def create(key: str) -> Answer:
        body = {"machine_id": machine, "reason": key}
        return call(live.base, "PUT", HOLDS, token, body, {"Idempotency-Key": key}, timeout=20)

    failures: list[BaseException] = []

    def client(n: int) -> None:
        try:
            send(n)
        except BaseException as exc:  # surfaced below, not lost in the thread
            failures.append(exc)

    def send(n: int) -> None:
        for i in range(10_000):
            if stop.is_set():
                return
            key = f"client-{n}-{i}"
            answer = None
            for _ in range(20):  # bounded retries of one request
                try:
                    answer = create(key)
                except (OSError, http.client.HTTPException, ValueError):
                    # The connection died with its worker, before or during the answer.
                    answer = None
                    cut_off.append(key)
                    time.sleep(0.1)
                    continue
                if answer.status != 503:
                    break
                time.sleep(0.1)
            assert answer is not None, key
            finals[key] = answer

    threads = [threading.Thread(target=client, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    try:
        for _ in range(4):
            time.sleep(0.7)
            os.kill(live.workers()[0], signal.SIGKILL)  # gunicorn starts a new one
    finally:
        time.sleep(1.0)
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
    assert not failures, failures
    assert cut_off, "no request was cut off: the test proved nothing"
    assert {answer.status for answer in finals.values()} == {201}
    assert all(answer.body["reason"] == key for key, answer in finals.items())
    assert len({answer.body["id"] for answer in finals.values()}) == len(finals)
    reasons = sorted(hold.reason for hold in stored(url, MachineHold))
    assert reasons == sorted(finals)
