"""/v1/agents: create, list, retrieve (any version), update (optimistic), archive, versions."""

from __future__ import annotations

import falcon

from interfaces.http.common import (
    Services,
    bool_param,
    int_param,
    limit_param,
    parse,
    principal,
    run,
    send,
    settle,
    timestamp_param,
)
from interfaces.http.schemas import AgentCreate, AgentUpdate


class Agents:
    def __init__(self, services: Services) -> None:
        self._s = services

    async def on_post(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        body = await parse(req, AgentCreate)
        view, position = await run(self._s.agents.create, principal(req), body.given())
        await settle(self._s, position)
        send(resp, view)

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        page = await run(
            self._s.read_models.agents,
            principal(req).tenant_id,
            limit_param(req),
            req.get_param("page"),
            bool_param(req, "include_archived"),
            timestamp_param(req, "gte"),
            timestamp_param(req, "lte"),
        )
        send(resp, {"data": page.data, "next_page": page.next_page})


class Agent:
    def __init__(self, services: Services) -> None:
        self._s = services

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, agent_id: str) -> None:
        version = int_param(req, "version", None, 1, 2**31)
        send(resp, await run(self._s.agents.retrieve, principal(req), agent_id, version))

    async def on_post(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, agent_id: str) -> None:
        body = await parse(req, AgentUpdate)
        changes = body.given()
        expected = changes.pop("version", None)
        view, position = await run(self._s.agents.update, principal(req), agent_id, changes, expected)
        await settle(self._s, position)
        send(resp, view)


class AgentArchive:
    def __init__(self, services: Services) -> None:
        self._s = services

    async def on_post(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, agent_id: str) -> None:
        view, position = await run(self._s.agents.archive, principal(req), agent_id)
        await settle(self._s, position)
        send(resp, view)


class AgentVersions:
    def __init__(self, services: Services) -> None:
        self._s = services

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, agent_id: str) -> None:
        who = principal(req)
        await run(self._s.agents.retrieve, who, agent_id)  # 404 for an unknown agent
        page = await run(
            self._s.read_models.agent_versions, who.tenant_id, agent_id, limit_param(req), req.get_param("page")
        )
        send(resp, {"data": page.data, "next_page": page.next_page})
