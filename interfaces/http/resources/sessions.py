"""/v1/sessions: create, list, retrieve, update, archive, delete."""

from __future__ import annotations

import falcon

from interfaces.http.common import (
    Services,
    bool_param,
    choice_param,
    int_param,
    limit_param,
    list_params,
    parse,
    principal,
    run,
    send,
    settle,
    timestamp_param,
)
from interfaces.http.schemas import SessionCreate, SessionUpdate

STATUSES = ("rescheduling", "running", "idle", "terminated")


class Sessions:
    def __init__(self, services: Services) -> None:
        self._s = services

    async def on_post(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        body = await parse(req, SessionCreate)
        fields = body.model_dump(exclude_unset=True)
        view, position = await run(self._s.sessions.create, principal(req), fields)
        await settle(self._s, position)
        send(resp, view)

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        statuses = list_params(req, "statuses")
        unknown = [status for status in statuses if status not in STATUSES]
        if unknown:
            raise falcon.HTTPBadRequest(description=f"unknown status {unknown[0]!r}")
        after = _bound(req, "gt", "gte")
        before = _bound(req, "lt", "lte")
        page = await run(
            self._s.read_models.sessions,
            principal(req).tenant_id,
            limit_param(req),
            req.get_param("page"),
            bool_param(req, "include_archived"),
            choice_param(req, "order", ("asc", "desc"), "desc"),
            req.get_param("agent_id"),
            int_param(req, "agent_version", None, 1, 2**31 - 1),  # a PostgreSQL INTEGER column
            statuses or None,
            after,
            before,
        )
        send(resp, {"data": page.data, "next_page": page.next_page, "prev_page": None})


def _bound(req: falcon.asgi.Request, exclusive: str, inclusive: str) -> tuple[str, bool] | None:
    for op, is_inclusive in ((inclusive, True), (exclusive, False)):
        value = timestamp_param(req, op)
        if value:
            return value, is_inclusive
    return None


class Session:
    def __init__(self, services: Services) -> None:
        self._s = services

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, session_id: str) -> None:
        send(resp, await run(self._s.sessions.retrieve, principal(req), session_id))

    async def on_post(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, session_id: str) -> None:
        body = await parse(req, SessionUpdate)
        view, position = await run(self._s.sessions.update, principal(req), session_id, body.given())
        await settle(self._s, position)
        send(resp, view)

    async def on_delete(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, session_id: str) -> None:
        position = await run(self._s.sessions.delete, principal(req), session_id)
        await settle(self._s, position)
        send(resp, {"id": session_id, "type": "session_deleted"})


class SessionArchive:
    def __init__(self, services: Services) -> None:
        self._s = services

    async def on_post(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, session_id: str) -> None:
        view, position = await run(self._s.sessions.archive, principal(req), session_id)
        await settle(self._s, position)
        send(resp, view)
