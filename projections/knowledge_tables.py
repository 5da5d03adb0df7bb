"""The tables of knowledge bases, their documents and the documents' chunks (their
projection: ``projections.knowledge``)."""

from __future__ import annotations

import sqlalchemy as sa

from projections import tables

knowledge_bases = tables.resource_table("knowledge_bases")
knowledge_documents = tables.resource_table(
    "knowledge_documents",
    sa.Column("knowledge_base_id", sa.String(64), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    # The global position of the document's ``Chunked`` event: once the vector projection is
    # past it, every chunk is embedded and the document is ready.
    sa.Column("chunked_at", sa.BigInteger, nullable=True),
)
sa.Index("rm_knowledge_documents_by_base", knowledge_documents.c.knowledge_base_id, knowledge_documents.c.created_at)
# The keyword side of search reads a base's chunks from here.
knowledge_chunks = sa.Table(
    "rm_knowledge_chunks",
    tables.metadata,
    sa.Column("document_id", sa.String(64), primary_key=True),
    sa.Column("chunk_index", sa.Integer, primary_key=True),
    sa.Column("tenant_id", sa.String(64), nullable=False),
    sa.Column("knowledge_base_id", sa.String(64), nullable=False),
    sa.Column("start", sa.Integer, nullable=False),
    sa.Column("end", sa.Integer, nullable=False),
    sa.Column("page", sa.Integer, nullable=True),
    sa.Column("heading", sa.Text, nullable=True),
    sa.Column("text", sa.Text, nullable=False),
    # How many index terms the chunk has (BM25's document length).
    sa.Column("length", sa.Integer, nullable=False),
    sa.Index("rm_knowledge_chunks_by_base", "tenant_id", "knowledge_base_id"),
)
# The keyword index: one posting per (chunk, term), so a query reads only the postings of its
# own terms, however large the base.
knowledge_terms = sa.Table(
    "rm_knowledge_terms",
    tables.metadata,
    sa.Column("document_id", sa.String(64), primary_key=True),
    sa.Column("chunk_index", sa.Integer, primary_key=True),
    sa.Column("term", sa.String(64), primary_key=True),
    sa.Column("knowledge_base_id", sa.String(64), nullable=False),
    sa.Column("count", sa.Integer, nullable=False),
    sa.Index("rm_knowledge_terms_by_term", "knowledge_base_id", "term"),
)
