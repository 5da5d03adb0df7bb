"""Who drives which session: one driver per session at a time, in this process (a small
pool) and, with a lease, across processes."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

log = logging.getLogger("agentry.runtime")


class CancelToken:
    """Set by an interrupt; aborts the provider stream it was handed to."""

    def __init__(self) -> None:
        self._event = threading.Event()
        # Set when the process stops rather than the user interrupting: the turn is left
        # as it stands, for the next driver to take up again.
        self.shutting_down = False
        self._callbacks: list[Callable[[], None]] = []
        self._lock = threading.Lock()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def on_cancel(self, callback: Callable[[], None]) -> None:
        with self._lock:
            if not self._event.is_set():
                self._callbacks.append(callback)
                return
        callback()

    def cancel(self) -> None:
        with self._lock:
            if self._event.is_set():
                return
            self._event.set()
            callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            try:
                callback()
            except Exception:  # an abort that fails must not stop the others
                log.exception("cancelling a provider stream failed")

    def wait(self, seconds: float) -> bool:
        """Sleeps up to ``seconds``; True when cancelled meanwhile."""
        return self._event.wait(seconds)


class SessionLease(Protocol):
    """A hold on driving a session, across processes. ``acquire`` returns False while
    another process holds it; a holder that dies loses it when it expires."""

    def acquire(self, session_id: str) -> bool: ...

    def release(self, session_id: str) -> None: ...


class LocalLease:
    """One process (the embedded server): the dispatcher's own bookkeeping is the lease."""

    def acquire(self, session_id: str) -> bool:
        return True

    def release(self, session_id: str) -> None:
        pass


class TurnRunner(Protocol):
    def take_turns(self, session_id: str, cancel: CancelToken) -> None: ...


class TurnDispatcher:
    """Runs turns on a pool; a session already being driven is only marked again, so its
    driver looks once more before it lets go."""

    def __init__(self, runtime: TurnRunner, workers: int = 32, lease: SessionLease | None = None) -> None:
        self._runtime = runtime
        self._lease = lease or LocalLease()
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="agentry-turn")
        self._lock = threading.Lock()
        self._again: dict[str, bool] = {}
        self._tokens: dict[str, CancelToken] = {}
        # Sessions whose lease another process took over: their driver stops at once.
        self._lost: set[str] = set()
        self._closed = False

    @property
    def accepting(self) -> bool:
        """Whether this dispatcher still takes turns (false once shut down)."""
        return not self._closed

    @property
    def driving(self) -> int:
        """Sessions this process drives or has queued now."""
        return len(self._again)

    def submit(self, session_id: str) -> None:
        with self._lock:
            if self._closed:
                return
            if session_id in self._again:
                self._again[session_id] = True
                return
            self._again[session_id] = False
        self._pool.submit(self._drive, session_id)

    def offer(self, session_id: str) -> None:
        """Like ``submit`` for a session that may owe a turn (a periodic sweep): one this
        process already drives is left to its driver rather than marked again."""
        with self._lock:
            if session_id in self._again:
                return
        self.submit(session_id)

    def lease_lost(self, session_id: str) -> None:
        """Another process holds the session now (this one's lease expired unrenewed): stop
        driving it and write nothing more — as at shutdown, the turn is left for its new
        driver, never recorded as an interrupt."""
        with self._lock:
            if session_id not in self._again:
                return
            self._lost.add(session_id)
            token = self._tokens.get(session_id)
        if token is not None:
            token.shutting_down = True
            token.cancel()

    def interrupt(self, session_id: str) -> None:
        """Aborts the session's in-flight provider request, if this process runs it."""
        with self._lock:
            token = self._tokens.get(session_id)
        if token is not None:
            token.cancel()

    def _drive(self, session_id: str) -> None:
        try:
            if not self._lease.acquire(session_id):
                with self._lock:
                    self._done(session_id)
                return
            try:
                while True:
                    token = CancelToken()
                    with self._lock:
                        if session_id in self._lost:
                            self._done(session_id)
                            return
                        self._tokens[session_id] = token
                    try:
                        self._runtime.take_turns(session_id, token)
                    except Exception:
                        log.exception("session turn failed for %s", session_id)
                    with self._lock:
                        self._tokens.pop(session_id, None)
                        if not self._again.get(session_id) or self._closed or session_id in self._lost:
                            self._done(session_id)
                            return
                        self._again[session_id] = False
            finally:
                self._lease.release(session_id)
        except Exception:
            log.exception("driving session %s failed", session_id)
            with self._lock:
                self._done(session_id)

    def _done(self, session_id: str) -> None:
        """No longer driven here (called with the lock held)."""
        self._again.pop(session_id, None)
        self._lost.discard(session_id)

    def shutdown(self) -> None:
        with self._lock:
            self._closed = True
            tokens = list(self._tokens.values())
        for token in tokens:
            token.shutting_down = True
            token.cancel()
        self._pool.shutdown(wait=True, cancel_futures=True)
