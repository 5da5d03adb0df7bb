"""A local webhook receiver: a real HTTP server (on a port of its own, which it keeps across a
stop and a start, so it can be "down" and come back) that verifies and parses every delivery
with the official SDK's ``client.beta.webhooks.unwrap`` — signature, timestamp tolerance and
the raw body — as a customer's receiver would.

A delivery that does not verify is answered 400 and kept in ``rejected`` (a test asserts it
stays empty); one that does is answered with the next status a test queued in ``answers``
(default 200), after ``delay`` seconds, and kept in ``attempts`` — in ``accepted`` too when the
answer was a 2xx."""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import anthropic

from tests.support.postgres import free_port


@dataclass(frozen=True)
class Received:
    event: Any  # anthropic.types.beta.BetaWebhookEvent
    headers: dict[str, str]
    body: str
    status: int  # what the receiver answered
    at: float  # time.monotonic() when it arrived


class WebhookReceiver:
    def __init__(self, path: str = "/hooks") -> None:
        self.port = free_port()
        self.path = path
        self.key: str | None = None  # the endpoint's signing secret, once it is known
        self.answers: list[int] = []  # statuses to answer verified deliveries with, in order, then 200
        self.delay = 0.0
        self.attempts: list[Received] = []
        self.rejected: list[tuple[dict[str, str], str, str]] = []
        self._sdk = anthropic.Anthropic(api_key="not-used-by-unwrap", base_url="http://127.0.0.1:9")
        self._lock = threading.Condition()
        self._server: http.server.ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.path}"

    @property
    def accepted(self) -> list[Received]:
        with self._lock:
            return [seen for seen in self.attempts if 200 <= seen.status < 300]

    def types(self) -> list[str]:
        return [seen.event.data.type for seen in self.accepted]

    # -- up and down --------------------------------------------------------------------------

    def start(self) -> None:
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                raw = self.rfile.read(int(self.headers.get("content-length") or 0))
                receiver._receive(self, raw)

            def log_message(self, *_: Any) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="webhook-receiver", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Down: the port refuses connections until ``start``."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @contextmanager
    def running(self) -> Iterator[WebhookReceiver]:
        self.start()
        try:
            yield self
        finally:
            self.stop()

    # -- receiving ------------------------------------------------------------------------------

    def _receive(self, handler: http.server.BaseHTTPRequestHandler, raw: bytes) -> None:
        headers = {name.lower(): value for name, value in handler.headers.items()}
        body = raw.decode()
        try:
            if handler.path != self.path:
                raise ValueError(f"posted to {handler.path}")
            event = self._sdk.beta.webhooks.unwrap(body, headers=headers, key=self.key)
        except Exception as error:  # a delivery the SDK refuses: the test fails on it
            with self._lock:
                self.rejected.append((headers, body, repr(error)))
                self._lock.notify_all()
            self._answer(handler, 400)
            return
        if self.delay:
            time.sleep(self.delay)
        with self._lock:
            status = self.answers.pop(0) if self.answers else 200
            self.attempts.append(Received(event, headers, body, status, time.monotonic()))
            self._lock.notify_all()
        self._answer(handler, status)

    @staticmethod
    def _answer(handler: http.server.BaseHTTPRequestHandler, status: int) -> None:
        handler.send_response(status)
        handler.send_header("content-length", "0")
        handler.end_headers()

    def wait_for(self, done: Callable[[WebhookReceiver], bool], timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        with self._lock:
            while not done(self):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"webhook receiver: condition not met in {timeout:g} s; accepted {self.types()}, "
                        f"{len(self.attempts)} attempts, rejected {[r[2] for r in self.rejected]}"
                    )
                self._lock.wait(min(left, 0.1))
