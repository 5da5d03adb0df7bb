"""Runs one blocking SDK exchange on a helper thread so the caller can always walk away.

The caller's thread relays deltas and waits for the outcome, a cancellation or the deadline,
whichever comes first. An interrupt must end a stream that is blocked waiting for bytes: the
SDKs' sync clients offer no abort, so we shut the response's socket down (which wakes a blocked
read at once; merely closing the fd from another thread does not) and return without waiting
for the helper thread. If the interrupt comes before the response headers, there is no socket
to shut yet; the helper thread then aborts as soon as they arrive (or its read timeout ends it),
while the caller has long returned.
"""

from __future__ import annotations

import queue
import socket
import threading
import time
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from application.ports import Cancellation, ModelResponse, ProviderCancelled, ProviderDelta, ProviderError
from infra.providers.clients import EXCHANGE_TIMEOUT

T = TypeVar("T")
D = TypeVar("D")


class Exchange(Generic[D]):
    """``emit`` and ``attach`` are for the helper thread; ``run`` is for the caller."""

    def __init__(self) -> None:
        self._inbox: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()
        self._responses: list[Any] = []
        self._lock = threading.Lock()
        self._aborted = False

    def emit(self, delta: D) -> None:
        self._inbox.put(("delta", delta))

    def attach(self, response: Any) -> None:
        """Registers the HTTP response being read, so an abort can cut it off."""
        with self._lock:
            self._responses.append(response)
            aborted = self._aborted
        if aborted:
            _cut(response)

    def abort(self) -> None:
        with self._lock:
            self._aborted = True
            responses = list(self._responses)
        for response in responses:
            _cut(response)

    def run(
        self,
        work: Callable[[Exchange[D]], T],
        on_delta: Callable[[D], None],
        cancel: Cancellation | None,
        deadline_seconds: float,
        timeout_message: str,
    ) -> T:
        if cancel is not None and cancel.cancelled:
            raise ProviderCancelled()

        def helper() -> None:
            try:
                self._inbox.put(("done", work(self)))
            except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
                self._inbox.put(("error", exc))

        threading.Thread(target=helper, name="provider-exchange", daemon=True).start()
        if cancel is not None:
            cancel.on_cancel(self._cancelled)
        deadline = time.monotonic() + deadline_seconds
        while True:
            try:
                kind, value = self._inbox.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                self.abort()
                raise ProviderError("request_failed", timeout_message) from None
            if kind == "delta":
                on_delta(value)
            elif kind == "done":
                return value
            elif kind == "error":
                if cancel is not None and cancel.cancelled:
                    raise ProviderCancelled() from value
                raise value
            else:
                raise ProviderCancelled()

    def _cancelled(self) -> None:
        # Queued before the abort: the helper's read then fails, and that error must not
        # reach the caller ahead of the cancellation that caused it.
        self._inbox.put(("cancelled", None))
        self.abort()


def _cut(response: Any) -> None:
    """Shuts the socket under an httpx(2) response down, waking any read blocked on it."""
    stream = getattr(response, "extensions", {}).get("network_stream")
    sock = stream.get_extra_info("socket") if stream is not None else None
    if isinstance(sock, socket.socket):
        try:
            # The plain socket's shutdown, also under TLS: SSLSocket.shutdown would tear the TLS
            # object down under the reading thread's feet.
            socket.socket.shutdown(sock, socket.SHUT_RDWR)
        except OSError:
            pass  # already closed: nothing left to wake
        return
    try:
        response.close()
    except Exception:  # noqa: BLE001 - best effort on a transport without a socket (HTTP/2)
        pass


def model_exchange(
    host: str,
    work: Callable[[Exchange[ProviderDelta]], ModelResponse],
    on_delta: Callable[[ProviderDelta], None],
    cancel: Cancellation,
) -> ModelResponse:
    """One streamed model request, bounded as a whole by ``EXCHANGE_TIMEOUT`` (both adapters)."""
    return Exchange[ProviderDelta]().run(
        work, on_delta, cancel, EXCHANGE_TIMEOUT, f"{host} gave no complete answer within {EXCHANGE_TIMEOUT:.0f} s"
    )
