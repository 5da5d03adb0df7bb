"""Live notification streams (Server-Sent Events).

A stream sends the caller's notifications after a position — the global position of the event
that raised each one, which is also the frame's ``id:`` — then each new one as the projection
makes it. Nothing polls per stream: the read-model runner says when projections moved
(``progressed``); the feed then asks the read model once which workspaces got notifications
since it last looked, and wakes only the streams of those workspaces, which read their own
rows. With projections in another process (``AGENTRY_PROJECTIONS=external``) nothing says so,
and the feed looks every second instead. Idle streams get a keep-alive comment every 15–30 s;
``close`` (shutdown) ends every stream, and a client that goes away ends its own at once.

A stream follows before its first read, and a wake-up that arrives while it reads makes it
read again, so a notification committed at any moment is sent, once, in position order.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson

from interfaces.http.live import KEEPALIVE, KEEPALIVE_SECONDS, AsgiReceive

log = logging.getLogger("agentry.live")

POLL_SECONDS = 1.0  # without progress signals (projections elsewhere)
READ_LIMIT = 100
RETRY_SECONDS = 1.0

ReadAfter = Callable[[int], list[dict[str, Any]]]
"""Blocking: the caller's notifications after a position, oldest first."""


def notification_frame(doc: dict[str, Any]) -> bytes:
    return b"event: notification\nid: %d\ndata: %s\n\n" % (doc["position"], orjson.dumps(doc))


class _Follower:
    __slots__ = ("tenant_id", "wake", "gone", "sent", "ping")

    def __init__(self, tenant_id: str) -> None:
        self.tenant_id = tenant_id
        self.wake = asyncio.Event()
        self.gone = False
        self.sent = False
        self.ping = False


class NotificationFeed:
    def __init__(self, newest_by_tenant: Callable[[int], dict[str, int]], newest: Callable[[], int], signalled: bool) -> None:
        """``newest_by_tenant(after)``: workspaces with notifications after a position, and
        the newest of each; ``newest()``: the newest position of all; ``signalled``: whether
        ``progressed`` will be called (projections in this process)."""
        self._newest_by_tenant = newest_by_tenant
        self._newest = newest
        self._poll_seconds = KEEPALIVE_SECONDS if signalled else POLL_SECONDS
        self._followers: dict[str, set[_Follower]] = {}
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._seen: int | None = None  # the newest position a check has looked at
        self._dirty = False
        self._checking = False
        self._tasks: set[asyncio.Task[None]] = set()  # held: the loop keeps only weak references
        self._sweeper: asyncio.Task[None] | None = None
        self.closing = False

    # -- wake-ups ------------------------------------------------------------------------------

    def progressed(self, position: int = 0) -> None:
        """Projections moved on (any thread; a ``ReadModelRunner.on_progress`` listener)."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        loop.call_soon_threadsafe(self._progressed, position)

    def _progressed(self, position: int) -> None:
        if self._followers:
            self._request_check()
        elif self._seen is not None:
            # Nobody follows: everything up to here is committed, and a stream opened later
            # reads it itself; the next check need not look below it.
            self._seen = max(self._seen, position)

    def _request_check(self) -> None:
        self._dirty = True
        if not self._checking and self._loop is not None:
            self._checking = True
            self._keep(self._loop.create_task(self._check()))

    async def _check(self) -> None:
        try:
            while self._dirty and self._followers and not self.closing and self._seen is not None:
                self._dirty = False
                try:
                    newest = await asyncio.to_thread(self._newest_by_tenant, self._seen)
                except Exception:
                    log.exception("notification feed: the read model could not be read; retrying")
                    await asyncio.sleep(RETRY_SECONDS)
                    self._dirty = True
                    continue
                if newest and self._seen is not None:
                    self._seen = max(self._seen, *newest.values())
                    with self._lock:
                        woken = [f for tenant in newest for f in self._followers.get(tenant, ())]
                    for follower in woken:
                        follower.wake.set()
        finally:
            self._checking = False

    async def _sweep(self) -> None:
        """Keep-alives for idle streams and, where nothing signals progress, regular looks."""
        loop = asyncio.get_running_loop()
        next_ping = loop.time() + KEEPALIVE_SECONDS
        while not self.closing and self._followers:
            await asyncio.sleep(min(self._poll_seconds, KEEPALIVE_SECONDS))
            self._request_check()
            if loop.time() >= next_ping:
                next_ping = loop.time() + KEEPALIVE_SECONDS
                for follower in self._all():
                    if not follower.sent:
                        follower.ping = True
                        follower.wake.set()
                    follower.sent = False

    def _keep(self, task: asyncio.Task[None]) -> None:
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- streams -------------------------------------------------------------------------------

    async def _follow(self, tenant_id: str) -> _Follower:
        self._loop = asyncio.get_running_loop()
        if self._seen is None:
            # Before the first stream's first read: what commits later is above it.
            seen = await asyncio.to_thread(self._newest)
            self._seen = seen if self._seen is None else min(self._seen, seen)
        follower = _Follower(tenant_id)
        with self._lock:
            self._followers.setdefault(tenant_id, set()).add(follower)
        if self._sweeper is None or self._sweeper.done():
            self._sweeper = self._loop.create_task(self._sweep())
        return follower

    def _leave(self, follower: _Follower) -> None:
        with self._lock:
            followers = self._followers.get(follower.tenant_id)
            if followers is not None:
                followers.discard(follower)
                if not followers:
                    del self._followers[follower.tenant_id]

    def _all(self) -> list[_Follower]:
        with self._lock:
            return [follower for followers in self._followers.values() for follower in followers]

    async def stream(
        self, tenant_id: str, after: int, read: ReadAfter, receive: AsgiReceive | None, max_seconds: float | None = None
    ) -> AsyncIterator[bytes]:
        """One SSE response body: the notifications ``read`` finds after ``after``, then each
        new one; ends at shutdown, when the client goes away, or after ``max_seconds`` (0:
        once what is there has been sent)."""
        follower = await self._follow(tenant_id)
        watcher = asyncio.create_task(_watch_disconnect(receive, follower)) if receive else None
        loop = asyncio.get_running_loop()
        deadline = None if max_seconds is None else loop.time() + max_seconds
        position = after
        try:
            while not (self.closing or follower.gone):
                follower.wake.clear()
                docs = await asyncio.to_thread(read, position)
                if docs:
                    position = docs[-1]["position"]
                    follower.sent = True
                    yield b"".join(notification_frame(doc) for doc in docs)
                    continue
                if follower.ping:
                    follower.ping = False
                    yield KEEPALIVE
                    continue
                remaining = None if deadline is None else deadline - loop.time()
                if remaining is not None and remaining <= 0:
                    return
                try:
                    await asyncio.wait_for(follower.wake.wait(), remaining)
                except TimeoutError:
                    return
        finally:
            self._leave(follower)
            if watcher is not None:
                watcher.cancel()

    def close(self) -> None:
        """Ends every stream (shutdown); safe from any thread."""
        self.closing = True
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._wake_all)

    def _wake_all(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
        for follower in self._all():
            follower.wake.set()

    def follower_count(self) -> int:
        return len(self._all())


async def _watch_disconnect(receive: AsgiReceive, follower: _Follower) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
    follower.gone = True
    follower.wake.set()
