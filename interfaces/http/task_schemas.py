"""Requests and responses of tasks, boards and departments (Mission Control's field names)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator

from interfaces.http.responses import Described, Paged
from interfaces.http.schemas import Strict, check_metadata, not_null

Priority = Literal["low", "medium", "high", "urgent"]
Status = Literal["todo", "in_progress", "review", "approved", "rejected", "done", "cancelled"]
SettableStatus = Literal["todo", "in_progress", "review", "done", "cancelled"]
Title = Annotated[str, Field(min_length=1, max_length=500)]
Description = Annotated[str, Field(max_length=50_000)]
Tag = Annotated[str, Field(min_length=1, max_length=64)]
Tags = Annotated[list[Tag], Field(max_length=32)]
ObjectId = Annotated[str, Field(min_length=1, max_length=64)]
Name = Annotated[str, Field(min_length=1, max_length=255)]


class _TaskFields(Strict):
    description: Description | None = None
    board_id: ObjectId | None = Field(default=None, description="the board it is filed on (`board_…`)")
    assigned_agent_id: ObjectId | None = Field(default=None, description="the agent that works on it (`agent_…`)")
    priority: Priority | None = None
    due_date: datetime | None = Field(default=None, description="RFC 3339, years 1900 to 9000; without a zone it is UTC")
    tags: Tags | None = None
    requires_approval: bool | None = Field(default=None, description="finished work waits in `review` for approval")
    parent_task_id: ObjectId | None = Field(default=None, description="makes it a sub-task of that task")
    metadata: dict[str, str] | None = None

    _metadata = field_validator("metadata")(lambda cls, v: check_metadata(v))
    _due = field_validator("due_date")(lambda cls, v: _plausible(v))


def _plausible(moment: datetime | None) -> datetime | None:
    """A date the fixed-width UTC form holds (0001 or 9999 may not survive the move to UTC)."""
    if moment is not None and not 1900 <= moment.year <= 9000:
        raise ValueError("a due date lies between the years 1900 and 9000")
    return moment


class TaskCreate(_TaskFields):
    title: Title
    status: SettableStatus | None = Field(default=None, description="default `todo`")


class TaskUpdate(_TaskFields):
    """Only the fields sent change; `null` clears an optional one. `metadata` and `tags` are
    replaced whole."""

    title: Title | None = None
    status: SettableStatus | None = Field(
        default=None, description="`approved` and `rejected` are given by the approve and reject endpoints"
    )
    version: Annotated[int, Field(ge=1, le=2**31)] | None = Field(
        default=None, description="the version edited; another current version is a 409"
    )

    _title = field_validator("title", "status", "priority", "requires_approval")(lambda cls, v: not_null(v))

    def changes(self) -> dict[str, Any]:
        return {name: value for name, value in self.given().items() if name != "version"}


class TaskExecute(Strict):
    environment_id: ObjectId | None = Field(
        default=None, description="where the run's session runs; default: the workspace's default environment"
    )


Comment = Annotated[str, Field(min_length=1, max_length=20_000)]


class TaskApprove(Strict):
    comment: Comment | None = None


class TaskReject(Strict):
    comment: Comment = Field(description="sent to the run's session as feedback")


class CommentCreate(Strict):
    content: Comment = Field(description="`@Name` mentions a member or an agent of the workspace")


class DepartmentCreate(Strict):
    name: Name
    description: Description | None = None
    emoji: Annotated[str, Field(max_length=16)] | None = None
    sort_order: Annotated[int, Field(ge=-(2**31), le=2**31)] | None = None
    metadata: dict[str, str] | None = None

    _metadata = field_validator("metadata")(lambda cls, v: check_metadata(v))


class DepartmentUpdate(DepartmentCreate):
    name: Name | None = None  # type: ignore[assignment]

    _name = field_validator("name")(lambda cls, v: not_null(v))


class BoardCreate(Strict):
    name: Name
    description: Description | None = None
    department_id: ObjectId | None = Field(default=None, description="the department it belongs to (`dept_…`)")
    metadata: dict[str, str] | None = None

    _metadata = field_validator("metadata")(lambda cls, v: check_metadata(v))


class BoardUpdate(BoardCreate):
    name: Name | None = None  # type: ignore[assignment]

    _name = field_validator("name")(lambda cls, v: not_null(v))


# -- responses -----------------------------------------------------------------------------


class Task(Described):
    type: Literal["task"]
    id: str
    title: str
    description: str | None
    board_id: str | None
    assigned_agent_id: str | None
    priority: Priority
    status: Status
    due_date: datetime | None
    tags: list[str]
    requires_approval: bool
    parent_task_id: str | None
    metadata: dict[str, str]
    session_id: str | None = Field(description="the session of the last run (`execute`)")
    environment_id: str | None = Field(description="the environment the last run's session runs in")
    result: str | None = Field(description="the last run's final agent message")
    version: int = Field(description="raised by every change; send it back to edit this version")
    created_at: datetime
    updated_at: datetime
    archived_at: datetime | None


class TaskPage(Paged):
    data: list[Task]


class TaskDeleted(Described):
    id: str
    type: Literal["task_deleted"]


class Department(Described):
    type: Literal["department"]
    id: str
    name: str
    description: str | None
    emoji: str | None
    sort_order: int
    metadata: dict[str, str]
    created_at: datetime
    updated_at: datetime
    archived_at: datetime | None


class DepartmentPage(Paged):
    data: list[Department]


class Board(Described):
    type: Literal["board"]
    id: str
    name: str
    description: str | None
    department_id: str | None
    metadata: dict[str, str]
    created_at: datetime
    updated_at: datetime
    archived_at: datetime | None


class BoardPage(Paged):
    data: list[Board]


class Actor(Described):
    type: Literal["user", "api_key", "agent"]
    id: str


class Mention(Described):
    type: Literal["user", "agent"]
    id: str
    name: str


class TaskComment(Described):
    type: Literal["task_comment"]
    id: str
    task_id: str
    author: Actor
    content: str
    mentions: list[Mention]
    reply_to: str | None = Field(description="the comment an agent's reply answers")
    created_at: datetime


class TaskCommentPage(Paged):
    data: list[TaskComment]


class MentionSuggestion(Mention):
    handle: str = Field(description="what to write after the `@`")


class MentionSuggestions(Described):
    data: list[MentionSuggestion]
