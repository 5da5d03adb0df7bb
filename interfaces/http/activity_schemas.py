"""Response bodies of the activity feed (``/v1/activity``, ``/v1/dashboard/activity``)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from interfaces.http.responses import Described, Paged


class ActivityActor(Described):
    type: Literal["user", "agent", "api_key", "system"]
    id: str | None = Field(description="the user's, agent's or key's id; null for the system, or when not recorded")


class ActivityEntry(Described):
    """One stored event as the audit trail shows it."""

    type: Literal["activity"]
    id: str = Field(description="`actv_…`, the same after a rebuild of the feed")
    entity_type: str = Field(description="the aggregate: `agent`, `session`, `task`, `vault`, `api_key`, `user` …")
    entity_id: str | None = Field(description="the entity's public id")
    action: str = Field(
        description="`<entity_type>.<event>` (`agent.updated`, `task.created`); a session's log events keep their "
        "type (`user.message`, `session.status_idle`)"
    )
    actor: ActivityActor | None = Field(description="who did it, where the event says; null where it does not")
    agent_id: str | None = Field(description="the agent concerned (an agent's own entries, a session's agent)")
    user_id: str | None = Field(description="the user who acted, else the user the entry is about")
    workspace_id: str | None = Field(description="the workspace; null for the organization's own entries (people)")
    summary: str = Field(description="a short line; never a message's text or a secret")
    created_at: datetime = Field(description="when the event was recorded")
    event_id: str = Field(description="the event's id, as the relay's Kafka messages carry it (`event_id`)")


class ActivityPage(Paged):
    data: list[ActivityEntry]
