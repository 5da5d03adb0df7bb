"""The activity feed: one row per stored event, every aggregate's, newest first.

What a row says is ``application.activity``'s business; here are its tables, the projection
and the query. The projection sees every event, so it is built to be cheap: a batch is one
read (the subjects of the streams it continues, ``rm_activity_streams``) and two or three
multi-row inserts, whatever its size. A stream's subject (workspace, entity id, agent) is
written once, from its first event; only an event naming another agent (a reassignment)
updates it.

Rebuild with ``agentry projections rebuild activity`` (it empties both tables and replays the
log): every value comes from the events alone, so the rows come back the same."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

import sqlalchemy as sa

from application.activity import (
    Naming,
    Subject,
    activity_id,
    actor_of,
    agent_named,
    is_organization,
    naming_of,
    subject_of,
    summary_of,
    user_of,
)
from application.outbox import event_id
from application.views import TIME_BOUNDS, iso
from projections.bulk import insert_rows, stream_rows
from projections.queries import ListQuery, Page, ReadModels
from projections.runner import ReadModelProjection
from projections.tables import metadata

activity = sa.Table(
    "rm_activity",
    metadata,
    sa.Column("stream_id", sa.String(36), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    # Unbounded text: a value longer than a guess (an aggregate added later) must never stop
    # the projection, which every write's read-your-writes waits for.
    sa.Column("tenant_id", sa.String, nullable=True),  # None: a stream whose first event was not seen
    sa.Column("entity_type", sa.String, nullable=False),
    sa.Column("entity_id", sa.String, nullable=True),
    sa.Column("action", sa.String, nullable=False),
    sa.Column("agent_id", sa.String, nullable=True),
    sa.Column("user_id", sa.String, nullable=True),
    sa.Column("created_at", sa.String(40), nullable=False),
    sa.Column("doc", sa.JSON, nullable=False),
    sa.Index("rm_activity_by_time", "tenant_id", "created_at", "stream_id", "version"),
    sa.Index("rm_activity_by_entity", "tenant_id", "entity_id", "created_at"),
    sa.Index("rm_activity_by_agent", "tenant_id", "agent_id", "created_at"),
    sa.Index("rm_activity_by_user", "tenant_id", "user_id", "created_at"),
)

# What the feed keeps of a stream from its first event, for the events that follow.
activity_streams = sa.Table(
    "rm_activity_streams",
    metadata,
    sa.Column("stream_id", sa.String(36), primary_key=True),
    sa.Column("tenant_id", sa.String, nullable=True),
    sa.Column("entity_type", sa.String, nullable=False),
    sa.Column("entity_id", sa.String, nullable=True),
    sa.Column("agent_id", sa.String, nullable=True),
)

# Filter columns hold at most this much of a value (ids are far shorter; an index entry is not
# unbounded); the document keeps it whole.
MAX_COLUMN = 256


def _column(value: str | None) -> str | None:
    return value[:MAX_COLUMN] if value is not None else None


def _subject(event: Any) -> Subject:
    """As kept in ``rm_activity_streams`` (so an event reads the same subject whether its
    stream began in its own batch or an earlier one)."""
    subject = subject_of(event)
    return Subject(
        _column(subject.tenant_id), subject.entity_type, _column(subject.entity_id), _column(subject.agent_id)
    )


# Streams looked up per statement (well below every driver's limit on parameters).
LOOKUP_CHUNK = 500


class ActivityProjection(ReadModelProjection):
    name = "activity"
    tables = (activity, activity_streams)

    def apply(self, conn: sa.Connection, event: Any) -> None:
        self.apply_all(conn, [event])

    def apply_all(self, conn: sa.Connection, events: Sequence[Any], positions: Sequence[int] | None = None) -> None:
        if not events:
            return
        streams = [str(e.originator_id) for e in events]  # once each: a UUID's text is not free
        namings = [naming_of(type(e)) for e in events]
        started = {stream for stream, naming in zip(streams, namings, strict=True) if naming.creates}
        subjects = self._subjects(conn, set(streams) - started)
        known = set(subjects)
        changed: dict[str, Subject] = {}

        def rows() -> Iterator[dict[str, Any]]:
            for event, stream, naming in zip(events, streams, namings, strict=True):
                if naming.creates:
                    subject = subjects[stream] = changed[stream] = _subject(event)
                elif stream in subjects:
                    subject = subjects[stream]
                    agent = _column(agent_named(event))
                    if subject.entity_type != "agent" and agent is not None and agent != subject.agent_id:
                        subject = subjects[stream] = changed[stream] = replace(subject, agent_id=agent)
                else:
                    subject = _subject(event)  # its stream's first event was never seen: nothing to keep
                yield self._row(event, subject, stream, naming)

        # Rows go out as they are made (the subjects they change are kept after: ``changed``
        # is complete only once the last row is made).
        stream_rows(conn, activity, rows(), len(events))
        self._keep(conn, changed, known)

    @staticmethod
    def _row(event: Any, subject: Subject, stream: str, naming: Naming) -> dict[str, Any]:
        version = event.originator_version
        actor = actor_of(event, subject)
        user_id = user_of(event, subject, actor)
        stamp = iso(event.timestamp)
        doc = {
            "id": activity_id(stream, version),
            "type": "activity",
            "entity_type": naming.entity_type,
            "entity_id": subject.entity_id,
            "action": naming.action,
            "actor": actor,
            "agent_id": subject.agent_id,
            "user_id": user_id,
            "workspace_id": None if is_organization(subject.tenant_id) else subject.tenant_id,
            "summary": summary_of(event, naming),
            "created_at": stamp,
            # The same id the relay gives the event on Kafka (its ``event_id`` header).
            "event_id": event_id(event.originator_id, version, stream),
        }
        return {
            "stream_id": stream,
            "version": version,
            "tenant_id": _column(subject.tenant_id),
            "entity_type": _column(naming.entity_type),
            "entity_id": _column(subject.entity_id),
            "action": _column(naming.action),
            "agent_id": _column(subject.agent_id),
            "user_id": _column(user_id),
            "created_at": stamp,
            "doc": doc,
        }

    @staticmethod
    def _subjects(conn: sa.Connection, streams: set[str]) -> dict[str, Subject]:
        found: dict[str, Subject] = {}
        wanted = sorted(streams)
        for start in range(0, len(wanted), LOOKUP_CHUNK):
            chunk = wanted[start : start + LOOKUP_CHUNK]
            select = sa.select(activity_streams).where(activity_streams.c.stream_id.in_(chunk))
            for row in conn.execute(select):
                found[row.stream_id] = Subject(row.tenant_id, row.entity_type, row.entity_id, row.agent_id)
        return found

    @staticmethod
    def _keep(conn: sa.Connection, changed: dict[str, Subject], known: set[str]) -> None:
        def values(stream: str, subject: Subject) -> dict[str, Any]:
            return {
                "stream_id": stream, "tenant_id": _column(subject.tenant_id), "entity_type": _column(subject.entity_type),
                "entity_id": _column(subject.entity_id), "agent_id": _column(subject.agent_id),
            }  # fmt: skip

        new = [values(stream, subject) for stream, subject in changed.items() if stream not in known]
        if new:
            insert_rows(conn, activity_streams, new)
        for stream, subject in changed.items():
            if stream in known:
                conn.execute(
                    sa.update(activity_streams)
                    .where(activity_streams.c.stream_id == stream)
                    .values(agent_id=_column(subject.agent_id))
                )


@dataclass(frozen=True)
class ActivityFilter:
    """The feed's filters, as Mission Control names them; ``since`` / ``until`` are
    fixed-width UTC strings (``application.views.iso``), each with its bound (gte, lt …)."""

    entity_type: str | None = None
    entity_id: str | None = None
    action: str | None = None
    agent_id: str | None = None
    user_id: str | None = None
    times: tuple[tuple[str, str], ...] = ()


class ActivityReadModels(ReadModels):
    def activity(self, tenants: Iterable[str], query: ListQuery, filters: ActivityFilter) -> Page:
        table = activity
        conditions: list[Any] = [table.c.tenant_id.in_(list(tenants))]
        for column in ("entity_type", "entity_id", "action", "agent_id", "user_id"):
            value = getattr(filters, column)
            if value is not None:
                conditions.append(table.c[column] == value)
        for bound, moment in (*query.created_at.items(), *filters.times):
            conditions.append(TIME_BOUNDS[bound](table.c.created_at, moment))
        return self._page(table, (table.c.created_at, table.c.stream_id, table.c.version), conditions, query)
