"""Live tails of session logs that scale with the number of open streams.

Writers (any thread, any process via LISTEN/NOTIFY) only say *which* stream changed. For each
followed stream there is one ``SharedReader`` per tenant: on a change it reads the new part
of the log once (on the thread pool), encodes each event once into SSE bytes, keeps the
bytes in a bounded buffer and wakes each of its tails once. Every tail sends those same
bytes, so a change costs one read and one encoding however many streams are open.

A tail knows the seq it sent last. It takes what follows from the shared buffer; when that
no longer reaches back to its seq (it replays from an old seq, or lagged behind a slow
client), it reads from its own position instead until it has caught up. The reader's buffer
is contiguous in seq (every public event has the next seq), so a tail never skips or repeats
an event. A tail follows (and its reader subscribes) before its first read, so nothing
committed after that read can go unnoticed.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import falcon.asgi
import orjson

from application.session_log import Chunk, LogPosition
from application.telemetry import NoTelemetry, Telemetry
from domain.ids import stream_id as session_stream

log = logging.getLogger("agentry.live")

KEEPALIVE = b": ping\n\n"  # what Falcon sends for an empty SSEvent
KEEPALIVE_SECONDS = 15.0
# What one reader keeps for its tails; a tail further behind reads on its own.
BUFFER_BYTES = 8 * 1024 * 1024
BUFFER_BATCHES = 1024
READ_RETRY_SECONDS = 1.0
# Event types with previews (``event_deltas``), and how many of their stored ids a reader
# remembers to drop previews that arrive late.
PREVIEWED = frozenset({"agent.message", "agent.thinking"})
FINISHED_KEPT = 256
# Under a steady stream of changes a reader waits this long per follower between reads (at
# most MAX_BATCH_WAIT), so each wake-up of many tails carries a batch of events rather than
# one: the fan-out costs per batch (a socket write per tail), not per event. An isolated
# change is read at once. (bench/fanout.py at 200 streams, append rate ÷ none: 0.61–0.77 at
# 100 µs per follower, 0.81–0.91 at 250 µs; delivery p99 30 → 55–59 ms.)
BATCH_WAIT_PER_FOLLOWER = 250e-6
MAX_BATCH_WAIT = 0.05
WAKE_GROUP = 50
WAKE_GROUP_PAUSE = 0.0005

# Shared readers read on threads of their own: on the default pool a reader's read queued
# behind the appends (and their key checks) it was meant to deliver, and every tail waited
# (bench/fanout.py at 1000 streams, back to back: delivery p99 53–63 ms, 127–128 ms without).
_SHARED_READS = ThreadPoolExecutor(max_workers=2, thread_name_prefix="agentry-live-read")

ReadChunk = Callable[[LogPosition], Chunk]
"""Blocking: the log's chunk after a position (``SessionLog.chunk`` bound to a checked head)."""

FollowKey = tuple[str, UUID]
"""(tenant, stream): readers are never shared across tenants."""


def sse_frames(chunk: Chunk) -> list[bytes]:
    """``event:`` type, ``id:`` seq, ``data:`` the view's JSON — as Falcon's SSEvent writes
    them, from JSON already encoded once."""
    return [
        b"event: %s\nid: %d\ndata: %s\n\n" % (view["type"].encode(), view["seq"], encoded)
        for view, encoded in zip(chunk.events, chunk.encoded, strict=True)
    ]


@dataclass
class _Batch:
    """The frames of one read, joined once: seqs ``first_seq`` … ``last_seq``."""

    first_seq: int
    data: bytes
    offsets: list[int]

    @property
    def last_seq(self) -> int:
        return self.first_seq + len(self.offsets) - 1

    def after(self, seq: int) -> bytes:
        if seq < self.first_seq:
            return self.data
        return self.data[self.offsets[seq + 1 - self.first_seq]:]


