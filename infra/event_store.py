"""The event store: one ``eventsourcing`` application recording every aggregate in one table,
so there is one global notification order for projections, live tails and the relay."""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Sequence
from copy import deepcopy
from typing import Any
from uuid import UUID

import orjson
from eventsourcing.application import AggregateNotFoundError, Application, ProcessingEvent
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import (
    IntegrityError,
    InterfaceError,
    Notification,
    OperationalError,
    StoredEvent,
    Transcoder,
)
from eventsourcing.postgres import PostgresAggregateRecorder
from eventsourcing.utils import resolve_topic, retry
from psycopg.rows import tuple_row
from psycopg.sql import SQL, Identifier

from application.errors import Conflict, NotFound
from application.ports import ChangeListener
from domain.people import User
from domain.sessions import Session
from infra.postgres_recorder import TOPIC as SINGLE_STATEMENT_RECORDER
from infra.settings import Settings
from infra.sqlite_recorder import TOPIC as GROUP_COMMIT_SQLITE_RECORDER
from infra.transcoding import SafeJSONTranscoder

log = logging.getLogger("agentry.store")


class AgentryEvents(Application):
    """Its name gives the table names (``agentryevents_events`` …)."""

    name = "AgentryEvents"
    # A user's stream grows by every login (``LoggedIn``, and ``TotpCodeUsed`` with a second
    # factor): a snapshot every 100 events keeps an uncached load to at most 100 of them.
    snapshotting_intervals = {Session: 200, User: 100}

    def construct_transcoder(self) -> Transcoder:
        transcoder = SafeJSONTranscoder()
        self.register_transcodings(transcoder)
        return transcoder


# Loads fast-forward a cached copy by reading only newer events instead of replaying whole
# streams; every load gets its own deep copy, so a refused command never leaks into the cache.
CACHE_ENV = {"AGGREGATE_CACHE_MAXSIZE": "5000", "AGGREGATE_CACHE_FASTFORWARD": "y"}
# Aggregates a command saved last, held for the next command on them (``load_current``).
HELD_MAXSIZE = 5000
# Notification ids this process saved and told its listeners of, remembered so the change
# feed does not wake them again for the same writes (``announced_here``).
ANNOUNCED_MAXSIZE = 65536


def event_store_env(settings: Settings) -> dict[str, str]:
    return {**CACHE_ENV, **_persistence_env(settings)}


def _persistence_env(settings: Settings) -> dict[str, str]:
    if settings.uses_postgres:
        pg = settings.postgres
        return {
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "POSTGRES_DBNAME": pg.dbname,
            "POSTGRES_HOST": pg.host,
            "POSTGRES_PORT": str(pg.port),
            "POSTGRES_USER": pg.user,
            "POSTGRES_PASSWORD": pg.password,
            # The library waits forever for the table lock by default; bound it.
            "POSTGRES_LOCK_TIMEOUT": str(settings.postgres_lock_timeout_seconds),
            "POSTGRES_POOL_SIZE": str(settings.postgres_pool_size),
            "POSTGRES_MAX_OVERFLOW": str(settings.postgres_pool_size),
            "POSTGRES_CONNECT_TIMEOUT": "10",
            "APPLICATION_RECORDER_TOPIC": SINGLE_STATEMENT_RECORDER,
            "CREATE_TABLE": "y",
        }
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return {
        "PERSISTENCE_MODULE": "eventsourcing.sqlite",
        "SQLITE_DBNAME": str(settings.event_store_path.resolve()),
        "SQLITE_LOCK_TIMEOUT": "30",
        "APPLICATION_RECORDER_TOPIC": GROUP_COMMIT_SQLITE_RECORDER,
        "CREATE_TABLE": "y",
    }


