"""The process manager that moves a task along with its sessions: when the run's session ends a
turn, the task gets the turn's last agent message as its result and moves on (review or done);
when the session of an agent asked to reply to a comment ends a turn, its reply is posted.

It follows the event log like a projection, with a position of its own, and keeps what it
needs in one table: which session runs which task, and that session's last agent message.
Because the task's ``Executed`` is in the same append as the session's start, every event of
the run comes after the row exists. Its effect — a command on the task — happens outside the
transaction that moves the position, so after a crash it may be issued again: the task
records a turn once (``Task.record_result`` ignores a turn it has), which makes the effect
exactly once. It is not part of ``all_projections``: rebuilding read models replays no effects.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from uuid import UUID

import sqlalchemy as sa

from domain.ids import stream_id
from domain.sessions import (
    AgentMessageSent,
    SessionBecameIdle,
    SessionBecameRunning,
    SessionWasDeleted,
    SessionWasTerminated,
)
from domain.tasks import Task
from projections import tables
from projections.runner import ReadModelProjection

task_runs = sa.Table(
    "rm_task_runs",
    tables.metadata,
    sa.Column("session_stream", sa.String(36), primary_key=True),
    sa.Column("session_id", sa.String(64), nullable=False),
    sa.Column("task_stream", sa.String(36), nullable=False, index=True),
    # "run": the task's execution; "reply": an agent asked to reply to ``comment_id``.
    sa.Column("kind", sa.String(8), nullable=False),
    sa.Column("comment_id", sa.String(64), nullable=True),
    sa.Column("agent_id", sa.String(64), nullable=True),
    sa.Column("last_message", sa.Text, nullable=True),
)

# (the task's stream, the session, the idle event's seq, the result) → records it on the task.
ResultSink = Callable[[UUID, str, int, "str | None"], None]
# (the task's stream, the session, the event's seq, why) → the run stopped unfinished.
EndSink = Callable[[UUID, str, int, str], None]
# (the task's stream, the session, the idle event's seq, the comment, the agent, its reply) → posts it.
ReplySink = Callable[[UUID, str, int, str, str, "str | None"], None]


def message_text(payload: dict[str, Any]) -> str:
    """An agent message's text blocks, joined."""
    blocks = payload.get("content") or []
    return "\n".join(block.get("text", "") for block in blocks if isinstance(block, dict) and block.get("type") == "text")


class TaskFollower(ReadModelProjection):
    name = "task_runs"
    tables = (task_runs,)

    def __init__(
        self, on_result: ResultSink | None = None, on_reply: ReplySink | None = None, on_end: EndSink | None = None
    ) -> None:
        # Set once the task service exists (bootstrap wires them).
        self.on_result = on_result
        self.on_reply = on_reply
        self.on_end = on_end

    # What ``apply`` acts on; its runner decodes nothing else (user messages, spans, costs …).
    FOLLOWED = (
        AgentMessageSent, SessionBecameRunning, SessionBecameIdle, SessionWasTerminated, SessionWasDeleted,
        Task.Executed, Task.ReplyRequested, Task.Deleted,
    )  # fmt: skip

    def wants(self, event_class: type) -> bool:
        return issubclass(event_class, self.FOLLOWED)

    def apply(self, conn: sa.Connection, event: Any) -> None:
        if isinstance(event, AgentMessageSent):
            # Most sessions run no task: this matches no row and reads nothing.
            conn.execute(
                sa.update(task_runs)
                .where(task_runs.c.session_stream == str(event.originator_id))
                .values(last_message=message_text(event.payload))
            )
        elif isinstance(event, SessionBecameRunning):
            # A new turn: the last message is this turn's or none (a turn of tool calls only).
            conn.execute(
                sa.update(task_runs).where(task_runs.c.session_stream == str(event.originator_id)).values(last_message=None)
            )
        elif isinstance(event, SessionBecameIdle):
            self._idle(conn, event)
        elif isinstance(event, SessionWasTerminated | SessionWasDeleted):
            self._ended(conn, event, event.public_type)
        elif isinstance(event, Task.Executed):
            task = str(event.originator_id)
            conn.execute(sa.delete(task_runs).where(task_runs.c.task_stream == task, task_runs.c.kind == "run"))
            self._follow(conn, event.session_id, task, "run")
        elif isinstance(event, Task.ReplyRequested):
            self._follow(conn, event.session_id, str(event.originator_id), "reply", event.comment_id, event.replier_id)
        elif isinstance(event, Task.Deleted):
            conn.execute(sa.delete(task_runs).where(task_runs.c.task_stream == str(event.originator_id)))

    @staticmethod
    def _follow(
        conn: sa.Connection, session_id: str, task: str, kind: str, comment_id: str | None = None, agent_id: str | None = None
    ) -> None:
        conn.execute(
            sa.insert(task_runs).values(
                session_stream=str(stream_id(session_id)), session_id=session_id, task_stream=task, kind=kind,
                comment_id=comment_id, agent_id=agent_id,
            )
        )  # fmt: skip

    def _row(self, conn: sa.Connection, event: Any) -> Any:
        row = conn.execute(sa.select(task_runs).where(task_runs.c.session_stream == str(event.originator_id))).first()
        if row is not None and (self.on_result is None or self.on_reply is None or self.on_end is None):
            raise RuntimeError("the task follower runs before the task service is wired")
        return row

    def _ended(self, conn: sa.Connection, event: Any, reason: str) -> None:
        row = self._row(conn, event)
        if row is not None and row.kind == "run":
            assert self.on_end is not None
            self.on_end(UUID(row.task_stream), row.session_id, event.seq, reason)

    def _idle(self, conn: sa.Connection, event: SessionBecameIdle) -> None:
        stop = ((event.payload or {}).get("stop_reason") or {}).get("type")
        if stop == "requires_action":
            return  # waiting on a confirmation or a tool result: the turn is not over
        if stop != "end_turn":
            self._ended(conn, event, str(stop))  # refused, out of retries or budget: unfinished
            return
        row = self._row(conn, event)
        if row is None:
            return
        assert self.on_result is not None and self.on_reply is not None
        if row.kind == "reply":
            self.on_reply(UUID(row.task_stream), row.session_id, event.seq, row.comment_id, row.agent_id, row.last_message)
        else:
            self.on_result(UUID(row.task_stream), row.session_id, event.seq, row.last_message)
