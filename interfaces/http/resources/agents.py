"""/v1/agents: create, list, retrieve (any version), update (optimistic), archive, versions."""

from __future__ import annotations

import falcon

from application.agents import AgentService
from interfaces.http.common import ReadYourWrites, int_param, list_query, parse, principal, run
from interfaces.http.schemas import AgentCreate, AgentUpdate
from projections.queries import ReadModels


class AgentsResource:
    """Routes: ``/v1/agents`` and, by suffix, ``/{agent_id}`` (item), ``/archive``, ``/versions``."""

    def __init__(self, agents: AgentService, lists: ReadModels, written: ReadYourWrites) -> None:
        self._agents = agents
        self._lists = lists
        self._written = written

    async def on_post(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        body = await parse(req, AgentCreate)
        await self._written.answer(resp, await run(self._agents.create, principal(req), body.given()))

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        placed = {name: value for name in ("department_id", "board_id") if (value := req.get_param(name))}
        page = await run(self._lists.agents, principal(req).tenant_id, list_query(req), **placed)
        resp.media = page.envelope()

    async def on_get_item(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, agent_id: str) -> None:
        version = int_param(req, "version", None, 1, 2**31)
        resp.media = await run(self._agents.retrieve, principal(req), agent_id, version)

    async def on_post_item(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, agent_id: str) -> None:
        changes = (await parse(req, AgentUpdate)).given()
        expected = changes.pop("version", None)
        written = await run(self._agents.update, principal(req), agent_id, changes, expected)
        await self._written.answer(resp, written)

    async def on_post_archive(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, agent_id: str) -> None:
        await self._written.answer(resp, await run(self._agents.archive, principal(req), agent_id))

    async def on_get_versions(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, agent_id: str) -> None:
        who = principal(req)
        await run(self._agents.retrieve, who, agent_id)  # 404 for an unknown agent
        page = await run(self._lists.agent_versions, who.tenant_id, agent_id, list_query(req))
        resp.media = page.envelope()
