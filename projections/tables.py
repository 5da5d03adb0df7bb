"""Read-model tables. Every projection records its position in ``projection_positions`` in the
same transaction as its rows, which is what makes it exactly-once."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

positions = sa.Table(
    "projection_positions",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("position", sa.BigInteger, nullable=False),
)

agents = sa.Table(
    "rm_agents",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("stream_id", sa.String(36), nullable=False, unique=True),
    sa.Column("tenant_id", sa.String(64), nullable=False),
    sa.Column("created_at", sa.String(40), nullable=False),
    sa.Column("archived", sa.Boolean, nullable=False, default=False),
    sa.Column("doc", sa.JSON, nullable=False),
    sa.Index("rm_agents_by_tenant", "tenant_id", "created_at", "id"),
)

agent_versions = sa.Table(
    "rm_agent_versions",
    metadata,
    sa.Column("agent_id", sa.String(64), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("tenant_id", sa.String(64), nullable=False),
    sa.Column("doc", sa.JSON, nullable=False),
)

environments = sa.Table(
    "rm_environments",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("stream_id", sa.String(36), nullable=False, unique=True),
    sa.Column("tenant_id", sa.String(64), nullable=False),
    sa.Column("created_at", sa.String(40), nullable=False),
    sa.Column("archived", sa.Boolean, nullable=False, default=False),
    sa.Column("doc", sa.JSON, nullable=False),
    sa.Index("rm_environments_by_tenant", "tenant_id", "created_at", "id"),
)

sessions = sa.Table(
    "rm_sessions",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("stream_id", sa.String(36), nullable=False, unique=True),
    sa.Column("tenant_id", sa.String(64), nullable=False),
    sa.Column("agent_id", sa.String(64), nullable=False),
    sa.Column("agent_version", sa.Integer, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("created_at", sa.String(40), nullable=False),
    sa.Column("archived", sa.Boolean, nullable=False, default=False),
    sa.Column("deleted", sa.Boolean, nullable=False, default=False),
    sa.Column("doc", sa.JSON, nullable=False),
    sa.Index("rm_sessions_by_tenant", "tenant_id", "created_at", "id"),
)
