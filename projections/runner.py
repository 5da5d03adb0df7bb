"""Feeds projections from the event store's global notification log, exactly once.

Each projection's rows and its position commit in one transaction, and the position moves
only from the value the batch was read at (compare-and-set), so a crash, a restart or a
second runner can neither skip an event nor apply one twice.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import sqlalchemy as sa

from projections import tables

log = logging.getLogger("agentry.projections")


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


class NotificationSource(Protocol):
    def notifications(self, after: int, limit: int) -> Sequence[Any]: ...

    def decode(self, notification: Any) -> Any: ...


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
    ) -> None:
        self.engine = engine
        self._source = source
        self._projections = {projection.name: projection for projection in projections}
        self._batch_size = batch_size
        self._applied = 0
        self._progress = threading.Condition()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._catch_up_lock = threading.Lock()
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
            rows = conn.execute(sa.select(tables.positions)).all()
        return {row.name: row.position for row in rows if row.name in self._projections}

    @property
    def names(self) -> list[str]:
        return list(self._projections)

    # -- processing -----------------------------------------------------------------------

    def catch_up(self) -> int:
        """Applies everything recorded so far; returns the lowest position reached."""
        with self._catch_up_lock:
            while True:
                positions = self.positions()
                lowest = min(positions.values(), default=0)
                batch = self._source.notifications(lowest, self._batch_size)
                if not batch:
                    self._reached(lowest)
                    return lowest
                decoded = [(n.id, self._source.decode(n)) for n in batch]
                for name, projection in self._projections.items():
                    self._apply_batch(projection, positions[name], decoded)
                self._reached(min(self.positions().values(), default=0))

    def _apply_batch(
        self, projection: ReadModelProjection, position: int, decoded: list[tuple[int, Any]]
    ) -> None:
        todo = [(nid, event) for nid, event in decoded if nid > position]
        if not todo:
            return
        try:
            with self.engine.begin() as conn:
                # Claim the batch first: the row lock makes a concurrent runner wait here
                # and then find the position moved, before it has applied anything.
                moved = conn.execute(
                    sa.update(tables.positions)
                    .where(tables.positions.c.name == projection.name)
                    .where(tables.positions.c.position == position)
                    .values(position=todo[-1][0])
                )
                if moved.rowcount != 1:
                    raise PositionMoved(projection.name)
                projection.apply_all(conn, [event for _, event in todo], [position for position, _ in todo])
        except PositionMoved:
            log.info("projection %s was advanced by another runner", projection.name)

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
        self._wake.set()
        with self._progress:
            return self._progress.wait_for(lambda: self._applied >= position, timeout)

    # -- rebuild ----------------------------------------------------------------------------

    def rebuild(self, name: str) -> int:
        """Empties one projection's tables and replays the whole log into them."""
        projection = self._projections.get(name)
        if projection is None:
            raise KeyError(name)
        with self._catch_up_lock, self.engine.begin() as conn:
            for table in projection.tables:
                conn.execute(sa.delete(table))
            conn.execute(
                sa.update(tables.positions)
                .where(tables.positions.c.name == name)
                .values(position=0)
            )
        self._applied = 0
        return self.catch_up()

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
            try:
                self.catch_up()
            except Exception:
                log.exception("projection batch failed; retrying")
                self._stop.wait(1.0)
            self._wake.wait(poll_seconds)

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
