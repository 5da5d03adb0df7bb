"""Wakes live tails when a stream they follow changes.

Writers (any thread, any process via LISTEN/NOTIFY) only say *which* stream changed; a tail
then re-reads its stream after the last seq it sent. A tail therefore subscribes before it
replays and can neither miss an event nor send one twice.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterable
from uuid import UUID


class Tail:
    def __init__(self, hub: "LiveHub", stream_id: UUID) -> None:
        self.stream_id = stream_id
        self.changed = asyncio.Event()
        self._hub = hub

    @property
    def closing(self) -> bool:
        """The server is shutting down: end the stream instead of waiting for more."""
        return self._hub.closing

    async def wait(self, timeout: float) -> bool:
        """True when the stream changed since the last wait; False on timeout."""
        try:
            await asyncio.wait_for(self.changed.wait(), timeout)
        except TimeoutError:
            return False
        self.changed.clear()
        return True

    def close(self) -> None:
        self._hub.leave(self)


class LiveHub:
    def __init__(self) -> None:
        self._tails: dict[UUID, set[Tail]] = {}
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self.closing = False

    def follow(self, stream_id: UUID) -> Tail:
        self._loop = asyncio.get_running_loop()
        tail = Tail(self, stream_id)
        with self._lock:
            self._tails.setdefault(stream_id, set()).add(tail)
        return tail

    def leave(self, tail: Tail) -> None:
        with self._lock:
            followers = self._tails.get(tail.stream_id)
            if followers is not None:
                followers.discard(tail)
                if not followers:
                    del self._tails[tail.stream_id]

    def streams_changed(self, stream_ids: Iterable[UUID], notification_id: int = 0) -> None:
        """Safe to call from any thread."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        with self._lock:
            woken = [tail for sid in stream_ids for tail in self._tails.get(sid, ())]
        for tail in woken:
            loop.call_soon_threadsafe(tail.changed.set)

    def close(self) -> None:
        """Wakes every tail for the last time, so open streams end and shutdown need not
        wait out its grace period (or cut them off mid-response)."""
        self.closing = True
        with self._lock:
            followed = list(self._tails)
        self.streams_changed(followed)

    def follower_count(self) -> int:
        with self._lock:
            return sum(len(tails) for tails in self._tails.values())
