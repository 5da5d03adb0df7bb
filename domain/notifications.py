"""The Inbox aggregate: what one reader of a workspace has read of its notifications.

Notifications themselves are a projection (they follow from task and session events, so they
are rebuilt, never recorded); only reading them is a decision of the reader, and that is
recorded here, one stream per (workspace, reader). A reader is a person (``user:<id>``) or
an API key (its key id): each has their own read marks, also for the notifications the whole
workspace sees.

Each notification carries the global position of the event that raised it. A reader marks
notifications one by one (``NotificationsRead``: id → position) or everything up to a
position (``AllRead``); a mark at or below that position is already covered and records
nothing, so the aggregate keeps only the marks above it.
"""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.ids import stream_id


def inbox_stream_id(tenant_id: str, reader: str) -> UUID:
    # JSON keeps the pair unambiguous whatever characters the reader's id holds.
    return stream_id("inbox_" + json.dumps([tenant_id, reader]))


class Inbox(Aggregate):
    @staticmethod
    def create_id(tenant_id: str, reader: str, **_: Any) -> UUID:
        return inbox_stream_id(tenant_id, reader)

    class Opened(Aggregate.Created):
        tenant_id: str
        reader: str

    class NotificationsRead(Aggregate.Event):
        """Notifications read one by one: their ids and the positions they carry."""

        notifications: dict[str, int]

    class AllRead(Aggregate.Event):
        """Every notification up to this position is read."""

        up_to: int

    @event(Opened)
    def __init__(self, tenant_id: str, reader: str) -> None:
        self.tenant_id = tenant_id
        self.reader = reader
        self.up_to = 0
        self.read: dict[str, int] = {}  # marks above ``up_to``

    def is_read(self, notification_id: str, position: int) -> bool:
        return position <= self.up_to or notification_id in self.read

    def mark_read(self, notifications: dict[str, int]) -> bool:
        """Records the ones not read yet; False when every one was."""
        unread = {key: position for key, position in notifications.items() if not self.is_read(key, position)}
        if not unread:
            return False
        self._record_read(notifications=unread)
        return True

    def mark_all_read(self, up_to: int) -> bool:
        if up_to <= self.up_to:
            return False
        self._record_all_read(up_to=up_to)
        return True

    @event(NotificationsRead)
    def _record_read(self, notifications: dict[str, int]) -> None:
        self.read = {**self.read, **notifications}

    @event(AllRead)
    def _record_all_read(self, up_to: int) -> None:
        self.up_to = up_to
        self.read = {key: position for key, position in self.read.items() if position > up_to}
