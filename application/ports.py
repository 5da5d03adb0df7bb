"""The ports the use cases need. Adapters live in ``infra``; the composition root wires them."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Protocol, TypeVar
from uuid import UUID

from eventsourcing.domain import Aggregate

A = TypeVar("A", bound=Aggregate)


class StoredEvent(Protocol):
    """What a stream read yields: a decoded domain event of one aggregate."""

    originator_id: UUID
    originator_version: int


class EventStore(Protocol):
    """One atomic append per command, optimistic concurrency on aggregate version.

    ``save`` raises ``application.errors.Conflict`` when another writer got there first, and
    returns the highest global notification id it wrote (``None`` when nothing was new).
    ``load`` raises ``application.errors.NotFound`` for an unknown stream.
    """

    def save(self, *aggregates: Aggregate) -> int | None: ...

    def load(self, aggregate_id: UUID, version: int | None = None) -> Any: ...

    def read_stream(
        self,
        aggregate_id: UUID,
        after_version: int = 0,
        limit: int | None = None,
        until_version: int | None = None,
        descending: bool = False,
    ) -> Sequence[Any]:
        """Events with ``after_version < version <= until_version``, oldest first unless
        ``descending``; at most ``limit`` of them."""
        ...


class ChangeListener(Protocol):
    """Told, after commit, which streams changed, so live tails can wake up."""

    def streams_changed(self, aggregate_ids: Iterable[UUID], notification_id: int) -> None: ...


class ModelProvider(Protocol):
    """Produces the agent's reply for a session turn."""

    name: str

    def reply(self, agent: dict[str, Any], transcript: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Returns the content blocks of the agent's message."""
        ...
