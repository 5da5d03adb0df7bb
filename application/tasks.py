"""Use cases of tasks: create, read, edit (optimistically), file, assign, archive, delete."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from application.agents import AgentService
from application.boards import BoardService
from application.commands import Commands, Kind, Written
from application.errors import Invalid, NotFound
from application.ids import new_id
from application.ports import EventStore
from application.task_views import TASK_DEFAULTS, task_view
from application.tenancy import Principal
from application.views import iso
from domain.tasks import SETTABLE_STATUSES, Task, parent_chain_has


def render(task: Task) -> dict[str, Any]:
    return task_view(
        task.task_id, task.fields, task.assigned_agent_id, task.status, task.version, task.created_on, task.modified_on, task.archived_at
    )


TASKS: Kind[Task] = Kind(Task, "task", "task", gone=lambda task: task.deleted)


def _normalized(fields: dict[str, Any]) -> dict[str, Any]:
    """Due dates as the fixed-width UTC strings lists compare (a naive one is UTC)."""
    due = fields.get("due_date")
    if isinstance(due, datetime):
        fields = {**fields, "due_date": iso(due if due.tzinfo else due.replace(tzinfo=UTC))}
    return fields


class TaskService:
    def __init__(self, store: EventStore, agents: AgentService, boards: BoardService) -> None:
        self._commands = Commands(store, TASKS, render)
        self._agents = agents
        self._boards = boards

    def create(self, who: Principal, fields: dict[str, Any]) -> Written:
        fields = _normalized(fields)
        agent_id = fields.pop("assigned_agent_id", None)
        status = fields.pop("status", None) or "todo"
        if status not in SETTABLE_STATUSES:
            raise Invalid(f"a task starts as one of {', '.join(SETTABLE_STATUSES)}")
        self._check_references(who, fields, agent_id)
        if fields.get("parent_task_id"):
            self._commands.load(who, fields["parent_task_id"])
        task = Task(
            task_id=new_id("task"),
            tenant_id=who.tenant_id,
            fields={**TASK_DEFAULTS, **{name: value for name, value in fields.items() if value is not None}},
            assigned_agent_id=agent_id,
            status=status,
        )
        return self._commands.create(task)

    def retrieve(self, who: Principal, task_id: str) -> dict[str, Any]:
        return self._commands.view(who, task_id)

    def update(self, who: Principal, task_id: str, changes: dict[str, Any], expected_version: int | None) -> Written:
        changes = _normalized(changes)
        if changes.get("tags") is None and "tags" in changes:
            changes["tags"] = []
        if changes.get("metadata") is None and "metadata" in changes:
            changes["metadata"] = {}
        self._check_references(who, changes, changes.get("assigned_agent_id"))
        parent = changes.get("parent_task_id")
        if parent:
            self._check_parent(who, task_id, parent)
        return self._commands.change(who, task_id, lambda task: task.update(changes, expected_version))

    def archive(self, who: Principal, task_id: str) -> Written:
        return self._commands.change(who, task_id, Task.archive)

    def delete(self, who: Principal, task_id: str) -> Written:
        return self._commands.change(who, task_id, Task.delete, render=lambda task: {"id": task.task_id, "type": "task_deleted"})

    def load(self, who: Principal, task_id: str) -> Task:
        return self._commands.load(who, task_id)

    def _check_references(self, who: Principal, fields: dict[str, Any], agent_id: str | None) -> None:
        if fields.get("board_id"):
            self._boards.check_live(who, fields["board_id"])
        if agent_id:
            self._agents.check_live(who, agent_id)

    def _check_parent(self, who: Principal, task_id: str, parent_id: str) -> None:
        """The parent exists and is not the task itself or one of its sub-tasks."""
        self._commands.load(who, parent_id)

        def parent_of(current: str) -> str | None:
            try:
                return self._commands.load(who, current).fields.get("parent_task_id")
            except NotFound:
                return None

        if parent_chain_has(parent_id, task_id, parent_of):
            raise Invalid(f"task {parent_id} is {task_id} itself or one of its sub-tasks: a task cannot be its own ancestor")
