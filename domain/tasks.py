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
