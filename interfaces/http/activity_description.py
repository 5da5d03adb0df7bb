"""The activity feed in the API description (``api_description.OPERATIONS`` takes it in one
line)."""

from __future__ import annotations

from interfaces.http.activity_schemas import ActivityPage
from interfaces.http.api_description import LIMIT, ORDER_DESC, PAGE, Operation, Param, created_at

_TEXT = {"type": "string", "maxLength": 128}
_DAY_OR_TIME = {
    "anyOf": [{"type": "string", "format": "date"}, {"type": "string", "format": "date-time"}],
}
FILTERS = (
    Param("entity_type", "query", _TEXT, "only entries about this kind of entity (`task`, `agent`, `session` …)"),
    Param("entity_id", "query", _TEXT, "only entries about this entity (`agent_…`, `sesn_…` …)"),
    Param("action", "query", _TEXT, "only this action (`task.created`, `agent.updated`, `user.message` …)"),
    Param("agent_id", "query", _TEXT, "only entries concerning this agent (its own, its sessions')"),
    Param("user_id", "query", _TEXT, "only entries by or about this user"),
    Param("date_from", "query", _DAY_OR_TIME, "from this date (its start, UTC) or moment on"),
    Param("date_to", "query", _DAY_OR_TIME, "up to this date (all of it, UTC) or moment"),
)

ACTIVITY_OPERATIONS: tuple[Operation, ...] = (
    Operation(
        "get", "/v1/activity", "listActivity", "The audit trail: every recorded change, newest first", "activity",
        ActivityPage, params=(LIMIT, PAGE, ORDER_DESC, *created_at("gt", "gte", "lt", "lte"), *FILTERS),
        errors=(400,),
        description=(
            "One entry per event the workspace's aggregates recorded (agents, sessions and their log, "
            "environments, vaults, API keys, tasks …); an organization admin also sees the organization's "
            "own (users, invites). Filters combine with AND."
        ),
    ),
    Operation(
        "get", "/v1/dashboard/activity", "dashboardActivity", "The 20 most recent activity entries", "activity",
        ActivityPage, params=(PAGE,), errors=(400,),
        description="Pages of 20, newest first; a `next_page` continues here or at `GET /v1/activity`.",
    ),
)
