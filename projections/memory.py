"""Read models of memory stores, memories and memory versions, and the reads behind their
retrieve and list endpoints.

One projection keeps all three, because memories and versions live in the store's stream: a
memory's row takes its tenant and store id from the event, the store's row is written first.
A redaction clears the version row's content, path, size and hash (and its sealed text); a
store's deletion drops every row of the store."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

import orjson
import sqlalchemy as sa

from application.memory import store_view
from application.ports import SecretCipher, SecretUnavailable
from application.views import TIME_BOUNDS, iso
from domain.memory import MemoryStore
from projections.memory_tables import memories, memory_stores, memory_versions
from projections.queries import BadPageToken, ListQuery, Page, ReadModels
from projections.resources import Handler, ResourceProjection, Row


def path_key(path: str) -> str:
    return path.encode("utf-8").hex()


def _actor_columns(actor: dict[str, str] | None) -> dict[str, str | None]:
    actor = actor or {}
    return {
        "session_id": actor.get("session_id"),
        "api_key_id": actor.get("api_key_id"),
        "service_account_id": actor.get("service_account_id"),
    }


class MemoryStoresProjection(ResourceProjection):
    name = "memory_stores"
    table = memory_stores
    tables = (memory_stores, memories, memory_versions)
    created_event = MemoryStore.Created

    def handlers(self) -> dict[type, Handler]:
        return {
            MemoryStore.Updated: self._updated,
            MemoryStore.Archived: self.archived,
            MemoryStore.Deleted: self._deleted,
            MemoryStore.MemoryCreated: self._written,
            MemoryStore.MemoryModified: self._written,
            MemoryStore.MemoryDeleted: self._memory_deleted,
            MemoryStore.MemoryVersionRedacted: self._redacted,
        }

    def created(self, conn: sa.Connection, event: Any) -> Row:
        doc = store_view(event.memory_store_id, event.name, event.description, event.metadata, event.timestamp, event.timestamp, None)
        return {"id": event.memory_store_id, "doc": doc}

    def _updated(self, conn: sa.Connection, event: Any) -> None:
        changes = {"name": event.name, "description": event.description, "metadata": event.metadata, "updated_at": iso(event.timestamp)}
        self.patch(conn, event, lambda doc: doc | changes)

    def _deleted(self, conn: sa.Connection, event: Any) -> None:
        stream = str(event.originator_id)
        for table in (memory_stores, memories, memory_versions):
            conn.execute(sa.delete(table).where(table.c.stream_id == stream))

    def _written(self, conn: sa.Connection, event: Any) -> None:
        stamp = iso(event.timestamp)
        created = isinstance(event, MemoryStore.MemoryCreated)
        doc = {
            "type": "memory",
            "id": event.memory_id,
            "memory_store_id": event.memory_store_id,
            "path": event.path,
            "content_sha256": event.content_sha256,
            "content_size_bytes": event.content_size_bytes,
            "memory_version_id": event.memory_version_id,
            "created_at": stamp,
            "updated_at": stamp,
            "content": None,
        }
        values = {"path_key": path_key(event.path), "sealed": event.sealed}
        if created:
            conn.execute(
                sa.insert(memories).values(
                    id=event.memory_id,
                    stream_id=str(event.originator_id),
                    tenant_id=event.tenant_id,
                    memory_store_id=event.memory_store_id,
                    doc=doc,
                    **values,
                )
            )
        else:
            row = conn.execute(sa.select(memories.c.doc).where(memories.c.id == event.memory_id)).first()
            if row is not None:
                doc["created_at"] = row.doc["created_at"]
                conn.execute(sa.update(memories).where(memories.c.id == event.memory_id).values(doc=doc, **values))
        self._version(
            conn,
            event,
            "created" if created else "modified",
            event.sealed,
            {"path": event.path, "content_sha256": event.content_sha256, "content_size_bytes": event.content_size_bytes},
        )

    def _memory_deleted(self, conn: sa.Connection, event: Any) -> None:
        previous = conn.execute(sa.select(memories.c.doc).where(memories.c.id == event.memory_id)).first()
        conn.execute(sa.delete(memories).where(memories.c.id == event.memory_id))
        path = previous.doc["path"] if previous is not None else None
        self._version(conn, event, "deleted", None, {"path": path, "content_sha256": None, "content_size_bytes": None})

    def _version(self, conn: sa.Connection, event: Any, operation: str, sealed: str | None, shown: Row) -> None:
        doc = {
            "type": "memory_version",
            "id": event.memory_version_id,
            "memory_id": event.memory_id,
            "memory_store_id": event.memory_store_id,
            "operation": operation,
            "created_at": iso(event.timestamp),
            "created_by": event.actor,
            "content": None,
            **shown,
            "redacted_at": None,
            "redacted_by": None,
        }
        conn.execute(
            sa.insert(memory_versions).values(
                id=event.memory_version_id,
                stream_id=str(event.originator_id),
                tenant_id=event.tenant_id,
                memory_store_id=event.memory_store_id,
                memory_id=event.memory_id,
                operation=operation,
                created_at=doc["created_at"],
                sealed=sealed,
                doc=doc,
                **_actor_columns(event.actor),
            )
        )

    def _redacted(self, conn: sa.Connection, event: Any) -> None:
        row = conn.execute(sa.select(memory_versions.c.doc).where(memory_versions.c.id == event.memory_version_id)).first()
        if row is None:
            return
        cleared = {"content": None, "path": None, "content_sha256": None, "content_size_bytes": None}
        doc = dict(row.doc) | cleared | {"redacted_at": iso(event.timestamp), "redacted_by": event.actor}
        conn.execute(
            sa.update(memory_versions).where(memory_versions.c.id == event.memory_version_id).values(doc=doc, sealed=None)
        )


@dataclass(frozen=True)
class MemoryListing:
    """What the memory list narrows by, besides the page."""

    path_prefix: str | None = None
    depth: int = 0
    view: str = "basic"
    limit: int = 20
    page: str | None = None


@dataclass(frozen=True)
class VersionFilters:
    memory_id: str | None = None
    operation: str | None = None
    session_id: str | None = None
    api_key_id: str | None = None
    service_account_id: str | None = None


def _encode(*key: Any) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(list(key))).decode().rstrip("=")


def _decode_memory_token(token: str) -> str:
    """A position in path order (any store's: it names no memory, only where a page stops)."""
    try:
        key = orjson.loads(base64.urlsafe_b64decode((token + "=" * (-len(token) % 4)).encode()))
    except (ValueError, orjson.JSONDecodeError):
        raise BadPageToken("invalid page token") from None
    if (
        not isinstance(key, list)
        or len(key) != 2
        or key[0] != "rm_memories"
        or not isinstance(key[1], str)
        or len(key[1]) > 2 * 2048
        or any(char not in "0123456789abcdef" for char in key[1])
    ):
        raise BadPageToken("invalid page token")
    return key[1]


class MemoryReadModels(ReadModels):
    """The lists and retrieves of memory stores, memories and versions. Sealed content is
    opened here, at the moment of a full view, and only then."""

    def __init__(self, engine: sa.Engine, cipher: SecretCipher) -> None:
        super().__init__(engine)
        self._cipher = cipher

    # -- stores ------------------------------------------------------------------------

    def memory_stores(self, tenant_id: str, query: ListQuery) -> Page:
        return self._resources(memory_stores, tenant_id, query)

    def memory_store(self, tenant_id: str, memory_store_id: str) -> dict[str, Any] | None:
        with self._engine.connect() as conn:
            row = conn.execute(
                sa.select(memory_stores.c.doc).where(memory_stores.c.id == memory_store_id, memory_stores.c.tenant_id == tenant_id)
            ).first()
        return None if row is None else dict(row.doc)

    # -- memories ----------------------------------------------------------------------

    def memory(self, tenant_id: str, memory_store_id: str, memory_id: str, view: str) -> dict[str, Any] | None:
        found = self.memories_by_id(tenant_id, memory_store_id, [memory_id], view)
        return found.get(memory_id)

    def memories_by_id(
        self, tenant_id: str, memory_store_id: str, memory_ids: list[str], view: str = "full"
    ) -> dict[str, dict[str, Any]]:
        if not memory_ids:
            return {}
        select = sa.select(memories.c.id, memories.c.doc, memories.c.sealed).where(
            memories.c.tenant_id == tenant_id, memories.c.memory_store_id == memory_store_id, memories.c.id.in_(memory_ids)
        )
        with self._engine.connect() as conn:
            rows = conn.execute(select).all()
        return {row.id: self._shown(row.doc, row.sealed, view) for row in rows}

    def memories(self, tenant_id: str, memory_store_id: str, listing: MemoryListing) -> Page:
        """Memories by path (code point order) under ``path_prefix``; with ``depth`` N, a
        memory more than N segments below the prefix is rolled up into one ``memory_prefix``
        item for its directory N segments down. Each item counts toward ``limit``."""
        prefix = path_key(listing.path_prefix or "/")
        after = _decode_memory_token(listing.page) if listing.page else None
        conditions = [memories.c.tenant_id == tenant_id, memories.c.memory_store_id == memory_store_id]
        if listing.path_prefix:
            conditions.append(memories.c.path_key.startswith(prefix, autoescape=True))
        if after is not None:
            conditions.append(memories.c.path_key > after)
        select = sa.select(memories.c.path_key, memories.c.doc, memories.c.sealed).where(*conditions).order_by(memories.c.path_key)
        base = listing.path_prefix or "/"
        items: list[dict[str, Any]] = []
        last_key: str | None = None
        rollup: str | None = None
        more = False
        with self._engine.connect() as conn:
            result = conn.execution_options(stream_results=True, yield_per=100).execute(select)
            for row in result:
                path = row.doc["path"]
                if rollup is not None and path.startswith(rollup):
                    last_key = row.path_key
                    continue
                if len(items) == listing.limit:
                    more = True
                    break
                rest = path[len(base):].split("/")
                if listing.depth and len(rest) > listing.depth:
                    rollup = base + "/".join(rest[: listing.depth]) + "/"
                    items.append({"type": "memory_prefix", "path": rollup})
                else:
                    rollup = None
                    items.append(self._shown(row.doc, row.sealed, listing.view))
                last_key = row.path_key
        # A page stops at the first row it has no room for: every row of a rolled-up directory
        # before it was consumed, so the next page resumes right after the last row read.
        next_page = _encode("rm_memories", last_key) if more and last_key is not None else None
        return Page(items, next_page, None)

    # -- versions ----------------------------------------------------------------------

    def memory_versions(
        self, tenant_id: str, memory_store_id: str, query: ListQuery, filters: VersionFilters, view: str
    ) -> Page:
        table = memory_versions
        conditions = [table.c.tenant_id == tenant_id, table.c.memory_store_id == memory_store_id]
        for column, value in (
            (table.c.memory_id, filters.memory_id),
            (table.c.operation, filters.operation),
            (table.c.session_id, filters.session_id),
            (table.c.api_key_id, filters.api_key_id),
            (table.c.service_account_id, filters.service_account_id),
        ):
            if value is not None:
                conditions.append(column == value)
        for bound, moment in query.created_at.items():
            conditions.append(TIME_BOUNDS[bound](table.c.created_at, moment))
        page = self._page(table, (table.c.created_at, table.c.id), conditions, query)
        if view != "full":
            return page
        ids = [doc["id"] for doc in page.data]
        with self._engine.connect() as conn:
            sealed = dict(conn.execute(sa.select(table.c.id, table.c.sealed).where(table.c.id.in_(ids))).all()) if ids else {}
        return Page([self._shown(doc, sealed.get(doc["id"]), view) for doc in page.data], page.next_page, page.prev_page)

    def memory_version(self, tenant_id: str, memory_store_id: str, version_id: str, view: str) -> dict[str, Any] | None:
        table = memory_versions
        select = sa.select(table.c.doc, table.c.sealed).where(
            table.c.tenant_id == tenant_id, table.c.memory_store_id == memory_store_id, table.c.id == version_id
        )
        with self._engine.connect() as conn:
            row = conn.execute(select).first()
        return None if row is None else self._shown(row.doc, row.sealed, view)

    def _shown(self, doc: dict[str, Any], sealed: str | None, view: str) -> dict[str, Any]:
        doc = dict(doc)
        doc["content"] = None
        if view == "full" and sealed is not None:
            owner = doc["memory_version_id"] if doc["type"] == "memory" else doc["id"]
            try:
                doc["content"] = self._cipher.open(owner, sealed)
            except SecretUnavailable:
                pass  # redacted, or its store deleted, since the row was read
        return doc
