"""/v1/organizations/workspaces and /v1/organizations/api_keys, as
``client.beta.organization.workspaces`` and ``client.beta.organization.api_keys`` call them,
plus ``POST /v1/organizations/api_keys`` (Agentry's: the SDK has no create), which shows the
new key once, as ``key``. Lists page as the SDK's ``SyncPage``: ``after_id`` / ``before_id``,
``has_more``, ``first_id`` / ``last_id``."""

from __future__ import annotations

import falcon

from application.api_keys import ApiKeyService
from application.workspaces import WorkspaceService
from domain.workspaces import DEFAULT_WORKSPACE
from interfaces.http.common import (
    ReadYourWrites,
    bool_param,
    limit_param,
    list_params,
    optional_choice_param,
    parse,
    principal,
    run,
)
from interfaces.http.schemas import ApiKeyCreate, ApiKeyUpdate, WorkspaceCreate, WorkspaceUpdate
from projections.queries import ReadModels

MOST_IDS = 100


class WorkspacesResource:
    """Routes: ``/v1/organizations/workspaces`` and, by suffix, ``/{workspace_id}`` (item),
    ``/archive``."""

    def __init__(self, workspaces: WorkspaceService, lists: ReadModels, written: ReadYourWrites) -> None:
        self._workspaces = workspaces
        self._lists = lists
        self._written = written

    async def on_post(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        body = await parse(req, WorkspaceCreate)
        fields = body.model_dump(exclude_unset=True, include={"name", "display_color", "tags"})
        await self._written.answer(resp, await run(self._workspaces.create, principal(req), fields))

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        who = principal(req)
        ids = list_params(req, "ids")
        if len(ids) > MOST_IDS:
            raise falcon.HTTPBadRequest(description=f"ids may name at most {MOST_IDS} workspaces")
        limit = limit_param(req)
        page = await run(
            self._lists.workspaces,
            who.workspaces,
            limit,
            req.get_param("after_id") or None,
            req.get_param("before_id") or None,
            bool_param(req, "include_archived"),
            ids or None,
        )
        first_page = not req.get_param("after_id") and not req.get_param("before_id")
        reaches_default = who.workspaces is None or DEFAULT_WORKSPACE in who.workspaces
        if bool_param(req, "include_default") and first_page and reaches_default and (not ids or DEFAULT_WORKSPACE in ids):
            # The default workspace has no row: it leads the first page.
            led = [await run(self._workspaces.retrieve, who, DEFAULT_WORKSPACE), *page["data"]]
            if len(led) > limit:
                page["has_more"] = True  # the row the default pushed off comes on the next page
            page["data"] = led[:limit]
            page["first_id"] = DEFAULT_WORKSPACE
            page["last_id"] = page["data"][-1]["id"]
        resp.media = page

    async def on_get_item(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, workspace_id: str) -> None:
        resp.media = await run(self._workspaces.retrieve, principal(req), workspace_id)

    async def on_post_item(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, workspace_id: str) -> None:
        body = await parse(req, WorkspaceUpdate, optional=True)
        await self._written.answer(resp, await run(self._workspaces.update, principal(req), workspace_id, body.given()))

    async def on_post_archive(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, workspace_id: str) -> None:
        await self._written.answer(resp, await run(self._workspaces.archive, principal(req), workspace_id))


class ApiKeysResource:
    """Routes: ``/v1/organizations/api_keys`` and, by suffix, ``/{api_key_id}`` (item)."""

    def __init__(self, api_keys: ApiKeyService, lists: ReadModels, written: ReadYourWrites) -> None:
        self._api_keys = api_keys
        self._lists = lists
        self._written = written

    async def on_post(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        body = await parse(req, ApiKeyCreate)
        await self._written.answer(resp, await run(self._api_keys.create, principal(req), body.given()))

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        who = principal(req)
        resp.media = await run(
            self._lists.api_keys,
            who.workspaces,
            limit_param(req),
            req.get_param("after_id") or None,
            req.get_param("before_id") or None,
            req.get_param("workspace_id") or None,
            optional_choice_param(req, "status", ("active", "inactive", "archived", "expired")),
            req.get_param("created_by_user_id") or None,
        )

    async def on_get_item(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, api_key_id: str) -> None:
        resp.media = await run(self._api_keys.retrieve, principal(req), api_key_id)

    async def on_post_item(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, api_key_id: str) -> None:
        body = await parse(req, ApiKeyUpdate, optional=True)
        await self._written.answer(resp, await run(self._api_keys.update, principal(req), api_key_id, body.given()))
