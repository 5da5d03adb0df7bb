"""/v1/sessions/{session_id}/resources: add, list, retrieve, update (a repository's token),
delete — the files, repositories and memory stores mounted into a session."""

from __future__ import annotations

import falcon

from application.sessions import SessionService
from domain.sessions import MAX_RESOURCES
from interfaces.http.common import ReadYourWrites, limit_param, parse, principal, run
from interfaces.http.schemas import SessionResourceAdd, SessionResourceUpdate
from projections.queries import ListQuery, ReadModels


class SessionResourcesResource:
    """Routes: ``/v1/sessions/{session_id}/resources`` and, by suffix, ``/{resource_id}`` (item)."""

    def __init__(self, sessions: SessionService, lists: ReadModels, written: ReadYourWrites) -> None:
        self._sessions = sessions
        self._lists = lists
        self._written = written

    async def on_post(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, session_id: str) -> None:
        sent = (await parse(req, SessionResourceAdd)).given()
        await self._written.answer(resp, await run(self._sessions.add_resource, principal(req), session_id, sent))

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, session_id: str) -> None:
        # The SDK documents an omitted limit as "all resources": a session holds at most
        # one page of them. Attachment order, oldest first; no archive or time filters.
        query = ListQuery(
            limit=limit_param(req, default=MAX_RESOURCES, most=MAX_RESOURCES),
            page=req.get_param("page") or None,
            descending=False,
        )
        await run(self._sessions.retrieve, principal(req), session_id)  # the caller's session, or a 404
        page = await run(self._lists.session_resources, session_id, query)
        resp.media = page.envelope()

    async def on_get_item(
        self, req: falcon.asgi.Request, resp: falcon.asgi.Response, session_id: str, resource_id: str
    ) -> None:
        resp.media = await run(self._sessions.resource, principal(req), session_id, resource_id)

    async def on_post_item(
        self, req: falcon.asgi.Request, resp: falcon.asgi.Response, session_id: str, resource_id: str
    ) -> None:
        token = (await parse(req, SessionResourceUpdate)).authorization_token
        written = await run(self._sessions.rotate_resource_token, principal(req), session_id, resource_id, token)
        await self._written.answer(resp, written)

    async def on_delete_item(
        self, req: falcon.asgi.Request, resp: falcon.asgi.Response, session_id: str, resource_id: str
    ) -> None:
        written = await run(self._sessions.remove_resource, principal(req), session_id, resource_id)
        await self._written.answer(resp, written)
