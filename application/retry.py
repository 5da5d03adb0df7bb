"""Re-runs a load-change-save command that lost an optimistic-concurrency race.

Each attempt reloads the aggregate, so the command is re-decided on fresh state; a stale
*client* version is not a race and is never retried.

Writers to one stream inside this process take turns on a striped lock first, so they never
race each other at all; the optimistic check (and this retry) is left to settle races with
other processes. Without the lock, a burst of writers to one session could keep losing to
each other until their attempts ran out.

A command may return ``Pending``: its save is queued (``EventStore.save_pending``) and
``finish`` waits for the commit — still under the lock, so the next writer's command starts
from state that is recorded, never from a save that may yet be refused. (Letting the lock go
before the commit was measured to nearly double one session's append rate, but a command
could then decide on an event that was never recorded.)"""

from __future__ import annotations

import random
import threading
import time
import zlib
from collections.abc import Callable
from typing import Generic, TypeVar

from application.errors import Conflict

T = TypeVar("T")

# A race is settled within this budget or reported as a retryable 409.
BUDGET_SECONDS = 10.0
MAX_BACKOFF_SECONDS = 0.05
_STRIPES = tuple(threading.RLock() for _ in range(256))


def stream_lock(key: str) -> threading.RLock:
    """The in-process lock that writers to the stream named ``key`` share."""
    return _STRIPES[zlib.crc32(key.encode()) % len(_STRIPES)]


class Pending(Generic[T]):
    """A command's outcome whose save is queued: ``finish`` waits for the commit."""

    def __init__(self, finish: Callable[[], T]) -> None:
        self.finish = finish


def retry_on_race(command: Callable[[], T | Pending[T]], key: str, budget: float = BUDGET_SECONDS) -> T:
    """Runs ``command`` (which writes the stream named ``key``) until it wins its race."""
    deadline = time.monotonic() + budget
    attempt = 0
    lock = stream_lock(key)
    while True:
        attempt += 1
        try:
            with lock:
                outcome = command()
                return outcome.finish() if isinstance(outcome, Pending) else outcome
        except Conflict as conflict:
            if not conflict.retryable or time.monotonic() >= deadline:
                raise
        # Full jitter, growing with each lost race, so competing processes spread out.
        time.sleep(random.uniform(0, min(MAX_BACKOFF_SECONDS, 0.002 * 2**min(attempt, 10))))
