"""The Environment aggregate: a template sessions run in."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.agents import merge_definition
from domain.errors import Archived
from domain.ids import stream_id
from domain.stamps import Stamped


class Environment(Aggregate):
    @staticmethod
    def create_id(environment_id: str, **_: Any) -> UUID:
        return stream_id(environment_id)

    class Created(Aggregate.Created):
        environment_id: str
        tenant_id: str
        definition: dict[str, Any]

    class Updated(Aggregate.Event):
        definition: dict[str, Any]

    class Archived(Stamped):
        stamp = "archived_at"

    @event(Created)
    def __init__(self, environment_id: str, tenant_id: str, definition: dict[str, Any]) -> None:
        self.environment_id = environment_id
        self.tenant_id = tenant_id
        self.definition = definition
        self.archived_at: datetime | None = None

    def update(self, changes: dict[str, Any]) -> bool:
        if self.archived_at is not None:
            raise Archived(f"environment {self.environment_id} is archived")
        definition = merge_definition(self.definition, changes)
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
