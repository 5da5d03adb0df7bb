"""The dashboard's numbers, counted from the list read models (agents, tasks, sessions)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from domain.tasks import STATUSES as TASK_STATUSES
from projections import tables
from projections.tasks import tasks

SESSION_STATUSES = ("idle", "running", "rescheduling", "terminated")
COMPLETED = ("done", "approved")


class DashboardReadModels:
    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine

    def stats(self, tenant_id: str) -> dict[str, Any]:
        """Agents (every one, and the live ones), tasks by status (archived ones included,
        also counted apart; deleted ones are gone), the completion rate — done or approved over
        every task not cancelled, null with none — and sessions by status (deleted ones left out)."""
        agents, sessions = tables.agents, tables.sessions
        with self._engine.connect() as conn:
            agent_total, agent_live = conn.execute(
                sa.select(sa.func.count(), sa.func.count().filter(agents.c.archived.is_(False))).where(
                    agents.c.tenant_id == tenant_id
                )
            ).one()
            task_rows = conn.execute(
                sa.select(tasks.c.status, sa.func.count(), sa.func.count().filter(tasks.c.archived.is_(True)))
                .where(tasks.c.tenant_id == tenant_id)
                .group_by(tasks.c.status)
            ).all()
            session_rows = conn.execute(
                sa.select(sessions.c.status, sa.func.count())
                .where(sessions.c.tenant_id == tenant_id, sessions.c.deleted.is_(False))
                .group_by(sessions.c.status)
            ).all()
        task_counts = {status: 0 for status in TASK_STATUSES}
        archived = 0
        for status, count, archived_count in task_rows:
            task_counts[status] = task_counts.get(status, 0) + int(count)
            archived += int(archived_count)
        task_total = sum(task_counts.values())
        counted = task_total - task_counts["cancelled"]
        completed = sum(task_counts[status] for status in COMPLETED)
        session_counts = {status: 0 for status in SESSION_STATUSES}
        for status, count in session_rows:
            session_counts[status] = session_counts.get(status, 0) + int(count)
        return {
            "type": "dashboard_stats",
            "agents": {"total": int(agent_total), "live": int(agent_live), "archived": int(agent_total) - int(agent_live)},
            "tasks": {
                "total": task_total,
                "by_status": task_counts,
                "archived": archived,
                "completed": completed,
                "completion_rate": round(completed / counted, 4) if counted else None,
            },
            "sessions": {
                "total": sum(session_counts.values()),
                "by_status": session_counts,
                "running": session_counts["running"],
            },
        }
