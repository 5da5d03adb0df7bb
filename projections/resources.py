"""Projections behind the list endpoints: agents (and every agent version), environments,
sessions. Each is a plain function of (connection, event) → rows."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from application.views import agent_view, environment_view, iso, session_view
from domain.agents import Agent
from domain.environments import Environment
from domain.sessions import PublicEvent, Session, SessionWasDeleted
from projections import tables
from projections.runner import Projection


def _current(conn: sa.Connection, table: sa.Table, stream_id: str) -> tuple[dict[str, Any], str] | None:
    """The row's document and tenant, or None when its Created event was never projected."""
    row = conn.execute(sa.select(table.c.doc, table.c.tenant_id).where(table.c.stream_id == stream_id)).first()
    return (dict(row.doc), row.tenant_id) if row else None


class AgentsProjection(Projection):
    name = "agents"
    tables = (tables.agents, tables.agent_versions)

    def apply(self, conn: sa.Connection, event: Any) -> None:
        stream_id = str(event.originator_id)
        if isinstance(event, Agent.Created):
            doc = agent_view(
                event.agent_id, event.definition, 1, event.timestamp, event.timestamp, None
            )
            conn.execute(
                sa.insert(tables.agents).values(
                    id=event.agent_id,
                    stream_id=stream_id,
                    tenant_id=event.tenant_id,
                    created_at=doc["created_at"],
                    archived=False,
                    doc=doc,
                )
            )
            self._record_version(conn, event.tenant_id, doc)
            return
        current = _current(conn, tables.agents, stream_id)
        if current is None:
            return
        doc, tenant_id = current
        if isinstance(event, Agent.Updated):
            doc = agent_view(
                doc["id"],
                event.definition,
                event.agent_version,
                event.timestamp,
                event.timestamp,
                None,
            ) | {"created_at": doc["created_at"]}
            self._record_version(conn, tenant_id, doc)
            archived = False
        elif isinstance(event, Agent.Archived):
            doc = doc | {"archived_at": iso(event.timestamp), "updated_at": iso(event.timestamp)}
            archived = True
        else:
            return
        conn.execute(
            sa.update(tables.agents)
            .where(tables.agents.c.stream_id == stream_id)
            .values(doc=doc, archived=archived)
        )

    @staticmethod
    def _record_version(conn: sa.Connection, tenant_id: str, doc: dict[str, Any]) -> None:
        conn.execute(
            sa.insert(tables.agent_versions).values(
                agent_id=doc["id"], version=doc["version"], tenant_id=tenant_id, doc=doc
            )
        )


class EnvironmentsProjection(Projection):
    name = "environments"
    tables = (tables.environments,)

    def apply(self, conn: sa.Connection, event: Any) -> None:
        stream_id = str(event.originator_id)
        if isinstance(event, Environment.Created):
            doc = environment_view(
                event.environment_id, event.definition, event.timestamp, event.timestamp, None
            )
            conn.execute(
                sa.insert(tables.environments).values(
                    id=event.environment_id,
                    stream_id=stream_id,
                    tenant_id=event.tenant_id,
                    created_at=doc["created_at"],
                    archived=False,
                    doc=doc,
                )
            )
            return
        current = _current(conn, tables.environments, stream_id)
        if current is None:
            return
        doc = current[0]
        values: dict[str, Any]
        if isinstance(event, Environment.Updated):
            values = {"doc": doc | event.definition | {"updated_at": iso(event.timestamp)}}
        elif isinstance(event, Environment.Archived):
            stamp = iso(event.timestamp)
            values = {"doc": doc | {"archived_at": stamp, "updated_at": stamp}, "archived": True}
        else:
            return
        conn.execute(
            sa.update(tables.environments)
            .where(tables.environments.c.stream_id == stream_id)
            .values(**values)
        )


class SessionsProjection(Projection):
    name = "sessions"
    tables = (tables.sessions,)

    def apply(self, conn: sa.Connection, event: Any) -> None:
        stream_id = str(event.originator_id)
        if isinstance(event, Session.Started):
            doc = session_view(
                event.session_id,
                event.agent,
                event.environment_id,
                event.details,
                "idle",
                event.timestamp,
                event.timestamp,
                None,
            )
            conn.execute(
                sa.insert(tables.sessions).values(
                    id=event.session_id,
                    stream_id=stream_id,
                    tenant_id=event.tenant_id,
                    agent_id=event.agent["id"],
                    agent_version=event.agent["version"],
                    status="idle",
                    created_at=doc["created_at"],
                    archived=False,
                    deleted=False,
                    doc=doc,
                )
            )
            return
        current = _current(conn, tables.sessions, stream_id)
        if current is None:
            return
        doc = current[0]
        stamp = iso(event.timestamp)
        values: dict[str, Any] = {}
        if isinstance(event, SessionWasDeleted):
            values = {"deleted": True}
        elif isinstance(event, PublicEvent):
            status = STATUS_AFTER.get(event.public_type)
            if status is None:
                return
            values = {"status": status, "doc": doc | {"status": status, "updated_at": stamp}}
        elif isinstance(event, Session.Updated):
            details = event.details
            values = {
                "doc": doc
                | {
                    "title": details.get("title"),
                    "metadata": details.get("metadata") or {},
                    "updated_at": stamp,
                }
            }
        elif isinstance(event, Session.Archived):
            values = {"archived": True, "doc": doc | {"archived_at": stamp, "updated_at": stamp}}
        if values:
            conn.execute(
                sa.update(tables.sessions)
                .where(tables.sessions.c.stream_id == stream_id)
                .values(**values)
            )


STATUS_AFTER = {
    "session.status_running": "running",
    "session.status_idle": "idle",
    "session.status_rescheduled": "rescheduling",
    "session.status_terminated": "terminated",
}


def all_projections() -> list[Projection]:
    return [AgentsProjection(), EnvironmentsProjection(), SessionsProjection()]