class EventsourcingEventStore:
    """Implements ``application.ports.EventStore`` on an ``eventsourcing`` application."""

    def __init__(self, env: dict[str, str]) -> None:
        self.app = AgentryEvents(env=env)
        self._listeners: list[ChangeListener] = []
        self._held: OrderedDict[UUID, Aggregate] = OrderedDict()
        self._held_lock = threading.Lock()
        self._announced: deque[int] = deque()
        self._announced_set: set[int] = set()
        self._announced_lock = threading.Lock()
        # Told of each committed append (events, seconds from queueing to commit): metrics.
        self.on_appended: Callable[[int, float], None] | None = None

    def add_listener(self, listener: ChangeListener) -> None:
        self._listeners.append(listener)

    # -- the write path ---------------------------------------------------------------

    def save(self, *aggregates: Aggregate) -> int | None:
        return self.save_pending(*aggregates).wait()

    def save_pending(self, *aggregates: Aggregate) -> PendingSave:
        """Queues the aggregates' new events for the next group commit and returns at once;
        the save happens, or fails, at ``wait`` — which the caller must reach, soon, on
        every path. (Should a caller let another save of the same stream be queued before
        this one commits, that later save is refused if this one is: a chain of such saves
        fails from its first loser on. ``Commands`` does not: it waits under the stream lock.)
        """
        aggregates = tuple(aggregate for aggregate in aggregates if aggregate is not None)
        self._drop_held(aggregate.id for aggregate in aggregates)  # held copies are behind this save (``hold`` may renew)
        processing: ProcessingEvent[UUID] = ProcessingEvent()
        queued = time.perf_counter()
        processing.collect_events(*aggregates)
        stored = [self.app.mapper.to_stored_event(event) for event in processing.events]
        if not stored:
            return PendingSave(self, processing, stored, None)
        enqueue = getattr(self.app.recorder, "enqueue_events", None)
        if enqueue is None:  # a recorder without group commit (in memory): saved here and now
            try:
                ids = self.app.recorder.insert_events(stored)
            except IntegrityError as error:
                raise Conflict(RACE_MESSAGE) from error
            return PendingSave(self, processing, stored, _Written(ids or []), queued)
        return PendingSave(self, processing, stored, enqueue(stored), queued)

    def _saved(self, processing: ProcessingEvent, stored: Sequence[StoredEvent], ids: Sequence[int]) -> int:
        self.app._take_snapshots(processing)
        position = max(ids)
        changed = {UUID(str(event.originator_id)) for event in stored}
        with self._announced_lock:
            self._announced.extend(ids)
            self._announced_set.update(ids)
            while len(self._announced) > ANNOUNCED_MAXSIZE:
                self._announced_set.discard(self._announced.popleft())
        for listener in self._listeners:
            try:
                listener.streams_changed(changed, position)
            except Exception:  # a listener must never fail a committed write
                log.exception("change listener failed")
        return position

    def _drop_held(self, aggregate_ids: Iterable[UUID]) -> None:
        if self._held:
            with self._held_lock:
                for aggregate_id in aggregate_ids:
                    self._held.pop(aggregate_id, None)

    def announced_here(self, notification_ids: Sequence[int]) -> set[int]:
        """Which of ``notification_ids`` this process saved (and told its listeners of)."""
        with self._announced_lock:
            return self._announced_set.intersection(notification_ids)

    def hold(self, aggregate: Aggregate) -> None:
        """Keeps ``aggregate``, just saved, for the next ``load_current`` of it. The caller
        must not change it any more (each load hands out a copy)."""
        if aggregate.pending_events:
            return  # not what was saved
        with self._held_lock:
            self._held[aggregate.id] = aggregate
            self._held.move_to_end(aggregate.id)
            while len(self._held) > HELD_MAXSIZE:
                self._held.popitem(last=False)

    def load_current(self, aggregate_id: UUID) -> Any:
        """The aggregate as this process last saved it, without reading the store when a copy
        is held; else as ``load``. For load → command → save only: a copy that another
        process made stale fails the save's optimistic check, which drops it, and the retry
        loads afresh. What a command decides without saving must be checked on ``load``."""
        with self._held_lock:
            held = self._held.get(aggregate_id)
        if held is not None:
            return deepcopy(held)
        return self.load(aggregate_id)

    # -- the read path ----------------------------------------------------------------

    def load(self, aggregate_id: UUID, version: int | None = None) -> Any:
        try:
            return self.app.repository.get(aggregate_id, version=version)
        except AggregateNotFoundError:
            raise NotFound(f"no stream {aggregate_id}") from None

    def read_stream(
        self,
        aggregate_id: UUID,
        after_version: int = 0,
        limit: int | None = None,
        until_version: int | None = None,
        descending: bool = False,
    ) -> Sequence[Any]:
        return list(
            self.app.events.get(
                aggregate_id,
                gt=after_version or None,
                lte=until_version,
                desc=descending,
                limit=limit,
            )
        )

    def read_stored(
        self,
        aggregate_id: UUID,
        after_version: int = 0,
        limit: int | None = None,
        until_version: int | None = None,
        descending: bool = False,
    ) -> Sequence[tuple[int, str, bytes]]:
        """``read_stream``'s rows left as stored — (version, topic, state bytes), nothing
        decoded — so a reader that sends part of a stream decodes only that part. On
        PostgreSQL read as plain tuples in binary (bytea as is, not hex text)."""
        recorder = self.app.recorder
        if isinstance(recorder, PostgresAggregateRecorder):
            return self._select_stored(recorder, aggregate_id, after_version, limit, until_version, descending)
        return [
            (stored.originator_version, stored.topic, stored.state)
            for stored in recorder.select_events(
                aggregate_id, gt=after_version or None, lte=until_version, desc=descending, limit=limit
            )
        ]

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def _select_stored(
        self,
        recorder: PostgresAggregateRecorder,
        aggregate_id: UUID,
        after_version: int,
        limit: int | None,
        until_version: int | None,
        descending: bool,
    ) -> list[tuple[int, str, bytes]]:
        statement = SQL("SELECT originator_version, topic, state FROM {}.{} WHERE originator_id = %s").format(
            Identifier(recorder.datastore.schema), Identifier(recorder.events_table_name)
        )
        params: list[Any] = [aggregate_id]
        if after_version:
            statement += SQL(" AND originator_version > %s")
            params.append(after_version)
        if until_version is not None:
            statement += SQL(" AND originator_version <= %s")
            params.append(until_version)
        statement += SQL(" ORDER BY originator_version DESC" if descending else " ORDER BY originator_version ASC")
        if limit is not None:
            statement += SQL(" LIMIT %s")
            params.append(limit)
        with recorder.datastore.get_connection() as conn, conn.cursor(binary=True, row_factory=tuple_row) as curs:
            curs.execute(statement, params, prepare=True)
            return curs.fetchall()

    def decode_stored(self, aggregate_id: UUID, row: tuple[int, str, bytes]) -> Any:
        """The domain event a ``read_stored`` row records (upcast to its class's current
        version), as ``read_stream`` gives it."""
        version, topic, state = row
        return self.app.mapper.to_domain_event(
            StoredEvent(originator_id=aggregate_id, originator_version=version, topic=topic, state=state)
        )

    def plain_state(self, state: bytes) -> dict[str, Any] | None:
        """A stored state as plain JSON data when nothing in it needs the transcoder: its
        only tagged value is the top-level ``timestamp`` (given as its ISO text), and no
        cipher or compressor wraps it. ``None`` otherwise — ``decode_stored`` then decodes it
        in full. For every state this gives data for, the two agree."""
        mapper = self.app.mapper
        # Client text may spell the tag key too (escaped quotes aside); then the full
        # decode decides.
        if mapper.cipher or mapper.compressor or state.count(b'"_type_"') != 1:
            return None
        try:
            data = orjson.loads(state)  # refuses what only the stdlib reads (NaN, huge ints)
        except orjson.JSONDecodeError:
            return None
        timestamp = data.get("timestamp") if isinstance(data, dict) else None
        if not isinstance(timestamp, dict) or timestamp.get("_type_") != "datetime_iso":
            return None
        data["timestamp"] = timestamp["_data_"]
        return data

    # -- the global notification log ---------------------------------------------------

    def notifications(self, after: int, limit: int) -> Sequence[Notification]:
        return self.app.recorder.select_notifications(
            start=after, limit=limit, inclusive_of_start=False
        )

    def max_notification_id(self) -> int:
        return self.app.recorder.max_notification_id() or 0

    def decode(self, notification: Notification) -> Any:
        return self.app.mapper.to_domain_event(notification)

    def event_class(self, notification: Notification) -> type:
        """The class ``decode`` gives the notification, from its topic alone."""
        return resolve_topic(notification.topic)

    def state_of(self, notification: Notification) -> dict[str, Any]:
        """The recorded state as JSON data (the transcoder's own tagged form)."""
        return orjson.loads(notification.state)

    @property
    def change_channel(self) -> str:
        """The LISTEN/NOTIFY channel every PostgreSQL save notifies."""
        return str(self.app.recorder.channel_name)  # type: ignore[attr-defined]  # PostgreSQL only

    def close(self) -> None:
        self.app.close()


