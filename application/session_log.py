"""Reads of a session's public event log, kept apart from the commands in ``SessionService``.

The HTTP layer gets views (dicts as the API shows them) and small value objects from here,
never aggregates or domain events. Every read is bounded in bytes as well as in count: one
page or replay chunk of a session whose messages are megabytes each must not hold the whole
session in memory at once.

Caps (the encoded JSON of the views, measured with orjson):

- a page holds at most ``PAGE_MAX_BYTES`` (4 MiB) — it stops adding events once it holds
  that much, and always holds at least one event, so one event larger than the cap is still
  served, alone;
- a replay chunk holds at most ``CHUNK_MAX_BYTES`` (1 MiB), again at least one event;
- the event store is read in batches sized from the event sizes seen so far, so a batch of
  stored events is about ``READ_BYTES`` (4 MiB) too; the first batch is small
  (``FIRST_READ`` events) because nothing is known yet.

A page that stops on bytes still returns the cursor of its last event, so the next page
continues exactly after it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from itertools import islice
from typing import Any
from uuid import UUID

import orjson

from application.errors import NotFound
from application.ports import EventStore
from application.tenancy import Principal
from application.views import TIME_BOUNDS, session_event_view
from domain.ids import looks_like, stream_id
from domain.sessions import PublicEvent, Session, SessionWasDeleted

MAX_PAGE = 1000
PAGE_MAX_BYTES = 4 * 1024 * 1024
CHUNK_EVENTS = 100
CHUNK_MAX_BYTES = 1024 * 1024
READ_BYTES = 4 * 1024 * 1024
FIRST_READ = 2
SCAN_CHUNK = 500

def _within(moment: str | None, bounds: dict[str, str]) -> bool:
    return moment is not None and all(TIME_BOUNDS[op](moment, bound) for op, bound in bounds.items())


@dataclass(frozen=True)
class LogPosition:
    """How far a reader got: every public event up to ``seq`` is consumed and every stored
    event up to stream ``version`` is scanned. A seq is never above its event's version, so
    ``LogPosition(n, n)`` is a safe place to resume "after seq n" from."""

    seq: int
    version: int

    @classmethod
    def after_seq(cls, seq: int) -> LogPosition:
        return cls(seq, seq)


@dataclass(frozen=True)
class LogHead:
    """Where a session's log stands, read on behalf of one tenant. Holding one is what
    entitles a reader to the log's chunks: only ``SessionLog.head`` makes them, after the
    tenant check."""

    session_id: str
    tenant_id: str
    stream: UUID
    position: LogPosition
    deleted: bool

    @property
    def last_seq(self) -> int:
        return self.position.seq


@dataclass(frozen=True)
class Page:
    events: list[dict[str, Any]]
    next_seq: int | None  # the seq to continue from; None when this is the last page


@dataclass(frozen=True)
class Chunk:
    """Public events after a position, oldest first. ``encoded`` holds each view's JSON (so a
    stream never encodes an event twice); ``position`` is where the next chunk starts;
    ``complete`` says the chunk reached the end of the stream as it stood when read."""

    events: list[dict[str, Any]]
    encoded: list[bytes]
    position: LogPosition
    complete: bool

    @property
    def deleted(self) -> bool:
        return bool(self.events) and self.events[-1]["type"] == "session.deleted"


class _Scan:
    """The public events of one stream, read in batches sized in bytes, each yielded as its
    view and the view's JSON. ``version`` is the last stream version scanned and
    ``complete`` turns true once a read comes back short (the end of the stream)."""

    def __init__(
        self,
        store: EventStore,
        stream: UUID,
        after: LogPosition,
        descending: bool = False,
        until_version: int | None = None,
    ) -> None:
        self._store = store
        self._stream = stream
        self._after_seq = after.seq
        self._descending = descending
        self.version = after.version
        self._until = until_version
        self.complete = False
        self._seen_bytes = 0
        self._seen_events = 0

    def _batch_size(self) -> int:
        if not self._seen_events:
            return FIRST_READ
        average = max(1, self._seen_bytes // self._seen_events)
        return max(1, min(SCAN_CHUNK, READ_BYTES // average))

    def __iter__(self) -> Iterator[tuple[dict[str, Any], bytes]]:
        while not self.complete:
            size = self._batch_size()
            batch = self._store.read_stream(
                self._stream,
                after_version=self.version,
                until_version=self._until,
                limit=size,
                descending=self._descending,
            )
            self.complete = len(batch) < size
            if not batch:
                return
            last_version = batch[-1].originator_version
            found = [
                recorded
                for recorded in batch
                if isinstance(recorded, PublicEvent) and recorded.seq > self._after_seq
            ]
            del batch  # only the public events are kept once the batch is scanned
            if self._descending:
                self._until = last_version - 1
                self.complete = self.complete or self._until <= self.version
            for event in found:
                view = session_event_view(event)
                encoded = orjson.dumps(view)
                self._seen_bytes += len(encoded)
                self._seen_events += 1
                if not self._descending:
                    # A reader that stops after this event resumes right after it.
                    self.version = event.originator_version
                yield view, encoded
            if not self._descending:
                self.version = last_version


class SessionLog:
    def __init__(self, store: EventStore) -> None:
        self._store = store

    def head(self, who: Principal, session_id: str) -> LogHead:
        """The session's last seq and whether it was deleted (a deleted session's log stays
        readable); NotFound for anything the caller may not see. Read from the ends of the
        stream, not by loading the aggregate, which would read every event since its last
        snapshot — megabytes each in a session of large messages."""
        missing = NotFound(f"session {session_id!r} not found")
        if not looks_like("sesn", session_id):
            raise missing
        stream = stream_id(session_id)
        first = self._store.read_stream(stream, limit=1)
        if not first or not isinstance(first[0], Session.Started) or first[0].tenant_id != who.tenant_id:
            raise missing
        version, last = self._last_public(stream)
        return LogHead(
            session_id=session_id,
            tenant_id=who.tenant_id,
            stream=stream,
            position=LogPosition(last.seq if last else 0, version),
            deleted=isinstance(last, SessionWasDeleted),
        )

    def _last_public(self, stream: UUID) -> tuple[int, PublicEvent | None]:
        """The stream's version and its last public event, read backwards a few at a time
        (only lifecycle events, which are small, can follow it)."""
        version, until, size = 0, None, 1
        while True:
            batch = self._store.read_stream(stream, until_version=until, limit=size, descending=True)
            if batch and not version:
                version = batch[0].originator_version
            for recorded in batch:
                if isinstance(recorded, PublicEvent):
                    return version, recorded
            if len(batch) < size:
                return version, None
            until, size = batch[-1].originator_version - 1, FIRST_READ

    def page(
        self,
        who: Principal,
        session_id: str,
        after_seq: int = 0,
        limit: int = 100,
        order: str = "asc",
        types: frozenset[str] | None = None,
        before_seq: int | None = None,
        processed: dict[str, str] | None = None,
    ) -> Page:
        """One page of the public log and the seq to continue from. ``processed`` bounds
        ``processed_at`` (keys gt/gte/lt/lte, fixed-width UTC strings)."""
        head = self.head(who, session_id)
        descending = order == "desc"
        scan = _Scan(
            self._store, head.stream, LogPosition.after_seq(after_seq),
            descending=descending, until_version=head.position.version if descending else None,
        )
        wanted = (
            (view, encoded) for view, encoded in scan
            if (before_seq is None or view["seq"] < before_seq)
            and (not types or view["type"] in types)
            and (not processed or _within(view["processed_at"], processed))
        )
        limit = max(1, min(limit, MAX_PAGE))
        events: list[dict[str, Any]] = []
        held = 0
        for view, encoded in wanted:
            events.append(view)
            held += len(encoded)
            if len(events) == limit or held >= PAGE_MAX_BYTES:
                break
        else:
            return Page(events, None)
        # One more event tells whether another page follows.
        more = next(wanted, None) is not None
        return Page(events, events[-1]["seq"] if more else None)

    def chunk(
        self,
        head: LogHead,
        after: LogPosition,
        max_events: int = CHUNK_EVENTS,
        max_bytes: int = CHUNK_MAX_BYTES,
    ) -> Chunk:
        """The public events after ``after``: at most ``max_events`` of them and, past the
        first, at most ``max_bytes`` of JSON."""
        scan = _Scan(self._store, head.stream, after)
        events: list[dict[str, Any]] = []
        encoded_events: list[bytes] = []
        held = 0
        stopped_early = False
        for view, encoded in islice(scan, max_events):
            events.append(view)
            encoded_events.append(encoded)
            held += len(encoded)
            if len(events) == max_events or held >= max_bytes:
                stopped_early = True
                break
        if stopped_early:
            position = LogPosition(events[-1]["seq"], scan.version)
            return Chunk(events, encoded_events, position, complete=False)
        seq = events[-1]["seq"] if events else after.seq
        return Chunk(events, encoded_events, LogPosition(seq, scan.version), complete=True)
