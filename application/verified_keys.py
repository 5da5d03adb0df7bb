"""Keys verified moments ago, trusted without a load for a few seconds: authentication sits
on every request, and a key's record rarely changes. A revoke made by another process takes
effect within ``SECONDS``; one made by this process can ``forget`` at once."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")

SECONDS = 5.0


class RecentlyVerified(Generic[T]):
    """What a key hash verified as (a principal, a credential), until it expires."""

    def __init__(self, seconds: float = SECONDS) -> None:
        self._seconds = seconds
        self._entries: dict[str, tuple[float, T]] = {}
        self._lock = threading.Lock()

    def get(self, key_hash: str) -> T | None:
        with self._lock:
            entry = self._entries.get(key_hash)
        if entry is None or entry[0] <= time.monotonic():
            return None
        return entry[1]

    def keep(self, key_hash: str, verified: T) -> None:
        with self._lock:
            self._entries[key_hash] = (time.monotonic() + self._seconds, verified)

    def forget(self, matches: Callable[[T], bool]) -> None:
        with self._lock:
            self._entries = {key: entry for key, entry in self._entries.items() if not matches(entry[1])}

    def drop(self, key_hash: str) -> None:
        with self._lock:
            self._entries.pop(key_hash, None)
