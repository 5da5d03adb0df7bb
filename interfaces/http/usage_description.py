"""The usage and cost reports in the API description (``api_description.OPERATIONS`` takes
them in one line), as ``client.beta.organization.analytics`` calls them."""

from __future__ import annotations

from typing import Any

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
    PRODUCTS,
    SERVICE_TIERS,
    SPEEDS,
    USAGE_GROUP_BY,
    USAGE_ORDER_BY,
    WIDTHS,
)
from interfaces.http import usage_schemas as reports
from interfaces.http.api_description import Operation, Param, integer

STRING: dict[str, Any] = {"type": "string"}
MOMENT: dict[str, Any] = {"type": "string", "format": "date-time"}


def values(name: str, description: str, choices: tuple[str, ...] | None = None) -> Param:
    items = {"type": "string", "enum": list(choices)} if choices else STRING
    return Param(f"{name}[]", "query", {"type": "array", "items": items}, description)


NEVER = "Agentry records none for a request: a value given matches no usage"
STARTING_AT = Param(
    "starting_at", "query", MOMENT, "start of the range, inclusive (rounded down to the bucket width)", required=True
)
ENDING_AT = Param(
    "ending_at", "query", MOMENT,
    "end of the range, exclusive (rounded up to the bucket width); default the earlier of now and starting_at + 31 days; "
    "at most 31 days after starting_at",
)  # fmt: skip
PAGE = Param("page", "query", STRING, "the `next_page` of the previous page")
COMMON_FILTERS = (
    values("models", "only these models (as agents name them)"),
    values("context_windows", "only these context-window tiers", CONTEXT_WINDOWS),
    values("speeds", "only these inference speeds", SPEEDS),
    values("inference_geos", "`not_available` matches all usage (no request records a region); others match none", INFERENCE_GEOS),
    values("claude_tag_categories", NEVER, CLAUDE_TAG_CATEGORIES),
    values("claude_tag_user_ids", NEVER),
    values("rbac_group_ids", NEVER),
    values("slack_channel_ids", NEVER),
)
AGENTRY_FILTERS = (
    values("agent_ids", "only usage of these agents' sessions"),
    values("workspace_ids", "only these workspaces (within those the caller may read)"),
    values("api_key_ids", "only these API keys; an empty entry matches usage with no recorded key (all of it today)"),
    values("environment_ids", "only sessions in these environments"),
    values("session_ids", "only these sessions"),
)


def bucketed(group_by: tuple[str, ...]) -> tuple[Param, ...]:
    return (
        STARTING_AT,
        ENDING_AT,
        Param("bucket_width", "query", {"type": "string", "enum": list(WIDTHS)}, "bucket width (default 1d)"),
        Param(
            "limit", "query", integer(1, 2**31),
            "buckets a page: 1d default 7, most 31; 1h default 24, most 168; 1m default 60, most 256 (larger is clamped)",
        ),  # fmt: skip
        PAGE,
        values("group_by", "break each bucket out by these (Agentry's own: " + ", ".join(AGENTRY_GROUP_BY) + ")", group_by),
        *COMMON_FILTERS,
        values("products", NEVER, LEGACY_PRODUCTS),
        values("user_ids", NEVER),
        *AGENTRY_FILTERS,
    )


def rows(group_by: tuple[str, ...], order_by: tuple[str, ...], default_order: str) -> tuple[Param, ...]:
    return (
        STARTING_AT,
        Param(
            "ending_at", "query", MOMENT,
            "end of the range, exclusive; required with time_bucket_width; at most 31 days after starting_at; "
            "without a bucket rounded down to the hour (omitted: through the current hour)",
        ),  # fmt: skip
        Param(
            "time_bucket_width", "query", {"type": "string", "enum": list(WIDTHS)},
            "one row per bucket and group (1m: the range at most 24 hours); without it a row covers the range in whole hours",
        ),  # fmt: skip
        Param("limit", "query", integer(1, 2**31), "rows a page (default 20; above 1000 is clamped)"),
        PAGE,
        Param("order", "query", {"type": "string", "enum": ["asc", "desc"]}, "default desc"),
        Param("order_by", "query", {"type": "string", "enum": list(order_by)}, f"row order (default {default_order})"),
        values("group_by", "one row per combination of these (at most 5, cost_type and token_type aside)", group_by),
        Param("exclude_deleted_users", "query", {"type": "boolean"}, "accepted; no usage is attributed to users"),
        *COMMON_FILTERS,
        *AGENTRY_FILTERS,
        values("products", NEVER, PRODUCTS),
        values("actor_ids", NEVER),
        values("actor_types", NEVER, ACTOR_TYPES),
        values("deployment_ids", NEVER),
        values("organization_ids", NEVER),
        values("service_tiers", NEVER, SERVICE_TIERS),
        values("user_profile_ids", NEVER),
    )


SCOPE = (
    "An organization admin reads every workspace's usage; any other caller the workspaces it may act in (an API "
    "key its own, a person those they are a member of). Usage is what the runtime recorded for each model request "
    "of a session (tokens from `span.model_request_end` and graders' `span.outcome_evaluation_end`), counted "
    "under the session's workspace, agent, environment and the model its agent names."
)
COST = (
    " Cost is each request's list cost as the runtime recorded it when the request ran (the prices of "
    "`application/runtime/pricing.py`); a model without a list price counts its requests and tokens at cost 0. "
    "`token_type` divides each request's cost by the model's list prices."
)

USAGE_OPERATIONS: tuple[Operation, ...] = (
    Operation(
        "get", "/v1/organizations/analytics/usage_report", "usageReport", "Token usage in time buckets", "analytics",
        reports.UsageReportPage, params=bucketed((*LEGACY_USAGE_GROUP_BY, *AGENTRY_GROUP_BY)), errors=(400,),
        description=SCOPE + " Every bucket of the page is listed, with no results where there was no usage.",
    ),
    Operation(
        "get", "/v1/organizations/analytics/cost_report", "costReport", "Cost in US cents in time buckets", "analytics",
        reports.CostReportPage, params=bucketed((*LEGACY_COST_GROUP_BY, *AGENTRY_GROUP_BY)), errors=(400,),
        description=SCOPE + COST,
    ),
    Operation(
        "get", "/v1/organizations/analytics/usage", "usage", "Token usage by dimension", "analytics",
        reports.UsagePage, params=rows(USAGE_GROUP_BY, USAGE_ORDER_BY, "total_tokens"), errors=(400,),
        description=SCOPE + " One row per combination of the `group_by[]` values (and bucket) with usage.",
    ),
    Operation(
        "get", "/v1/organizations/analytics/cost", "cost", "Cost in US cents by dimension", "analytics",
        reports.CostPage, params=rows(COST_GROUP_BY, COST_ORDER_BY, "amount"), errors=(400,),
        description=SCOPE + COST,
    ),
)
