"""What was read from the store moments ago, trusted for a few seconds without a load, for
checks that sit on every request and whose records rarely change: an environment key's
credential (``environment_keys``, by the key's hash), a login token's person (``people``,
by the token's hash) and a workspace's rate-limit override (``rate_limit_config``, by
workspace id). API keys do not use it: ``api_keys`` loads a key's stream on every request,
so its revocation holds at once everywhere.

A change made by another process takes effect here within ``SECONDS``; one made by this
process can ``forget`` (or ``drop``) the entries it touches at once."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")

SECONDS = 5.0


class RecentlyVerified(Generic[T]):
    """What a key (a credential's hash, a workspace id) stood for — a credential, a person,
    a setting — until it expires."""

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