RACE_MESSAGE = "the resource was changed by another request at the same time; retry"


class _Written:
    def __init__(self, ids: Sequence[int]) -> None:
        self._ids = ids

    def wait(self) -> Sequence[int]:
        return self._ids


class PendingSave:
    """A save queued by ``EventsourcingEventStore.save_pending``."""

    def __init__(
        self,
        store: EventsourcingEventStore,
        processing: ProcessingEvent,
        stored: list[StoredEvent],
        ticket: Any,
        queued: float = 0.0,
    ) -> None:
        self._store = store
        self._processing = processing
        self._stored = stored
        self._ticket = ticket
        self._queued = queued

    def wait(self) -> int | None:
        """The highest notification id written once committed (None when nothing was new);
        ``Conflict`` when another writer got there first."""
        if self._ticket is None:
            return None
        aggregates = list(self._processing.aggregates)
        try:
            ids = self._ticket.wait()
        except IntegrityError as error:
            self._store._drop_held(aggregates)
            raise Conflict(RACE_MESSAGE) from error
        except BaseException:
            self._store._drop_held(aggregates)
            raise
        observe = self._store.on_appended
        if observe is not None:
            try:
                observe(len(self._stored), time.perf_counter() - self._queued)
            except Exception:  # metrics must never fail a committed write
                log.exception("the append observer failed")
        return self._store._saved(self._processing, self._stored, ids)


class StateOmitted(LookupError):
    """A message came without its state, and the event store does not hold that event."""


class PublishedEventDecoder:
    """Turns a relayed Kafka message body back into the domain event it was recorded as.

    An event too large for the broker was published without its state; that event is read
    back from ``store`` instead (by stream id and version)."""

    def __init__(self, store: EventsourcingEventStore) -> None:
        self._mapper = AgentryEvents(env={"PERSISTENCE_MODULE": "eventsourcing.popo"}).mapper
        self._store = store

    def __call__(self, body: dict[str, Any]) -> Any:
        if body.get("state") is None:
            return self._from_store(body)
        stored = StoredEvent(
            originator_id=UUID(body["aggregate_id"]),
            originator_version=body["aggregate_version"],
            topic=body["event_topic"],
            state=orjson.dumps(body["state"]),
        )
        return self._mapper.to_domain_event(stored)

    def close(self) -> None:
        self._store.close()

    def _from_store(self, body: dict[str, Any]) -> Any:
        version = body["aggregate_version"]
        events = self._store.read_stream(
            UUID(body["aggregate_id"]), after_version=version - 1, until_version=version
        )
        if not events:
            raise StateOmitted(f"event {body.get('event_id')} is not in the event store")
        return events[0]
