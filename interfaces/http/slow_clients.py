"""Bounds on slow and excess clients, which uvicorn 0.54 leaves unbounded.

Read from uvicorn's own source (``protocols/http/httptools_impl.py``): no timer is armed when a
connection opens, and the keep-alive timer armed after a response is cancelled by the first
byte of the next request. A client that sends its request line and headers a byte at a time
therefore holds a connection forever. ``limit_concurrency`` is counted only once a request's
headers are complete, so it does not bound such connections either, and nothing bounds how
long the application waits for a body (``h11_max_incomplete_event_size`` applies to the h11
parser only; uvicorn picks httptools when it is installed). Hence:

- ``protocol_with_deadlines``: uvicorn's httptools protocol plus a header deadline (from the
  connection opening, or the previous response ending, to the end of the headers), a cap on
  the bytes before the headers end, and a cap on open connections checked as each is
  accepted (event streams count: each holds a connection);
- ``BodyDeadline``: ASGI middleware that reads the request body before the application sees
  it, within a deadline and ``MAX_BODY_BYTES``.

Each refusal is the API's error envelope (408, 413, 431 or 503) and closes the connection.
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
from interfaces.http.limits import MAX_BODY_BYTES, describe

MAX_HEADER_BYTES = 64 * 1024


def error_response(status: int, message: str) -> tuple[list[tuple[bytes, bytes]], bytes]:
    request_id = "req_" + secrets.token_hex(12)
    body = orjson.dumps({**envelope(status, message), "request_id": request_id})
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"request-id", request_id.encode()),
        # The rest of the request was never read; the connection cannot carry another.
        (b"connection", b"close"),
    ]
    return headers, body


def raw_error_response(status: int, message: str) -> bytes:
    headers, body = error_response(status, message)
    lines = [f"HTTP/1.1 {status} {HTTPStatus(status).phrase}".encode()]
    lines += [name + b": " + value for name, value in headers]
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def protocol_with_deadlines(header_seconds: float, max_connections: int) -> type[asyncio.Protocol]:
    """A protocol class for ``uvicorn.Config(http=…)``."""

    class DeadlineProtocol(HttpToolsProtocol):
        _header_timer: asyncio.TimerHandle | None = None
        _header_bytes = 0
        _in_headers = False

        def connection_made(self, transport: Any) -> None:
            too_many = len(self.connections) >= max_connections
            super().connection_made(transport)
            if too_many:
                self._refuse(
                    503, f"the server has {max_connections} open connections, its limit; retry later"
                )
                return
            self._arm_header_deadline()

        def connection_lost(self, exc: Exception | None) -> None:
            self._cancel_header_deadline()
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            if self.transport.is_closing():
                return  # refused: nothing more is parsed, no request is started
            super().data_received(data)
            if self._in_headers:
                self._header_bytes += len(data)
                if self._header_bytes > MAX_HEADER_BYTES:
                    self._refuse(431, f"the request line and headers exceed {MAX_HEADER_BYTES // 1024} KiB")

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._in_headers = True
            self._header_bytes = 0

        def on_headers_complete(self) -> None:
            self._in_headers = False
            self._cancel_header_deadline()
            super().on_headers_complete()

        def on_response_complete(self) -> None:
            pipelined = bool(self.pipeline)
            super().on_response_complete()
            if not pipelined and not self.transport.is_closing():
                self._arm_header_deadline()

        def _arm_header_deadline(self) -> None:
            self._cancel_header_deadline()
            self._header_timer = self.loop.call_later(header_seconds, self._headers_too_slow)

        def _cancel_header_deadline(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def _headers_too_slow(self) -> None:
            self._header_timer = None
            if self._in_headers:
                self._refuse(408, f"the request headers did not arrive within {header_seconds:g} seconds")
            elif not self.transport.is_closing():
                self.transport.close()  # an idle connection: nothing to answer

        def _refuse(self, status: int, message: str) -> None:
            self._cancel_header_deadline()
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
        BodyDeadline(app, body_timeout),
        http=protocol_with_deadlines(header_timeout, max_connections),
        timeout_keep_alive=keep_alive_timeout,
        **options,
    )


class _TooLarge(Exception):
    pass


class _Gone(Exception):
    pass


class BodyDeadline:
    """ASGI middleware: the whole request body within ``seconds`` and ``max_bytes``."""

    def __init__(self, app: Any, seconds: float, max_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.seconds = seconds
        self.max_bytes = max_bytes

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        too_large = f"request body is larger than {describe(self.max_bytes)}"
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            await _respond(send, 413, too_large)
            return
        try:
            body = await asyncio.wait_for(self._read_body(receive), self.seconds)
        except TimeoutError:
            await _respond(send, 408, f"the request body did not arrive within {self.seconds:g} seconds")
            return
        except _TooLarge:
            await _respond(send, 413, too_large)
            return
        except _Gone:
            return
        delivered = False

        async def replay() -> dict[str, Any]:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # afterwards only a disconnect can come

        await self.app(scope, replay, send)

    async def _read_body(self, receive: Any) -> bytes:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise _Gone
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                raise _TooLarge
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)


async def _respond(send: Any, status: int, message: str) -> None:
    headers, body = error_response(status, message)
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})
