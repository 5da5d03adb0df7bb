"""/v1/sessions/{id}/events: list the public log, send user events, stream (SSE).

The stream follows the session first, then replays what the client missed, then tails —
re-reading the stream after the last seq it sent each time it is woken — so there is no gap
between replay and live and no event is sent twice."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import falcon
import orjson
from falcon.asgi import SSEvent

from application.errors import NotFound
from application.views import session_event_view
from domain.ids import stream_id
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
    timestamp_param,
)
from interfaces.http.schemas import SendEvents
from projections.queries import decode_token, encode_token

KEEPALIVE_SECONDS = 15.0
REPLAY_CHUNK = 100
LAST_EVENT_ID = re.compile(r"^[0-9]{1,18}$")


class SessionEvents:
    def __init__(self, services: Services) -> None:
        self._s = services

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, session_id: str) -> None:
        order = choice_param(req, "order", ("asc", "desc"), "asc")
        after_seq = int_param(req, "after_seq", 0, 0, 2**62) or 0
        before_seq = None
        token = req.get_param("page")
        if token:
            token_order, seq = decode_token(token, str, int)
            if token_order != order:
                raise falcon.HTTPBadRequest(description="the page token belongs to another ordering")
            if order == "asc":
                after_seq = max(after_seq, seq)
            else:
                before_seq = seq
        types = frozenset(list_params(req, "types")) or None
        window = {op: timestamp_param(req, op) for op in ("gt", "gte", "lt", "lte")}
        events, cursor = await run(
            self._s.sessions.list_events,
            principal(req),
            session_id,
            after_seq,
            limit_param(req, 100),
            order,
            types,
            before_seq,
            {op: moment for op, moment in window.items() if moment},
        )
        next_page = encode_token(order, cursor) if cursor is not None else None
        send(resp, {"data": events, "next_page": next_page})

    async def on_post(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, session_id: str) -> None:
        body = await parse(req, SendEvents)
        events = [event.model_dump(exclude_unset=True) for event in body.events]
        recorded = await run(self._s.sessions.send, principal(req), session_id, events)
        send(resp, {"data": recorded}, status=202)


class SessionEventStream:
    def __init__(self, services: Services) -> None:
        self._s = services

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, session_id: str) -> None:
        who = principal(req)
        session = await run(self._s.sessions.load, who, session_id, True)
        after_seq = self._start_after(req, session.last_seq)
        if session.deleted and after_seq >= session.last_seq:
            # Nothing left to send: a 200 that ends at once would make an EventSource
            # reconnect forever.
            raise NotFound(f"session {session_id!r} was deleted")
        resp.content_type = "text/event-stream"
        resp.set_header("Cache-Control", "no-cache")
        resp.set_header("X-Accel-Buffering", "no")
        resp.sse = self._events(who, session_id, after_seq)

    @staticmethod
    def _start_after(req: falcon.asgi.Request, current_seq: int) -> int:
        last_event_id = req.get_header("Last-Event-ID")
        if last_event_id is not None:
            if not LAST_EVENT_ID.match(last_event_id):
                raise falcon.HTTPBadRequest(description="Last-Event-ID must be an event seq (a whole number)")
            return int(last_event_id)
        after_seq = int_param(req, "after_seq", None, 0, 2**62)
        if after_seq is not None:
            return after_seq
        if bool_param(req, "replay"):
            return 0
        return current_seq

    async def _events(self, who, session_id: str, after_seq: int) -> AsyncIterator[SSEvent | None]:  # noqa: ANN001
        sessions = self._s.sessions
        # Follow before the first read: whatever commits after this point wakes the loop,
        # and the first read covers everything before it.
        tail = self._s.live.follow(stream_id(session_id))
        try:
            while not tail.closing:
                session = await run(sessions.load, who, session_id, True)
                # A chunk at a time: a client that replays a long session but reads slowly
                # holds at most one chunk in this process's memory.
                events = await run(sessions.events_after, session, after_seq, REPLAY_CHUNK)
                for event in events:
                    after_seq = event.seq
                    view = session_event_view(event)
                    yield SSEvent(data=orjson.dumps(view), event=view["type"], event_id=str(event.seq))
                if len(events) == REPLAY_CHUNK:
                    continue  # more history before waiting for news
                if session.deleted:
                    return
                if not await tail.wait(KEEPALIVE_SECONDS):
                    yield None  # Falcon sends a keep-alive comment
        finally:
            tail.close()
