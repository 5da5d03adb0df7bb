"""A session's log as a provider request (spec §B.2), kept in memory and fed incrementally.

The transcript keeps one item per event that the model should see and, per session, the
stream version it has read up to; a turn reads only the events stored after that, never
the whole session again. Rendering a request walks the items once and enforces the rules a
provider would reject a request for breaking:

1. every ``tool_use`` gets exactly one ``tool_result``, first in the very next user message;
   a call nobody answered (an interrupt, a message sent instead) gets a synthetic error one;
2. no empty text blocks, no empty messages;
3. consecutive turns of one role are merged;
4. the request starts with a user turn and ends with one.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from application.ports import ModelRequest
from application.runtime.tools import mcp_tool_name
from domain.sessions import PublicEvent, Session

UNANSWERED = "The tool call was not answered: the turn was interrupted or moved on without its result."

_TOOL_USES = ("agent.tool_use", "agent.mcp_tool_use", "agent.custom_tool_use")
_TOOL_RESULTS = {
    "agent.tool_result": "tool_use_id",
    "agent.mcp_tool_result": "mcp_tool_use_id",
    "user.custom_tool_result": "custom_tool_use_id",
    "user.tool_result": "tool_use_id",
}


# What a grader's verdict tells the agent, as a user turn (the turns it owes).
_OUTCOME_FEEDBACK = {
    "needs_revision": (
        '<outcome_feedback iteration="{iteration}">The work does not meet the rubric yet: '
        "{explanation}\nRevise it.</outcome_feedback>"
    ),
    "max_iterations_reached": (
        '<outcome_feedback iteration="{iteration}">The work still does not meet the rubric '
        "({explanation}) and no revisions are left. Reply with a short final acknowledgment of "
        "where the work stands.</outcome_feedback>"
    ),
}


@dataclass
class _Item:
    seq: int
    role: str  # user | assistant | system
    blocks: list[dict[str, Any]]


def _user_blocks(content: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    blocks = []
    for block in content:
        if not isinstance(block, dict):
            continue  # validated at the edge; an older event may still hold anything
        kind = block.get("type")
        if kind == "text" and block.get("text"):
            blocks.append({"type": "text", "text": block["text"]})
        elif kind in ("image", "document"):
            source = block.get("source")
            if not isinstance(source, dict):
                continue
            if source.get("type") == "file":
                blocks.append({"type": "text", "text": f"[{kind}: file {source.get('file_id')} unavailable]"})
            else:
                blocks.append({key: value for key, value in block.items() if key in ("type", "source", "title", "context")})
        elif kind == "search_result":
            parts = block.get("content")
            text = "\n".join(str(part.get("text", "")) for part in parts if isinstance(part, dict)) if isinstance(parts, list) else ""
            if text:
                # Title and source go with the passage, so the model can name where it read it.
                cited = " — ".join(str(block[key]) for key in ("title", "source") if block.get(key))
                blocks.append({"type": "text", "text": f"[{cited}]\n{text}" if cited else text})
    return blocks


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _result_content(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    if not isinstance(content, list):
        return []
    return [block for block in _user_blocks(content) if block.get("type") in ("text", "image", "document")]


class Transcript:
    """One session's items. Not thread-safe: the session's single driver owns it."""

    def __init__(self) -> None:
        self.version = 0
        self._items: list[_Item] = []
        self._thinking: dict[str, dict[str, Any]] = {}
        self._flushed: set[int] = set()

    def feed(self, events: Iterable[Any]) -> None:
        for stored in events:
            self.version = max(self.version, stored.originator_version)
            if isinstance(stored, Session.ThinkingKept):
                self._thinking[stored.event_id] = stored.block
            elif isinstance(stored, Session.InterruptHandled):
                self._flushed.update(stored.flushed)
            elif isinstance(stored, PublicEvent):
                item = self._item(stored)
                if item is not None:
                    self._items.append(item)

    @staticmethod
    def _item(event: PublicEvent) -> _Item | None:
        kind, payload = event.public_type, event.payload
        if kind == "user.message":
            return _Item(event.seq, "user", _user_blocks(_listed(payload.get("content"))))
        if kind == "user.define_outcome":
            return _Item(event.seq, "user", [{"type": "text", "text": payload.get("description") or ""}])
        if kind == "system.message":
            text = "\n".join(block.get("text", "") for block in payload.get("content") or [])
            return _Item(event.seq, "system", [{"type": "text", "text": text}])
        if kind == "agent.thinking":
            return _Item(event.seq, "assistant", [{"type": "thinking_ref", "id": event.event_id}])
        if kind == "agent.message":
            return _Item(event.seq, "assistant", _user_blocks(_listed(payload.get("content"))))
        if kind in _TOOL_USES:
            name = payload.get("name", "")
            if kind == "agent.mcp_tool_use":  # the model called it by the name it was offered
                name = mcp_tool_name(payload.get("mcp_server_name") or "", name)
            block = {"type": "tool_use", "id": event.event_id, "name": name, "input": payload.get("input") or {}}
            return _Item(event.seq, "assistant", [block])
        if kind == "span.outcome_evaluation_end":
            feedback = _OUTCOME_FEEDBACK.get(payload.get("result") or "")
            if feedback is None:
                return None
            text = feedback.format(iteration=payload.get("iteration"), explanation=payload.get("explanation") or "")
            return _Item(event.seq, "user", [{"type": "text", "text": text}])
        if kind in _TOOL_RESULTS:
            result = {
                "type": "tool_result",
                "tool_use_id": payload.get(_TOOL_RESULTS[kind]),
                "content": _result_content(payload.get("content")),
                "is_error": bool(payload.get("is_error")),
            }
            return _Item(event.seq, "user", [result])
        return None

    def agent_text_since(self, seq: int) -> str:
        """What the agent said after ``seq``: the work a grader judges."""
        return "\n\n".join(
            block["text"]
            for item in self._items
            if item.seq > seq and item.role == "assistant"
            for block in item.blocks
            if block.get("type") == "text"
        )

    def request(
        self,
        system: str | None,
        tools: list[dict[str, Any]],
        max_tokens: int = 8192,
        temperature: float | None = None,
        stop: list[str] | None = None,
    ) -> ModelRequest:
        raw: list[dict[str, Any]] = []  # {role, content}
        notes: list[tuple[int, str]] = []
        results: dict[str, dict[str, Any]] = {}
        for item in self._items:
            if item.seq in self._flushed:
                continue
            if item.role == "system":
                notes.append((len(raw), item.blocks[0]["text"]))
                continue
            blocks = []
            for block in item.blocks:
                if block["type"] == "tool_result":
                    results.setdefault(block["tool_use_id"], block)
                elif block["type"] == "thinking_ref":
                    kept = self._thinking.get(block["id"])
                    if kept is not None:
                        blocks.append(kept)
                else:
                    blocks.append(block)
            if raw and raw[-1]["role"] == item.role:
                raw[-1]["content"].extend(blocks)
            else:
                raw.append({"role": item.role, "content": blocks})
        messages = _pair_tool_results(raw, results)
        if not messages or messages[-1]["role"] != "user":
            messages.append({"role": "user", "content": [{"type": "text", "text": "Continue."}]})
        return ModelRequest(
            system=system or None,
            messages=messages,
            tools=tools,
            max_tokens=max_tokens,
            system_notes=[(min(index, len(messages)), text) for index, text in notes if text],
            temperature=temperature,
            stop=list(stop or []),
        )


def _pair_tool_results(raw: list[dict[str, Any]], results: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Each assistant turn's tool calls answered at the head of the next user turn."""
    messages: list[dict[str, Any]] = []
    for message in raw:
        content = [block for block in message["content"] if not (block.get("type") == "text" and not block.get("text"))]
        if message["role"] == "assistant":
            if not content:
                continue
            if messages and messages[-1]["role"] == "assistant":
                messages[-1]["content"].extend(content)
            else:
                messages.append({"role": "assistant", "content": content})
            continue
        if messages and messages[-1]["role"] == "user":
            messages[-1]["content"].extend(content)
        else:
            messages.append({"role": "user", "content": content})
    paired: list[dict[str, Any]] = []
    for index, message in enumerate(messages):
        if message["role"] == "user" and index > 0 and messages[index - 1]["role"] == "assistant":
            message = {"role": "user", "content": _answers(messages[index - 1], results) + message["content"]}
        paired.append(message)
    if paired and paired[-1]["role"] == "assistant":
        answers = _answers(paired[-1], results)
        if answers:
            paired.append({"role": "user", "content": answers})
    return _alternating(paired)


