"""Boards and departments: how a workspace groups its tasks and agents.

Both are plain definitions (a name and a few fields) that can be edited and archived; a
task names its board, a board and an agent name their department.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.errors import Archived
from domain.ids import stream_id
from domain.stamps import Stamped


class Department(Aggregate):
    @staticmethod
    def create_id(department_id: str, **_: Any) -> UUID:
        return stream_id(department_id)

    class Created(Aggregate.Created):
        department_id: str
        tenant_id: str
        definition: dict[str, Any]

    class Updated(Aggregate.Event):
        definition: dict[str, Any]

    class Archived(Stamped):
        stamp = "archived_at"

    @event(Created)
    def __init__(self, department_id: str, tenant_id: str, definition: dict[str, Any]) -> None:
        self.department_id = department_id
        self.tenant_id = tenant_id
        self.definition = definition
        self.archived_at: datetime | None = None

    def update(self, changes: dict[str, Any]) -> bool:
        if self.archived_at is not None:
            raise Archived(f"department {self.department_id} is archived")
        definition = {**self.definition, **changes}
        if definition == self.definition:
            return False
        self._record_update(definition=definition)
        return True

    @event(Updated)
    def _record_update(self, definition: dict[str, Any]) -> None:
        self.definition = definition

    def archive(self) -> bool:
        if self.archived_at is not None:
            return False
        self._record_archive()
        return True

    @event(Archived)
    def _record_archive(self) -> None:
        pass  # Archived stamps archived_at


class Board(Aggregate):
    @staticmethod
    def create_id(board_id: str, **_: Any) -> UUID:
        return stream_id(board_id)

    class Created(Aggregate.Created):
        board_id: str
        tenant_id: str
        definition: dict[str, Any]

    class Updated(Aggregate.Event):
        definition: dict[str, Any]

    class Archived(Stamped):
        stamp = "archived_at"

    @event(Created)
    def __init__(self, board_id: str, tenant_id: str, definition: dict[str, Any]) -> None:
        self.board_id = board_id
        self.tenant_id = tenant_id
        self.definition = definition
        self.archived_at: datetime | None = None

    def update(self, changes: dict[str, Any]) -> bool:
        if self.archived_at is not None:
            raise Archived(f"board {self.board_id} is archived")
        definition = {**self.definition, **changes}
        if definition == self.definition:
            return False
        self._record_update(definition=definition)
        return True

    @event(Updated)
    def _record_update(self, definition: dict[str, Any]) -> None:
        self.definition = definition

    def archive(self) -> bool:
        if self.archived_at is not None:
            return False
        self._record_archive()
        return True

    @event(Archived)
    def _record_archive(self) -> None:
        pass  # Archived stamps archived_at
