"""How tasks, boards and departments look on the wire: one function each, used by the
services (from an aggregate) and by the projections (from events) alike."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from application.views import iso

TASK_DEFAULTS: dict[str, Any] = {
    "description": None,
    "board_id": None,
    "priority": "medium",
    "due_date": None,
    "tags": [],
    "requires_approval": False,
    "parent_task_id": None,
    "metadata": {},
}

NO_RUN: dict[str, Any] = {"session_id": None, "environment_id": None, "result": None}


def task_view(
    task_id: str,
    fields: dict[str, Any],
    assigned_agent_id: str | None,
    status: str,
    version: int,
    created_at: datetime | str,
    updated_at: datetime | str,
    archived_at: datetime | str | None,
    run: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """``run``: the last execution's ``session_id``, ``environment_id`` and ``result``."""
    return {
        "type": "task",
        "id": task_id,
        **TASK_DEFAULTS,
        **fields,
        "assigned_agent_id": assigned_agent_id,
        "status": status,
        **NO_RUN,
        **(run or {}),
        "version": version,
        "created_at": _stamp(created_at),
        "updated_at": _stamp(updated_at),
        "archived_at": _stamp(archived_at),
    }


def definition_view(
    kind: str, public_id: str, definition: dict[str, Any], created_at: datetime, updated_at: datetime, archived_at: datetime | None
) -> dict[str, Any]:
    """A board or a department: its kind, id, definition and stamps."""
    return {
        "type": kind,
        "id": public_id,
        **definition,
        "metadata": definition.get("metadata") or {},
        "created_at": iso(created_at),
        "updated_at": iso(updated_at),
        "archived_at": iso(archived_at),
    }


def _stamp(moment: datetime | str | None) -> str | None:
    return moment if isinstance(moment, str) or moment is None else iso(moment)


def comment_view(
    task_id: str,
    comment_id: str,
    author: dict[str, Any],
    content: str,
    mentions: list[dict[str, Any]],
    reply_to: str | None,
    created_at: datetime | str | None,
) -> dict[str, Any]:
    return {
        "type": "task_comment",
        "id": comment_id,
        "task_id": task_id,
        "author": author,
        "content": content,
        "mentions": mentions,
        "reply_to": reply_to,
        "created_at": _stamp(created_at),
    }
