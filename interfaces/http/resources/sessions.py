"""/v1/sessions: create, list, retrieve, update, archive, delete."""

from __future__ import annotations

import falcon

from application.sessions import SessionService
from interfaces.http.common import (
    ReadYourWrites,
    int_param,
    list_params,
    list_query,
    parse,
    principal,
    run,
    session_caller,
)
from interfaces.http.schemas import SessionCreate, SessionUpdate
from projections.queries import ReadModels

STATUSES = ("rescheduling", "running", "idle", "terminated")


class SessionsResource:
    """Routes: ``/v1/sessions`` and, by suffix, ``/{session_id}`` (item), ``/archive``."""

    def __init__(self, sessions: SessionService, lists: ReadModels, written: ReadYourWrites) -> None:
        self._sessions = sessions
        self._lists = lists
        self._written = written

    async def on_post(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        fields = (await parse(req, SessionCreate)).given()
        await self._written.answer(resp, await run(self._sessions.create, principal(req), fields))

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        statuses = list_params(req, "statuses")
        unknown = [status for status in statuses if status not in STATUSES]
        if unknown:
            raise falcon.HTTPBadRequest(description=f"unknown status {unknown[0]!r}")
        page = await run(
            self._lists.sessions,
            principal(req).tenant_id,
            list_query(req),
            agent_id=req.get_param("agent_id"),
            agent_version=int_param(req, "agent_version", None, 1, 2**31 - 1),  # a PostgreSQL INTEGER column
            statuses=statuses or None,
        )
        resp.media = page.envelope()

    async def on_get_item(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, session_id: str) -> None:
        resp.media = await run(self._sessions.retrieve, session_caller(req, session_id), session_id)

    async def on_post_item(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, session_id: str) -> None:
        changes = (await parse(req, SessionUpdate)).given()
        await self._written.answer(resp, await run(self._sessions.update, principal(req), session_id, changes))

    async def on_delete_item(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, session_id: str) -> None:
        await self._written.answer(resp, await run(self._sessions.delete, principal(req), session_id))

    async def on_post_archive(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, session_id: str) -> None:
        await self._written.answer(resp, await run(self._sessions.archive, principal(req), session_id))
