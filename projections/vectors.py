"""The vector projection: follows the event log and keeps the vector index in step with it.

What to index comes from *vector sources*: callables ``(event) -> list[VectorChange]`` (the
memory stores' in projections/memory_vectors.py, the knowledge bases' in
projections/knowledge_vectors.py), listed in ``projections.vector_sources``. This runner
embeds the texts a batch of events asks for, writes them, and only then moves its position.

Exactly once by tracked position: a point's id comes from its ``IndexText.key`` and a
deletion is by payload, so applying a batch again (after a crash between the writes and the
position's move) leaves the index exactly as applying it once did. The position moves by
compare-and-set in the read-model database, in a transaction that holds the position's row
while the batch is written, so a second runner (another process on a shared Qdrant server)
waits and then finds the batch done instead of writing it again out of order.

The position's name carries the embedding model's name and size, as the collections' do, and
a digest of the registered sources: a changed model starts at 0 and fills its own (empty)
collections; an added source starts at 0 too, so events recorded before it are indexed.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import sqlalchemy as sa

from application.pacing import GATHER_SECONDS, Pacer
from application.ports import Embedder, IndexText, UnindexWhere, VectorChange, VectorHit
from projections import tables
from projections.runner import NotificationSource, PositionMoved, WantedTopics

log = logging.getLogger("agentry.vectors")

VectorSource = Callable[[Any], list[VectorChange]]
"""Turns one event into vector changes. With an ``event_classes`` attribute (a tuple of event
classes) it is given only events of those classes; the others are not even decoded."""

NAME = "vectors"
# About how many texts one batch embeds and writes (see ``VectorProjection._bounded``).
MAX_TEXTS_PER_BATCH = 512


class VectorStore(Protocol):
    """What the projection needs of the index (infra.vector_index.QdrantVectorIndex)."""

    def upsert(self, collection: str, points: Sequence[Any]) -> None: ...

    def delete_where(self, collection: str, match: dict[str, str]) -> None: ...

    def search(self, collection: str, vector: Sequence[float], limit: int, match: dict[str, str]) -> list[VectorHit]: ...

    def drop_all(self) -> list[str]: ...

    def open(self) -> None: ...


@dataclass(frozen=True)
class Point:
    key: str
    vector: Sequence[float]
    payload: dict[str, Any]


Progress = Callable[[int, int], None]  # (position reached, head of the log)


def position_name(embedder: Embedder, sources: Sequence[VectorSource]) -> str:
    """``vectors:<model>-<dimensions>:<sources>``: a new model, or a source added or removed
    (a release that indexes something more), starts from the beginning of the log, so what
    was recorded before the change is indexed too. Rewriting the points already there is
    harmless (their ids come from their keys)."""
    # A source may be a function or an object with ``__call__`` (it holds the cipher): named by
    # its class then, never by its repr, which holds an address that changes every start.
    named = [s if hasattr(s, "__qualname__") else type(s) for s in sources]
    names = sorted(f"{getattr(s, '__module__', '?')}.{s.__qualname__}" for s in named)
    digest = hashlib.sha256("\n".join(names).encode()).hexdigest()[:8]
    return f"{NAME}:{embedder.name}-{embedder.dimensions}"[:55] + f":{digest}"


# Built once: a statement built per read costs its construction and its cache key every time.
_POSITION = sa.select(tables.positions.c.position).where(tables.positions.c.name == sa.bindparam("projection"))
_CLAIM = (
    sa.update(tables.positions)
    .where(tables.positions.c.name == sa.bindparam("projection"))
    .where(tables.positions.c.position == sa.bindparam("reached"))
    .values(position=sa.bindparam("claimed"))
)


class VectorProjection:
    def __init__(
        self,
        engine: sa.Engine,
        source: NotificationSource,
        index: VectorStore,
        embedder: Embedder,
        sources: Sequence[VectorSource],
        batch_size: int = 256,
        head: Callable[[], int] | None = None,
        gather_seconds: float = GATHER_SECONDS,
    ) -> None:
        self.engine = engine
        self._source = source
        self._index = index
        self._embedder = embedder
        self._sources = list(sources)
        self._batch_size = batch_size
        self._head = head
        self.position_name = position_name(embedder, self._sources)
        self._applied = 0
        self._working_on: int | None = None
        self._progress = threading.Condition()
        self._catch_up_lock = threading.Lock()
        self._left: int | None = None  # the position as this process last knew it
        # A source names the classes it handles in ``event_classes``; one that does not is
        # given every event.
        self._wanted = WantedTopics(
            source, lambda cls: any(issubclass(cls, getattr(s, "event_classes", object)) for s in self._sources)
        )
        self._wake = threading.Event()
        self._pacer = Pacer(gather_seconds)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def name(self) -> str:
        return NAME

    @property
    def has_sources(self) -> bool:
        return bool(self._sources)

    # -- positions ------------------------------------------------------------------------

    def setup(self) -> None:
        tables.metadata.create_all(self.engine, tables=[tables.positions])
        with self.engine.begin() as conn:
            known = conn.execute(
                sa.select(tables.positions.c.name).where(tables.positions.c.name == self.position_name)
            ).first()
            if known is None:
                conn.execute(sa.insert(tables.positions).values(name=self.position_name, position=0))

    def position(self) -> int:
        """The notification id every event up to which is in the index (searchable)."""
        with self.engine.connect() as conn:
            value = conn.execute(_POSITION, {"projection": self.position_name}).scalar()
        return int(value or 0)

    def working_on(self) -> int | None:
        """The last notification id of the batch this process is indexing now, if any: an event
        after ``position()`` and up to this is being indexed, one after it is still pending."""
        return self._working_on

    # -- processing -----------------------------------------------------------------------

    def catch_up(self, progress: Progress | None = None) -> int:
        """Indexes everything recorded so far, from the position as stored; returns the
        position reached."""
        return self._follow(progress, stored=True)

    def _follow(self, progress: Progress | None = None, stored: bool = False) -> int:
        """``catch_up`` for the loop a write woke: from the position it last left."""
        with self._catch_up_lock:
            if stored:
                self._left = None
            while True:
                # As this process last left it, not read back under load: a copy behind the
                # database makes the conditional claim fail and the position is read again;
                # one moved back is found by the re-read of every quiet spell (``_loop``).
                position = self._left if self._left is not None else self.position()
                if not self._sources and self._head is not None:
                    # Nothing to index: follow the log's head without reading its events. (A
                    # source added later changes the position's name, so it starts from 0.)
                    return self._skip_to(position, self._head())
                batch = self._source.notifications(position, self._batch_size)
                if not batch:
                    self._left = position
                    self._reached(position)
                    return position
                batch, changes = self._bounded(batch)
                last = batch[-1].id
                self._working_on = last
                try:
                    moved = self._apply_batch(position, batch, changes)
                finally:
                    self._working_on = None
                reached = self._left = last if moved else self.position()
                self._reached(reached)
                if progress is not None:
                    progress(reached, self._head() if self._head is not None else last)

    def _skip_to(self, position: int, head: int) -> int:
        moved = head <= position
        if not moved:
            with self.engine.begin() as conn:
                moved = self._claim(conn, position, head)
        reached = self._left = max(head, position) if moved else self.position()
        self._reached(reached)
        return reached

    def _claim(self, conn: sa.Connection, position: int, claimed: int) -> bool:
        """Moves the position from ``position`` (False: another runner moved it first)."""
        result = conn.execute(_CLAIM, {"projection": self.position_name, "reached": position, "claimed": claimed})
        return result.rowcount == 1

    def _bounded(self, batch: Sequence[Any]) -> tuple[Sequence[Any], list[VectorChange]]:
        """The batch's first notifications whose texts number about ``MAX_TEXTS_PER_BATCH``
        (at least one notification), and their changes. A large document is many chunk
        events of many texts each: unbounded, one batch would hold the position row (on
        SQLite: the whole read-model database) for as long as it takes to write its points."""
        changes: list[VectorChange] = []
        texts = 0
        for taken, notification in enumerate(batch, start=1):
            if not self._wanted(notification):
                continue  # no source turns it into a change: not decoded
            event = self._source.decode(notification)
            for source in self._sources:
                made = source(event)
                changes.extend(made)
                texts += sum(1 for change in made if isinstance(change, IndexText))
            if texts >= MAX_TEXTS_PER_BATCH:
                return batch[:taken], changes
        return batch, changes

    def _apply_batch(self, position: int, batch: Sequence[Any], changes: list[VectorChange]) -> bool:
        """False when another runner had moved the position (nothing is written)."""
        # Embedded before the position's row is taken: the slow part holds no lock.
        texts = [change.text for change in changes if isinstance(change, IndexText)]
        vectors = iter(self._embedder.embed(texts) if texts else [])
        try:
            with self.engine.begin() as conn:
                if not self._claim(conn, position, batch[-1].id):
                    raise PositionMoved(self.position_name)
                self._write(changes, vectors)
        except PositionMoved:
            log.info("the vector projection was advanced by another runner")
            return False
        return True

    def _write(self, changes: list[VectorChange], vectors: Any) -> None:
        """In log order: a run of points is written at once, a deletion between them in its turn
        (so a text indexed and then unindexed in one batch ends up gone, and the reverse present)."""
        pending: list[tuple[str, Point]] = []

        def flush() -> None:
            by_collection: dict[str, list[Point]] = {}
            for collection, point in pending:
                by_collection.setdefault(collection, []).append(point)
            for collection, points in by_collection.items():
                self._index.upsert(collection, points)
            pending.clear()

        for change in changes:
            if isinstance(change, IndexText):
                pending.append((change.collection, Point(change.key, next(vectors), change.payload)))
            elif isinstance(change, UnindexWhere):
                flush()
                self._index.delete_where(change.collection, change.match)
        flush()

    def _reached(self, position: int) -> None:
        with self._progress:
            self._applied = max(self._applied, position)
            self._progress.notify_all()

    def wait_for(self, position: int | None, timeout: float = 5.0) -> bool:
        """Blocks until the index includes ``position`` (write, then search)."""
        if position is None:
            return True
        with self._progress:
            if self._applied >= position:
                return True
        self._pacer.hurry()  # only when it must read on: a hurry left unused skips a later pause
        self._wake.set()
        if self._thread is None:
            # Nobody follows the log in this process: look at the shared position instead.
            return self._poll_until(position, timeout)
        with self._progress:
            return self._progress.wait_for(lambda: self._applied >= position, timeout)

    def _poll_until(self, position: int, timeout: float) -> bool:
        import time

        deadline = time.monotonic() + timeout
        while True:
            reached = self.position()
            if reached >= position:
                self._reached(reached)
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)

    # -- rebuild ----------------------------------------------------------------------------

    def rebuild(self, progress: Progress | None = None) -> int:
        """Drops this model's collections and indexes the whole log again."""
        with self._catch_up_lock:
            self._index.drop_all()
            with self.engine.begin() as conn:
                conn.execute(
                    sa.update(tables.positions)
                    .where(tables.positions.c.name == self.position_name)
                    .values(position=0)
                )
            with self._progress:
                self._applied = 0
            self._left = None
        return self.catch_up(progress)

    # -- background loop ------------------------------------------------------------------

    def notify(self, *_: Any) -> None:
        """Wakes the loop; also a ``ChangeListener`` (``streams_changed``)."""
        self._wake.set()

    streams_changed = notify

    def start(self, poll_seconds: float = 0.5) -> None:
        self.setup()
        if self._sources:
            # The process that runs the projection owns the index (embedded: its folder) from
            # the start, so another process can't take it in between and fail this one later.
            self._index.open()
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, args=(poll_seconds,), name="agentry-vectors", daemon=True)
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
                log.exception("vector batch failed; retrying")
                self._stop.wait(2.0)
            if self._wake.wait(poll_seconds):
                self._pacer.pause()
            else:
                self._left = None  # a quiet spell: read the position again

    def stop(self) -> None:
        self._stop.set()
        self._pacer.hurry()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None


class EmbeddedSearch:
    """``SemanticSearch``: the query embedded with the index's own model, then ranked."""

    def __init__(self, index: VectorStore, embedder: Embedder) -> None:
        self._index = index
        self._embedder = embedder

    def search(self, collection: str, query: str, limit: int, match: dict[str, str]) -> list[VectorHit]:
        if limit < 1 or not query.strip():
            return []
        vector = self._embedder.embed([query])[0]
        return self._index.search(collection, vector, limit, match)
