"""Projections behind the list endpoints: agents (and every agent version), environments,
sessions, model cards. Each keeps one row per aggregate (its wire ``doc`` plus filter columns) and has one
handler per event type that changes the row; any other event costs nothing, not even a read."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa

from application.views import (
    agent_view,
    api_key_view,
    environment_key_view,
    environment_view,
    iso,
    model_card_settings,
    model_card_view,
    redacted_headers,
    session_view,
    vault_credential_view,
    vault_view,
    work_view,
    workspace_view,
)
from domain.agents import Agent
from domain.api_keys import ISSUED, ApiKey
from domain.environment_keys import EnvironmentKey
from domain.environments import Environment
from domain.model_cards import ModelCard
from domain.sessions import PublicEvent, Session, SessionWasDeleted
from domain.vaults import Vault
from domain.work_items import WorkItem
from domain.workspaces import Workspace
from projections import tables
from projections.activity import ActivityProjection
from projections.bulk import insert_rows
from projections.people import PeopleProjection
from projections.runner import ReadModelProjection
from projections.session_resources import SessionResourcesProjection
from projections.usage import UsageProjection
from projections.webhooks import WebhookEndpointsProjection

Row = dict[str, Any]
Handler = Callable[[sa.Connection, Any], None]


class ResourceProjection(ReadModelProjection):
    """Dispatches each event to the handler registered for its class (or a base class);
    ``created`` turns an aggregate's first event into the row's values.

    A projection with ``rows_in_memory`` (every handler reaches ``table`` only through
    ``row``, ``doc``, ``set``, ``patch`` and the insert of ``created``) keeps a batch's rows in
    memory: a row is read at most once per batch (never when the batch created it), and the
    batch's new and changed rows are written together at its end, in the runner's transaction."""

    table: sa.Table
    created_event: type
    rows_in_memory = False

    def handlers(self) -> dict[type, Handler]:
        return {}

    def created(self, conn: sa.Connection, event: Any) -> Row:
        raise NotImplementedError

    def __init__(self) -> None:
        self._handlers = {self.created_event: self._insert, **self.handlers()}
        self._dispatch: dict[type, Handler | None] = {}
        self._batch: BatchRows | None = None

    def wants(self, event_class: type) -> bool:
        return any(base in self._handlers for base in event_class.__mro__)

    def apply(self, conn: sa.Connection, event: Any) -> None:
        cls = type(event)
        try:
            handler = self._dispatch[cls]
        except KeyError:
            handler = self._dispatch[cls] = next(
                (self._handlers[base] for base in cls.__mro__ if base in self._handlers), None
            )
        if handler is not None:
            handler(conn, event)

    def apply_all(self, conn: sa.Connection, events: Sequence[Any], positions: Sequence[int] | None = None) -> None:
        if not self.rows_in_memory or len(events) < 2:
            super().apply_all(conn, events, positions)
            return
        self._batch = BatchRows(self.table)
        try:
            super().apply_all(conn, events, positions)
            self._batch.flush(conn)
        finally:
            self._batch = None

    def _insert(self, conn: sa.Connection, event: Any) -> None:
        values = self.created(conn, event)
        row = {
            "stream_id": str(event.originator_id),
            "tenant_id": values.pop("tenant_id", None) or event.tenant_id,
            "created_at": values["doc"]["created_at"],
            "archived": False,
            **values,
        }
        if self._batch is not None:
            self._batch.created(row)
        else:
            conn.execute(sa.insert(self.table).values(**row))

    def insert(self, conn: sa.Connection, table: sa.Table, values: Row) -> None:
        """Adds a row to another of the projection's tables (with the batch's rows, if kept)."""
        if self._batch is not None:
            self._batch.later(table, values)
        else:
            conn.execute(sa.insert(table).values(**values))

    def row(self, conn: sa.Connection, event: Any) -> Row | None:
        """The row of the event's stream (its columns by name), or None when its first event
        was never projected. Not to be changed in place: ``set`` changes it."""
        stream = str(event.originator_id)
        if self._batch is not None:
            return self._batch.row(conn, stream)
        found = conn.execute(sa.select(self.table).where(self.table.c.stream_id == stream)).first()
        return dict(found._mapping) if found else None

    def doc(self, conn: sa.Connection, event: Any) -> Row | None:
        """The row's document, or None when its first event was never projected."""
        if self._batch is not None:
            row = self._batch.row(conn, str(event.originator_id))
            return dict(row["doc"]) if row else None
        found = conn.execute(
            sa.select(self.table.c.doc).where(self.table.c.stream_id == str(event.originator_id))
        ).first()
        return dict(found.doc) if found else None

    def set(self, conn: sa.Connection, event: Any, **values: Any) -> None:
        if self._batch is not None and self._batch.set(str(event.originator_id), values):
            return
        conn.execute(
            sa.update(self.table).where(self.table.c.stream_id == str(event.originator_id)).values(**values)
        )

    def patch(self, conn: sa.Connection, event: Any, change: Callable[[Row], Row], **values: Any) -> None:
        """Reads the row's document, changes it, writes it back with ``values``."""
        doc = self.doc(conn, event)
        if doc is not None:
            self.set(conn, event, doc=change(doc), **values)

    def archived(self, conn: sa.Connection, event: Any) -> None:
        stamp = iso(event.timestamp)
        self.patch(conn, event, lambda doc: doc | {"archived_at": stamp, "updated_at": stamp}, archived=True)


