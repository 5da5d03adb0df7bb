"""Projections fed from Kafka topics in a consumer group.

Each partition's batch commits in one read-model transaction together with the partition's
next offset (which is where the consumer resumes, not Kafka's committed offset) and each
stream's last applied version — so a redelivered event (same event id: stream + version) is
skipped, and a crash between rows and offset cannot happen."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from application.telemetry import NoTelemetry, Telemetry
from projections import tables
from projections.runner import ReadModelProjection

log = logging.getLogger("agentry.projections.kafka")

RETRY_FIRST_SECONDS = 0.5
RETRY_MAX_SECONDS = 10.0

offsets = sa.Table(
    "projection_kafka_offsets",
    tables.metadata,
    sa.Column("group_id", sa.String(128), primary_key=True),
    sa.Column("topic", sa.String(255), primary_key=True),
    sa.Column("partition", sa.Integer, primary_key=True),
    sa.Column("next_offset", sa.BigInteger, nullable=False),
)

stream_versions = sa.Table(
    "projection_stream_versions",
    tables.metadata,
    sa.Column("projection", sa.String(64), primary_key=True),
    sa.Column("stream_id", sa.String(36), primary_key=True),
    sa.Column("version", sa.Integer, nullable=False),
)


def _insert_ignoring_duplicates(conn: sa.Connection, table: sa.Table) -> Any:
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing()
    return sqlite.insert(table).on_conflict_do_nothing()


def _log_batch(tp: Any, messages: list[Any], applied: int, started: float) -> None:
    """One structured line per committed partition batch (a background step)."""
    log.info(
        "projected %s:%d up to offset %d",
        tp.topic, tp.partition, messages[-1].offset,
        extra={
            "fields": {
                "step": "kafka_projection_batch",
                "topic": tp.topic,
                "partition": tp.partition,
                "from_offset": messages[0].offset,
                "to_offset": messages[-1].offset,
                "records": len(messages),
                "applied": applied,
                "duration_ms": round((time.perf_counter() - started) * 1000, 1),
            }
        },
    )  # fmt: skip


class OffsetMoved(Exception):
    """Another group member committed this partition first (a rebalance race)."""


class KafkaProjector:
    def __init__(
        self,
        engine: sa.Engine,
        consumer: Any,
        group_id: str,
        decode: Callable[[dict[str, Any]], Any],
        projections: Sequence[ReadModelProjection],
        telemetry: Telemetry | None = None,
    ) -> None:
        self.engine = engine
        self.telemetry: Telemetry = telemetry or NoTelemetry()
        self._consumer = consumer
        self._group_id = group_id
        self._decode = decode
        self._projections = list(projections)
        self._stop = threading.Event()
        self.received = 0
        self.applied = 0
        # Each assigned partition's (next offset to read, broker's high watermark), taken in the
        # run loop: the consumer is not thread-safe, so a scrape reads this copy, never it.
        # The loop replaces the whole dict and never changes one it has published, so a reader
        # needs neither a lock nor a copy.
        self._partitions: dict[tuple[str, int], tuple[int, int]] = {}

    def setup(self) -> None:
        tables.metadata.create_all(self.engine)

    def seek_to_stored(self, partitions: Any) -> None:
        """Called on every partition assignment: resume where the read model says."""
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(offsets).where(offsets.c.group_id == self._group_id)).all()
        stored = {(row.topic, row.partition): row.next_offset for row in rows}
        for tp in partitions:
            if (tp.topic, tp.partition) in stored:
                self._consumer.seek(tp, stored[(tp.topic, tp.partition)])
            else:
                self._consumer.seek_to_beginning(tp)

    def run(self, should_stop: Callable[[], bool] | None = None) -> None:
        should_stop = should_stop or self._stop.is_set
        backoff = RETRY_FIRST_SECONDS
        rewind = False
        while not should_stop():
            try:
                if rewind:
                    # Nothing of the failed batch committed, but the consumer has moved past
                    # it: back to the stored offsets (retried here while the database is down).
                    self.seek_to_stored(self._consumer.assignment())
                    self._take_partition_progress()
                    rewind = False
                self.poll_once()
                backoff = RETRY_FIRST_SECONDS
            except sa.exc.DBAPIError as error:
                log.warning("projection batch failed (%s); retrying in %.1fs", type(error).__name__, backoff)
                rewind = True
                time.sleep(backoff)
                backoff = min(backoff * 2, RETRY_MAX_SECONDS)

    def stop(self) -> None:
        self._stop.set()

    def close(self) -> None:
        """Leaves the group at once, so its partitions move without waiting out a timeout."""
        self._consumer.close()
        close_decoder = getattr(self._decode, "close", None)
        if close_decoder is not None:
            close_decoder()

    def poll_once(self, timeout_ms: int = 500, max_records: int = 500) -> int:
        records = self._consumer.poll(timeout_ms=timeout_ms, max_records=max_records)
        applied = 0
        for tp, messages in records.items():
            self.received += len(messages)
            started = time.perf_counter()
            try:
                batch_applied = self._apply_partition_batch(tp, messages)
            except sa.exc.DBAPIError:
                self.telemetry.projection_failed()  # rolled back: retried from the stored offset
                raise
            except OffsetMoved:
                log.info("partition %s:%d moved on elsewhere; re-seeking", tp.topic, tp.partition)
                self.seek_to_stored([tp])
                continue
            applied += batch_applied
            _log_batch(tp, messages, batch_applied, started)
        self.applied += applied
        self._take_partition_progress()
        return applied

    def partition_progress(self) -> dict[tuple[str, int], tuple[int, int]]:
        """``(topic, partition) -> (position, high watermark)`` as of the last poll; safe to
        call from any thread (the metrics port's); the caller must not change it."""
        return self._partitions

    def _take_partition_progress(self) -> None:
        progress: dict[tuple[str, int], tuple[int, int]] = {}
        for tp in self._consumer.assignment():
            highwater = self._consumer.highwater(tp)
            if highwater is None:  # known only once a fetch of the partition came back
                continue
            # No wait: a partition still waiting for its first offset (reset to the beginning
            # on assignment) reports None and is left out until it has one.
            position = self._consumer.position(tp, timeout_ms=0)
            if position is not None:
                progress[(tp.topic, tp.partition)] = (position, highwater)
        self._partitions = progress

    def _apply_partition_batch(self, tp: Any, messages: list[Any]) -> int:
        first, next_offset = messages[0].offset, messages[-1].offset + 1
        applied = 0
        with self.engine.begin() as conn:
            self._claim(conn, tp, first, next_offset)
            # Each projection gets its new events of the batch at once, in partition order.
            batches: list[list[tuple[int, Any]]] = [[] for _ in self._projections]
            for message in messages:
                body = orjson.loads(message.value)
                event = None
                for projection, batch in zip(self._projections, batches, strict=True):
                    if not self._is_new(conn, projection.name, body):
                        continue
                    # Without its state (too large for the broker) the decoder reads the
                    # event from the store: skipping it would lose an agent or a session.
                    event = event if event is not None else self._decode(body)
                    batch.append((body["notification_id"], event))
                    applied += 1
            for projection, batch in zip(self._projections, batches, strict=True):
                if batch:
                    projection.apply_all(conn, [event for _, event in batch], [position for position, _ in batch])
        # Counted once the transaction committed: a failed batch is applied again later.
        for projection, batch in zip(self._projections, batches, strict=True):
            if batch:
                self.telemetry.projected(projection.name, len(batch))
        return applied

    def _claim(self, conn: sa.Connection, tp: Any, first: int, next_offset: int) -> None:
        """Moves the partition's stored offset from where this batch started (compare-and-set)."""
        key = (offsets.c.group_id == self._group_id) & (offsets.c.topic == tp.topic) & (offsets.c.partition == tp.partition)
        # The row exists before it is locked, so two members claiming a new partition at
        # once serialise on it instead of one failing on a duplicate key.
        conn.execute(
            _insert_ignoring_duplicates(conn, offsets).values(
                group_id=self._group_id, topic=tp.topic, partition=tp.partition, next_offset=0
            )
        )
        current = conn.execute(sa.select(offsets.c.next_offset).where(key).with_for_update()).scalar_one()
        if current > first:
            raise OffsetMoved(tp)
        if current < first and current > 0:
            log.warning(
                "partition %s:%d resumes at offset %d, past the stored %d: the records between "
                "are gone from the broker (retention?) and were never projected",
                tp.topic, tp.partition, first, current,
            )
        conn.execute(sa.update(offsets).where(key).values(next_offset=next_offset))

    @staticmethod
    def _is_new(conn: sa.Connection, projection: str, body: dict[str, Any]) -> bool:
        """True (and recorded) when this projection has not applied this event yet."""
        key = (stream_versions.c.projection == projection) & (stream_versions.c.stream_id == body["aggregate_id"])
        version = body["aggregate_version"]
        seen = conn.execute(sa.select(stream_versions.c.version).where(key)).scalar()
        if seen is None:
            conn.execute(
                sa.insert(stream_versions).values(
                    projection=projection, stream_id=body["aggregate_id"], version=version
                )
            )
            return True
        if version <= seen:
            return False
        conn.execute(sa.update(stream_versions).where(key).values(version=version))
        return True
