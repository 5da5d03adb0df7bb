"""Use cases of tasks: create, read, edit (optimistically), file, assign, archive, delete."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from application.agents import AgentService
from application.boards import BoardService
from application.commands import Alongside, Commands, Kind, Written, load_as
from application.environments import EnvironmentService
from application.errors import Forbidden, Invalid, NotFound
from application.ids import new_id
from application.mentions import MentionDirectory, resolve, suggest
from application.ports import EventStore
from application.retry import retry_on_race
from application.sessions import SessionService
from application.task_views import TASK_DEFAULTS, comment_view, task_view
from application.tenancy import Principal
from application.views import iso
from domain.errors import DomainError
from domain.sessions import Session
from domain.tasks import SETTABLE_STATUSES, Task, parent_chain_has


def render(task: Task) -> dict[str, Any]:
    run = {"session_id": task.session_id, "environment_id": task.environment_id, "result": task.result}
    return task_view(
        task.task_id, task.fields, task.assigned_agent_id, task.status, task.version, task.created_on, task.modified_on,
        task.archived_at, run,
    )  # fmt: skip


TASKS: Kind[Task] = Kind(Task, "task", "task", gone=lambda task: task.deleted)


def _normalized(fields: dict[str, Any]) -> dict[str, Any]:
    """Due dates as the fixed-width UTC strings lists compare (a naive one is UTC)."""
    due = fields.get("due_date")
    if isinstance(due, datetime):
        fields = {**fields, "due_date": iso(due if due.tzinfo else due.replace(tzinfo=UTC))}
    return fields


MAX_DEFAULT_ENVIRONMENTS = 100


def default_environment_id(tenant_id: str, generation: int = 0) -> str:
    """The workspace's default environment (the one a task runs in unless told otherwise):
    one id per workspace and generation, so concurrent first runs create it once."""
    seed = f"default-environment:{tenant_id}" + (f":{generation}" if generation else "")
    return "env_default" + hashlib.sha256(seed.encode()).hexdigest()[:24]


def first_message(task: Task) -> dict[str, Any]:
    """The task as its run's first user message."""
    text = task.fields.get("title") or ""
    if task.fields.get("description"):
        text += "\n\n" + task.fields["description"]
    return {"type": "user.message", "content": [{"type": "text", "text": text}]}


MAX_AGENT_REPLIES = 3


def reply_session(task: Task, agent_id: str, environment_id: str, comment_id: str, content: str) -> dict[str, Any]:
    """The session an agent mentioned in a comment replies from."""
    title = str(task.fields.get("title") or "")
    text = (
        f"You were mentioned in a comment on the task \"{title}\".\n\n"
        + (f"The task: {task.fields['description']}\n\n" if task.fields.get("description") else "")
        + f"The comment:\n{content}\n\nReply to the comment: your answer is posted in the task's thread."
    )
    return {
        "agent": agent_id,
        "environment_id": environment_id,
        "title": f"Reply on: {title}"[:500],
        "metadata": {"agentry_task_id": task.task_id, "agentry_comment_id": comment_id},
        "initial_events": [{"type": "user.message", "content": [{"type": "text", "text": text}]}],
    }


def actor(who: Principal) -> dict[str, Any]:
    """Who gave a verdict, as the task's history names them (never a secret)."""
    if who.user_id is not None:
        return {"type": "user", "id": who.user_id}
    return {"type": "api_key", "id": who.key_id}