class BatchRows:
    """One batch's rows of a resource table, by stream: those it created (inserted at the
    end) and those it read (written back at the end with the columns it changed)."""

    def __init__(self, table: sa.Table) -> None:
        self._table = table
        self._rows: dict[str, Row | None] = {}
        self._new: set[str] = set()
        self._changed: dict[str, set[str]] = {}
        self._later: list[tuple[sa.Table, Row]] = []

    def created(self, row: Row) -> None:
        stream = row["stream_id"]
        self._rows[stream] = row
        self._new.add(stream)
        self._changed.pop(stream, None)

    def later(self, table: sa.Table, values: Row) -> None:
        self._later.append((table, values))

    def row(self, conn: sa.Connection, stream: str) -> Row | None:
        if stream in self._rows:
            return self._rows[stream]
        found = conn.execute(sa.select(self._table).where(self._table.c.stream_id == stream)).first()
        row = self._rows[stream] = dict(found._mapping) if found else None
        return row

    def set(self, stream: str, values: Row) -> bool:
        """Changes a kept row; False when the batch holds no row of ``stream`` (nor knows it has none)."""
        if stream not in self._rows:
            return False
        row = self._rows[stream]
        if row is not None:
            row.update(values)
            if stream not in self._new:
                self._changed.setdefault(stream, set()).update(values)
        return True

    def flush(self, conn: sa.Connection) -> None:
        table = self._table
        created = [self._rows[stream] for stream in self._new]
        insert_rows(conn, table, [row for row in created if row is not None])
        updates: dict[tuple[str, ...], list[Row]] = {}
        for stream, columns in self._changed.items():
            row = self._rows[stream]
            assert row is not None
            names = tuple(sorted(columns))
            updates.setdefault(names, []).append({"_stream": stream, **{f"_{name}": row[name] for name in names}})
        for names, rows in updates.items():
            statement = (
                sa.update(table)
                .where(table.c.stream_id == sa.bindparam("_stream"))
                .values({name: sa.bindparam(f"_{name}") for name in names})
            )
            conn.execute(statement, rows)
        later: dict[sa.Table, list[Row]] = {}
        for other, values in self._later:
            later.setdefault(other, []).append(values)
        for other, rows in later.items():
            insert_rows(conn, other, rows)


