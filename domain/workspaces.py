"""Workspaces: the tenants every other aggregate belongs to (``tenant_id`` is a workspace id).

The first workspace, ``default``, predates this aggregate: it has no stream, always exists and
cannot be archived. Every other workspace is a ``wrkspc_…`` stream. An archived workspace is
final: its keys stop working and nobody may select it."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.errors import Archived as WasArchived
from domain.ids import stream_id
from domain.stamps import Stamped

DEFAULT_WORKSPACE = "default"


class Workspace(Aggregate):
    @staticmethod
    def create_id(workspace_id: str, **_: Any) -> UUID:
        return stream_id(workspace_id)

    class Created(Aggregate.Created):
        workspace_id: str
        name: str
        display_color: str
        tags: dict[str, str]

    @event(Created)
    def __init__(self, workspace_id: str, name: str, display_color: str, tags: dict[str, str]) -> None:
        self.workspace_id = workspace_id
        # Every aggregate answers ``tenant_id``; a workspace is its own tenant.
        self.tenant_id = workspace_id
        self.name = name
        self.display_color = display_color
        self.tags = dict(tags)
        self.archived_at: datetime | None = None

    @property
    def live(self) -> bool:
        return self.archived_at is None

    def update(self, name: str, display_color: str, tags: dict[str, str]) -> None:
        if not self.live:
            raise WasArchived(f"workspace {self.workspace_id} is archived")
        if (name, display_color, tags) != (self.name, self.display_color, self.tags):
            self._updated(name, display_color, dict(tags))

    class Updated(Aggregate.Event):
        """The workspace's name, colour and tags, each as it now is."""

        name: str
        display_color: str
        tags: dict[str, str]

    @event(Updated)
    def _updated(self, name: str, display_color: str, tags: dict[str, str]) -> None:
        self.name = name
        self.display_color = display_color
        self.tags = tags

    def archive(self) -> None:
        if self.live:
            self._record_archive()

    class Archived(Stamped):
        stamp = "archived_at"

    @event(Archived)
    def _record_archive(self) -> None:
        pass  # Archived stamps archived_at
