"""/v1/environments: create, list, retrieve, update, archive, delete."""

from __future__ import annotations

import falcon

from interfaces.http.common import Services, bool_param, limit_param, parse, principal, run, send, settle
from interfaces.http.schemas import EnvironmentCreate, EnvironmentUpdate


class Environments:
    def __init__(self, services: Services) -> None:
        self._s = services

    async def on_post(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        body = await parse(req, EnvironmentCreate)
        view, position = await run(self._s.environments.create, principal(req), body.given())
        await settle(self._s, position)
        send(resp, view)

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        page = await run(
            self._s.read_models.environments,
            principal(req).tenant_id,
            limit_param(req),
            req.get_param("page"),
            bool_param(req, "include_archived"),
        )
        send(resp, {"data": page.data, "next_page": page.next_page})


class Environment:
    def __init__(self, services: Services) -> None:
        self._s = services

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, environment_id: str) -> None:
        send(resp, await run(self._s.environments.retrieve, principal(req), environment_id))

    async def on_post(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, environment_id: str) -> None:
        body = await parse(req, EnvironmentUpdate)
        view, position = await run(self._s.environments.update, principal(req), environment_id, body.given())
        await settle(self._s, position)
        send(resp, view)

    async def on_delete(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, environment_id: str) -> None:
        """Environments are never erased: deleting archives it, so history stays replayable."""
        _, position = await run(self._s.environments.archive, principal(req), environment_id)
        await settle(self._s, position)
        send(resp, {"id": environment_id, "type": "environment_deleted"})


class EnvironmentArchive:
    def __init__(self, services: Services) -> None:
        self._s = services

    async def on_post(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, environment_id: str) -> None:
        view, position = await run(self._s.environments.archive, principal(req), environment_id)
        await settle(self._s, position)
        send(resp, view)
