"""An answer given before the request's whole body was read closes the connection and says so
(pytm4srv/serving.py): on raw sockets against a live gunicorn."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import pytest

from tests.conftest import migrated_database
from tests.live import gunicorn, seed

pytestmark = pytest.mark.slow

LIMIT = 2048


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory):
    folder: Path = tmp_path_factory.mktemp("serving")
    with migrated_database(folder) as url:
        token = seed(url)
        with gunicorn(url, folder / "gunicorn.log", MAX_CONTENT_LENGTH=str(LIMIT)) as server:
            yield server, token


def exchange(port: int, request: bytes, follow: bytes) -> tuple[bytes, bytes]:
    """Send ``request``, read its answer, then send ``follow`` on the same connection: the
    first answer, and what came back for the second (b"" once the server closed)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        first = read_answer(sock)
        try:
            sock.sendall(follow)
            time.sleep(0.2)
            second = read_answer(sock)
        except OSError:
            second = b""
    return first, second


def read_answer(sock: socket.socket) -> bytes:
    """One answer with a Content-Length, or what came before the server closed."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body


def headers_of(answer: bytes) -> dict[str, str]:
    head = answer.partition(b"\r\n\r\n")[0].decode("latin-1").split("\r\n")[1:]
    return {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in head)}


def put(token: str, body: bytes, *, chunked: bool) -> bytes:
    head = (
        b"PUT /api/machines/holds/ HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Authorization: Bearer " + token.encode() + b"\r\n"
    )
    if chunked:
        return head + b"Transfer-Encoding: chunked\r\n\r\n" + b"%x\r\n" % len(body) + body
    return head + b"Content-Length: %d\r\n\r\n" % len(body) + body[:100]  # the rest not sent yet


HEALTH = b"GET /api/health HTTP/1.1\r\nHost: x\r\n\r\n"


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_413_says_connection_close_and_closes_it(live, chunked):
    server, token = live
    body = json.dumps({"machine_id": 1, "reason": "r", "notes": "x" * 4000}).encode()
    first, second = exchange(server.port, put(token, body, chunked=chunked), HEALTH)
    assert first.startswith(b"HTTP/1.1 413 "), first[:200]
    assert headers_of(first)["connection"] == "close"
    assert second == b""  # closed: the rest of the body is never read as a request


def test_an_answer_after_the_whole_body_keeps_the_connection(live):
    server, token = live
    body = json.dumps({"machine_id": 1, "reason": "kept"}).encode()
    request = (
        b"PUT /api/machines/holds/ HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Authorization: Bearer " + token.encode() + b"\r\n"
        b"Content-Length: %d\r\n\r\n" % len(body) + body
    )
    first, second = exchange(server.port, request, HEALTH)
    assert first.startswith(b"HTTP/1.1 201 "), first[:200]
    assert headers_of(first).get("connection", "keep-alive") == "keep-alive"
    assert second.startswith(b"HTTP/1.1 200 ")


def read_until_closed(port: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return data


def test_gunicorns_own_414_is_the_json_envelope(live):
    """A request line over gunicorn's limit (8190) gets its own 414, before the app's limit;
    its 400 and 431 are tested in tests/test_live_faults.py."""
    server, _ = live
    answer = read_until_closed(  # returns once gunicorn closed the connection
        server.port, b"GET /api/health?" + b"x" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"
    )
    assert answer.startswith(b"HTTP/1.1 414 "), answer[:200]
    headers = headers_of(answer)
    assert headers["connection"] == "close"
    assert headers["content-type"] == "application/json"
    raw = answer.partition(b"\r\n\r\n")[2]
    assert raw.endswith(b"}\n") and raw.count(b"\n") == 1 and b'", "' not in raw  # as the app's
    body = json.loads(raw)
    assert body["code"] == 414
    assert set(body) == {"code", "status", "message", "errors"}
    assert body["errors"] == {} and body["message"]


def test_the_apps_414_and_gunicorns_say_the_same_status(live):
    """The app's limit (MAX_URL_LENGTH, 4096) and gunicorn's (8190) answer alike."""
    server, _ = live
    closing = b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    apps = read_until_closed(server.port, b"GET /api/health?" + b"x" * 5000 + closing)
    gunicorns = read_until_closed(
        server.port, b"GET /api/health?" + b"x" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"
    )
    envelopes = [json.loads(a.partition(b"\r\n\r\n")[2]) for a in (apps, gunicorns)]
    assert [e["code"] for e in envelopes] == [414, 414]
    assert envelopes[0]["status"] == envelopes[1]["status"]