def _answers(assistant: dict[str, Any], results: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The result of each of the assistant turn's tool calls, or a synthetic error one."""
    return [
        results.get(block["id"])
        or {"type": "tool_result", "tool_use_id": block["id"], "content": [{"type": "text", "text": UNANSWERED}], "is_error": True}
        for block in assistant["content"]
        if block.get("type") == "tool_use"
    ]


def _alternating(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Empty turns dropped, and the turns they separated merged (a user turn that became
    empty followed an assistant turn without tool calls, so no pairing is lost); a user turn
    first."""
    merged: list[dict[str, Any]] = []
    for message in messages:
        if not message["content"]:
            continue
        if merged and merged[-1]["role"] == message["role"]:
            merged[-1] = {"role": message["role"], "content": merged[-1]["content"] + message["content"]}
        else:
            merged.append(message)
    if merged and merged[0]["role"] != "user":
        merged.insert(0, {"role": "user", "content": [{"type": "text", "text": "(session start)"}]})
    return merged


class TranscriptCache:
    """Transcripts of recently driven sessions (least recently used dropped first)."""

    def __init__(self, capacity: int = 2000) -> None:
        self._capacity = capacity
        self._transcripts: OrderedDict[str, Transcript] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, session_id: str) -> Transcript:
        with self._lock:
            transcript = self._transcripts.pop(session_id, None) or Transcript()
            self._transcripts[session_id] = transcript
            while len(self._transcripts) > self._capacity:
                self._transcripts.popitem(last=False)
            return transcript
