"""``POST /v1/chat/completions``: OpenAI's Chat Completions, answered by a session's turn.

The turn's events are followed like any SSE client follows them (the live hub, with the
``agent.message`` previews), so the reply streams as the model writes it, in this process
or from a turn driven by another one."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from functools import partial
from typing import Any

import falcon
import falcon.asgi
import orjson

from application.chat_completions import ChatCompletions, ChatTurn
from application.chat_replies import ChatReply
from application.session_log import LogPosition, SessionLog
from application.tenancy import Principal
from interfaces.http.chat_schemas import ChatCompletionCreate
from interfaces.http.common import parse, principal, run
from interfaces.http.errors import write_error
from interfaces.http.live import LiveHub, receive_of

SESSION_HEADER = "Agentry-Session-Id"
ENVIRONMENT_HEADER = "Agentry-Environment-Id"
PREVIEWS = frozenset({"agent.message"})
PING: dict[str, Any] = {"type": "ping"}


class ChatCompletionsResource:
    def __init__(self, chat: ChatCompletions, log: SessionLog, live: LiveHub) -> None:
        self._chat = chat
        self._log = log
        self._live = live

    async def on_post(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        body = await parse(req, ChatCompletionCreate)
        who = principal(req)
        turn = await run(
            self._chat.start,
            who,
            body.given(),
            req.get_header(SESSION_HEADER) or None,
            req.get_param("app_id") or None,
            req.get_header(ENVIRONMENT_HEADER) or None,
        )
        resp.set_header(SESSION_HEADER, turn.session_id)
        reply = ChatReply(body.model, turn.session_id, previews=bool(body.stream))
        events = self._events(req, who, turn, PREVIEWS if body.stream else frozenset())
        if body.stream:
            resp.content_type = "text/event-stream"
            resp.set_header("Cache-Control", "no-cache")
            resp.set_header("X-Accel-Buffering", "no")
            resp.stream = _chunks(events, reply, turn, body.include_usage)
            return
        try:
            async for event in events:
                reply.take(event)
                if reply.done:
                    break
        finally:
            await events.aclose()
        if not reply.done:
            # The server is stopping (a client that went away reads nothing of this).
            write_error(req, resp, 503, _cut_off(turn))
            resp.set_header("x-should-retry", "false")  # the turn goes on in its session
            return
        if reply.error is not None:
            # The session.error's type is the code; the type is the status's, as everywhere.
            write_error(req, resp, reply.error_status, reply.error["message"], code=reply.error["type"])
            resp.set_header("x-should-retry", "false")  # the turn is recorded: a retry would be a new one
            return
        resp.media = reply.completion()

    async def _events(
        self, req: falcon.asgi.Request, who: Principal, turn: ChatTurn, previews: frozenset[str]
    ) -> AsyncGenerator[dict[str, Any], None]:
        """The session's events after the completion's own, as the API shows them, the
        ``previews`` asked for, and ``{"type": "ping"}`` for each keep-alive; ends when the
        client goes away."""
        head = await run(self._log.head, who, turn.session_id)
        start = head.position if turn.after_seq == head.last_seq else LogPosition.after_seq(turn.after_seq)
        frames = self._live.stream(
            head.tenant_id, head.stream, start, head.position, partial(self._log.chunk, head), receive_of(req), previews
        )
        try:
            async for data in frames:
                for frame in data.split(b"\n\n"):
                    if frame.startswith(b":"):
                        yield PING
                    for line in frame.split(b"\n"):
                        if line.startswith(b"data: "):
                            yield orjson.loads(line[6:])
        finally:
            await frames.aclose()  # type: ignore[attr-defined]


async def _chunks(
    events: AsyncGenerator[dict[str, Any], None], reply: ChatReply, turn: ChatTurn, include_usage: bool
) -> AsyncIterator[bytes]:
    """Data-only SSE frames, ``[DONE]`` last; a failed turn ends in an error frame. A comment
    frame passes each keep-alive on, so proxies keep a turn that waits for a tool open."""
    try:
        yield _frame(reply.opening())
        async for event in events:
            if event is PING:
                yield b": ping\n\n"
                continue
            for chunk in reply.take(event):
                yield _frame(chunk)
            if reply.done:
                break
        if not reply.done:
            # The server is stopping (a client that went away reads nothing of this): never
            # let a cut-off answer look whole.
            yield _frame({"error": {"message": _cut_off(turn), "type": "api_error", "param": None, "code": None}})
            return
        if reply.error is not None:
            error = reply.error
            yield _frame({"error": {"message": error["message"], "type": "api_error", "param": None, "code": error["type"]}})
            return
        if include_usage:
            yield _frame(reply.usage_chunk())
        yield b"data: [DONE]\n\n"
    finally:
        await events.aclose()


def _cut_off(turn: ChatTurn) -> str:
    return f"the server stopped before the turn ended; it goes on in session {turn.session_id}"


def _frame(payload: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(payload) + b"\n\n"
