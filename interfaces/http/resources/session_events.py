"""/v1/sessions/{id}/events: list the public log, send user events, stream (SSE).

Both read through ``SessionLog`` (views, bounded in bytes). The stream follows the session
first, then replays what the client missed, then tails the session's shared live reader
(``interfaces.http.live``), so there is no gap between replay and live and no event is sent
twice; a client that goes away ends its tail at once."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from functools import partial
from typing import Any

import falcon
import orjson

from application.errors import NotFound
from application.session_log import LogPosition, SessionLog
from application.sessions import PLATFORM_WORKER_ROLE, WORKER_ROLE, SessionService
from interfaces.http.common import (
    bool_param,
    choice_param,
    int_param,
    limit_param,
    list_params,
    parse,
    run,
    session_caller,
    time_bounds,
)
from interfaces.http.live import LiveHub, receive_of
from interfaces.http.schemas import SendEvents
from projections.queries import decode_token, encode_token

LAST_EVENT_ID = re.compile(r"^[0-9]{1,18}$")
PREVIEWABLE = ("agent.message", "agent.thinking")
MAX_EVENT_DELTAS = 100


# The SDK's session runner, which every environment worker is, counts a call as answered only
# by a user.tool_result. The server answers some calls itself with agent.tool_result (a
# denial, a cancelled or timed-out call, and on cloud environments every result its own
# worker posted): reading the log for unanswered calls, the runner would run those again. So
# a work item's token reads them in the form the runner pairs with its calls.
WORKER_ROLES = (WORKER_ROLE, PLATFORM_WORKER_ROLE)
_RECORDED = b'"type":"agent.tool_result"'
_AS_POSTED = b'"type":"user.tool_result"'


def as_worker_sees(event: dict[str, Any]) -> dict[str, Any]:
    return {**event, "type": "user.tool_result"} if event.get("type") == "agent.tool_result" else event


async def frames_as_worker_sees(frames: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    async for frame in frames:
        if _RECORDED in frame:
            frame = frame.replace(b"event: agent.tool_result", b"event: user.tool_result").replace(_RECORDED, _AS_POSTED)
        yield frame


class SessionEventsResource:
    """Routes: ``/v1/sessions/{session_id}/events`` and, by suffix, ``/stream``."""

    def __init__(self, sessions: SessionService, log: SessionLog, live: LiveHub) -> None:
        self._sessions = sessions
        self._log = log
        self._live = live

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
        who_reads = session_caller(req, session_id)
        page = await run(
            self._log.page,
            who_reads,
            session_id,
            after_seq,
            limit_param(req, 100),
            order,
            types,
            before_seq,
            time_bounds(req),
        )
        next_page = encode_token(order, page.next_seq) if page.next_seq is not None else None
        encoded = page.encoded
        if who_reads.role in WORKER_ROLES:
            encoded = [
                orjson.dumps(as_worker_sees(event)) if event["type"] == "agent.tool_result" else raw
                for event, raw in zip(page.events, encoded, strict=True)
            ]
        # The bytes resp.media would give ({"data": [...], "next_page": ...} by orjson),
        # joined from each event's JSON as the log encoded it, not encoded a second time.
        resp.content_type = falcon.MEDIA_JSON
        resp.data = b'{"data":[%s],"next_page":%s}' % (b",".join(encoded), orjson.dumps(next_page))

    async def on_post(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, session_id: str) -> None:
        body = await parse(req, SendEvents)
        events = [event.model_dump(exclude_unset=True) for event in body.events]
        recorded = await run(self._sessions.send, session_caller(req, session_id), session_id, events)
        resp.status = 202
        resp.media = {"data": recorded}

    async def on_get_stream(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, session_id: str) -> None:
        who = session_caller(req, session_id)
        deltas = self._event_deltas(req)
        head = await run(self._log.head, who, session_id)
        after_seq = self._start_after(req, head.last_seq)
        if head.deleted and after_seq >= head.last_seq:
            # Nothing left to send: a 200 that ends at once would make an EventSource
            # reconnect forever.
            raise NotFound(f"session {session_id!r} was deleted")
        resp.content_type = "text/event-stream"
        resp.set_header("Cache-Control", "no-cache")
        resp.set_header("X-Accel-Buffering", "no")
        start = head.position if after_seq == head.last_seq else LogPosition.after_seq(after_seq)
        # Plain bytes, not resp.sse: every tail sends the frames the shared reader encoded
        # once, and Falcon's SSE loop would notice a gone client only at its next send.
        frames = self._live.stream(
            head.tenant_id,
            head.stream,
            start,
            head.position,
            partial(self._log.chunk, head),
            receive_of(req),
            deltas,
        )
        resp.stream = frames_as_worker_sees(frames) if who.role in WORKER_ROLES else frames

    @staticmethod
    def _event_deltas(req: falcon.asgi.Request) -> frozenset[str]:
        asked = list_params(req, "event_deltas")
        if len(asked) > MAX_EVENT_DELTAS:
            raise falcon.HTTPBadRequest(description=f"event_deltas takes at most {MAX_EVENT_DELTAS} values")
        unknown = sorted(set(asked) - set(PREVIEWABLE))
        if unknown:
            raise falcon.HTTPBadRequest(
                description=f"event_deltas: {unknown[0]!r} has no previews; only {', '.join(PREVIEWABLE)} do"
            )
        return frozenset(asked)

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
