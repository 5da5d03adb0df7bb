"""The configured rate limits, as the SDK's ``organization.rate_limits`` and
``organization.workspaces.rate_limits`` read and set them.

Agentry meters one thing, requests per minute, in two groups: per workspace (each
workspace gets the organization's value unless it sets its own) and per caller (an API key or
a person; the organization's value only). Each group is one entry of the organization's
list; a workspace's list shows its own value beside the organization's."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from application.commands import load_as
from application.errors import Forbidden, Invalid, NotFound
from application.ports import EventStore
from application.rate_limits import Limits
from application.retry import retry_on_race
from application.tenancy import Principal
from application.verified_keys import RecentlyVerified
from domain.rate_limits import REQUESTS_PER_MINUTE, WorkspaceRateLimits, limits_stream_id
from projections.queries import BadPageToken, decode_token, encode_token

WORKSPACE_ENTRY = "rl_agentry_workspace_requests"
CALLER_ENTRY = "rl_agentry_caller_requests"
ENTRIES = (WORKSPACE_ENTRY, CALLER_ENTRY)
GROUPS = {
    WORKSPACE_ENTRY: {"type": "model_group", "id": "rlg_agentry_workspace", "display_name": "Agentry API, per workspace"},
    CALLER_ENTRY: {"type": "model_group", "id": "rlg_agentry_caller", "display_name": "Agentry API, per API key or person"},
}
MAX_PAGE = 1000


class RateLimitConfig:
    def __init__(
        self,
        store: EventStore,
        limits: Limits,
        models_of: Callable[[Principal], list[str]],
        workspace_visible: Callable[[Principal, str], bool],
    ) -> None:
        self._store = store
        self._limits = limits
        self._models_of = models_of
        self._visible = workspace_visible
        # Every request reads its workspace's override: a few seconds' staleness in other
        # processes, none in this one (``update`` forgets its entry).
        self._overrides: RecentlyVerified[tuple[int | None]] = RecentlyVerified()

    # -- what metering reads ------------------------------------------------------------

    def knows(self, workspace_id: str) -> bool:
        """Whether ``override`` can answer without a store read."""
        return self._overrides.get(workspace_id) is not None

    def override(self, workspace_id: str) -> int | None:
        cached = self._overrides.get(workspace_id)
        if cached is not None:
            return cached[0]
        stored = load_as(self._store, limits_stream_id(workspace_id), WorkspaceRateLimits)
        value = None if stored is None else stored.overrides.get(REQUESTS_PER_MINUTE)
        self._overrides.keep(workspace_id, (value,))
        return value

    # -- the organization's list ---------------------------------------------------------

    def organization_list(
        self, who: Principal, group_type: str | None, model: str | None, limit: int | None, page: str | None
    ) -> dict[str, Any]:
        models = self._models_of(who)
        if model is not None and model not in models:
            raise NotFound(f"model {model!r} not found or has no rate limits")
        entries = [
            {
                "id": entry,
                "type": "rate_limit",
                "group": GROUPS[entry],
                "limits": _values(self._organization_value(entry)),
                "models": models,
            }
            for entry in ENTRIES
        ]
        return _page(_filtered(entries, group_type), limit, page)

    # -- a workspace's list and overrides --------------------------------------------------

    def workspace_list(
        self,
        who: Principal,
        workspace_id: str,
        group_type: str | None,
        include_inherited: bool,
        limit: int | None,
        page: str | None,
    ) -> dict[str, Any]:
        self._check_visible(who, workspace_id)
        models = self._models_of(who)
        entries = [self._workspace_entry(workspace_id, entry, models, include_inherited) for entry in ENTRIES]
        return _page(_filtered([entry for entry in entries if entry["limits"] or include_inherited], group_type), limit, page)

    def update(
        self, who: Principal, workspace_id: str, rate_limit_id: str, changes: list[tuple[str, int | None]]
    ) -> dict[str, Any]:
        self._check_visible(who, workspace_id)  # first: a foreign workspace is a 404, not a 403
        if not who.organization_admin:
            raise Forbidden("only an organization admin may change rate limits")
        if rate_limit_id not in ENTRIES:
            raise NotFound(f"rate limit {rate_limit_id!r} not found")
        if rate_limit_id != WORKSPACE_ENTRY:
            raise Invalid(f"{rate_limit_id} is the organization's own; a workspace can set only {WORKSPACE_ENTRY}")
        wanted = dict(changes)

        def attempt() -> None:
            stored = load_as(self._store, limits_stream_id(workspace_id), WorkspaceRateLimits)
            limits = stored or WorkspaceRateLimits(workspace_id=workspace_id)
            if limits.set_limits(wanted) or stored is None:
                self._store.save(limits)

        retry_on_race(attempt, key=workspace_id)
        self._overrides.drop(workspace_id)
        return self._workspace_entry(workspace_id, rate_limit_id, self._models_of(who), include_inherited=True)

    def _workspace_entry(
        self, workspace_id: str, entry: str, models: list[str], include_inherited: bool
    ) -> dict[str, Any]:
        organization = self._organization_value(entry)
        own = self.override(workspace_id) if entry == WORKSPACE_ENTRY else None
        values: list[dict[str, Any]] = []
        if own is not None:
            values.append(
                {"type": REQUESTS_PER_MINUTE, "value": own, "org_limit": organization, "source": {"type": "workspace"}}
            )
        elif include_inherited and organization is not None:
            values.append(
                {"type": REQUESTS_PER_MINUTE, "value": organization, "org_limit": organization, "source": {"type": "organization"}}
            )
        return {
            "type": "workspace_rate_limit",
            "rate_limit_id": entry,
            "workspace_id": workspace_id,
            "group": GROUPS[entry],
            "limits": values,
            "models": models,
        }

    def _organization_value(self, entry: str) -> int | None:
        value = (
            self._limits.workspace_requests_per_minute
            if entry == WORKSPACE_ENTRY
            else self._limits.caller_requests_per_minute
        )
        return value or None  # 0: no limit configured

    def _check_visible(self, who: Principal, workspace_id: str) -> None:
        if not self._visible(who, workspace_id):
            raise NotFound(f"workspace {workspace_id!r} not found")


def _values(value: int | None) -> list[dict[str, Any]]:
    return [] if value is None else [{"type": REQUESTS_PER_MINUTE, "value": value}]


def _filtered(entries: list[dict[str, Any]], group_type: str | None) -> list[dict[str, Any]]:
    return [entry for entry in entries if group_type is None or entry["group"]["type"] == group_type]


def _page(entries: list[dict[str, Any]], limit: int | None, page: str | None) -> dict[str, Any]:
    start = 0
    if page is not None:
        (start,) = decode_token(page, int)
        if start > len(ENTRIES):
            raise BadPageToken("invalid page token")
    size = min(limit or MAX_PAGE, MAX_PAGE)
    chosen = entries[start : start + size]
    more = start + size < len(entries)
    return {"data": chosen, "next_page": encode_token(start + size) if more else None}
