"""/v1/environments: create, list, retrieve, update, archive, delete."""

from __future__ import annotations

import falcon

from application.environments import EnvironmentService
from interfaces.http.common import ReadYourWrites, list_query, parse, principal, run
from interfaces.http.schemas import EnvironmentCreate, EnvironmentUpdate
from projections.queries import ReadModels


class EnvironmentsResource:
    """Routes: ``/v1/environments`` and, by suffix, ``/{environment_id}`` (item), ``/archive``."""

    def __init__(self, environments: EnvironmentService, lists: ReadModels, written: ReadYourWrites) -> None:
        self._environments = environments
        self._lists = lists
        self._written = written

    async def on_post(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        body = await parse(req, EnvironmentCreate)
        await self._written.answer(resp, await run(self._environments.create, principal(req), body.given()))

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        page = await run(self._lists.environments, principal(req).tenant_id, list_query(req))
        resp.media = page.envelope()

    async def on_get_item(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, environment_id: str) -> None:
        resp.media = await run(self._environments.retrieve, principal(req), environment_id)

    async def on_post_item(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, environment_id: str) -> None:
        body = await parse(req, EnvironmentUpdate)
        written = await run(self._environments.update, principal(req), environment_id, body.given())
        await self._written.answer(resp, written)

    async def on_delete_item(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, environment_id: str) -> None:
        await self._written.answer(resp, await run(self._environments.delete, principal(req), environment_id))

    async def on_post_archive(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, environment_id: str) -> None:
        await self._written.answer(resp, await run(self._environments.archive, principal(req), environment_id))