class TaskService:
    def __init__(
        self,
        store: EventStore,
        agents: AgentService,
        boards: BoardService,
        environments: EnvironmentService,
        sessions: SessionService,
        directory: MentionDirectory,
    ) -> None:
        self._store = store
        self._commands = Commands(store, TASKS, render)
        self._agents = agents
        self._boards = boards
        self._environments = environments
        self._sessions = sessions
        self._directory = directory

    # -- runs and reviews ----------------------------------------------------------------------

    def execute(self, who: Principal, task_id: str, environment_id: str | None) -> Written:
        """Starts a session on the assigned agent with the task as its first message. The
        task's ``Executed`` and the session's start are one append, so every event of the run
        comes after the task knows its session."""
        self._commands.load(who, task_id).check_executable()  # before a default environment is made
        environment = environment_id or self._default_environment(who)
        started: list[Session] = []

        def command(task: Task) -> Alongside:
            agent_id = task.check_executable()
            fields = {
                "agent": agent_id,
                "environment_id": environment,
                "title": str(task.fields.get("title") or "")[:500],
                "metadata": {"agentry_task_id": task.task_id},
                "initial_events": [first_message(task)],
            }
            session = self._sessions.new(who, fields)
            task.execute(session.session_id, environment)
            started[:] = [session]
            return Alongside((session,))

        written = self._commands.change(who, task_id, command)
        self._sessions.begin(started[0])
        return written

    def record_result(self, task_stream: UUID, session_id: str, seq: int, result: str | None) -> None:
        """The run's session ended a turn (the follower calls this, once per idle event, or
        again after a crash: it records nothing the second time)."""

        self._follow_up(task_stream, lambda task: task.record_result(session_id, seq, result))

    # -- comments ----------------------------------------------------------------------------

    def comment(self, who: Principal, task_id: str, content: str) -> Written:
        """A comment; ``@Name`` mentions resolve to the workspace's people and agents, and each
        agent mentioned (up to ``MAX_AGENT_REPLIES``) is asked, in a session of its own started
        in the same append, to reply in the thread."""
        mentions = resolve(content, self._directory.mentionable(who.tenant_id))
        agents = [mention for mention in mentions if mention.type == "agent"][:MAX_AGENT_REPLIES]
        environment = self._default_environment(who) if agents else ""
        comment_id = new_id("tcmt")
        started: list[Session] = []
        commented_at: list[datetime] = []

        def command(task: Task) -> Alongside:
            task.comment(comment_id, actor(who), content, [mention.view() for mention in mentions])
            commented_at[:] = [task.modified_on]
            sessions = []
            for agent in agents:
                session = self._sessions.new(who, reply_session(task, agent.id, environment, comment_id, content))
                task.request_reply(comment_id, agent.id, session.session_id)
                sessions.append(session)
            started[:] = sessions
            return Alongside(tuple(sessions))

        written = self._commands.change(
            who, task_id, command, render=lambda task: comment_view(task.task_id, comment_id, actor(who), content,
                                                                      [mention.view() for mention in mentions], None, commented_at[0])
        )  # fmt: skip
        for session in started:
            self._sessions.begin(session)
        return written

    def post_reply(self, task_stream: UUID, session_id: str, seq: int, comment_id: str, agent_id: str, text: str | None) -> None:
        """An agent asked to reply ended its turn: its last message is posted in the thread,
        once per turn (the follower calls this again after a crash; the reply's id comes from
        the turn, so nothing is posted twice)."""
        if not text:
            return
        reply_id = "tcmt" + "_" + hashlib.sha256(f"{session_id}:{seq}".encode()).hexdigest()[:24]

        agent = {"type": "agent", "id": agent_id}
        self._follow_up(
            task_stream,
            lambda task: task.archived_at is None and task.comment(reply_id, agent, text, [], reply_to=comment_id),
        )

    def mention_suggestions(self, who: Principal, query: str) -> list[dict[str, Any]]:
        return [
            {**candidate.view(), "handle": candidate.handle}
            for candidate in suggest(query, self._directory.mentionable(who.tenant_id))
        ]

    def end_run(self, task_stream: UUID, session_id: str, seq: int, reason: str) -> None:
        """The run stopped unfinished (the follower; idempotent as ``record_result``)."""

        self._follow_up(task_stream, lambda task: task.end_run(session_id, seq, reason))

    def _follow_up(self, task_stream: UUID, command: Callable[[Task], bool]) -> None:
        """A follower's command on a task (no caller, no tenant: it names the stream); saved
        when it recorded something, re-run on a lost race."""

        def attempt() -> None:
            task = load_as(self._store, task_stream, Task)
            if task is not None and not task.deleted and command(task):
                self._store.save(task)

        retry_on_race(attempt, key=str(task_stream))

    def approve(self, who: Principal, task_id: str, comment: str | None) -> Written:
        self._check_reviewer(who)
        return self._commands.change(who, task_id, lambda task: task.approve(actor(who), comment))

    def reject(self, who: Principal, task_id: str, comment: str) -> Written:
        """Back to work: the comment goes to the run's session as feedback — in the same
        append as the verdict, so the turn it starts finds the task in progress — and the task
        is in progress again (a task never run is rejected)."""
        self._check_reviewer(who)
        sent: list[Session] = []

        def command(task: Task) -> Alongside | None:
            session_id = task.reject(actor(who), comment)
            if session_id is None:
                return None
            feedback = {"type": "user.message", "content": [{"type": "text", "text": comment}]}
            try:
                session = self._sessions.with_events(who, session_id, [feedback])
            except NotFound:
                raise Invalid(f"the task's session {session_id} is gone: execute the task again instead") from None
            if session.status == "terminated" or session.archived_at is not None:
                raise Invalid(f"the task's session {session_id} can take no feedback: execute the task again instead")
            sent[:] = [session]
            return Alongside((session,))

        written = self._commands.change(who, task_id, command)
        for session in sent:
            self._sessions.begin(session)
        return written

    @staticmethod
    def _check_reviewer(who: Principal) -> None:
        if who.role != "admin":
            raise Forbidden("reviewing a task takes the workspace's admin role")

    def _default_environment(self, who: Principal) -> str:
        """The workspace's default environment, made on first use; once archived, the next
        one in its line takes over (made the same way)."""
        for generation in range(MAX_DEFAULT_ENVIRONMENTS):
            environment_id = default_environment_id(who.tenant_id, generation)
            live: list[bool] = []

            def attempt(environment_id: str = environment_id, live: list[bool] = live) -> None:
                try:
                    live[:] = [self._environments.load(who, environment_id).archived_at is None]
                except NotFound:
                    fields = {"name": "default", "description": "tasks run here unless told otherwise"}
                    self._environments.create(who, fields, environment_id)
                    live[:] = [True]

            retry_on_race(attempt, key=environment_id)
            if live[0]:
                return environment_id
        raise Invalid("every default environment of this workspace is archived: pass environment_id")

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
        def update(task: Task) -> None:
            # Out of review, or approval switched off for work already done: a reviewer's call.
            if (changes.get("status") not in (None, task.status) and task.status == "review") or (
                changes.get("requires_approval") is False and task.session_id is not None
            ):
                self._check_reviewer(who)
            task.update(changes, expected_version)

        return self._stopping_its_run(who, task_id, update)

    def archive(self, who: Principal, task_id: str) -> Written:
        return self._stopping_its_run(who, task_id, Task.archive)

    def delete(self, who: Principal, task_id: str) -> Written:
        return self._stopping_its_run(
            who, task_id, Task.delete, render=lambda task: {"id": task.task_id, "type": "task_deleted"}
        )

    def _stopping_its_run(
        self, who: Principal, task_id: str, command: Callable[[Task], object], render: Callable[[Task], dict[str, Any]] | None = None
    ) -> Written:
        """``command``; when it cancels, archives or deletes a task whose run is working, the
        run's session is interrupted in the same append (its agent stops spending on it)."""
        interrupted: list[Session] = []

        def stopping(task: Task) -> Alongside | None:
            was_running = task.running
            command(task)
            stopped = task.deleted or task.archived_at is not None or task.status == "cancelled"
            if not (was_running and stopped and task.session_id):
                return None
            try:
                session = self._sessions.with_events(who, task.session_id, [{"type": "user.interrupt"}])
            except (NotFound, DomainError):
                return None  # the session is gone or takes no interrupt: nothing runs there
            interrupted[:] = [session]
            return Alongside((session,))

        written = self._commands.change(who, task_id, stopping, render=render)
        for session in interrupted:
            self._sessions.begin(session)
        return written

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
