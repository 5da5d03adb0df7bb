"""The tables of skills and their versions (their projection: ``projections.skills``)."""

from __future__ import annotations

import sqlalchemy as sa

from projections import tables

skills = tables.resource_table("skills", sa.Column("source", sa.String(32), nullable=False))
skill_versions = sa.Table(
    "rm_skill_versions",
    tables.metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("stream_id", sa.String(36), nullable=False),  # the skill's
    sa.Column("tenant_id", sa.String(64), nullable=False),
    sa.Column("skill_id", sa.String(64), nullable=False),
    sa.Column("created_at", sa.String(40), nullable=False),
    sa.Column("archived", sa.Boolean, nullable=False, default=False),
    sa.Column("doc", sa.JSON, nullable=False),
    sa.Index("rm_skill_versions_by_skill", "skill_id", "created_at", "id"),
    sa.Index("rm_skill_versions_by_stream", "stream_id"),
)
