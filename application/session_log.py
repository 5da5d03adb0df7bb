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
continues exactly after it. A read also stops short of more than it needs: a batch is sized
from what the page or chunk still lacks, in events and in bytes.

Reads decode only what they send. With an event store that hands out stored rows
(``StoredLogReader``), a row whose topic is not a public event is skipped undecoded, and a
public one goes from its stored JSON (orjson) straight to its view, without building the
domain event; a row that needs the transcoder (tagged client data, an older class version
to upcast, …) is decoded in full as before. Both give the same view.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable
from uuid import UUID

import orjson
from eventsourcing.utils import resolve_topic

from application.errors import NotFound
from application.ports import EventStore
from application.tenancy import Principal
from application.views import TIME_BOUNDS, iso, session_event_view
from domain.ids import looks_like, stream_id
from domain.sessions import PublicEvent, Session, SessionWasDeleted

MAX_PAGE = 1000
PAGE_MAX_BYTES = 4 * 1024 * 1024
# A replay chunk is bounded by its bytes; the count cap only keeps a chunk of tiny events
# from holding the thread too long.
CHUNK_EVENTS = 5000
CHUNK_MAX_BYTES = 1024 * 1024
READ_BYTES = 4 * 1024 * 1024
FIRST_READ = 2
SCAN_CHUNK = 1000


StoredRow = tuple[int, str, bytes]
"""A stored event as the store holds it: stream version, topic, state bytes."""


@runtime_checkable
class StoredLogReader(Protocol):
    """An event store that also hands out its rows undecoded (``infra.event_store``)."""

    def read_stored(
        self,
        aggregate_id: UUID,
        after_version: int = 0,
        limit: int | None = None,
        until_version: int | None = None,
        descending: bool = False,
    ) -> Sequence[StoredRow]: ...

    def decode_stored(self, aggregate_id: UUID, row: StoredRow) -> Any: ...

    def plain_state(self, state: bytes) -> dict[str, Any] | None: ...


@dataclass(frozen=True)
class _Kind:
    """What a topic's events need to become views: ``public_type`` is None for an event
    outside the public log."""

    public_type: str | None
    class_version: int = 1


_KINDS: dict[str, _Kind] = {}


def _kind(topic: str) -> _Kind:
    kind = _KINDS.get(topic)
    if kind is None:
        cls = resolve_topic(topic)
        if isinstance(cls, type) and issubclass(cls, PublicEvent):
            kind = _Kind(cls.public_type, getattr(cls, "class_version", 1))
        else:
            kind = _Kind(None)
        _KINDS[topic] = kind
    return kind


def _processed_at(timestamp: str) -> str:
    """``iso`` of a stored ISO timestamp. A UTC one with microseconds (what the store
    writes, ``YYYY-MM-DDTHH:MM:SS.ffffff+00:00``) is sliced instead, where it is read."""
    return iso(datetime.fromisoformat(timestamp))  # type: ignore[return-value]


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
    encoded: list[bytes] = field(default_factory=list)  # each view's JSON, when read here


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


Item = tuple[int, dict[str, Any], bytes]
"""A public event as a scan yields it: its stream version, its view and the view's JSON."""


