"""A completion's reply, read from its session's log (spec §F.2).

``ChatReply`` takes the session's events after the completion's own, in order — stored
public events and the live previews of ``agent.message`` — until the turn ends, and gives
the OpenAI chunks to stream as it goes and the whole ``chat.completion`` at the end.

- text: the previews' deltas as they come; a stored ``agent.message`` adds whatever its
  previews did not carry (none, when they arrived before anyone listened). Messages of one
  turn (a turn with server-run tools makes several requests) are joined by a blank line.
- ``agent.custom_tool_use`` → a tool call (its event id is the call's id);
- ``span.model_request_end`` → usage, summed over the turn's requests;
- idle → the finish reason; ``retries_exhausted``, termination or deletion → the error.
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from application.ids import new_id

FINISH_REASONS = {
    "end_turn": "stop",
    "budget_reached": "length",
    "refusal": "content_filter",
}

# A failed turn's session.error type → the HTTP status a non-streamed completion answers
# with; any other failure of the turn is the upstream's (502).
ERROR_STATUS = {
    "model_rate_limited_error": 429,
    "model_overloaded_error": 503,
    "billing_error": 402,
    "session_ended": 409,
    "requires_action": 409,
}

SEPARATOR = "\n\n"


class ChatReply:
    def __init__(self, model: str, session_id: str = "", previews: bool = True) -> None:
        """``previews``: stream ``agent.message`` previews as they come (a stream); without,
        text comes only from stored messages (a whole completion)."""
        self.completion_id = "chatcmpl-" + new_id("c")[2:]
        self.created = int(time.time())
        self.model = model
        self.done = False
        self.finish_reason: str | None = None
        self.error: dict[str, Any] | None = None
        self._text: list[str] = []
        self._streamed: dict[str, str] = {}  # agent.message id → text sent so far
        self._tool_calls: list[dict[str, Any]] = []
        self._usage = {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
        self._last_error: dict[str, Any] | None = None
        self._previews = previews
        self._session_id = session_id
        self._started: set[str] = set()  # messages whose preview began while we listened

    # -- feeding ------------------------------------------------------------------------

    def take(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        """The chunks ``event`` adds (none for most events)."""
        if self.done:
            return []
        kind = event.get("type")
        if kind == "event_start":
            if self._previews:
                self._started.add((event.get("event") or {}).get("id") or "")
            return []
        if kind == "event_delta":
            # Only a preview heard from its start: one that began before we listened has
            # lost its first deltas, and its stored message brings the whole text instead.
            content = (event.get("delta") or {}).get("content") or {}
            message_id = event.get("event_id") or ""
            if message_id in self._started and content.get("type") == "text" and content.get("text"):
                return self._add_text(message_id, content["text"])
            return []
        if kind == "agent.message":
            full = "".join(
                block.get("text", "") for block in event.get("content") or [] if block.get("type") == "text"
            )
            sent = self._streamed.get(event["id"], "")
            rest = full[len(sent) :] if full.startswith(sent) else ""
            return self._add_text(event["id"], rest) if rest else []
        if kind == "agent.custom_tool_use":
            return [self._add_call(event)]
        if kind == "span.model_request_end":
            self._add_usage(event.get("model_usage") or {})
            return []
        if kind == "session.error":
            error = event.get("error") or {}
            if (error.get("retry_status") or {}).get("type") != "retrying":
                self._last_error = error
            return []
        if kind == "session.status_idle":
            stop = (event.get("stop_reason") or {}).get("type")
            if stop == "retries_exhausted":
                self._fail()
            elif stop == "requires_action" and self._tool_calls:
                self._finish("tool_calls")
            elif stop == "requires_action":
                # The agent waits for a confirmation the OpenAI protocol cannot give.
                waiting = ", ".join((event.get("stop_reason") or {}).get("event_ids") or [])
                self._last_error = {
                    "type": "requires_action",
                    "message": f"the agent waits for a tool confirmation ({waiting}): answer it with "
                    f"POST /v1/sessions/{self._session_id}/events (user.tool_confirmation); the session goes on from there",
                }
                self._fail()
            else:
                self._finish(FINISH_REASONS.get(stop or "", "stop"))
            return self._ending()
        if kind in ("session.status_terminated", "session.deleted"):
            ending = "terminated" if kind.endswith("terminated") else "deleted"
            self._last_error = self._last_error or {"type": "session_ended", "message": f"the session was {ending} during the turn"}
            self._fail()
            return []
        return []

    def _add_text(self, message_id: str, text: str) -> list[dict[str, Any]]:
        sent = self._streamed.get(message_id)
        prefix = ""
        if sent is None:
            prefix = SEPARATOR if self._streamed else ""  # a later message of the turn
            sent = ""
        self._streamed[message_id] = sent + text
        self._text.append(prefix + text)
        return [self._chunk({"content": prefix + text})]

    def _add_call(self, event: dict[str, Any]) -> dict[str, Any]:
        call = {
            "id": event["id"],
            "type": "function",
            "function": {"name": event.get("name", ""), "arguments": orjson.dumps(event.get("input") or {}).decode()},
        }
        self._tool_calls.append(call)
        return self._chunk({"tool_calls": [{"index": len(self._tool_calls) - 1, **call}]})

    def _add_usage(self, usage: dict[str, Any]) -> None:
        prompt = sum(
            int(usage.get(name) or 0)
            for name in ("input_tokens", "cache_read_input_tokens", "cache_creation_input_tokens")
        )
        completion = int(usage.get("output_tokens") or 0)
        self._usage["prompt_tokens"] += prompt
        self._usage["completion_tokens"] += completion
        self._usage["total_tokens"] += prompt + completion

    def _finish(self, reason: str) -> None:
        self.done = True
        self.finish_reason = reason

    def _fail(self, message: str | None = None) -> None:
        self.done = True
        error = self._last_error or {}
        self.error = {
            "type": error.get("type") or "api_error",
            "message": error.get("message") or message or "the turn failed",
        }

    def _ending(self) -> list[dict[str, Any]]:
        return [self._chunk({}, self.finish_reason)] if self.finish_reason else []

    # -- the answer -----------------------------------------------------------------------

    @property
    def error_status(self) -> int:
        return ERROR_STATUS.get((self.error or {}).get("type", ""), 502)

    def opening(self) -> dict[str, Any]:
        return self._chunk({"role": "assistant", "content": ""})

    def usage_chunk(self) -> dict[str, Any]:
        return {**self._head("chat.completion.chunk"), "choices": [], "usage": dict(self._usage)}

    def completion(self) -> dict[str, Any]:
        text = "".join(self._text)
        message: dict[str, Any] = {"role": "assistant", "content": text if text or not self._tool_calls else None}
        if self._tool_calls:
            message["tool_calls"] = self._tool_calls
        return {
            **self._head("chat.completion"),
            "choices": [{"index": 0, "message": message, "finish_reason": self.finish_reason or "stop", "logprobs": None}],
            "usage": dict(self._usage),
        }

    def _head(self, kind: str) -> dict[str, Any]:
        return {"id": self.completion_id, "object": kind, "created": self.created, "model": self.model}

    def _chunk(self, delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        return {
            **self._head("chat.completion.chunk"),
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}],
        }