class AgentsProjection(ResourceProjection):
    name = "agents"
    table = tables.agents
    tables = (tables.agents, tables.agent_versions)
    created_event = Agent.Created
    rows_in_memory = True

    def handlers(self) -> dict[type, Handler]:
        return {Agent.Updated: self._updated, Agent.Archived: self.archived}

    def created(self, conn: sa.Connection, event: Any) -> Row:
        doc = agent_view(event.agent_id, event.definition, 1, event.timestamp, event.timestamp, None)
        self._record_version(conn, event.tenant_id, doc)
        return {"id": event.agent_id, "doc": doc}

    def _updated(self, conn: sa.Connection, event: Any) -> None:
        row = self.row(conn, event)
        if row is None:
            return
        doc = agent_view(
            row["doc"]["id"], event.definition, event.agent_version, event.timestamp, event.timestamp, None
        ) | {"created_at": row["doc"]["created_at"]}
        self._record_version(conn, row["tenant_id"], doc)
        self.set(conn, event, doc=doc, archived=False)

    def _record_version(self, conn: sa.Connection, tenant_id: str, doc: Row) -> None:
        self.insert(
            conn, tables.agent_versions, {"agent_id": doc["id"], "version": doc["version"], "tenant_id": tenant_id, "doc": doc}
        )


class EnvironmentsProjection(ResourceProjection):
    name = "environments"
    table = tables.environments
    tables = (tables.environments,)
    created_event = Environment.Created
    rows_in_memory = True

    def handlers(self) -> dict[type, Handler]:
        return {Environment.Updated: self._updated, Environment.Archived: self.archived}

    def created(self, conn: sa.Connection, event: Any) -> Row:
        doc = environment_view(event.environment_id, event.definition, event.timestamp, event.timestamp, None)
        return {"id": event.environment_id, "doc": doc}

    def _updated(self, conn: sa.Connection, event: Any) -> None:
        self.patch(conn, event, lambda doc: doc | event.definition | {"updated_at": iso(event.timestamp)})


class SessionsProjection(ResourceProjection):
    name = "sessions"
    table = tables.sessions
    tables = (tables.sessions,)
    created_event = Session.Started
    rows_in_memory = True

    def handlers(self) -> dict[type, Handler]:
        return {
            SessionWasDeleted: self._deleted,
            PublicEvent: self._public_event,
            Session.Updated: self._updated,
            Session.AgentReconfigured: self._agent_reconfigured,
            Session.Archived: self.archived,
            Session.ResourceAdded: self._resources_changed,
            Session.ResourceTokenRotated: self._resources_changed,
            Session.ResourceRemoved: self._resources_changed,
        }

    def created(self, conn: sa.Connection, event: Any) -> Row:
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
        return {
            "id": event.session_id,
            "agent_id": event.agent["id"],
            "agent_version": event.agent["version"],
            "status": "idle",
            "deleted": False,
            "doc": doc,
        }

    def _deleted(self, conn: sa.Connection, event: Any) -> None:
        self.set(conn, event, deleted=True)

    def _public_event(self, conn: sa.Connection, event: PublicEvent) -> None:
        # Most of a session's events are messages and tool calls: they leave the row alone.
        status = event.status_after
        if status is not None:
            stamp = iso(event.timestamp)
            self.patch(conn, event, lambda doc: doc | {"status": status, "updated_at": stamp}, status=status)

    def _updated(self, conn: sa.Connection, event: Any) -> None:
        details = event.details
        changes = {
            "title": details.get("title"),
            "metadata": details.get("metadata") or {},
            "budget": details.get("budget"),
            "vault_ids": details.get("vault_ids") or [],
            "updated_at": iso(event.timestamp),
        }
        self.patch(conn, event, lambda doc: doc | changes)

    def _agent_reconfigured(self, conn: sa.Connection, event: Any) -> None:
        stamp = iso(event.timestamp)
        self.patch(conn, event, lambda doc: doc | {"agent": event.agent, "updated_at": stamp})

    def _resources_changed(self, conn: sa.Connection, event: Any) -> None:
        # The event says what it does to a session's resources (``changed``), here as on the aggregate.
        stamp = iso(event.timestamp)
        self.patch(
            conn, event, lambda doc: doc | {"resources": event.changed(doc.get("resources") or []), "updated_at": stamp}
        )