@dataclass(eq=False)
class SharedReader:
    """Reads one tenant's view of one stream for every tail on it."""

    key: FollowKey
    hub: LiveHub
    followers: set[Tail] = field(default_factory=set)
    position: LogPosition | None = None
    deleted_seq: int | None = None
    _read: ReadChunk | None = None
    _batches: deque[_Batch] = field(default_factory=deque)
    _buffered: int = 0
    _dirty: bool = False
    _reading: bool = False
    _task: asyncio.Task[None] | None = None  # held: the loop keeps only weak references
    # Notification ids: the highest a wake-up named, and the highest a started read covers.
    # The same commit wakes a process twice (its own save, then LISTEN/NOTIFY); a read that
    # began after the first wake-up already covers the second (ids commit in order: the event
    # table lock serialises writers).
    _heard: int = 0
    _covered: int = 0
    # Ids of the stored events previews lead up to: a preview still queued for one of them
    # is stale once the event itself went out, and is dropped.
    finished: set[str] = field(default_factory=set)
    _finished_order: deque[str] = field(default_factory=deque)

    def seed(self, position: LogPosition, read: ReadChunk) -> None:
        """The first tail's head starts the reader; a read right away covers whatever was
        committed between that head and the subscription."""
        if self._read is None:
            self._read, self.position = read, position
        self.request_read()

    def request_read(self, notification_id: int = 0) -> None:
        if notification_id:
            if notification_id <= self._covered:
                return
            self._heard = max(self._heard, notification_id)
        self._dirty = True
        if not self._reading and self._read is not None:
            self._reading = True
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        last_read = 0.0
        try:
            while self._dirty and self.followers and self._read is not None and self.position is not None:
                pause = min(MAX_BATCH_WAIT, BATCH_WAIT_PER_FOLLOWER * len(self.followers))
                pause -= loop.time() - last_read
                if pause > 0:
                    await asyncio.sleep(pause)
                last_read = loop.time()
                self._dirty = False
                self._covered = self._heard
                try:
                    chunk = await loop.run_in_executor(_SHARED_READS, self._read, self.position)
                except Exception:
                    log.exception("live reader of stream %s failed; retrying", self.key[1])
                    await asyncio.sleep(READ_RETRY_SECONDS)
                    self._dirty = True
                    continue
                if not chunk.complete:
                    self._dirty = True  # more is waiting
                await self._take(chunk)
        finally:
            self._reading = False

    async def _take(self, chunk: Chunk) -> None:
        self.position = chunk.position
        if not chunk.events:
            return
        for view in chunk.events:
            if view["type"] in PREVIEWED:
                self.finished.add(view["id"])
                self._finished_order.append(view["id"])
                if len(self._finished_order) > FINISHED_KEPT:
                    self.finished.discard(self._finished_order.popleft())
        frames = sse_frames(chunk)
        offsets, at = [], 0
        for frame in frames:
            offsets.append(at)
            at += len(frame)
        batch = _Batch(chunk.events[0]["seq"], b"".join(frames), offsets)
        self._batches.append(batch)
        self._buffered += len(batch.data)
        while len(self._batches) > 1 and (
            self._buffered > BUFFER_BYTES or len(self._batches) > BUFFER_BATCHES
        ):
            self._buffered -= len(self._batches.popleft().data)
        if chunk.deleted:
            self.deleted_seq = chunk.events[-1]["seq"]
        # In groups with a short pause between them: a request that becomes ready while a
        # thousand tails send waits behind one group, not behind all of them, and the loop
        # idles briefly, handing the GIL to the threads that serve appends (sleep(0) would
        # keep it; measured in bench/fanout.py: append rate at 1000 streams 0.31 → 0.47).
        tails = list(self.followers)
        for first in range(0, len(tails), WAKE_GROUP):
            for tail in tails[first:first + WAKE_GROUP]:
                tail.wake()
            await asyncio.sleep(WAKE_GROUP_PAUSE)

    def after(self, seq: int) -> tuple[list[bytes], int] | None:
        """The buffered frames after ``seq`` and the seq they reach; ``None`` when the buffer
        no longer reaches back to ``seq`` (the tail must read on its own)."""
        if self.position is None:
            return None
        if seq >= self.position.seq:
            return [], seq
        if not self._batches or seq + 1 < self._batches[0].first_seq:
            return None
        pieces = []
        for batch in reversed(self._batches):  # a tail is usually behind by one batch
            if batch.last_seq <= seq:
                break
            pieces.append(batch.after(seq))
        pieces.reverse()
        return pieces, self.position.seq


