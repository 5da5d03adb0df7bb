"""Feeds projections from the event store's global notification log, exactly once.

Each projection's rows and its position commit in one transaction, and the position moves
only from the value the batch was read at (compare-and-set), so a crash, a restart or a
second runner can neither skip an event nor apply one twice.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Protocol

import sqlalchemy as sa

from application.pacing import GATHER_SECONDS, Pacer
from projections import tables

log = logging.getLogger("agentry.projections")


def _log_batch(decoded: list[tuple[int, Any]], started: float) -> None:
    """One structured line per committed batch (a background step)."""
    log.info(
        "projection batch applied up to event %d",
        decoded[-1][0],
        extra={
            "fields": {
                "step": "projection_batch",
                "from_position": decoded[0][0],
                "to_position": decoded[-1][0],
                "events": len(decoded),
                "duration_ms": round((time.perf_counter() - started) * 1000, 1),
            }
        },
    )


class ReadModelProjection:
    """Turns events into read-model rows inside the runner's transaction."""

    name: str = ""
    tables: tuple[sa.Table, ...] = ()

    def apply(self, conn: sa.Connection, event: Any) -> None:
        raise NotImplementedError

    def apply_all(self, conn: sa.Connection, events: Sequence[Any], positions: Sequence[int] | None = None) -> None:
        """A batch, in log order, with each event's global position when the runner knows it;
        a projection that writes a batch at once overrides this."""
        for index, event in enumerate(events):
            if positions is None:
                self.apply(conn, event)
            else:
                self.apply_at(conn, event, positions[index])

    def apply_at(self, conn: sa.Connection, event: Any, position: int) -> None:
        """``apply``, told the event's global position (a projection that keeps it overrides this)."""
        self.apply(conn, event)

    def wants(self, event_class: type) -> bool:
        """Whether events of this class may change the projection's rows (the runner hands it
        only those); a projection that knows its event types says so here."""
        return True

    def forget(self) -> None:
        """Drops whatever the projection remembers between batches (its tables were emptied)."""


class NotificationSource(Protocol):
    def notifications(self, after: int, limit: int) -> Sequence[Any]: ...

    def decode(self, notification: Any) -> Any: ...

    def event_class(self, notification: Any) -> type:
        """The class ``decode`` would give, without decoding."""
        ...


class WantedTopics:
    """Whether a notification's event is wanted, decided once per topic from the class its
    topic names (``wants``), so an unwanted one need not be decoded to be passed over."""

    def __init__(self, source: NotificationSource, wants: Callable[[type], bool]) -> None:
        self._source = source
        self._wants = wants
        self._by_topic: dict[str, bool] = {}

    def __call__(self, notification: Any) -> bool:
        wanted = self._by_topic.get(notification.topic)
        if wanted is None:
            wanted = self._by_topic[notification.topic] = self._wants(self._source.event_class(notification))
        return wanted


_ASYNC_COMMIT = sa.text("SET LOCAL synchronous_commit = off")
# Built once: a statement built per batch costs its construction and its cache key, every time.
_CLAIM = (
    sa.update(tables.positions)
    .where(tables.positions.c.name.in_(sa.bindparam("names", expanding=True)))
    .where(tables.positions.c.position == sa.bindparam("reached"))
    .values(position=sa.bindparam("claimed"))
)
_POSITIONS = sa.select(tables.positions.c.name, tables.positions.c.position)


class PositionMoved(Exception):
    """Another runner advanced this projection first; this batch is rolled back."""


def create_engine(url: str) -> sa.Engine:
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @sa.event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        return engine
    return sa.create_engine(url, pool_size=5, max_overflow=5, pool_pre_ping=True)


