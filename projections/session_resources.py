"""The read model behind ``GET /v1/sessions/{id}/resources``: one row per resource a session
holds, in the order attached. Fed by the Session aggregate's ``Started`` (the resources it
was created with) and its resource events; a deleted session's rows go with it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from domain.sessions import Session, SessionWasDeleted
from projections import tables
from projections.runner import ReadModelProjection

TABLE = tables.session_resources


class SessionResourcesProjection(ReadModelProjection):
    name = "session_resources"
    tables = (TABLE,)

    def __init__(self) -> None:
        self._handlers: dict[type, Callable[[sa.Connection, Any], None]] = {
            Session.Started: self._started,
            Session.ResourceAdded: self._added,
            Session.ResourceTokenRotated: self._rotated,
            Session.ResourceRemoved: self._removed,
            SessionWasDeleted: self._session_deleted,
        }

    def wants(self, event_class: type) -> bool:
        return event_class in self._handlers

    def apply(self, conn: sa.Connection, event: Any) -> None:
        # Most of a session's events are messages and tool calls: they cost nothing here.
        handler = self._handlers.get(type(event))
        if handler is not None:
            handler(conn, event)

    def _started(self, conn: sa.Connection, event: Any) -> None:
        resources = event.details.get("resources") or []
        if resources:
            conn.execute(
                sa.insert(TABLE),
                [
                    {"stream_id": str(event.originator_id), "id": resource["id"], "position": position, "doc": resource}
                    for position, resource in enumerate(resources)
                ],
            )

    def _added(self, conn: sa.Connection, event: Any) -> None:
        stream = str(event.originator_id)
        last = conn.execute(sa.select(sa.func.max(TABLE.c.position)).where(TABLE.c.stream_id == stream)).scalar()
        position = 0 if last is None else last + 1
        conn.execute(
            sa.insert(TABLE).values(stream_id=stream, id=event.resource["id"], position=position, doc=event.resource)
        )

    def _rotated(self, conn: sa.Connection, event: Any) -> None:
        row = self._row(event.originator_id, event.resource_id)
        doc = conn.execute(sa.select(TABLE.c.doc).where(row)).scalar()
        if doc is not None:
            (rotated,) = event.changed([doc])  # the event's own rule, as on the aggregate
            conn.execute(sa.update(TABLE).where(row).values(doc=rotated))

    def _removed(self, conn: sa.Connection, event: Any) -> None:
        conn.execute(sa.delete(TABLE).where(self._row(event.originator_id, event.resource_id)))

    def _session_deleted(self, conn: sa.Connection, event: Any) -> None:
        conn.execute(sa.delete(TABLE).where(TABLE.c.stream_id == str(event.originator_id)))

    @staticmethod
    def _row(stream: Any, resource_id: str) -> Any:
        return sa.and_(TABLE.c.stream_id == str(stream), TABLE.c.id == resource_id)
