"""The tables of tasks, boards and departments (their projections: ``projections.tasks``)."""

from __future__ import annotations

import sqlalchemy as sa

from projections import tables

tasks = tables.resource_table(
    "tasks",
    sa.Column("board_id", sa.String(64), nullable=True),
    sa.Column("assigned_agent_id", sa.String(64), nullable=True),
    sa.Column("parent_task_id", sa.String(64), nullable=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("priority", sa.String(16), nullable=False),
    sa.Column("due_at", sa.String(40), nullable=True),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("description", sa.Text, nullable=True),
)
task_tags = sa.Table(
    "rm_task_tags",
    tables.metadata,
    sa.Column("stream_id", sa.String(36), primary_key=True),  # the task's
    sa.Column("tag", sa.String(128), primary_key=True),
    sa.Index("rm_task_tags_by_tag", "tag"),
)
# Agents' names as task search reads them (``q`` matches the assignee's name).
task_agent_names = sa.Table(
    "rm_task_agent_names",
    tables.metadata,
    sa.Column("stream_id", sa.String(36), primary_key=True),  # the agent's
    sa.Column("agent_id", sa.String(64), nullable=False, unique=True),
    sa.Column("tenant_id", sa.String(64), nullable=False),
    sa.Column("name", sa.Text, nullable=False),
)
# A task's comments, oldest first (``created_at`` then ``id``); read after the task was found.
task_comments = sa.Table(
    "rm_task_comments",
    tables.metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("task_stream", sa.String(36), nullable=False),
    sa.Column("created_at", sa.String(40), nullable=False),
    sa.Column("doc", sa.JSON, nullable=False),
    sa.Index("rm_task_comments_by_task", "task_stream", "created_at", "id"),
)
departments = tables.resource_table("departments")
boards = tables.resource_table("boards", sa.Column("department_id", sa.String(64), nullable=True))