class Tail:
    """One open stream: woken once per change of its shared reader, by a client that goes
    away, by the keep-alive sweep, or by shutdown."""

    __slots__ = ("_hub", "reader", "gone", "_pending", "_waiter", "sent", "ping", "deltas", "previews")

    def __init__(self, hub: LiveHub, reader: SharedReader, deltas: frozenset[str] = frozenset()) -> None:
        self._hub = hub
        self.reader = reader
        # The event types this stream asked previews of (``event_deltas``), and those waiting.
        self.deltas = deltas
        self.previews: deque[tuple[str, bytes]] = deque(maxlen=10_000)  # (event id, frame)
        self.gone = False
        self._pending = False
        self._waiter: asyncio.Future[None] | None = None
        # Keep-alives: the sweep asks for a ping from a tail that sent nothing since the last
        # sweep, so no tail arms (and cancels) a timer on every one of its writes.
        self.sent = False
        self.ping = False

    @property
    def closing(self) -> bool:
        """The server is shutting down or the client went away: end the stream."""
        return self._hub.closing or self.gone

    def wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        else:
            self._pending = True

    def disconnected(self) -> None:
        self.gone = True
        self.wake()

    async def wait(self) -> None:
        """Returns once woken since the last wait."""
        if self._pending:
            self._pending = False
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiter = waiter
        try:
            await waiter
        finally:
            self._waiter = None
            self._pending = False

    def close(self) -> None:
        self._hub.leave(self)


AsgiReceive = Callable[[], Awaitable[dict[str, Any]]]


async def _watch_disconnect(receive: AsgiReceive, tail: Tail) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
    tail.disconnected()


