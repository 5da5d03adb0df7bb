"""Keyword sources for global search over the list read models (agents, sessions, tasks).

A match in the name or title outranks one in the description; an exact name outranks a
prefix. Case-insensitive ``LIKE`` with the query's own ``%``/``_`` escaped: the lists are per
tenant and small, and this keeps SQLite and PostgreSQL answering the same."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from application.global_search import SearchHit, snippet
from application.ports import SemanticSearch, VectorHit
from projections import tables, task_tables
from projections.knowledge import KnowledgeReads
from projections.knowledge_vectors import COLLECTION as KNOWLEDGE
from projections.memory import MemoryReadModels

MEMORIES = "memories"  # application.memory.MEMORIES_COLLECTION (projections do not import services)


def _like(query: str) -> str:
    return "%" + query.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _rank(title: str, body: str, query: str) -> float:
    title, query = title.lower(), query.lower()
    if title == query:
        return 1.0
    if title.startswith(query):
        return 0.8
    if query in title:
        return 0.6
    return 0.4 if query in body.lower() else 0.2


class KeywordSearch:
    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine

    def _rows(self, table: sa.Table, tenant_ids: Sequence[str], fields: Sequence[Any], query: str, limit: int, *extra: Any) -> list[Any]:
        pattern = _like(query)
        matches = [sa.func.lower(sa.func.coalesce(column, "")).like(pattern, escape="\\") for column in fields]
        select = (
            sa.select(table.c.id, table.c.doc)
            .where(table.c.tenant_id.in_(list(tenant_ids)), table.c.archived.is_(False), sa.or_(*matches), *extra)
            .order_by(table.c.created_at.desc(), table.c.id.desc())
            # Over-fetch: the rank below reorders, and the newest matches are the likeliest wanted.
            .limit(limit * 4)
        )
        with self._engine.connect() as conn:
            return list(conn.execute(select))

    @staticmethod
    def _best(hits: list[SearchHit], limit: int) -> list[SearchHit]:
        return sorted(hits, key=lambda hit: -hit.score)[:limit]

    def agents(self, tenant_ids: Sequence[str], query: str, limit: int) -> list[SearchHit]:
        table = tables.agents
        name, description = table.c.doc["name"].as_string(), table.c.doc["description"].as_string()
        hits = []
        for row in self._rows(table, tenant_ids, (name, description, table.c.id), query, limit):
            doc = row.doc
            title, body = doc.get("name") or "", doc.get("description") or ""
            hits.append(SearchHit("agent", row.id, title, snippet(body or title, query), _rank(title, body, query), doc))
        return self._best(hits, limit)

    def sessions(self, tenant_ids: Sequence[str], query: str, limit: int) -> list[SearchHit]:
        table = tables.sessions
        title_field = table.c.doc["title"].as_string()
        hits = []
        for row in self._rows(table, tenant_ids, (title_field, table.c.id), query, limit, table.c.deleted.is_(False)):
            doc = row.doc
            title = doc.get("title") or ""
            hits.append(SearchHit("session", row.id, title or row.id, snippet(title, query), _rank(title, row.id, query), doc))
        return self._best(hits, limit)

    def tasks(self, tenant_ids: Sequence[str], query: str, limit: int) -> list[SearchHit]:
        table = task_tables.tasks
        hits = []
        for row in self._rows(table, tenant_ids, (table.c.title, table.c.description, table.c.id), query, limit):
            doc = row.doc
            title, body = doc.get("title") or "", doc.get("description") or ""
            hits.append(SearchHit("task", row.id, title, snippet(body or title, query), _rank(title, body, query), doc))
        return self._best(hits, limit)


class MeaningSearch:
    """Global search's sources by meaning: knowledge chunks and memories of the caller's
    workspace, from the vector index, answered from their read models (a hit whose chunk or
    memory is gone since it was indexed is dropped). One hit per document or memory: its
    best part stands for it."""

    def __init__(self, semantic: SemanticSearch, knowledge: KnowledgeReads, memories: MemoryReadModels) -> None:
        self._semantic = semantic
        self._knowledge = knowledge
        self._memories = memories

    def _hits(self, collection: str, tenant_ids: Sequence[str], query: str, limit: int) -> list[VectorHit]:
        found: list[VectorHit] = []
        for tenant_id in tenant_ids:
            found += self._semantic.search(collection, query, limit * 4, {"tenant_id": tenant_id})
        return sorted(found, key=lambda hit: -hit.score)

    def knowledge(self, tenant_ids: Sequence[str], query: str, limit: int) -> list[SearchHit]:
        by_base: dict[str, list[tuple[str, int]]] = {}
        hits = self._hits(KNOWLEDGE, tenant_ids, query, limit)
        for hit in hits:
            key = (str(hit.payload.get("document_id")), int(hit.payload.get("chunk_index", -1)))
            by_base.setdefault(str(hit.payload.get("knowledge_base_id")), []).append(key)
        chunks = {key: chunk for base, keys in by_base.items() for key, chunk in self._knowledge.chunks_at(base, keys).items()}
        results: dict[str, SearchHit] = {}
        for hit in hits:
            key = (str(hit.payload.get("document_id")), int(hit.payload.get("chunk_index", -1)))
            chunk = chunks.get(key)
            if chunk is None or chunk.document_id in results:
                continue
            citation = {
                "knowledge_base_id": hit.payload.get("knowledge_base_id"),
                "document_id": chunk.document_id, "title": chunk.title, "filename": chunk.filename,
                "chunk_index": chunk.chunk_index, "start": chunk.start, "end": chunk.end,
                "page": chunk.page, "heading": chunk.heading,
            }  # fmt: skip
            results[chunk.document_id] = SearchHit(
                "knowledge", chunk.document_id, chunk.title, snippet(chunk.text, query), hit.score, citation
            )
        return list(results.values())[:limit]

    def memories(self, tenant_ids: Sequence[str], query: str, limit: int) -> list[SearchHit]:
        hits = self._hits(MEMORIES, tenant_ids, query, limit)
        wanted: dict[tuple[str, str], list[str]] = {}
        for hit in hits:
            store = (str(hit.payload.get("tenant_id")), str(hit.payload.get("memory_store_id")))
            wanted.setdefault(store, []).append(str(hit.payload.get("memory_id")))
        found: dict[str, dict[str, Any]] = {}
        for (tenant_id, store_id), ids in wanted.items():
            found.update(self._memories.memories_by_id(tenant_id, store_id, ids))
        results: dict[str, SearchHit] = {}
        for hit in hits:
            memory = found.get(str(hit.payload.get("memory_id")))
            if memory is None or memory["id"] in results:
                continue
            content = memory.get("content") or ""
            results[memory["id"]] = SearchHit("memory", memory["id"], memory["path"], snippet(content, query), hit.score, memory)
        return list(results.values())[:limit]
