"""A workspace's own rate limits: the values it sets in place of the organization's.

The organization's limits are settings (the operator's); a workspace may override each
limiter type, and clearing an override returns it to the organization's value. One small
stream per workspace, created by its first override."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.errors import DomainError
from domain.ids import stream_id

REQUESTS_PER_MINUTE = "requests_per_minute"
# The limiter types Agentry enforces (the SDK names more: token and tool-use limiters of the
# Messages API, which Agentry does not meter per request).
ENFORCED_TYPES = (REQUESTS_PER_MINUTE,)


class UnenforcedLimit(DomainError):
    """A limiter type Agentry does not enforce: setting it would promise what never happens."""


def limits_stream_id(workspace_id: str) -> UUID:
    return stream_id("workspace-rate-limits_" + workspace_id)


class WorkspaceRateLimits(Aggregate):
    @staticmethod
    def create_id(workspace_id: str, **_: Any) -> UUID:
        return limits_stream_id(workspace_id)

    @event("Started")
    def __init__(self, workspace_id: str) -> None:
        self.workspace_id = workspace_id
        self.overrides: dict[str, int] = {}

    def set_limits(self, changes: dict[str, int | None]) -> bool:
        """``None`` clears a type's override. Records nothing when nothing changes."""
        for limiter in changes:
            if limiter not in ENFORCED_TYPES:
                raise UnenforcedLimit(
                    f"Agentry enforces only {', '.join(ENFORCED_TYPES)}; {limiter!r} cannot be set"
                )
        effective = {
            limiter: value for limiter, value in changes.items() if self.overrides.get(limiter) != value
        }
        if not effective:
            return False
        self._record_limits_changed(effective)
        return True

    @event("LimitsChanged")
    def _record_limits_changed(self, changes: dict[str, int | None]) -> None:
        for limiter, value in changes.items():
            if value is None:
                self.overrides.pop(limiter, None)
            else:
                self.overrides[limiter] = value
