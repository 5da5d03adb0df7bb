"""Bounds on slow and excess clients, which uvicorn 0.54 leaves unbounded.

Read from uvicorn's own source (``protocols/http/httptools_impl.py``): no timer is armed when a
connection opens, and the keep-alive timer armed after a response is cancelled by the first
byte of the next request. A client that sends its request line and headers a byte at a time
therefore holds a connection forever. ``limit_concurrency`` is counted only once a request's
headers are complete, so it does not bound such connections either, and nothing bounds how
long the application waits for a body (``h11_max_incomplete_event_size`` applies to the h11
parser only; uvicorn picks httptools, which ``uvicorn[standard]`` installs).

``protocol_with_deadlines`` is uvicorn's httptools protocol with

- a header deadline: a request's line and headers must be in within ``header_seconds`` of
  the connection opening or the previous response ending (408 if a request had begun, else
  the idle connection is just closed);
- a body deadline: once the headers are in, the body must be in within ``body_seconds`` (408);
- at most 64 KiB of request line and headers (431);
- at most ``max_connections`` open connections, checked as each is accepted (503); event
  streams count, each holds a connection.

The deadlines are not timers per request: one sweep per server looks at what each connection
is waiting for, every quarter of the shorter deadline, so a request costs nothing extra and a
slow client is cut off between its deadline and a quarter of it later. Each refusal is the
API's error envelope and closes the connection.
"""

from __future__ import annotations

import asyncio
import secrets
from http import HTTPStatus
from typing import Any

import orjson
import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from interfaces.http.errors import envelope

MAX_HEADER_BYTES = 64 * 1024


def raw_error_response(status: int, message: str) -> bytes:
    request_id = "req_" + secrets.token_hex(12)
    body = orjson.dumps({**envelope(status, message), "request_id": request_id})
    head = (
        f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\n"
        "content-type: application/json\r\n"
        f"content-length: {len(body)}\r\n"
        f"request-id: {request_id}\r\n"
        # The rest of the request was never read; the connection cannot carry another.
        "connection: close\r\n\r\n"
    )
    return head.encode() + body


def protocol_with_deadlines(
    header_seconds: float, body_seconds: float, max_connections: int
) -> type[asyncio.Protocol]:
    """A protocol class for ``uvicorn.Config(http=…)``; one per server (it keeps the sweep)."""
    interval = min(header_seconds, body_seconds) / 4
    live: set[DeadlineProtocol] = set()
    # What each connection was last seen waiting for, and since when.
    waiting_since: dict[DeadlineProtocol, tuple[str, object, float]] = {}
    sweep: list[asyncio.TimerHandle] = []

    def sweep_once(loop: asyncio.AbstractEventLoop) -> None:
        sweep.clear()
        now = loop.time()
        for protocol in list(live):
            waiting = protocol.waiting_for()
            if waiting is None:
                waiting_since.pop(protocol, None)
                continue
            kind, cycle = waiting
            seen = waiting_since.get(protocol)
            if seen is None or seen[0] != kind or seen[1] is not cycle:
                waiting_since[protocol] = (kind, cycle, now)
            elif kind == "body" and now - seen[2] >= body_seconds:
                protocol.refuse(408, f"the request body did not arrive within {body_seconds:g} seconds")
            elif kind == "headers" and now - seen[2] >= header_seconds:
                if protocol.header_bytes:
                    protocol.refuse(408, f"the request headers did not arrive within {header_seconds:g} seconds")
                else:
                    protocol.transport.close()  # an idle connection: nothing to answer
        if live:
            sweep.append(loop.call_later(interval, sweep_once, loop))

    class DeadlineProtocol(HttpToolsProtocol):
        header_bytes = 0

        def connection_made(self, transport: Any) -> None:
            too_many = len(self.connections) >= max_connections
            super().connection_made(transport)
            live.add(self)
            waiting_since[self] = ("headers", None, self.loop.time())
            if not sweep:
                sweep.append(self.loop.call_later(interval, sweep_once, self.loop))
            if too_many:
                self.refuse(503, f"the server has {max_connections} open connections, its limit; retry later")

        def connection_lost(self, exc: Exception | None) -> None:
            live.discard(self)
            waiting_since.pop(self, None)
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            if self.transport.is_closing():
                return  # refused: nothing more is parsed, no request is started
            super().data_received(data)
            cycle = self.cycle
            # Between requests; not the rest of a body the app answered without reading.
            if cycle is None or (cycle.response_complete and not cycle.more_body):
                self.header_bytes += len(data)
                if self.header_bytes > MAX_HEADER_BYTES:
                    self.refuse(431, f"the request line and headers exceed {MAX_HEADER_BYTES // 1024} KiB")
            else:
                self.header_bytes = 0

        def waiting_for(self) -> tuple[str, object] | None:
            """``("headers", cycle)`` between requests, ``("body", cycle)`` while a request's
            body is still arriving and nothing has been answered, else None."""
            if self.transport.is_closing():
                return None
            cycle = self.cycle
            if cycle is None or cycle.response_complete:
                return None if self.pipeline else ("headers", cycle)
            if cycle.more_body and not cycle.response_started:
                return ("body", cycle)
            return None

        def refuse(self, status: int, message: str) -> None:
            if not self.transport.is_closing():
                self.transport.write(raw_error_response(status, message))
                self.transport.close()

    return DeadlineProtocol


def bounded_config(
    app: Any,
    *,
    header_timeout: float,
    body_timeout: float,
    keep_alive_timeout: int,
    max_connections: int,
    **options: Any,
) -> uvicorn.Config:
    """A ``uvicorn.Config`` serving ``app`` with every bound above applied."""
    return uvicorn.Config(
        app,
        http=protocol_with_deadlines(header_timeout, body_timeout, max_connections),
        timeout_keep_alive=keep_alive_timeout,
        **options,
    )