class ModelCardsProjection(ResourceProjection):
    """Never sees a secret: the events hold sealed values, and the row keeps only the key
    preview and the header names (the view built from the same events as retrieve)."""

    name = "model_cards"
    table = tables.model_cards
    tables = (tables.model_cards,)
    created_event = ModelCard.Created

    def handlers(self) -> dict[type, Handler]:
        return {
            ModelCard.Retargeted: self._retargeted,
            ModelCard.KeyRotated: lambda conn, event: self._changed(
                conn, event, {"api_key_preview": event.api_key_preview}
            ),
            ModelCard.HeadersReplaced: lambda conn, event: self._changed(
                conn, event, {"custom_headers": redacted_headers(event.header_names)}
            ),
            ModelCard.Probed: lambda conn, event: self._changed(conn, event, {"probe": event.probe}),
            ModelCard.Deleted: self._deleted,
        }

    def created(self, conn: sa.Connection, event: Any) -> Row:
        doc = model_card_view(
            event.model_card_id,
            model_card_settings(event),
            event.header_names,
            event.api_key_preview,
            event.probe,
            event.timestamp,
            event.timestamp,
        )
        return {"id": event.model_card_id, "provider": event.provider, "doc": doc}

    def _retargeted(self, conn: sa.Connection, event: Any) -> None:
        self._changed(conn, event, model_card_settings(event), provider=event.provider)

    def _changed(self, conn: sa.Connection, event: Any, fields: Row, **values: Any) -> None:
        stamp = iso(event.timestamp)
        self.patch(conn, event, lambda doc: doc | fields | {"updated_at": stamp}, **values)

    def _deleted(self, conn: sa.Connection, event: Any) -> None:
        # A deleted card is gone for good (its key is shredded): no row, not even an archived one.
        conn.execute(sa.delete(self.table).where(self.table.c.stream_id == str(event.originator_id)))


class EnvironmentKeysProjection(ResourceProjection):
    """Sees the key's hash in the event and drops it: the row holds the view only."""

    name = "environment_keys"
    table = tables.environment_keys
    tables = (tables.environment_keys,)
    created_event = EnvironmentKey.Issued
    rows_in_memory = True

    def handlers(self) -> dict[type, Handler]:
        return {EnvironmentKey.Revoked: self._revoked}

    def created(self, conn: sa.Connection, event: Any) -> Row:
        doc = environment_key_view(
            event.key_id, event.environment_id, event.name, event.hint, event.timestamp, None
        )
        return {"id": event.key_id, "environment_id": event.environment_id, "doc": doc}

    def _revoked(self, conn: sa.Connection, event: Any) -> None:
        stamp = iso(event.timestamp)
        self.patch(conn, event, lambda doc: doc | {"revoked_at": stamp}, archived=True)


class WorkItemsProjection(ResourceProjection):
    """The queue's index: which items of an environment are live, in what state."""

    name = "work_items"
    table = tables.work_items
    tables = (tables.work_items,)
    created_event = WorkItem.Created
    rows_in_memory = True

    def handlers(self) -> dict[type, Handler]:
        return {
            WorkItem.Claimed: self._claimed,
            WorkItem.Acknowledged: lambda conn, event: self._moved(conn, event, "starting", "acknowledged_at"),
            WorkItem.Started: lambda conn, event: self._moved(conn, event, "active", "started_at"),
            WorkItem.StopRequested: lambda conn, event: self._moved(conn, event, "stopping", "stop_requested_at"),
            WorkItem.Stopped: self._stopped,
            WorkItem.MetadataUpdated: self._metadata,
        }

    def created(self, conn: sa.Connection, event: Any) -> Row:
        doc = work_view(event.work_id, event.environment_id, event.session_id, "queued", {}, event.timestamp)
        return {
            "id": event.work_id,
            "environment_id": event.environment_id,
            "state": "queued",
            "claim": 0,
            "hosting": event.hosting,
            "doc": doc,
        }

    def _claimed(self, conn: sa.Connection, event: Any) -> None:
        reset = {"state": "queued", "acknowledged_at": None, "started_at": None}
        self.patch(conn, event, lambda doc: doc | reset, state="queued", claim=event.claim)

    def _moved(self, conn: sa.Connection, event: Any, state: str, stamp_field: str) -> None:
        stamp = iso(event.timestamp)
        self.patch(conn, event, lambda doc: doc | {"state": state, stamp_field: stamp}, state=state)

    def _stopped(self, conn: sa.Connection, event: Any) -> None:
        stamp = iso(event.timestamp)

        def stopped(doc: Row) -> Row:
            return doc | {"state": "stopped", "stopped_at": stamp, "stop_requested_at": doc.get("stop_requested_at") or stamp}

        self.patch(conn, event, stopped, state="stopped")

    def _metadata(self, conn: sa.Connection, event: Any) -> None:
        self.patch(conn, event, lambda doc: doc | {"metadata": event.metadata})


