"""/v1/organizations/rate_limits and /v1/organizations/workspaces/{id}/rate_limits: the limits
Agentry meters requests by, read and (per workspace) set as the SDK calls them."""

from __future__ import annotations

import falcon

from application.rate_limit_config import RateLimitConfig
from interfaces.http.common import int_param, parse, principal, run
from interfaces.http.schemas import WorkspaceRateLimitUpdate

GROUP_TYPES = ("batch", "files", "model_group", "skills", "token_count", "web_search")


def _group_type(req: falcon.asgi.Request) -> str | None:
    value = req.get_param("group_type") or None
    if value is not None and value not in GROUP_TYPES:
        raise falcon.HTTPBadRequest(description=f"group_type must be one of {', '.join(GROUP_TYPES)}")
    return value


class OrganizationRateLimitsResource:
    def __init__(self, config: RateLimitConfig) -> None:
        self._config = config

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        resp.media = await run(
            self._config.organization_list,
            principal(req),
            _group_type(req),
            req.get_param("model") or None,
            int_param(req, "limit", None, 1, 1000),
            req.get_param("page") or None,
        )


class WorkspaceRateLimitsResource:
    """Routes: the workspace's list, and by suffix one entry (update)."""

    def __init__(self, config: RateLimitConfig) -> None:
        self._config = config

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, workspace_id: str) -> None:
        resp.media = await run(
            self._config.workspace_list,
            principal(req),
            workspace_id,
            _group_type(req),
            req.get_param_as_bool("include_inherited", default=False),
            int_param(req, "limit", None, 1, 1000),
            req.get_param("page") or None,
        )

    async def on_post_item(
        self, req: falcon.asgi.Request, resp: falcon.asgi.Response, workspace_id: str, rate_limit_id: str
    ) -> None:
        body = await parse(req, WorkspaceRateLimitUpdate)
        changes = [(limit.type, limit.value) for limit in body.limits]
        resp.media = await run(self._config.update, principal(req), workspace_id, rate_limit_id, changes)