class ReadModelRunner:
    def __init__(
        self,
        engine: sa.Engine,
        source: NotificationSource,
        projections: Sequence[ReadModelProjection],
        batch_size: int = 500,
        gather_seconds: float = GATHER_SECONDS,
    ) -> None:
        self.engine = engine
        self._source = source
        self._projections = {projection.name: projection for projection in projections}
        self._wanted: dict[str, dict[type, bool]] = {name: {} for name in self._projections}
        self._wanted_topics = WantedTopics(
            source, lambda cls: any(projection.wants(cls) for projection in self._projections.values())
        )
        self._batch_size = batch_size
        self._applied = 0
        self._progress = threading.Condition()
        self._wake = threading.Event()
        self._pacer = Pacer(gather_seconds)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._catch_up_lock = threading.Lock()
        # The positions as this runner last knew them: a catch-up under load starts from them
        # without reading them back. The claim is conditional: a copy behind the database
        # (another runner moved one) makes the next claim fail (PositionMoved), and they are
        # read again. A position moved back (a rebuild elsewhere cut short, an asynchronous
        # commit lost in a database crash) is found by the re-read of every quiet spell.
        self._left: dict[str, int] | None = None
        self._progress_listeners: list[Callable[[int], None]] = []

    # -- setup and positions --------------------------------------------------------------

    def setup(self) -> None:
        tables.metadata.create_all(self.engine)
        with self.engine.begin() as conn:
            known = {row.name for row in conn.execute(sa.select(tables.positions.c.name))}
            for name in self._projections:
                if name not in known:
                    conn.execute(sa.insert(tables.positions).values(name=name, position=0))

    def positions(self) -> dict[str, int]:
        with self.engine.connect() as conn:
            rows = conn.execute(_POSITIONS).all()
        return {row.name: row.position for row in rows if row.name in self._projections}

    @property
    def names(self) -> list[str]:
        return list(self._projections)

    # -- processing -----------------------------------------------------------------------

    def catch_up(self) -> int:
        """Applies everything recorded so far, from the positions as stored; returns the
        lowest position reached."""
        with self._catch_up_lock:
            self._left = None
            return self._catch_up(self._batch_size)

    def _follow(self) -> int:
        """``catch_up`` for the loop a write woke: from the positions it last left."""
        with self._catch_up_lock:
            return self._catch_up(self._batch_size)

    def _catch_up(self, batch_size: int) -> int:
        positions = self._left or self.positions()
        reader: ThreadPoolExecutor | None = None
        ahead: tuple[int, Future[list[tuple[int, Any]]]] | None = None
        try:
            while True:
                lowest = min(positions.values(), default=0)
                if ahead is not None and ahead[0] == lowest:
                    decoded = ahead[1].result()
                else:
                    decoded = self._read(lowest, batch_size)
                ahead = None
                if not decoded:
                    self._left = positions
                    self._reached(lowest)
                    return lowest
                if len(decoded) == batch_size:
                    # More is likely: read and decode it while this batch is written (the
                    # reader's work overlaps the time spent waiting on the database).
                    reader = reader or ThreadPoolExecutor(1, thread_name_prefix="agentry-projections-read")
                    ahead = (decoded[-1][0], reader.submit(self._read, decoded[-1][0], batch_size))
                try:
                    started = time.perf_counter()
                    positions = self._apply_batch(positions, decoded)
                    self._left = positions
                    _log_batch(decoded, started)
                except PositionMoved as moved:
                    log.info("projection %s was advanced by another runner", moved)
                    positions = self._left = self.positions()
                self._reached(min(positions.values(), default=0))
        finally:
            if reader is not None:
                reader.shutdown(wait=True, cancel_futures=True)

    def _read(self, after: int, limit: int) -> list[tuple[int, Any]]:
        """(position, event) in log order; the event is None where no projection of this
        runner wants its class (the task follower's runner passes over user messages, spans
        and costs, for one): it only moves the positions, and is not decoded."""
        decode, wanted = self._source.decode, self._wanted_topics
        return [(n.id, decode(n) if wanted(n) else None) for n in self._source.notifications(after, limit)]

    def _apply_batch(self, positions: dict[str, int], decoded: list[tuple[int, Any]]) -> dict[str, int]:
        """Every projection's share of one batch, in one transaction with every position it
        moves: a crash anywhere in it leaves rows and positions as they were."""
        last = decoded[-1][0]
        reached = dict(positions)
        with self.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                # Rows and positions commit together, so a commit lost in a crash is lost
                # whole and applied again from the position before it: nothing is gained by
                # waiting for the WAL to reach the disk (it is what the commit cost most).
                # (A process manager's own appends commit apart, durably; seeing its events
                # again after such a crash, it finds them done: they are idempotent.)
                conn.execute(_ASYNC_COMMIT)
            # Claim first, in one order for every runner: the row locks make a concurrent
            # runner wait here and then find a position moved, before it has applied anything.
            # Projections at one position (all of them, but after a rebuild of some) are
            # claimed by one statement.
            claimed = sorted(name for name in self._projections if positions[name] < last)
            by_position: dict[int, list[str]] = {}
            for name in claimed:
                by_position.setdefault(positions[name], []).append(name)
            for position, names in sorted(by_position.items()):
                moved = conn.execute(_CLAIM, {"names": names, "reached": position, "claimed": last})
                if moved.rowcount != len(names):
                    raise PositionMoved(", ".join(names))
                for name in names:
                    reached[name] = last
            # Each projection gets the events of the classes it wants, in log order; the
            # batch is split into lists once, not walked event by event per projection.
            ids = [nid for nid, event in decoded if event is not None]
            events = [event for _, event in decoded if event is not None]
            classes = [type(event) for event in events]
            present = set(classes)
            for name in claimed:
                projection, position = self._projections[name], positions[name]
                wanted = self._wanted[name]
                for cls in present - wanted.keys():
                    wanted[cls] = projection.wants(cls)
                keep = {cls for cls in present if wanted[cls]}
                if not keep:
                    continue
                if len(keep) == len(present) and position < ids[0]:
                    projection.apply_all(conn, events, ids)
                    continue
                chosen = [i for i, cls in enumerate(classes) if cls in keep and ids[i] > position]
                if chosen:
                    projection.apply_all(conn, [events[i] for i in chosen], [ids[i] for i in chosen])
        return reached

    def _reached(self, position: int) -> None:
        with self._progress:
            advanced = position > self._applied
            self._applied = max(self._applied, position)
            self._progress.notify_all()
        if advanced:
            for listener in self._progress_listeners:
                listener(position)

    def on_progress(self, listener: Callable[[int], None]) -> None:
        """Calls ``listener(position)`` after each commit that moves every projection further
        (on the runner's thread: it must not block)."""
        self._progress_listeners.append(listener)

    def wait_for(self, position: int | None, timeout: float = 5.0) -> bool:
        """Blocks until every projection has applied ``position`` (read-your-writes)."""
        if position is None:
            return True
        with self._progress:
            if self._applied >= position:
                return True
        self._pacer.hurry()  # only when it must read on: a hurry left unused skips a later pause
        self._wake.set()
        with self._progress:
            return self._progress.wait_for(lambda: self._applied >= position, timeout)

    # -- rebuild ----------------------------------------------------------------------------

    # Events per transaction while rebuilding: nobody waits on a rebuild's commits.
    REBUILD_BATCH = 5000

    def rebuild(self, *names: str) -> int:
        """Empties the named projections' tables (every one's without a name) and replays the
        whole log into them in one pass: each event is read and decoded once for all of them."""
        chosen = list(names) or list(self._projections)
        projections = [self._projections[name] for name in chosen]  # KeyError: unknown
        with self._catch_up_lock:
            with self.engine.begin() as conn:
                for projection in projections:
                    for table in projection.tables:
                        conn.execute(sa.delete(table))
                    projection.forget()
                conn.execute(
                    sa.update(tables.positions).where(tables.positions.c.name.in_(chosen)).values(position=0)
                )
            self._applied = 0
            self._left = None
            return self._catch_up(max(self._batch_size, self.REBUILD_BATCH))

    def rebuild_all(self) -> int:
        return self.rebuild()

    # -- background loop ------------------------------------------------------------------

    def notify(self, *_: Any) -> None:
        """Wakes the loop; also a ``ChangeListener`` (``streams_changed``)."""
        self._wake.set()

    streams_changed = notify

    def start(self, poll_seconds: float = 0.5) -> None:
        self.setup()
        self._thread = threading.Thread(
            target=self._loop, args=(poll_seconds,), name="agentry-projections", daemon=True
        )
        self._thread.start()

    def _loop(self, poll_seconds: float) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            self._pacer.reading()
            applied = self._applied
            try:
                if self._follow() <= applied:
                    self._pacer.found_nothing()
            except Exception:
                log.exception("projection batch failed; retrying")
                self._stop.wait(1.0)
            if self._wake.wait(poll_seconds):
                self._pacer.pause()
            else:
                self._left = None  # a quiet spell: read the positions again (see __init__)

    def stop(self) -> None:
        self._stop.set()
        self._pacer.hurry()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