class VaultsProjection(ResourceProjection):
    """Vaults and their credentials, in one projection because the credentials live in the
    vault's stream: a credential's row takes its tenant and vault id from the vault's row,
    which this same projection wrote first. Events carry sealed secrets; rows never do
    (the view holds ``auth``'s public part only)."""

    name = "vaults"
    table = tables.vaults
    tables = (tables.vaults, tables.vault_credentials)
    created_event = Vault.Created

    def handlers(self) -> dict[type, Handler]:
        return {
            Vault.Updated: self._updated,
            Vault.Archived: self._archived,
            Vault.Deleted: self._deleted,
            Vault.CredentialAdded: self._credential_added,
            Vault.CredentialUpdated: self._credential_updated,
            Vault.CredentialArchived: self._credential_archived,
            Vault.CredentialDeleted: self._credential_deleted,
        }

    def created(self, conn: sa.Connection, event: Any) -> Row:
        doc = vault_view(event.vault_id, event.display_name, event.metadata, event.timestamp, event.timestamp, None)
        return {"id": event.vault_id, "doc": doc}

    def _updated(self, conn: sa.Connection, event: Any) -> None:
        changes = {"display_name": event.display_name, "metadata": event.metadata, "updated_at": iso(event.timestamp)}
        self.patch(conn, event, lambda doc: doc | changes)

    def _archived(self, conn: sa.Connection, event: Any) -> None:
        self.archived(conn, event)
        credentials = tables.vault_credentials
        stamp = iso(event.timestamp)
        live = sa.and_(credentials.c.stream_id == str(event.originator_id), credentials.c.archived.is_(False))
        for row in conn.execute(sa.select(credentials.c.id, credentials.c.doc).where(live)).all():
            doc = dict(row.doc) | {"archived_at": stamp, "updated_at": stamp}
            conn.execute(sa.update(credentials).where(credentials.c.id == row.id).values(doc=doc, archived=True))

    def _deleted(self, conn: sa.Connection, event: Any) -> None:
        stream = str(event.originator_id)
        conn.execute(sa.delete(tables.vault_credentials).where(tables.vault_credentials.c.stream_id == stream))
        conn.execute(sa.delete(self.table).where(self.table.c.stream_id == stream))

    def _credential_added(self, conn: sa.Connection, event: Any) -> None:
        vault = conn.execute(
            sa.select(self.table.c.id, self.table.c.tenant_id).where(self.table.c.stream_id == str(event.originator_id))
        ).first()
        if vault is None:
            return
        doc = vault_credential_view(
            event.credential_id, vault.id, event.display_name, event.metadata, event.auth,
            event.timestamp, event.timestamp, None,
        )  # fmt: skip
        conn.execute(
            sa.insert(tables.vault_credentials).values(
                id=event.credential_id, stream_id=str(event.originator_id), tenant_id=vault.tenant_id,
                vault_id=vault.id, created_at=doc["created_at"], archived=False, doc=doc,
            )  # fmt: skip
        )

    def _credential_doc(self, conn: sa.Connection, event: Any, change: Callable[[Row], Row], **values: Any) -> None:
        credentials = tables.vault_credentials
        row = conn.execute(sa.select(credentials.c.doc).where(credentials.c.id == event.credential_id)).first()
        if row is not None:
            doc = change(dict(row.doc))
            conn.execute(sa.update(credentials).where(credentials.c.id == event.credential_id).values(doc=doc, **values))

    def _credential_updated(self, conn: sa.Connection, event: Any) -> None:
        changes = {
            "display_name": event.display_name,
            "metadata": event.metadata,
            "auth": event.auth,
            "updated_at": iso(event.timestamp),
        }
        self._credential_doc(conn, event, lambda doc: doc | changes)

    def _credential_archived(self, conn: sa.Connection, event: Any) -> None:
        stamp = iso(event.timestamp)
        self._credential_doc(conn, event, lambda doc: doc | {"archived_at": stamp, "updated_at": stamp}, archived=True)

    def _credential_deleted(self, conn: sa.Connection, event: Any) -> None:
        credentials = tables.vault_credentials
        conn.execute(sa.delete(credentials).where(credentials.c.id == event.credential_id))


