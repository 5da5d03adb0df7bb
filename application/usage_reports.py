"""Usage and cost reports, as ``client.beta.organization.analytics`` reads them: what a report
query may ask, whose usage the caller sees, and how a request's recorded cost divides among
its token types. The rows themselves come from the usage projection (projections/usage.py),
which fills them from the runtime's own records of every model request.

What a request records, and so what a report can say:
- tokens (``span.model_request_end``'s ``model_usage``, a grader's ``span.outcome_evaluation_end``
  ``usage``), and the request's list cost (``Session.RequestCosted``: micro-USD at the prices of
  application/runtime/pricing.py for the model actually called, fixed when the request ran). A
  model without a list price costs 0: its requests and tokens are counted, its ``amount`` is
  ``"0"``;
- the session's workspace, agent, environment and the model the agent names (a provider's
  model name, or a model card's ``model_id``), with its ``speed``; the context-window tier from
  the request's own input tokens.
Agentry records no Claude Tag, Slack, RBAC group, product, region, service tier, user, actor
or deployment for a request: grouped by one of those a row says ``null``, and a filter on one
matches no usage (``inference_geos[]=not_available``, the rows with no region, matches all).
No API key is recorded either (a session does not keep the key that started it):
``api_key_id`` is ``null``, and ``api_key_ids[]`` matches usage only through its empty entry.

Tenancy: an organization admin (the admin key, an admin's login) reads every workspace's usage;
anyone else reads the workspaces it can act in — an API key its own, a person the workspaces they
are a member of. ``workspace_ids[]`` narrows that, never widens it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from application.errors import Invalid
from application.runtime.pricing import price_of
from application.tenancy import Principal

# -- time ------------------------------------------------------------------------------------

WIDTHS: dict[str, int] = {"1m": 60, "1h": 3600, "1d": 86400}
# Buckets per page of the bucketed (legacy) reports: (default, most).
BUCKET_LIMITS: dict[str, tuple[int, int]] = {"1d": (7, 31), "1h": (24, 168), "1m": (60, 256)}
MAX_RANGE = timedelta(days=31)
MAX_MINUTE_RANGE = timedelta(hours=24)  # the row reports with one-minute buckets
# Rows per page of the row reports (usage, cost).
ROW_LIMIT_DEFAULT, ROW_LIMIT_MAX = 20, 1000
MAX_GROUPS_PER_BUCKET = 100
MAX_GROUP_BY = 5

# -- dimensions ------------------------------------------------------------------------------

# What every usage row records (``workspace_id`` is the row's tenant). An unknown value is
# stored as "" (SQL unique keys treat NULLs as distinct) and read back as null.
RECORDED = ("workspace_id", "model", "agent_id", "session_id", "environment_id", "api_key_id", "speed", "context_window")

LEGACY_USAGE_GROUP_BY = (
    "claude_tag_category", "claude_tag_user_id", "context_window", "inference_geo", "model", "product",
    "rbac_group_id", "slack_channel_id", "speed",
)  # fmt: skip
# Agentry's own groupings on the bucketed reports (named as the row reports name them).
AGENTRY_GROUP_BY = ("agent_id", "workspace_id", "api_key_id", "environment_id", "session_id")
COST_BREAKDOWN = ("cost_type", "token_type")
LEGACY_COST_GROUP_BY = (*LEGACY_USAGE_GROUP_BY, *COST_BREAKDOWN)
USAGE_GROUP_BY = (
    "actor", "actor_type", "agent_id", "api_key_id", "claude_tag_category", "claude_tag_user_id", "context_window",
    "deployment_id", "environment_id", "inference_geo", "model", "organization_id", "product", "rbac_group_id",
    "service_tier", "session_id", "slack_channel_id", "speed", "user_profile_id", "workspace_id",
)  # fmt: skip
COST_GROUP_BY = (*USAGE_GROUP_BY, *COST_BREAKDOWN)

# Enumerated filter values, as the SDK's types spell them.
CONTEXT_WINDOWS = ("0-200k", "200k-1M")
SPEEDS = ("fast", "standard")
INFERENCE_GEOS = ("global", "not_available", "us")
CLAUDE_TAG_CATEGORIES = ("engaged", "proactive", "scheduled", "monitoring", "dm")
LEGACY_PRODUCTS = (
    "chat", "chat_cowork_unified", "claude-tag", "claude_code", "claude_design", "claude_in_chrome", "cowork",
    "office_agent",
)  # fmt: skip
PRODUCTS = (*LEGACY_PRODUCTS, "claude_tag")
SERVICE_TIERS = ("batch", "flex", "flex_discount", "priority", "priority_on_demand", "standard")
ACTOR_TYPES = ("user_actor", "service_account_actor", "api_actor", "federated_actor")
USAGE_ORDER_BY = ("output_tokens", "requests", "time", "total_tokens", "uncached_input_tokens")
COST_ORDER_BY = ("amount", "list_amount", "time")

LONG_CONTEXT_TOKENS = 200_000


def context_window(input_tokens: int) -> str:
    """The pricing tier of a request whose prompt (uncached, cached and cache-written) held
    ``input_tokens``."""
    return "200k-1M" if input_tokens > LONG_CONTEXT_TOKENS else "0-200k"


# -- cost by token type ----------------------------------------------------------------------

TOKEN_TYPES = (
    "uncached_input_tokens",
    "output_tokens",
    "cache_read_input_tokens",
    "cache_creation.ephemeral_5m_input_tokens",
    "cache_creation.ephemeral_1h_input_tokens",
)
# A model without a list price still has a recorded cost of 0; where a split is asked of a
# cost the price table cannot explain (a model card's handle), these relative prices apply.
STANDARD_OUTPUT_RATIO = 5.0
CACHE_READ_RATIO = 0.1
CACHE_WRITE_RATIO = 1.25  # a five-minute cache write
CACHE_WRITE_1H_RATIO = 2.0


def split_cost(model: str, tokens: Mapping[str, int], total_micros: int) -> dict[str, int]:
    """``total_micros`` (the cost the runtime recorded for a request) divided among the token
    types of ``tokens`` by their list prices: the model's own (application/runtime/pricing.py)
    or, for a name the table does not know, the standard proportions (output 5×, cache read
    0.1×, cache write 1.25× input). The parts always add up to the total."""
    prices = price_of(model)
    input_price, output_price = prices if prices is not None else (1.0, STANDARD_OUTPUT_RATIO)
    weights = {
        "uncached_input_tokens": input_price,
        "output_tokens": output_price,
        "cache_read_input_tokens": input_price * CACHE_READ_RATIO,
        "cache_creation.ephemeral_5m_input_tokens": input_price * CACHE_WRITE_RATIO,
        "cache_creation.ephemeral_1h_input_tokens": input_price * CACHE_WRITE_1H_RATIO,
    }
    shares = {name: tokens.get(name, 0) * weights[name] for name in TOKEN_TYPES}
    whole = sum(shares.values())
    if total_micros <= 0 or whole <= 0:
        parts = dict.fromkeys(TOKEN_TYPES, 0)
        parts["uncached_input_tokens"] = max(total_micros, 0)
        return parts
    exact = {name: total_micros * share / whole for name, share in shares.items()}
    parts = {name: int(value) for name, value in exact.items()}
    # The micro-dollars lost to rounding down go to the largest remainders (ties by order).
    leftover = total_micros - sum(parts.values())
    for name in sorted(TOKEN_TYPES, key=lambda name: (parts[name] - exact[name], TOKEN_TYPES.index(name)))[:leftover]:
        parts[name] += 1
    return parts


# -- who sees what ---------------------------------------------------------------------------


def visible_workspaces(who: Principal) -> frozenset[str] | None:
    """The workspaces whose usage ``who`` may read; None for every one (organization admins)."""
    if who.organization_admin:
        return None
    if who.workspaces is not None:
        return who.workspaces
    return frozenset({who.tenant_id})


# -- the query -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Filters:
    """The recorded dimensions a report is narrowed to (None: any value). ``api_key_ids`` may
    hold "" for usage no API key is recorded for. ``nothing`` is set by a filter on a
    dimension Agentry does not record (it matches no usage)."""

    models: tuple[str, ...] | None = None
    agent_ids: tuple[str, ...] | None = None
    workspace_ids: tuple[str, ...] | None = None
    api_key_ids: tuple[str, ...] | None = None
    environment_ids: tuple[str, ...] | None = None
    session_ids: tuple[str, ...] | None = None
    speeds: tuple[str, ...] | None = None
    context_windows: tuple[str, ...] | None = None
    nothing: bool = False

    def by_dimension(self) -> dict[str, tuple[str, ...]]:
        given = {
            "model": self.models,
            "agent_id": self.agent_ids,
            "workspace_id": self.workspace_ids,
            "api_key_id": self.api_key_ids,
            "environment_id": self.environment_ids,
            "session_id": self.session_ids,
            "speed": self.speeds,
            "context_window": self.context_windows,
        }
        return {name: values for name, values in given.items() if values is not None}


@dataclass(frozen=True)
class ReportQuery:
    """One report request, validated. ``width`` is the bucket width (None: a row report over
    the whole range); ``limit`` counts buckets (bucketed reports) or rows (row reports)."""

    starting_at: datetime
    ending_at: datetime
    width: str | None
    group_by: tuple[str, ...]
    filters: Filters = field(default_factory=Filters)
    limit: int = ROW_LIMIT_DEFAULT
    page: str | None = None
    order_by: str = "total_tokens"
    descending: bool = True
    # ``ending_at`` was omitted (it is now): a row report then runs to the end of the current
    # hour, so usage of the last minutes shows (Agentry's rows are live).
    open_ended: bool = False

    @property
    def start(self) -> int:
        """The first bucket's start (epoch seconds): ``starting_at`` rounded down to the
        width, or to the hour without one."""
        step = WIDTHS.get(self.width or "1h", 3600)
        epoch = _epoch(self.starting_at)
        return epoch - epoch % step

    @property
    def end(self) -> int:
        """The end of the last bucket (exclusive): ``ending_at`` rounded up to the width, so
        every bucket the range touches is whole; without a width rounded down to the hour (up
        when it was omitted)."""
        epoch = _epoch(self.ending_at)
        if self.width is None:
            return max(self.start, epoch + (-epoch) % 3600 if self.open_ended else epoch - epoch % 3600)
        step = WIDTHS[self.width]
        return max(self.start, epoch + (-epoch) % step)


def _epoch(moment: datetime) -> int:
    return int((moment - EPOCH).total_seconds() // 1)


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def report_range(starting_at: datetime, ending_at: datetime | None, now: datetime, width: str | None = None) -> datetime:
    """The range's end, checked: ``ending_at`` as given (not before ``starting_at``) or, when
    omitted, the earlier of now and ``starting_at`` + 31 days; at most 31 days (24 hours in
    one-minute buckets of a row report)."""
    if ending_at is None:
        try:
            latest = starting_at + MAX_RANGE
        except OverflowError:
            latest = datetime.max.replace(tzinfo=UTC)
        return max(starting_at, min(now, latest))
    if ending_at < starting_at:
        raise Invalid("ending_at must not be before starting_at")
    if ending_at - starting_at > MAX_RANGE:
        raise Invalid("the range from starting_at to ending_at may span at most 31 days")
    return ending_at


def bucket_limit(width: str, limit: int | None) -> int:
    default, most = BUCKET_LIMITS[width]
    return default if limit is None else min(limit, most)


def check_group_by(group_by: list[str], allowed: tuple[str, ...], most: int | None = None) -> tuple[str, ...]:
    unknown = [name for name in group_by if name not in allowed]
    if unknown:
        raise Invalid(f"group_by[] value {unknown[0][:64]!r} is not one of {', '.join(allowed)}")
    chosen = tuple(dict.fromkeys(group_by))
    if most is not None and len([name for name in chosen if name not in COST_BREAKDOWN]) > most:
        raise Invalid(f"group_by[] takes at most {most} dimensions (cost_type and token_type aside)")
    return chosen
