"""The tables of memory stores, memories and memory versions (their projection:
``projections.memory``).

Rows hold each version's content only sealed (as the event carried it); the reads open it
with the cipher, so a shredded key (a redaction, a deleted store) leaves nothing readable
here either, rebuild or not. ``path_key`` is the path's UTF-8 bytes in hex: it sorts by code
point on every database, whatever its collation, which keeps a directory's memories together
for ``depth`` rollups and pages."""

from __future__ import annotations

import sqlalchemy as sa

from projections import tables

memory_stores = tables.resource_table("memory_stores")

memories = sa.Table(
    "rm_memories",
    tables.metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("stream_id", sa.String(36), nullable=False),  # the store's
    sa.Column("tenant_id", sa.String(64), nullable=False),
    sa.Column("memory_store_id", sa.String(64), nullable=False),
    sa.Column("path_key", sa.String(2048), nullable=False),
    sa.Column("sealed", sa.Text, nullable=True),
    sa.Column("doc", sa.JSON, nullable=False),
    sa.Index("rm_memories_by_path", "memory_store_id", "path_key"),
    sa.Index("rm_memories_by_stream", "stream_id"),
)

memory_versions = sa.Table(
    "rm_memory_versions",
    tables.metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("stream_id", sa.String(36), nullable=False),  # the store's
    sa.Column("tenant_id", sa.String(64), nullable=False),
    sa.Column("memory_store_id", sa.String(64), nullable=False),
    sa.Column("memory_id", sa.String(64), nullable=False),
    sa.Column("operation", sa.String(16), nullable=False),
    sa.Column("session_id", sa.String(64), nullable=True),
    sa.Column("api_key_id", sa.String(64), nullable=True),
    sa.Column("service_account_id", sa.String(64), nullable=True),
    sa.Column("created_at", sa.String(40), nullable=False),
    sa.Column("sealed", sa.Text, nullable=True),
    sa.Column("doc", sa.JSON, nullable=False),
    sa.Index("rm_memory_versions_by_store", "memory_store_id", "created_at", "id"),
    sa.Index("rm_memory_versions_by_stream", "stream_id"),
)
