"""Read models of knowledge bases and documents, and the chunks keyword search reads.

A document's status on the read side says how far the indexes have come: ``pending`` until
this projection has its chunks, ``indexing`` while the vector projection has not yet passed
its ``Chunked`` event, ``ready`` after; ``failed`` is the log's own word. The vector
projection's position is read from its row in the positions table, so no index calls another.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from application.knowledge import knowledge_base_view
from application.views import iso
from domain.knowledge import Document, KnowledgeBase
from projections.keywords import bag, bm25
from projections.knowledge_tables import knowledge_bases, knowledge_chunks, knowledge_documents, knowledge_terms
from projections.queries import ListQuery, Page, ReadModels
from projections.resources import Handler, ResourceProjection, Row


class KnowledgeBasesProjection(ResourceProjection):
    name = "knowledge_bases"
    table = knowledge_bases
    tables = (knowledge_bases,)
    created_event = KnowledgeBase.Created

    def handlers(self) -> dict[type, Handler]:
        return {KnowledgeBase.Deleted: self._deleted}

    def created(self, conn: sa.Connection, event: Any) -> Row:
        doc = knowledge_base_view(
            event.knowledge_base_id, event.name, event.description, event.metadata, event.timestamp
        )
        return {"id": event.knowledge_base_id, "doc": doc}

    def _deleted(self, conn: sa.Connection, event: Any) -> None:
        conn.execute(sa.delete(self.table).where(self.table.c.stream_id == str(event.originator_id)))


class KnowledgeDocumentsProjection(ResourceProjection):
    """Documents and their chunks; a base's deletion takes both with it."""

    name = "knowledge_documents"
    table = knowledge_documents
    tables = (knowledge_documents, knowledge_chunks, knowledge_terms)
    created_event = Document.Added
    _position: int | None = None

    def handlers(self) -> dict[type, Handler]:
        return {
            Document.ChunksRecorded: self._chunks,
            Document.Chunked: self._chunked,
            Document.Failed: self._failed,
            Document.Deleted: self._deleted,
            KnowledgeBase.Deleted: self._base_deleted,
        }

    def apply_at(self, conn: sa.Connection, event: Any, position: int) -> None:
        self._position = position
        self.apply(conn, event)

    def created(self, conn: sa.Connection, event: Any) -> Row:
        doc = {
            "type": "knowledge_document",
            "id": event.document_id,
            "knowledge_base_id": event.knowledge_base_id,
            "filename": event.filename,
            "title": event.title,
            "media_type": event.media_type,
            "size_bytes": event.size_bytes,
            "status": "pending",
            "status_reason": None,
            "chunk_count": 0,
            "characters": 0,
            "page_count": None,
            "created_at": iso(event.timestamp),
        }
        return {"id": event.document_id, "doc": doc, "knowledge_base_id": event.knowledge_base_id, "status": "pending"}

    def _row(self, conn: sa.Connection, event: Any) -> Any:
        return conn.execute(
            sa.select(self.table.c.id, self.table.c.tenant_id, self.table.c.knowledge_base_id, self.table.c.doc).where(
                self.table.c.stream_id == str(event.originator_id)
            )
        ).first()

    def _chunks(self, conn: sa.Connection, event: Any) -> None:
        row = self._row(conn, event)
        if row is None or not event.chunks:
            return
        chunks, postings = [], []
        for chunk in event.chunks:
            # The title and heading say what a passage is about: they are its words too.
            counts = bag(" ".join(filter(None, (row.doc["title"], chunk.get("heading"), chunk["text"]))))
            chunks.append(
                {
                    "document_id": row.id,
                    "chunk_index": chunk["index"],
                    "tenant_id": row.tenant_id,
                    "knowledge_base_id": row.knowledge_base_id,
                    "start": chunk["start"],
                    "end": chunk["end"],
                    "page": chunk.get("page"),
                    "heading": chunk.get("heading"),
                    "text": chunk["text"],
                    "length": sum(counts.values()),
                }
            )
            postings += [
                {
                    "document_id": row.id,
                    "chunk_index": chunk["index"],
                    "term": term,
                    "knowledge_base_id": row.knowledge_base_id,
                    "count": count,
                }
                for term, count in counts.items()
            ]
        conn.execute(sa.insert(knowledge_chunks), chunks)
        if postings:
            conn.execute(sa.insert(knowledge_terms), postings)

    def _chunked(self, conn: sa.Connection, event: Any) -> None:
        changes = {
            "status": "indexing",
            "chunk_count": event.chunk_count,
            "characters": event.characters,
            "page_count": event.page_count,
        }
        self.patch(conn, event, lambda doc: doc | changes, status="indexing", chunked_at=self._position)

    def _failed(self, conn: sa.Connection, event: Any) -> None:
        self.patch(conn, event, lambda doc: doc | {"status": "failed", "status_reason": event.reason}, status="failed")

    def _deleted(self, conn: sa.Connection, event: Any) -> None:
        row = self._row(conn, event)
        if row is None:
            return
        conn.execute(sa.delete(knowledge_terms).where(knowledge_terms.c.document_id == row.id))
        conn.execute(sa.delete(knowledge_chunks).where(knowledge_chunks.c.document_id == row.id))
        conn.execute(sa.delete(self.table).where(self.table.c.id == row.id))

    def _base_deleted(self, conn: sa.Connection, event: Any) -> None:
        # From the event, not the bases' row: that projection may have deleted it already.
        base_id = event.context["knowledge_base_id"]
        conn.execute(sa.delete(knowledge_terms).where(knowledge_terms.c.knowledge_base_id == base_id))
        conn.execute(sa.delete(knowledge_chunks).where(knowledge_chunks.c.knowledge_base_id == base_id))
        conn.execute(sa.delete(self.table).where(self.table.c.knowledge_base_id == base_id))