class WorkspacesProjection(ResourceProjection):
    name = "workspaces"
    table = tables.workspaces
    tables = (tables.workspaces,)
    created_event = Workspace.Created
    rows_in_memory = True

    def handlers(self) -> dict[type, Handler]:
        return {Workspace.Updated: self._updated, Workspace.Archived: self._archived}

    def created(self, conn: sa.Connection, event: Any) -> Row:
        doc = workspace_view(event.workspace_id, event.name, event.display_color, event.tags, event.timestamp, None)
        return {"id": event.workspace_id, "tenant_id": event.workspace_id, "doc": doc}

    def _updated(self, conn: sa.Connection, event: Any) -> None:
        self.patch(conn, event, lambda doc: doc | {"name": event.name, "display_color": event.display_color, "tags": event.tags})

    def _archived(self, conn: sa.Connection, event: Any) -> None:
        self.patch(conn, event, lambda doc: doc | {"archived_at": iso(event.timestamp)}, archived=True)


class ApiKeysProjection(ResourceProjection):
    """One row per key id. A legacy key migrated to the keyed hash is a second stream with
    the same key id: its ``Issued`` takes the row over, and the old stream's revoke (recorded
    after it) no longer matches the row's stream."""

    name = "api_keys"
    table = tables.api_keys
    tables = (tables.api_keys,)
    created_event = ISSUED

    def handlers(self) -> dict[type, Handler]:
        return {
            ApiKey.Renamed: lambda conn, event: self.patch(conn, event, lambda doc: doc | {"name": event.name}),
            ApiKey.RoleChanged: lambda conn, event: self.patch(conn, event, lambda doc: doc | {"role": event.role}),
            ApiKey.StatusChanged: lambda conn, event: self._status(conn, event, event.status),
            ApiKey.Revoked: lambda conn, event: self._status(conn, event, "archived"),
        }

    def _insert(self, conn: sa.Connection, event: Any) -> None:
        conn.execute(sa.delete(self.table).where(self.table.c.id == event.key_id))
        super()._insert(conn, event)

    def created(self, conn: sa.Connection, event: Any) -> Row:
        doc = api_key_view(
            event.key_id, event.name, event.tenant_id, event.role, "active", event.hint, event.timestamp,
            getattr(event, "created_by", None),
        )  # fmt: skip
        return {"id": event.key_id, "doc": doc, "status": "active", "created_by": doc["created_by"] and doc["created_by"]["id"]}

    def _status(self, conn: sa.Connection, event: Any, status: str) -> None:
        self.patch(conn, event, lambda doc: doc | {"status": status}, status=status, archived=status == "archived")


def all_projections() -> list[ReadModelProjection]:
    # Imported here: those modules build on ResourceProjection, defined above.
    from projections.files import FilesProjection
    from projections.knowledge import KnowledgeBasesProjection, KnowledgeDocumentsProjection
    from projections.memory import MemoryStoresProjection
    from projections.notifications import NotificationsProjection
    from projections.skills import SkillsProjection
    from projections.tasks import BoardsProjection, DepartmentsProjection, TasksProjection

    return [
        AgentsProjection(),
        EnvironmentsProjection(),
        SessionsProjection(),
        ModelCardsProjection(),
        EnvironmentKeysProjection(),
        WorkItemsProjection(),
        SessionResourcesProjection(),
        VaultsProjection(),
        PeopleProjection(),
        WorkspacesProjection(),
        ApiKeysProjection(),
        DepartmentsProjection(),
        BoardsProjection(),
        TasksProjection(),
        ActivityProjection(),
        UsageProjection(),
        WebhookEndpointsProjection(),
        NotificationsProjection(),
        SkillsProjection(),
        KnowledgeBasesProjection(),
        KnowledgeDocumentsProjection(),
        MemoryStoresProjection(),
        FilesProjection(),
    ]
