"""Slow and excess clients against a real uvicorn server, over raw sockets: headers or a body
dribbled a byte at a time are cut off with a 408 within the configured time, a silent
connection is closed, connections beyond the limit get a 503 at once — and neither a
keep-alive connection nor a long event stream is cut by these deadlines."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from tests.support.server import RunningServer, running_server

HEADER_SECONDS = 1.0
BODY_SECONDS = 1.0


@pytest.fixture
def strict(tmp_path: Path) -> Iterator[RunningServer]:
    with running_server(
        tmp_path / "data",
        header_timeout_seconds=HEADER_SECONDS,
        body_timeout_seconds=BODY_SECONDS,
        max_connections=4,
    ) as running:
        yield running


def _connect(server: RunningServer) -> socket.socket:
    host, port = server.base_url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=10)
    return sock


def _dribble(sock: socket.socket, data: bytes, every: float, stop: threading.Event) -> None:
    """Sends ``data`` one byte every ``every`` seconds until the server hangs up."""
    for byte in data:
        if stop.wait(every):
            return
        try:
            sock.sendall(bytes([byte]))
        except OSError:
            return


def _read_until_closed(sock: socket.socket) -> bytes:
    received = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except (ConnectionResetError, TimeoutError):
            return received
        if not chunk:
            return received
        received += chunk


def _dribbled_request(server: RunningServer, head: bytes, rest: bytes) -> tuple[bytes, float]:
    """Sends ``head`` at once, then ``rest`` a byte every 0.1 s; returns what the server answered
    and how long after the first byte it closed the connection."""
    stop = threading.Event()
    with _connect(server) as sock:
        started = time.monotonic()
        sock.sendall(head)
        sender = threading.Thread(target=_dribble, args=(sock, rest, 0.1, stop))
        sender.start()
        try:
            answer = _read_until_closed(sock)
            elapsed = time.monotonic() - started
        finally:
            stop.set()
            sender.join()
    return answer, elapsed


def _envelope(answer: bytes, status: int) -> dict:
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(f"HTTP/1.1 {status} ".encode()), answer[:200]
    assert b"connection: close" in head.lower()
    error = orjson.loads(body)
    assert error["type"] == "error" and error["request_id"]
    return error


def test_headers_sent_slowly_are_cut_off_with_a_408(strict: RunningServer) -> None:
    answer, elapsed = _dribbled_request(
        strict, b"GET /healthz HTTP/1.1\r\nHost: x\r\n", b"X-Slow: " + b"a" * 200 + b"\r\n\r\n"
    )
    assert elapsed < HEADER_SECONDS + 1.5, f"held for {elapsed:.1f}s"
    error = _envelope(answer, 408)
    assert "headers did not arrive within 1 seconds" in error["error"]["message"]


def test_a_body_sent_slowly_is_cut_off_with_a_408(strict: RunningServer) -> None:
    body = orjson.dumps({"name": "slow", "model": "m"})
    head = (
        b"POST /v1/agents HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\n"
        + b"x-api-key: " + strict.api_key.encode() + b"\r\n"
        + b"content-length: " + str(len(body)).encode() + b"\r\n\r\n"
    )
    answer, elapsed = _dribbled_request(strict, head, body)
    assert elapsed < BODY_SECONDS + 1.5, f"held for {elapsed:.1f}s"
    error = _envelope(answer, 408)
    assert "body did not arrive within 1 seconds" in error["error"]["message"]
    with httpx.Client(base_url=strict.base_url, headers={"x-api-key": strict.api_key}) as http:
        assert http.get("/v1/agents").json()["data"] == []


def test_a_silent_connection_is_closed(strict: RunningServer) -> None:
    with _connect(strict) as sock:
        started = time.monotonic()
        assert _read_until_closed(sock) == b""
        assert time.monotonic() - started < HEADER_SECONDS + 1.5


def test_headers_beyond_64_kib_are_refused(strict: RunningServer) -> None:
    with _connect(strict) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        try:
            for _ in range(80):
                sock.sendall(b"X-Big: " + b"b" * 1000 + b"\r\n")
        except OSError:
            pass
        answer = _read_until_closed(sock)
    _envelope(answer, 431)


def test_connections_beyond_the_limit_get_a_503_at_once(strict: RunningServer) -> None:
    held = [_connect(strict) for _ in range(4)]
    try:
        time.sleep(0.2)
        with _connect(strict) as extra:
            started = time.monotonic()
            answer = _read_until_closed(extra)
            assert time.monotonic() - started < 1.0
        error = _envelope(answer, 503)
        assert "4 open connections" in error["error"]["message"]
    finally:
        for sock in held:
            sock.close()
    time.sleep(0.2)
    assert httpx.get(strict.base_url + "/healthz").status_code == 200


def test_keep_alive_connections_and_long_streams_are_not_cut(strict: RunningServer) -> None:
    with httpx.Client(base_url=strict.base_url, headers={"x-api-key": strict.api_key}, timeout=10) as http:
        agent = http.post("/v1/agents", json={"name": "a", "model": "m"}).json()
        time.sleep(HEADER_SECONDS * 0.6)  # idle on the kept-alive connection, under the deadline
        env = http.post("/v1/environments", json={"name": "e"}).json()
        session = http.post("/v1/sessions", json={"agent": agent["id"], "environment_id": env["id"]}).json()

        seen: list[str] = []

        def follow() -> None:
            headers = {"x-api-key": strict.api_key}
            with (
                httpx.Client(base_url=strict.base_url, headers=headers, timeout=10) as reader,
                reader.stream("GET", f"/v1/sessions/{session['id']}/events/stream") as stream,
            ):
                for line in stream.iter_lines():
                    if line.startswith("event: "):
                        seen.append(line[7:])
                        if line == "event: session.status_idle":
                            return

        reader = threading.Thread(target=follow)
        reader.start()
        time.sleep(HEADER_SECONDS + BODY_SECONDS + 0.5)  # the stream outlives both deadlines
        http.post(
            f"/v1/sessions/{session['id']}/events",
            json={"events": [{"type": "user.message", "content": [{"type": "text", "text": "hi"}]}]},
        )
        reader.join(timeout=10)
    assert seen and seen[-1] == "session.status_idle", seen
