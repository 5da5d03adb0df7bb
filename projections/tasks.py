"""Read models of tasks, boards and departments, and the task list's filters and search.

A task row keeps the columns its list filters by (board, status, assignee, due date, parent)
and the text ``q`` searches (title, description); its tags have a table of their own, and
the names of the workspace's agents a third, kept by this same projection from the agents'
events so a search by agent name never waits on another projection.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from application.task_views import comment_view, definition_view, task_view
from application.views import iso
from domain.agents import Agent
from domain.boards import Board, Department
from domain.tasks import Task
from projections.bulk import insert_rows
from projections.resources import Handler, ResourceProjection, Row
from projections.task_tables import boards, departments, task_agent_names, task_comments, task_tags, tasks

# The task fields that are also columns.
COLUMNS = {"board_id": "board_id", "parent_task_id": "parent_task_id", "priority": "priority", "due_date": "due_at", "title": "title", "description": "description"}


class TasksProjection(ResourceProjection):
    name = "tasks"
    table = tasks
    tables = (tasks, task_tags, task_agent_names, task_comments)
    created_event = Task.Created

    def handlers(self) -> dict[type, Handler]:
        return {
            Task.Updated: self._updated,
            Task.Assigned: lambda conn, event: self._changed(
                conn, event, {"assigned_agent_id": event.agent_id}, assigned_agent_id=event.agent_id
            ),
            Task.StatusChanged: lambda conn, event: self._changed(conn, event, {"status": event.status}, status=event.status),
            Task.Archived: self._archived,
            Task.Executed: lambda conn, event: self._changed(
                conn, event, {"session_id": event.session_id, "environment_id": event.environment_id}
            ),
            Task.ResultRecorded: lambda conn, event: self._changed(conn, event, {"result": event.result}),
            Task.Commented: self._commented,
            Task.ReplyRequested: lambda conn, event: self._changed(conn, event, {}),
            Task.RunEnded: lambda conn, event: self._changed(conn, event, {}),
            Task.Approved: lambda conn, event: self._changed(conn, event, {}),
            Task.Rejected: lambda conn, event: self._changed(conn, event, {}),
            Task.Deleted: self._deleted,
            Agent.Created: self._agent_created,
            Agent.Updated: self._agent_renamed,
        }

    def created(self, conn: sa.Connection, event: Any) -> Row:
        fields = event.fields
        doc = task_view(event.task_id, fields, event.assigned_agent_id, event.status, 1, event.timestamp, event.timestamp, None)
        self._tag(conn, event, doc["tags"])
        return {
            "id": event.task_id,
            "doc": doc,
            "assigned_agent_id": event.assigned_agent_id,
            "status": event.status,
            **{column: doc[field] for field, column in COLUMNS.items()},
        }

    def _changed(self, conn: sa.Connection, event: Any, changes: dict[str, Any], **columns: Any) -> None:
        stamp = {"version": event.originator_version, "updated_at": iso(event.timestamp)}
        self.patch(conn, event, lambda doc: doc | changes | stamp, **columns)

    def _updated(self, conn: sa.Connection, event: Any) -> None:
        changes = event.changes
        if "tags" in changes:
            conn.execute(sa.delete(task_tags).where(task_tags.c.stream_id == str(event.originator_id)))
            self._tag(conn, event, changes["tags"])
        columns = {column: changes[field] for field, column in COLUMNS.items() if field in changes}
        self._changed(conn, event, changes, **columns)

    def _archived(self, conn: sa.Connection, event: Any) -> None:
        stamp = iso(event.timestamp)
        changes = {"archived_at": stamp, "updated_at": stamp, "version": event.originator_version}
        self.patch(conn, event, lambda doc: doc | changes, archived=True)

    def _commented(self, conn: sa.Connection, event: Any) -> None:
        stamp = iso(event.timestamp)
        task = self.doc(conn, event)
        if task is None:
            return
        doc = comment_view(task["id"], event.comment_id, event.author, event.content, event.mentions, event.reply_to, stamp)
        conn.execute(
            sa.insert(task_comments).values(id=event.comment_id, task_stream=str(event.originator_id), created_at=stamp, doc=doc)
        )
        self.set(conn, event, doc=task | {"version": event.originator_version, "updated_at": stamp})

    def _deleted(self, conn: sa.Connection, event: Any) -> None:
        stream = str(event.originator_id)
        conn.execute(sa.delete(task_comments).where(task_comments.c.task_stream == stream))
        conn.execute(sa.delete(task_tags).where(task_tags.c.stream_id == stream))
        conn.execute(sa.delete(tasks).where(tasks.c.stream_id == stream))

    @staticmethod
    def _tag(conn: sa.Connection, event: Any, tags: list[str]) -> None:
        unique = sorted(set(tags))
        if unique:
            stream = str(event.originator_id)
            conn.execute(sa.insert(task_tags), [{"stream_id": stream, "tag": tag} for tag in unique])

    # Agents' names: no handler here reads them, so a batch keeps its new and renamed ones in
    # memory and writes them together at its end.
    _names: AgentNames | None = None

    def apply_all(self, conn: sa.Connection, events: Sequence[Any], positions: Sequence[int] | None = None) -> None:
        if len(events) < 2:
            super().apply_all(conn, events, positions)
            return
        self._names = AgentNames()
        try:
            super().apply_all(conn, events, positions)
            self._names.flush(conn)
        finally:
            self._names = None

    def _agent_created(self, conn: sa.Connection, event: Any) -> None:
        row = {
            "stream_id": str(event.originator_id),
            "agent_id": event.agent_id,
            "tenant_id": event.tenant_id,
            "name": event.definition.get("name") or "",
        }
        if self._names is not None:
            self._names.created[row["stream_id"]] = row
        else:
            conn.execute(sa.insert(task_agent_names).values(**row))

    def _agent_renamed(self, conn: sa.Connection, event: Any) -> None:
        stream, name = str(event.originator_id), event.definition.get("name") or ""
        if self._names is None:
            conn.execute(sa.update(task_agent_names).where(task_agent_names.c.stream_id == stream).values(name=name))
        elif stream in self._names.created:
            self._names.created[stream]["name"] = name
        else:
            self._names.renamed[stream] = name


class AgentNames:
    def __init__(self) -> None:
        self.created: dict[str, dict[str, Any]] = {}
        self.renamed: dict[str, str] = {}

    def flush(self, conn: sa.Connection) -> None:
        insert_rows(conn, task_agent_names, list(self.created.values()))
        if self.renamed:
            statement = (
                sa.update(task_agent_names)
                .where(task_agent_names.c.stream_id == sa.bindparam("_stream"))
                .values(name=sa.bindparam("_name"))
            )
            conn.execute(statement, [{"_stream": stream, "_name": name} for stream, name in self.renamed.items()])


class DepartmentsProjection(ResourceProjection):
    name = "departments"
    table = departments
    tables = (departments,)
    created_event = Department.Created

    def handlers(self) -> dict[type, Handler]:
        return {Department.Updated: self._updated, Department.Archived: self.archived}

    def created(self, conn: sa.Connection, event: Any) -> Row:
        doc = definition_view("department", event.department_id, event.definition, event.timestamp, event.timestamp, None)
        return {"id": event.department_id, "doc": doc}

    def _updated(self, conn: sa.Connection, event: Any) -> None:
        self.patch(conn, event, lambda doc: doc | event.definition | {"updated_at": iso(event.timestamp)})


class BoardsProjection(ResourceProjection):
    name = "boards"
    table = boards
    tables = (boards,)
    created_event = Board.Created

    def handlers(self) -> dict[type, Handler]:
        return {Board.Updated: self._updated, Board.Archived: self.archived}

    def created(self, conn: sa.Connection, event: Any) -> Row:
        doc = definition_view("board", event.board_id, event.definition, event.timestamp, event.timestamp, None)
        return {"id": event.board_id, "department_id": event.definition.get("department_id"), "doc": doc}

    def _updated(self, conn: sa.Connection, event: Any) -> None:
        department = event.definition.get("department_id")
        self.patch(conn, event, lambda doc: doc | event.definition | {"updated_at": iso(event.timestamp)}, department_id=department)
