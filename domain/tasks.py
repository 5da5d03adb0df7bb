"""The Task aggregate: work handed to an agent, reviewed and approved by people.

A task's status moves by hand (an update) among the working states, and by the task's own
commands through review: only ``approve`` reaches ``approved`` and only ``reject`` reaches
``rejected``. Every recorded event raises ``version``, which a client sends back to edit the
version it saw (optimistic concurrency).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.errors import Archived, InvalidState, VersionMismatch
from domain.ids import stream_id
from domain.stamps import Stamped

STATUSES = ("todo", "in_progress", "review", "approved", "rejected", "done", "cancelled")
# What an update may set; approved / rejected are verdicts, given by approve / reject only.
SETTABLE_STATUSES = ("todo", "in_progress", "review", "done", "cancelled")
PRIORITIES = ("low", "medium", "high", "urgent")
# The fields an update edits as they are (the assignee and the status have events of their own).
EDITABLE = ("title", "description", "board_id", "priority", "due_date", "tags", "requires_approval", "parent_task_id", "metadata")


class Task(Aggregate):
    @staticmethod
    def create_id(task_id: str, **_: Any) -> UUID:
        return stream_id(task_id)

    class Created(Aggregate.Created):
        task_id: str
        tenant_id: str
        fields: dict[str, Any]
        assigned_agent_id: str | None
        status: str

    class Updated(Aggregate.Event):
        changes: dict[str, Any]

    class Assigned(Aggregate.Event):
        agent_id: str | None

    class StatusChanged(Aggregate.Event):
        status: str
        previous: str

    class Archived(Stamped):
        stamp = "archived_at"

    class Deleted(Aggregate.Event):
        pass

    class Executed(Aggregate.Event):
        """A run started: the session working on the task."""

        session_id: str
        environment_id: str

    class ResultRecorded(Aggregate.Event):
        """The run's session finished a turn; ``seq`` is its ``session.status_idle``."""

        session_id: str
        seq: int
        result: str | None

    class RunEnded(Aggregate.Event):
        """The run's session stopped without finishing its turn (a refusal, exhausted retries,
        a budget, or the session terminated or deleted): the task is to do again."""

        session_id: str
        seq: int
        reason: str

    class Approved(Aggregate.Event):
        by: dict[str, Any]
        comment: str | None

    class Rejected(Aggregate.Event):
        by: dict[str, Any]
        comment: str

    class Commented(Aggregate.Event):
        """A comment on the task. ``author``: ``{type: user|api_key|agent, id}``; ``mentions``:
        ``[{type: user|agent, id, name}]`` resolved from ``@Name`` in ``content``;
        ``reply_to``: the comment an agent's reply answers."""

        comment_id: str
        author: dict[str, Any]
        content: str
        mentions: list[dict[str, Any]]
        reply_to: str | None

    class ReplyRequested(Aggregate.Event):
        """An agent mentioned in a comment was asked, in a session of its own, to reply."""

        comment_id: str
        replier_id: str  # the agent (not ``agent_id``: the task's agent stays its assignee)
        session_id: str

    @event(Created)
    def __init__(
        self, task_id: str, tenant_id: str, fields: dict[str, Any], assigned_agent_id: str | None, status: str
    ) -> None:
        self.task_id = task_id
        self.tenant_id = tenant_id
        self.fields = dict(fields)
        self.assigned_agent_id = assigned_agent_id
        self.status = status
        self.archived_at: datetime | None = None
        self.deleted = False
        self.session_id: str | None = None
        self.environment_id: str | None = None
        self.result: str | None = None
        self.result_seq = 0
        self.comment_ids: list[str] = []
        self.awaiting_turn = False

    # -- commands ----------------------------------------------------------------------------

    def check_version(self, expected: int | None) -> None:
        if expected is not None and expected != self.version:
            raise VersionMismatch(expected, self.version)

    def update(self, changes: dict[str, Any], expected_version: int | None = None) -> bool:
        """Edits the fields, the assignee and the status given; records nothing when nothing
        differs. ``expected_version`` is the version the client edited."""
        self._check_live()
        self.check_version(expected_version)
        edited = {name: value for name, value in changes.items() if name in EDITABLE and self.fields.get(name) != value}
        changed = False
        if edited:
            self._record_update(changes=edited)
            changed = True
        if "assigned_agent_id" in changes and changes["assigned_agent_id"] != self.assigned_agent_id:
            self._record_assignment(agent_id=changes["assigned_agent_id"])
            changed = True
        status = changes.get("status")
        if status is not None and status != self.status:
            if status not in SETTABLE_STATUSES:
                verdict = {"approved": "approving", "rejected": "rejecting"}.get(status, "")
                raise InvalidState(f"a task becomes {status} only by {verdict} it in review")
            self._record_status(status=status, previous=self.status)
            changed = True
        return changed

    @property
    def running(self) -> bool:
        """A turn of the run's session is owed to the task (started or sent feedback, not yet
        ended): whatever the status says, which a person may have edited meanwhile."""
        return self.awaiting_turn

    def check_executable(self) -> str:
        """The agent a new run goes to; refused while one runs, or with no agent."""
        self._check_live()
        if self.assigned_agent_id is None:
            raise InvalidState(f"task {self.task_id} has no assigned agent to execute it")
        if self.running:
            raise InvalidState(f"task {self.task_id} is already running in session {self.session_id}")
        return self.assigned_agent_id

    def execute(self, session_id: str, environment_id: str) -> None:
        self.check_executable()
        self._record_execution(session_id=session_id, environment_id=environment_id)
        if self.status != "in_progress":
            self._record_status(status="in_progress", previous=self.status)

    def record_result(self, session_id: str, seq: int, result: str | None) -> bool:
        """The run's turn ended. Idempotent: a turn already recorded, or one of a session
        that is no longer the task's run, records nothing. A task still in progress moves
        to review when it requires approval, else to done."""
        if self.deleted or session_id != self.session_id or seq <= self.result_seq:
            return False
        self._record_result(session_id=session_id, seq=seq, result=result)
        if self.status == "in_progress":
            target = "review" if self.fields.get("requires_approval") else "done"
            self._record_status(status=target, previous=self.status)
        return True

    def end_run(self, session_id: str, seq: int, reason: str) -> bool:
        """The run stopped unfinished; idempotent as ``record_result``. A task still in
        progress on that run goes back to ``todo`` (and can be executed again)."""
        if self.deleted or session_id != self.session_id or seq <= self.result_seq:
            return False
        self._record_run_end(session_id=session_id, seq=seq, reason=reason)
        if self.status == "in_progress":
            self._record_status(status="todo", previous=self.status)
        return True

    def approve(self, by: dict[str, Any], comment: str | None) -> None:
        self._check_in_review("approved")
        self._record_approval(by=by, comment=comment)
        self._record_status(status="approved", previous=self.status)

    def reject(self, by: dict[str, Any], comment: str) -> str | None:
        """Back to work with the reviewer's comment: the run's session (returned) gets it as
        feedback and the task is in progress again; a task never run is rejected."""
        self._check_in_review("rejected")
        self._record_rejection(by=by, comment=comment)
        target = "in_progress" if self.session_id is not None else "rejected"
        self._record_status(status=target, previous=self.status)
        return self.session_id

    def comment(
        self, comment_id: str, author: dict[str, Any], content: str, mentions: list[dict[str, Any]], reply_to: str | None = None
    ) -> bool:
        """Records the comment once (an agent's reply is posted again after a crash: its id
        is derived from its turn, so the second time records nothing)."""
        self._check_live()
        if self.deleted or comment_id in self.comment_ids:
            return False
        self._record_comment(comment_id=comment_id, author=author, content=content, mentions=mentions, reply_to=reply_to)
        return True

    def request_reply(self, comment_id: str, agent_id: str, session_id: str) -> None:
        self._record_reply_request(comment_id=comment_id, replier_id=agent_id, session_id=session_id)

    def _check_in_review(self, verdict: str) -> None:
        self._check_live()
        if self.status != "review":
            raise InvalidState(f"task {self.task_id} is {self.status}: only a task in review can be {verdict}")

    def archive(self) -> bool:
        if self.archived_at is not None:
            return False
        self._record_archive()
        return True

    def delete(self) -> bool:
        if self.deleted:
            return False
        self._record_deletion()
        return True

    def _check_live(self) -> None:
        if self.archived_at is not None:
            raise Archived(f"task {self.task_id} is archived")

    # -- events ------------------------------------------------------------------------------

    @event(Updated)
    def _record_update(self, changes: dict[str, Any]) -> None:
        self.fields = {**self.fields, **changes}

    @event(Assigned)
    def _record_assignment(self, agent_id: str | None) -> None:
        self.assigned_agent_id = agent_id

    @event(StatusChanged)
    def _record_status(self, status: str, previous: str) -> None:
        self.status = status

    @event(Executed)
    def _record_execution(self, session_id: str, environment_id: str) -> None:
        self.session_id = session_id
        self.environment_id = environment_id
        self.result_seq = 0  # the new session's turns count from its own first event
        self.awaiting_turn = True

    @event(ResultRecorded)
    def _record_result(self, session_id: str, seq: int, result: str | None) -> None:
        self.result = result
        self.result_seq = seq
        self.awaiting_turn = False

    @event(RunEnded)
    def _record_run_end(self, session_id: str, seq: int, reason: str) -> None:
        self.result_seq = seq
        self.awaiting_turn = False

    @event(Approved)
    def _record_approval(self, by: dict[str, Any], comment: str | None) -> None:
        pass

    @event(Rejected)
    def _record_rejection(self, by: dict[str, Any], comment: str) -> None:
        self.awaiting_turn = self.session_id is not None  # the feedback starts a turn

    @event(Commented)
    def _record_comment(
        self, comment_id: str, author: dict[str, Any], content: str, mentions: list[dict[str, Any]], reply_to: str | None
    ) -> None:
        self.comment_ids = [*self.comment_ids, comment_id]

    @event(ReplyRequested)
    def _record_reply_request(self, comment_id: str, replier_id: str, session_id: str) -> None:
        pass

    @event(Archived)
    def _record_archive(self) -> None:
        pass  # Archived stamps archived_at

    @event(Deleted)
    def _record_deletion(self) -> None:
        self.deleted = True


def parent_chain_has(start: str | None, task_id: str, parent_of: Any, limit: int = 64) -> bool:
    """Whether following parents up from ``start`` reaches ``task_id`` (a cycle), or goes on
    for more than ``limit`` steps (refused as if it were one). ``parent_of(id)`` → parent id."""
    current = start
    for _ in range(limit):
        if current is None:
            return False
        if current == task_id:
            return True
        current = parent_of(current)
    return current is not None
