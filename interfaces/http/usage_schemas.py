"""Response bodies of the usage and cost reports, as ``client.beta.organization.analytics``
reads them (``usage_report``, ``cost_report``: time buckets of rows; ``usage``, ``cost``: rows).
Every dimension is null unless the report was grouped by it; Agentry's own groupings on the
bucketed reports (``agent_id``, ``workspace_id``, ``api_key_id``, ``environment_id``,
``session_id``) sit beside the SDK's fields."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from interfaces.http.responses import Described

ContextWindow = Literal["0-200k", "200k-1M"]
Geo = Literal["global", "us"]
Speed = Literal["fast", "standard"]
TokenType = Literal[
    "cache_creation.ephemeral_1h_input_tokens",
    "cache_creation.ephemeral_5m_input_tokens",
    "cache_read_input_tokens",
    "output_tokens",
    "uncached_input_tokens",
]
AMOUNT = "fractional US cents at list price (`\"1.2345\"`); `\"0\"` for a model without a list price"


class CacheCreation(Described):
    ephemeral_1h_input_tokens: int
    ephemeral_5m_input_tokens: int


class ServerToolUse(Described):
    web_search_requests: int


class AgentryGroups(Described):
    """Agentry's groupings on the bucketed reports (null unless in `group_by[]`)."""

    agent_id: str | None = Field(default=None, description="the agent whose session made the requests")
    workspace_id: str | None = None
    api_key_id: str | None = Field(default=None, description="always null: a session does not record its key")
    environment_id: str | None = None
    session_id: str | None = None


class LegacyDimensions(AgentryGroups):
    model: str | None = Field(default=None, description="the model the agent names (a model card's `model_id`, or a provider's model name)")
    product: str | None = None
    context_window: ContextWindow | None = None
    inference_geo: Geo | None = None
    speed: Speed | None = None
    claude_tag_category: str | None = None
    claude_tag_user_id: str | None = None
    rbac_group_id: str | None = None
    slack_channel_id: str | None = None


class UsageResult(LegacyDimensions):
    uncached_input_tokens: int
    cache_creation: CacheCreation
    cache_read_input_tokens: int
    output_tokens: int
    server_tool_use: ServerToolUse
    requests: int | None = Field(default=None, description="model requests that completed")


class UsageReportBucket(Described):
    starting_at: datetime
    ending_at: datetime
    results: list[UsageResult] = Field(description="empty when the bucket has no usage; one row per group (top 100)")


class UsageReportPage(Described):
    data: list[UsageReportBucket]
    has_more: bool
    next_page: str | None


class CostResult(LegacyDimensions):
    amount: str = Field(description=AMOUNT)
    list_amount: str
    currency: str
    requests: int | None = Field(default=None, description="null when grouped by cost_type or token_type")
    cost_type: Literal["code_execution", "tokens", "web_search"] | None = None
    token_type: TokenType | None = None


class CostReportBucket(Described):
    starting_at: datetime
    ending_at: datetime
    results: list[CostResult]


class CostReportPage(Described):
    data: list[CostReportBucket]
    has_more: bool
    next_page: str | None


class Group(Described):
    actor: dict[str, Any] | None = None
    actor_type: str | None = None
    agent_id: str | None = None
    api_key_id: str | None = None
    claude_tag_category: str | None = None
    claude_tag_user_id: str | None = None
    context_window: ContextWindow | None = None
    deployment_id: str | None = None
    environment_id: str | None = None
    inference_geo: Geo | None = None
    model: str | None = None
    organization_id: str | None = None
    product: str | None = None
    rbac_group_id: str | None = None
    service_tier: str | None = None
    session_id: str | None = None
    slack_channel_id: str | None = None
    speed: Speed | None = None
    user_profile_id: str | None = None
    workspace_id: str | None = None


class CostGroup(Group):
    cost_type: Literal["code_execution", "session_usage", "tokens", "web_search"] | None = None
    token_type: TokenType | None = None


class UsageMetrics(Described):
    uncached_input_tokens: int
    cache_creation: CacheCreation
    cache_read_input_tokens: int
    output_tokens: int
    server_tool_use: ServerToolUse
    total_tokens: int
    requests: int | None = None


class UsageItem(Described):
    starting_at: datetime
    ending_at: datetime
    group: Group
    usage: UsageMetrics


class UsagePage(Described):
    data: list[UsageItem]
    has_more: bool
    next_page: str | None


class CostMetrics(Described):
    amount: str = Field(description=AMOUNT)
    list_amount: str
    currency: str
    requests: int | None = None


class CostItem(Described):
    starting_at: datetime
    ending_at: datetime
    group: CostGroup
    cost: CostMetrics


class CostPage(Described):
    data: list[CostItem]
    has_more: bool
    next_page: str | None