class _Scan:
    """The public events of one stream, read in batches sized in bytes, each batch yielded
    as a list of items (so the per-event work is a loop, not a generator hop). ``version``
    is the last stream version of the batches scanned, and ``complete`` turns true once a
    read comes back short (the end of the stream). ``want_events`` / ``want_bytes``: how
    much the reader takes at most, and ``took`` what it took so far, so a batch reads little
    past what is still lacking (a page's look-ahead event included) while the reader takes
    everything it is given."""

    def __init__(
        self,
        store: EventStore,
        stream: UUID,
        after: LogPosition,
        descending: bool = False,
        until_version: int | None = None,
        want_events: int | None = None,
        want_bytes: int | None = None,
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
        self._want_events = want_events
        self._want_bytes = want_bytes
        self._took_events = 0
        self._took_bytes = 0

    def took(self, events: int, size: int) -> None:
        self._took_events += events
        self._took_bytes += size

    def _batch_size(self) -> int:
        if not self._seen_events:
            return FIRST_READ
        average = max(1, self._seen_bytes // self._seen_events)
        size = min(SCAN_CHUNK, READ_BYTES // average)
        if self._took_events < self._seen_events:
            # Filters drop events (a type filter, newest first below a cursor): how many
            # more rows the reader needs is anyone's guess; read full batches.
            return max(1, size)
        if self._want_events is not None:
            size = min(size, self._want_events - self._took_events + 1)
        if self._want_bytes is not None:
            size = min(size, (self._want_bytes - self._took_bytes) // average + 2)
        return max(1, size)

    def batches(self) -> Iterator[list[Item]]:
        store = self._store
        fast = store if isinstance(store, StoredLogReader) else None
        while not self.complete:
            size = self._batch_size()
            reader = fast.read_stored if fast is not None else store.read_stream
            batch: Sequence[Any] = reader(
                self._stream,
                after_version=self.version,
                until_version=self._until,
                limit=size,
                descending=self._descending,
            )
            self.complete = len(batch) < size
            if not batch:
                return
            if fast is not None:
                last_version = batch[-1][0]
                items = self._items(fast, batch)
            else:
                last_version = batch[-1].originator_version
                items = self._decoded_items(batch)
            del batch  # only the public events are kept once the batch is scanned
            if self._descending:
                self._until = last_version - 1
                self.complete = self.complete or self._until <= self.version
            self._seen_events += len(items)
            self._seen_bytes += sum(len(item[2]) for item in items)
            if items:
                yield items
            if not self._descending:
                self.version = last_version

    def _decoded_items(self, batch: Sequence[Any]) -> list[Item]:
        items = []
        for recorded in batch:
            if isinstance(recorded, PublicEvent) and recorded.seq > self._after_seq:
                view = session_event_view(recorded)
                items.append((recorded.originator_version, view, orjson.dumps(view)))
        return items

    def _items(self, store: StoredLogReader, batch: Sequence[StoredRow]) -> list[Item]:
        """The public rows, from their stored JSON where it is plain: the same view
        ``session_event_view`` makes of the decoded event, key order included."""
        after_seq = self._after_seq
        plain_state = store.plain_state
        dumps = orjson.dumps
        items = []
        for row in batch:
            version, topic, stored = row
            kind = _KINDS.get(topic) or _kind(topic)
            if kind.public_type is None:
                continue
            state = plain_state(stored)
            if state is None or state.get("class_version", 1) != kind.class_version:
                event = store.decode_stored(self._stream, row)
                if event.seq > after_seq:
                    view = session_event_view(event)
                    items.append((version, view, dumps(view)))
                continue
            seq = state["seq"]
            if seq > after_seq:
                timestamp = state["timestamp"]
                view = {
                    **state["payload"],
                    "id": state["event_id"],
                    "type": kind.public_type,
                    "processed_at": (
                        timestamp[:26] + "Z" if len(timestamp) == 32 and timestamp.endswith("+00:00")
                        else _processed_at(timestamp)
                    ),
                    "seq": seq,
                }
                items.append((version, view, dumps(view)))
        return items


# How many sessions' tenants a log remembers (each a few dozen bytes).
TENANTS_KEPT = 10_000


class SessionLog:
    def __init__(self, store: EventStore) -> None:
        self._store = store
        # stream → tenant, from the stream's first event, which never changes: a page needs
        # the tenant check on every request, not the read of that (large) first event.
        self._tenants: dict[UUID, str] = {}

    def _stream_of(self, who: Principal, session_id: str) -> UUID:
        """The session's stream; NotFound for anything the caller may not see."""
        missing = NotFound(f"session {session_id!r} not found")
        if not looks_like("sesn", session_id):
            raise missing
        stream = stream_id(session_id)
        tenant = self._tenants.get(stream)
        if tenant is None:
            first = self._store.read_stream(stream, limit=1)
            if not first or not isinstance(first[0], Session.Started):
                raise missing
            tenant = first[0].tenant_id
            if len(self._tenants) >= TENANTS_KEPT:
                self._tenants.clear()
            self._tenants[stream] = tenant
        if tenant != who.tenant_id:
            raise missing
        return stream

    def head(self, who: Principal, session_id: str) -> LogHead:
        """The session's last seq and whether it was deleted (a deleted session's log stays
        readable); NotFound for anything the caller may not see. Read from the ends of the
        stream, not by loading the aggregate, which would read every event since its last
        snapshot — megabytes each in a session of large messages."""
        stream = self._stream_of(who, session_id)
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
        descending = order == "desc"
        # Oldest first needs only the tenant check; newest first starts at the head.
        stream = self._stream_of(who, session_id)
        until = self.head(who, session_id).position.version if descending else None
        limit = max(1, min(limit, MAX_PAGE))
        scan = _Scan(
            self._store, stream, LogPosition.after_seq(after_seq),
            descending=descending, until_version=until,
            want_events=limit + 1, want_bytes=PAGE_MAX_BYTES,
        )
        events: list[dict[str, Any]] = []
        encoded_events: list[bytes] = []
        held = 0
        full = False
        for items in scan.batches():
            taken = len(events)
            for _version, view, encoded in items:
                if (
                    (before_seq is not None and view["seq"] >= before_seq)
                    or (types and view["type"] not in types)
                    or (processed and not _within(view["processed_at"], processed))
                ):
                    continue
                if full:
                    # One more event: another page follows.
                    return Page(events, events[-1]["seq"], encoded_events)
                events.append(view)
                encoded_events.append(encoded)
                held += len(encoded)
                full = len(events) == limit or held >= PAGE_MAX_BYTES
            scan.took(len(events) - taken, sum(len(e) for e in encoded_events[taken:]))
        return Page(events, None, encoded_events)

    def chunk(
        self,
        head: LogHead,
        after: LogPosition,
        max_events: int | None = None,
        max_bytes: int | None = None,
    ) -> Chunk:
        """The public events after ``after``: at most ``max_events`` of them and, past the
        first, at most ``max_bytes`` of JSON (by default ``CHUNK_EVENTS`` and
        ``CHUNK_MAX_BYTES`` as they stand when called)."""
        max_events = CHUNK_EVENTS if max_events is None else max_events
        max_bytes = CHUNK_MAX_BYTES if max_bytes is None else max_bytes
        scan = _Scan(self._store, head.stream, after, want_events=max_events, want_bytes=max_bytes)
        events: list[dict[str, Any]] = []
        encoded_events: list[bytes] = []
        held = 0
        for items in scan.batches():
            for version, view, encoded in items:
                events.append(view)
                encoded_events.append(encoded)
                held += len(encoded)
                if len(events) == max_events or held >= max_bytes:
                    # A reader that stops after this event resumes right after it.
                    position = LogPosition(view["seq"], version)
                    return Chunk(events, encoded_events, position, complete=False)
            scan.took(len(items), sum(len(item[2]) for item in items))
        seq = events[-1]["seq"] if events else after.seq
        return Chunk(events, encoded_events, LogPosition(seq, scan.version), complete=True)
