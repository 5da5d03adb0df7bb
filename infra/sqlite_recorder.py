"""The SQLite application recorder with group commit (``infra.group_commit``): saves that
arrive while another is being written share one transaction — one write lock, one commit
(one fsync) — each in its own savepoint, so a save whose version was taken is rolled back
alone and the others commit. A save queued after one it follows that was refused
(``infra.group_commit``) is refused too."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from eventsourcing.persistence import StoredEvent
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteDatastore

from infra.group_commit import GroupCommit, GroupCommitted
from infra.postgres_recorder import stream_position

TOPIC = "infra.sqlite_recorder:GroupCommitSQLiteRecorder"


class GroupCommitSQLiteRecorder(GroupCommitted, SQLiteApplicationRecorder):
    def __init__(self, datastore: SQLiteDatastore, events_table_name: str = "stored_events") -> None:
        super().__init__(datastore, events_table_name)
        self.group_commit: GroupCommit[StoredEvent] = GroupCommit(self._write_groups, stream_position)

    def _write_groups(
        self, groups: Sequence[Sequence[StoredEvent]], after: Sequence[tuple[int, int]]
    ) -> list[Sequence[int] | None]:
        outcomes: list[Sequence[int] | None] = []
        with self.datastore.transaction(commit=True) as cursor:
            for number, group in enumerate(groups):
                if any(later == number and outcomes[earlier] is None for later, earlier in after):
                    outcomes.append(None)
                    continue
                cursor.execute("SAVEPOINT agentry_append")
                try:
                    ids = self._insert_events(cursor, group)
                except sqlite3.IntegrityError:
                    cursor.execute("ROLLBACK TO agentry_append")
                    ids = None
                cursor.execute("RELEASE agentry_append")
                outcomes.append(ids)
        return outcomes
