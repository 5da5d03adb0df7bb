"""Read-model tables. Every projection records its position in ``projection_positions`` in the
same transaction as its rows, which is what makes it exactly-once."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

metadata = sa.MetaData()

positions = sa.Table(
    "projection_positions",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("position", sa.BigInteger, nullable=False),
)


def resource_table(name: str, *extra: sa.Column[Any]) -> sa.Table:
    """One row per aggregate: its wire ``doc`` plus the columns lists filter and page by."""
    return sa.Table(
        f"rm_{name}",
        metadata,
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("stream_id", sa.String(36), nullable=False, unique=True),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        *extra,
        sa.Column("created_at", sa.String(40), nullable=False),
        sa.Column("archived", sa.Boolean, nullable=False, default=False),
        sa.Column("doc", sa.JSON, nullable=False),
        sa.Index(f"rm_{name}_by_tenant", "tenant_id", "created_at", "id"),
    )


agents = resource_table("agents")

agent_versions = sa.Table(
    "rm_agent_versions",
    metadata,
    sa.Column("agent_id", sa.String(64), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("tenant_id", sa.String(64), nullable=False),
    sa.Column("doc", sa.JSON, nullable=False),
)

environments = resource_table("environments")

sessions = resource_table(
    "sessions",
    sa.Column("agent_id", sa.String(64), nullable=False),
    sa.Column("agent_version", sa.Integer, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("deleted", sa.Boolean, nullable=False, default=False),
)

model_cards = resource_table("model_cards", sa.Column("provider", sa.String(32), nullable=False))

# Revoked keys stay (``archived``), so ``include_archived`` lists them with their ``revoked_at``.
environment_keys = resource_table("environment_keys", sa.Column("environment_id", sa.String(64), nullable=False))

# Work items of environments' queues: polls look for live ones by environment, oldest first.
work_items = resource_table(
    "work_items",
    sa.Column("environment_id", sa.String(64), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("claim", sa.Integer, nullable=False, default=0),
    sa.Column("hosting", sa.String(16), nullable=False, default="self_hosted"),
)
sa.Index("rm_work_items_live", work_items.c.environment_id, work_items.c.state, work_items.c.created_at)

# One row per resource mounted into a session, in the order attached (``position``). No
# tenant column: the list is read only after the session itself was found to be the
# caller's (its own stream decides, as for every read of a session).
session_resources = sa.Table(
    "rm_session_resources",
    metadata,
    sa.Column("stream_id", sa.String(36), primary_key=True),  # the session's
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("doc", sa.JSON, nullable=False),
    sa.Index("rm_session_resources_by_position", "stream_id", "position", unique=True),
)

vaults = resource_table("vaults")

# A vault's credentials live in the vault's stream, so ``stream_id`` (the vault's) repeats.
vault_credentials = sa.Table(
    "rm_vault_credentials",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("stream_id", sa.String(36), nullable=False),
    sa.Column("tenant_id", sa.String(64), nullable=False),
    sa.Column("vault_id", sa.String(64), nullable=False),
    sa.Column("created_at", sa.String(40), nullable=False),
    sa.Column("archived", sa.Boolean, nullable=False, default=False),
    sa.Column("doc", sa.JSON, nullable=False),
    sa.Index("rm_vault_credentials_by_vault", "vault_id", "created_at", "id"),
    sa.Index("rm_vault_credentials_by_stream", "stream_id"),
)

# Workspaces: ``tenant_id`` is the workspace's own id (a workspace is its own tenant).
workspaces = resource_table("workspaces")

# API keys by key id, for /v1/organizations/api_keys: ``stream_id`` is the key's stream (a
# UUID derived from its hash, which is what lets a key id find its record); the hash itself
# and the key are never here. ``tenant_id`` is the key's workspace.
api_keys = resource_table(
    "api_keys",
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("created_by", sa.String(64), nullable=True),
)
