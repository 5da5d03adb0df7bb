"""The usage and cost reports over HTTP, as ``client.beta.organization.analytics`` calls them:
``/v1/organizations/analytics/usage_report`` and ``/cost_report`` (time buckets of rows,
``bucket_width``), ``/usage`` and ``/cost`` (rows, optionally per ``time_bucket_width``). The
query parameters are parsed here; what they mean, and whose usage the caller sees, is
application/usage_reports.py."""

from __future__ import annotations

from datetime import UTC, datetime

import falcon
import falcon.asgi

from application.usage_reports import (
    ACTOR_TYPES,
    AGENTRY_GROUP_BY,
    CLAUDE_TAG_CATEGORIES,
    CONTEXT_WINDOWS,
    COST_GROUP_BY,
    COST_ORDER_BY,
    INFERENCE_GEOS,
    LEGACY_COST_GROUP_BY,
    LEGACY_PRODUCTS,
    LEGACY_USAGE_GROUP_BY,
    MAX_GROUP_BY,
    MAX_MINUTE_RANGE,
    PRODUCTS,
    ROW_LIMIT_DEFAULT,
    ROW_LIMIT_MAX,
    SERVICE_TIERS,
    SPEEDS,
    USAGE_GROUP_BY,
    USAGE_ORDER_BY,
    WIDTHS,
    Filters,
    ReportQuery,
    bucket_limit,
    check_group_by,
    report_range,
    visible_workspaces,
)
from interfaces.http.common import (
    bool_param,
    choice_param,
    int_param,
    list_params,
    optional_choice_param,
    principal,
    run,
)
from projections.usage import UsageReports

# The moments a report may name: wide enough for any real usage, narrow enough that bucket
# arithmetic never leaves the calendar.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)

# Filters on what Agentry records, by query name → dimension (Filters field).
RECORDED_FILTERS = {
    "models": "models",
    "agent_ids": "agent_ids",
    "workspace_ids": "workspace_ids",
    "api_key_ids": "api_key_ids",
    "environment_ids": "environment_ids",
    "session_ids": "session_ids",
}
# Filters on what Agentry never records (a value given matches no usage), with their
# allowed values where the SDK enumerates them.
LEGACY_UNRECORDED: dict[str, tuple[str, ...] | None] = {
    "claude_tag_categories": CLAUDE_TAG_CATEGORIES,
    "claude_tag_user_ids": None,
    "products": LEGACY_PRODUCTS,
    "rbac_group_ids": None,
    "slack_channel_ids": None,
    "user_ids": None,
}
ROW_UNRECORDED: dict[str, tuple[str, ...] | None] = {
    "actor_ids": None,
    "actor_types": ACTOR_TYPES,
    "claude_tag_categories": CLAUDE_TAG_CATEGORIES,
    "claude_tag_user_ids": None,
    "deployment_ids": None,
    "organization_ids": None,
    "products": PRODUCTS,
    "rbac_group_ids": None,
    "service_tiers": SERVICE_TIERS,
    "slack_channel_ids": None,
    "user_profile_ids": None,
}


def moment_param(req: falcon.asgi.Request, name: str, required: bool = False) -> datetime | None:
    raw = req.get_param(name)
    if raw is None or raw == "":
        if required:
            raise falcon.HTTPBadRequest(description=f"query parameter {name} is required (an RFC 3339 timestamp)")
        return None
    try:
        parsed = datetime.fromisoformat(raw.replace("Z", "+00:00").replace("z", "+00:00"))
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        parsed = parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        raise falcon.HTTPBadRequest(description=f"query parameter {name} is not an RFC 3339 timestamp") from None
    if not EARLIEST <= parsed < LATEST:
        raise falcon.HTTPBadRequest(description=f"query parameter {name} must lie between 1970 and 9000")
    return parsed


def values_param(req: falcon.asgi.Request, name: str, allowed: tuple[str, ...] | None = None) -> tuple[str, ...] | None:
    """``name[]`` (or ``name``) repeated; None when not given."""
    given = list_params(req, name)
    if not given:
        return None
    if allowed is not None:
        wrong = [value for value in given if value not in allowed]
        if wrong:
            raise falcon.HTTPBadRequest(description=f"{name}[] value {wrong[0][:64]!r} is not one of {', '.join(allowed)}")
    return tuple(given)