Key = tuple[str, int]  # (document id, chunk index)


@dataclass(frozen=True)
class ChunkRow:
    document_id: str
    chunk_index: int
    start: int
    end: int
    page: int | None
    heading: str | None
    text: str
    title: str
    filename: str | None


class KnowledgeReads(ReadModels):
    """Lists, document statuses and the chunks search ranks. ``vector_position`` tells how
    far the projection that embeds chunks has come (None: there is none, and a document is
    ready once its chunks are in the keyword index)."""

    def __init__(self, engine: sa.Engine, vector_position: Callable[[], int] | None) -> None:
        super().__init__(engine)
        self._vector_position = vector_position

    def bases(self, tenant_id: str, query: ListQuery) -> Page:
        return self._resources(knowledge_bases, tenant_id, query)

    def documents(self, tenant_id: str, knowledge_base_id: str, query: ListQuery) -> Page:
        table = knowledge_documents
        page = self._resources(table, tenant_id, query, table.c.knowledge_base_id == knowledge_base_id)
        return Page(self._with_status(page.data), page.next_page, page.prev_page)

    def document(self, document_id: str) -> dict[str, Any] | None:
        """The document's row (the caller checked it is theirs), or None before it is projected."""
        with self._engine.connect() as conn:
            row = conn.execute(sa.select(knowledge_documents.c.doc).where(knowledge_documents.c.id == document_id)).first()
        return self._with_status([row.doc])[0] if row is not None else None

    def _with_status(self, docs: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
        docs = [dict(doc) for doc in docs]
        indexing = [doc["id"] for doc in docs if doc["status"] == "indexing"]
        if not indexing:
            return docs
        reached = self._vector_position() if self._vector_position is not None else None
        with self._engine.connect() as conn:
            chunked = dict(
                conn.execute(
                    sa.select(knowledge_documents.c.id, knowledge_documents.c.chunked_at).where(
                        knowledge_documents.c.id.in_(indexing)
                    )
                ).all()
            )
        for doc in docs:
            at = chunked.get(doc["id"])
            if doc["status"] == "indexing" and (reached is None or (at is not None and reached >= at)):
                doc["status"] = "ready"
        return docs

    def keyword_ranking(self, knowledge_base_id: str, wanted: set[str], depth: int) -> list[Key]:
        """The base's best ``depth`` chunks for these terms by BM25, read from the postings of
        these terms only (the caller checked the base is theirs)."""
        if not wanted:
            return []
        chunks, documents, postings = knowledge_chunks, knowledge_documents, knowledge_terms
        searchable = sa.and_(documents.c.id == chunks.c.document_id, documents.c.status == "indexing")
        with self._engine.connect() as conn:
            total, average = conn.execute(
                sa.select(sa.func.count(), sa.func.avg(chunks.c.length))
                .select_from(chunks.join(documents, searchable))
                .where(chunks.c.knowledge_base_id == knowledge_base_id)
            ).one()
            rows = conn.execute(
                sa.select(
                    postings.c.document_id,
                    postings.c.chunk_index,
                    postings.c.term,
                    postings.c.count.label("occurrences"),
                    chunks.c.length,
                )
                .select_from(
                    postings.join(
                        chunks,
                        sa.and_(
                            chunks.c.document_id == postings.c.document_id,
                            chunks.c.chunk_index == postings.c.chunk_index,
                        ),
                    ).join(documents, searchable)
                )
                .where(postings.c.knowledge_base_id == knowledge_base_id, postings.c.term.in_(sorted(wanted)))
            ).all()
        lengths = {(row.document_id, row.chunk_index): row.length for row in rows}
        scored = bm25(
            (((row.document_id, row.chunk_index), row.term, row.occurrences) for row in rows),
            lengths,
            int(total or 0),
            float(average or 1.0),
        )
        return [key for key, _ in scored[:depth]]

    def chunks_at(self, knowledge_base_id: str, keys: Iterable[Key]) -> dict[Key, ChunkRow]:
        """The chunks of these keys still searchable in the base (a deleted document's are not)."""
        wanted = set(keys)
        if not wanted:
            return {}
        chunks, documents = knowledge_chunks, knowledge_documents
        select = (
            sa.select(
                chunks.c.document_id,
                chunks.c.chunk_index,
                chunks.c.start,
                chunks.c.end,
                chunks.c.page,
                chunks.c.heading,
                chunks.c.text,
                documents.c.doc,
            )
            .join(documents, documents.c.id == chunks.c.document_id)
            .where(
                chunks.c.knowledge_base_id == knowledge_base_id,
                documents.c.status == "indexing",
                sa.tuple_(chunks.c.document_id, chunks.c.chunk_index).in_(sorted(wanted)),
            )
        )
        with self._engine.connect() as conn:
            return {
                (row.document_id, row.chunk_index): ChunkRow(
                    row.document_id, row.chunk_index, row.start, row.end, row.page, row.heading, row.text,
                    row.doc["title"], row.doc["filename"],
                )  # fmt: skip
                for row in conn.execute(select)
            }
