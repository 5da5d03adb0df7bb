"""``application.transfer.RawEventLog`` on the event store: stored events read and appended
as stored, below the aggregates (no mapper, no snapshots: an imported stream is loaded from
its events, and takes snapshots again as it grows)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from eventsourcing.persistence import IntegrityError, StoredEvent

from application.errors import Conflict
from application.transfer import RawEvent
from infra.event_store import EventsourcingEventStore


class StoredEventLog:
    def __init__(self, store: EventsourcingEventStore) -> None:
        self._store = store

    def max_notification_id(self) -> int:
        return self._store.max_notification_id()

    def notifications(self, after: int, limit: int) -> Sequence[Any]:
        return self._store.notifications(after, limit)

    def stream_version(self, stream_id: UUID) -> int:
        rows = self._store.read_stored(stream_id, limit=1, descending=True)
        return int(rows[0][0]) if rows else 0

    def stored_rows(self, stream_id: UUID) -> Sequence[tuple[int, str, bytes]]:
        return self._store.read_stored(stream_id)

    def append_raw(self, events: Sequence[RawEvent]) -> Sequence[int]:
        """One call of the recorder: one group of its group commit, so one savepoint (SQLite)
        or sub-transaction (PostgreSQL) that commits whole or not at all."""
        stored = [StoredEvent(e.stream_id, e.version, e.topic, e.state) for e in events]
        try:
            ids = self._store.app.recorder.insert_events(stored)
        except IntegrityError as error:
            raise Conflict(
                "a stream of the export was written to meanwhile; run the import again to go on"
            ) from error
        if ids is None:  # the group commit's refusal of a taken version
            raise Conflict("a stream of the export was written to meanwhile; run the import again to go on")
        return ids

    @property
    def kind(self) -> str:
        return "postgresql" if "Postgres" in type(self._store.app.recorder).__name__ else "sqlite"