class LiveHub:
    def __init__(self, telemetry: Telemetry | None = None) -> None:
        self._telemetry: Telemetry = telemetry or NoTelemetry()
        self._readers: dict[FollowKey, SharedReader] = {}
        self._by_stream: dict[UUID, set[SharedReader]] = {}
        # Read without a lock by writers' threads; replaced whole, never mutated.
        self._followed: frozenset[UUID] = frozenset()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._followers = 0
        self._lock = threading.Lock()
        self._sweeper: asyncio.Task[None] | None = None  # held: the loop keeps only weak references
        self.closing = False

    async def stream(
        self,
        tenant_id: str,
        stream_id: UUID,
        start: LogPosition,
        head: LogPosition,
        read: ReadChunk,
        receive: AsgiReceive | None,
        deltas: frozenset[str] = frozenset(),
    ) -> AsyncIterator[bytes]:
        """One SSE response body after ``start``: follows the stream (before its first read,
        so whatever commits after that read wakes it), replays with its own reads, then sends
        the shared reader's frames, with keep-alives while idle; ends as soon as ``receive``
        says the client went away."""
        tail = self.follow(tenant_id, stream_id, deltas)
        watcher = asyncio.create_task(_watch_disconnect(receive, tail)) if receive else None
        telemetry = self._telemetry
        # The tail's loop is written out here rather than in a nested generator: every
        # layer costs a resumption per write, and at a thousand streams writes are the cost.
        # ``head`` is where the log stood when the stream was opened (it seeds a new shared
        # reader); ``read`` reads this tail's own chunks (replay, or a tail left behind).
        position = start
        reader = tail.reader
        telemetry.stream_opened()  # closed in the finally below, whatever seed does
        try:
            reader.seed(head, read)
            while not (self.closing or tail.gone):
                shared = reader.after(position.seq)
                if shared is None:
                    # Behind the shared buffer: a chunk at a time from our own position, so
                    # a slow client holds at most one chunk in this process's memory.
                    chunk = await asyncio.to_thread(read, position)
                    position = chunk.position
                    if chunk.events:
                        tail.sent = True
                        telemetry.delivered(len(chunk.events))
                        yield b"".join(sse_frames(chunk))
                    if chunk.deleted:
                        return
                    continue
                pieces, seq = shared
                if pieces:
                    telemetry.delivered(seq - position.seq)
                    position = LogPosition.after_seq(seq)
                    tail.sent = True
                    yield pieces[0] if len(pieces) == 1 else b"".join(pieces)
                    continue
                if reader.deleted_seq is not None:
                    return  # the log has ended
                if tail.previews:
                    frames = [frame for event_id, frame in tail.previews if event_id not in reader.finished]
                    tail.previews.clear()
                    if frames:
                        tail.sent = True
                        yield b"".join(frames)
                    continue
                if tail.ping:
                    tail.ping = False
                    yield KEEPALIVE
                    continue
                await tail.wait()
        finally:
            telemetry.stream_closed()
            tail.close()
            if watcher is not None:
                watcher.cancel()

    def follow(self, tenant_id: str, stream_id: UUID, deltas: frozenset[str] = frozenset()) -> Tail:
        """Call on the event loop, before the tail's first read."""
        self._loop = asyncio.get_running_loop()
        key = (tenant_id, stream_id)
        with self._lock:
            reader = self._readers.get(key)
            if reader is None:
                reader = self._readers[key] = SharedReader(key, self)
                self._by_stream.setdefault(stream_id, set()).add(reader)
                self._followed = frozenset(self._by_stream)
            tail = Tail(self, reader, deltas)
            reader.followers.add(tail)
            self._followers += 1
        if self._sweeper is None or self._sweeper.done():
            self._sweeper = self._loop.create_task(self._sweep_keepalives())
        return tail

    async def _sweep_keepalives(self) -> None:
        """Every KEEPALIVE_SECONDS, a tail that sent nothing since the last sweep sends a
        ping (so an idle stream pings every 15–30 s); ends when nothing is followed."""
        while not self.closing and self._followers:
            await asyncio.sleep(KEEPALIVE_SECONDS)
            for tail in self._tails():
                if not tail.sent:
                    tail.ping = True
                    tail.wake()
                tail.sent = False

    def leave(self, tail: Tail) -> None:
        reader = tail.reader
        with self._lock:
            if tail not in reader.followers:
                return
            reader.followers.discard(tail)
            self._followers -= 1
            if not reader.followers:
                del self._readers[reader.key]
                stream_readers = self._by_stream[reader.key[1]]
                stream_readers.discard(reader)
                if not stream_readers:
                    del self._by_stream[reader.key[1]]
                    self._followed = frozenset(self._by_stream)

    def streams_changed(self, stream_ids: Iterable[UUID], notification_id: int = 0) -> None:
        """Safe to call from any thread."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        followed = self._followed
        changed = [sid for sid in stream_ids if sid in followed]
        if changed:
            loop.call_soon_threadsafe(self._wake_readers, changed, notification_id)

    def _wake_readers(self, stream_ids: list[UUID], notification_id: int) -> None:
        with self._lock:
            readers = [reader for sid in stream_ids for reader in self._by_stream.get(sid, ())]
        for reader in readers:
            reader.request_read(notification_id)

    def preview(self, tenant_id: str, session_id: str, event_type: str, frame: dict[str, Any]) -> None:
        """A streamed preview (``event_start`` / ``event_delta``) for the tails of the session
        that asked for ``event_type``; never stored, sent without an ``id:`` so a
        reconnect's Last-Event-ID still names the last stored event. Safe from any thread."""
        loop = self._loop
        stream = session_stream(session_id)
        if loop is None or loop.is_closed() or stream not in self._followed:
            return
        data = b"event: %s\ndata: %s\n\n" % (frame["type"].encode(), orjson.dumps(frame))
        event_id = frame.get("event_id") or (frame.get("event") or {}).get("id") or ""
        loop.call_soon_threadsafe(self._deliver_preview, (tenant_id, stream), event_type, event_id, data)

    def _deliver_preview(self, key: FollowKey, event_type: str, event_id: str, data: bytes) -> None:
        with self._lock:
            reader = self._readers.get(key)
            tails = [tail for tail in reader.followers if event_type in tail.deltas] if reader else []
        if reader is not None and event_id in reader.finished:
            return  # the event itself is already out
        for tail in tails:
            tail.previews.append((event_id, data))
            tail.wake()

    def close(self) -> None:
        """Wakes every tail for the last time, so open streams end and shutdown need not
        wait out its grace period (or cut them off mid-response)."""
        self.closing = True
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._wake_all)

    def _wake_all(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
        for tail in self._tails():
            tail.wake()

    def _tails(self) -> list[Tail]:
        with self._lock:
            return [tail for reader in self._readers.values() for tail in reader.followers]

    def follower_count(self) -> int:
        return self._followers


def receive_of(req: falcon.asgi.Request) -> AsgiReceive | None:
    """The request's ASGI ``receive``. Falcon 4.4 has no public hook for a client that goes
    away (its SSE loop watches ``receive`` but looks only after each send; falconry/falcon
    #1808, #2015), and with ``resp.stream`` nothing else reads ``receive`` once the (empty)
    GET body is in, so this stream is its only reader."""
    return getattr(req, "_receive", None)