def filters(req: falcon.asgi.Request, unrecorded: dict[str, tuple[str, ...] | None]) -> Filters:
    recorded = {field: values_param(req, name) for name, field in RECORDED_FILTERS.items()}
    speeds = values_param(req, "speeds", SPEEDS)
    windows = values_param(req, "context_windows", CONTEXT_WINDOWS)
    geos = values_param(req, "inference_geos", INFERENCE_GEOS)
    nothing = geos is not None and "not_available" not in geos  # no request records a region
    for name, allowed in unrecorded.items():
        if values_param(req, name, allowed) is not None:
            nothing = True
    return Filters(**recorded, speeds=speeds, context_windows=windows, nothing=nothing)


def bucketed_query(req: falcon.asgi.Request, group_by: tuple[str, ...]) -> ReportQuery:
    """``usage_report`` / ``cost_report``: buckets of ``bucket_width`` (default 1d), ``limit``
    buckets a page."""
    starting_at = moment_param(req, "starting_at", required=True)
    assert starting_at is not None
    ending_at = moment_param(req, "ending_at")
    width = choice_param(req, "bucket_width", tuple(WIDTHS), "1d")
    limit = int_param(req, "limit", None, 1, 2**31)
    return ReportQuery(
        starting_at=starting_at,
        ending_at=report_range(starting_at, ending_at, datetime.now(UTC)),
        width=width,
        group_by=check_group_by(list_params(req, "group_by"), group_by),
        filters=filters(req, LEGACY_UNRECORDED),
        limit=bucket_limit(width, limit),
        page=req.get_param("page") or None,
    )


def row_query(req: falcon.asgi.Request, group_by: tuple[str, ...], order_by: tuple[str, ...], default_order: str) -> ReportQuery:
    """``usage`` / ``cost``: rows, ``limit`` a page (1–1000, default 20), ranked by ``order_by``."""
    starting_at = moment_param(req, "starting_at", required=True)
    assert starting_at is not None
    ending_at = moment_param(req, "ending_at")
    width = optional_choice_param(req, "time_bucket_width", tuple(WIDTHS))
    if width is not None and ending_at is None:
        raise falcon.HTTPBadRequest(description="ending_at is required when time_bucket_width is set")
    if width == "1m" and ending_at is not None and ending_at - starting_at > MAX_MINUTE_RANGE:
        raise falcon.HTTPBadRequest(description="with time_bucket_width=1m the range may span at most 24 hours")
    limit = min(int_param(req, "limit", ROW_LIMIT_DEFAULT, 1, 2**31) or ROW_LIMIT_DEFAULT, ROW_LIMIT_MAX)
    chosen_order = choice_param(req, "order_by", order_by, default_order)
    descending = choice_param(req, "order", ("asc", "desc"), "desc") == "desc"
    bool_param(req, "exclude_deleted_users")  # Agentry attributes no usage to users: nothing to exclude
    return ReportQuery(
        starting_at=starting_at,
        ending_at=report_range(starting_at, ending_at, datetime.now(UTC)),
        width=width,
        group_by=check_group_by(list_params(req, "group_by"), group_by, MAX_GROUP_BY),
        filters=filters(req, ROW_UNRECORDED),
        limit=limit,
        page=req.get_param("page") or None,
        order_by="amount" if chosen_order == "list_amount" else chosen_order,
        descending=descending,
        open_ended=ending_at is None,
    )


class UsageReportsResource:
    """Routes (by suffix): ``/v1/organizations/analytics/usage_report``, ``/cost_report``,
    ``/usage``, ``/cost``."""

    def __init__(self, reports: UsageReports) -> None:
        self._reports = reports

    async def on_get_usage_report(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        scope = visible_workspaces(principal(req))
        query = bucketed_query(req, (*LEGACY_USAGE_GROUP_BY, *AGENTRY_GROUP_BY))
        resp.media = await run(self._reports.usage_report, scope, query)

    async def on_get_cost_report(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        scope = visible_workspaces(principal(req))
        query = bucketed_query(req, (*LEGACY_COST_GROUP_BY, *AGENTRY_GROUP_BY))
        resp.media = await run(self._reports.cost_report, scope, query)

    async def on_get_usage(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        scope = visible_workspaces(principal(req))
        query = row_query(req, USAGE_GROUP_BY, USAGE_ORDER_BY, "total_tokens")
        resp.media = await run(self._reports.usage, scope, query)

    async def on_get_cost(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        scope = visible_workspaces(principal(req))
        query = row_query(req, COST_GROUP_BY, COST_ORDER_BY, "amount")
        resp.media = await run(self._reports.cost, scope, query)


def add_usage_routes(app: falcon.asgi.App, reports: UsageReports) -> None:
    resource = UsageReportsResource(reports)
    for report in ("usage_report", "cost_report", "usage", "cost"):
        app.add_route(f"/v1/organizations/analytics/{report}", resource, suffix=report)

