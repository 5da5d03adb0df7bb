"""Requests and responses of notifications and the dashboard."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field

from interfaces.http.responses import Described, Paged
from interfaces.http.schemas import Strict

Kind = Literal["mention", "approval_awaited", "task_done", "session_error"]
Position = Annotated[int, Field(ge=0, le=2**62)]

# -- requests ------------------------------------------------------------------------------


class ReadAll(Strict):
    up_to: Position | None = Field(
        default=None,
        description="mark read only up to this notification `position` (the stream's event id); default: all",
    )


# -- responses -----------------------------------------------------------------------------


class Recipient(Described):
    type: Literal["workspace", "user"]
    id: str | None = Field(default=None, description="the user mentioned (a `user` recipient)")


class Notification(Described):
    type: Literal["notification"]
    id: str
    kind: Kind
    title: str
    message: str | None = Field(description="the comment, the task's result or the error, shortened")
    task_id: str | None
    session_id: str | None
    comment_id: str | None
    error_type: str | None = Field(description="a `session_error`'s error type")
    actor: dict[str, Any] | None = Field(description="who mentioned the recipient (`{type, id}`)")
    recipient: Recipient
    position: int = Field(description="the global position of the event that raised it; the stream's event id")
    read: bool = Field(description="whether the caller has read it (each caller has read marks of their own)")
    created_at: datetime


class NotificationPage(Paged):
    data: list[Notification]


class UnreadCount(Described):
    unread_count: int


class NotificationsRead(Described):
    type: Literal["notifications_read"]
    up_to: int = Field(description="every notification up to this position is read (0: there were none)")
    unread_count: int = Field(description="what is left unread (newer ones)")


class AgentCounts(Described):
    total: int
    live: int
    archived: int


class TaskCounts(Described):
    total: int
    by_status: dict[str, int] = Field(description="every task status, with 0 for none")
    archived: int = Field(description="of the total, how many are archived")
    completed: int = Field(description="done or approved")
    completion_rate: float | None = Field(description="completed over every task not cancelled; null with none")


class SessionCounts(Described):
    total: int
    by_status: dict[str, int]
    running: int


class DashboardStats(Described):
    type: Literal["dashboard_stats"]
    agents: AgentCounts
    tasks: TaskCounts
    sessions: SessionCounts
