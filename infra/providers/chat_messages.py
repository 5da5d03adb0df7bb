"""The Anthropic-shaped ``ModelRequest`` as an OpenAI Chat Completions message list.

- ``system`` → a leading ``system`` message; each system note → a ``system`` message before
  the message it is indexed at (after that message's tool results, which must stay directly
  behind the assistant's ``tool_calls``).
- assistant ``text`` → ``content``; ``tool_use`` → ``tool_calls`` (arguments as a JSON string);
  ``thinking`` / ``redacted_thinking`` are dropped (Chat Completions cannot take them back).
- user ``tool_result`` blocks → ``tool`` messages, first, directly after the assistant turn;
  the rest of that user message follows as one ``user`` message.
- images with a base64 or URL source → ``image_url`` parts; other blocks (documents) become a
  short placeholder text, so the model knows something was there.
"""

from __future__ import annotations

import json
from typing import Any

from application.ports import ModelRequest


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(str(b.get("text", "")) for b in content if isinstance(b, dict) and b.get("type") == "text")
    return ""


def _user_part(block: dict[str, Any]) -> dict[str, Any] | None:
    kind = block.get("type")
    if kind == "text":
        return {"type": "text", "text": block.get("text", "")} if str(block.get("text", "")).strip() else None
    if kind == "image":
        source = block.get("source") or {}
        if source.get("type") == "base64":
            url = f"data:{source.get('media_type', 'image/png')};base64,{source.get('data', '')}"
            return {"type": "image_url", "image_url": {"url": url}}
        if source.get("type") == "url":
            return {"type": "image_url", "image_url": {"url": source.get("url", "")}}
        return {"type": "text", "text": "[image omitted: not available to this provider]"}
    if kind == "document":
        title = block.get("title") or "document"
        source = block.get("source") or {}
        if source.get("type") == "text":
            return {"type": "text", "text": f"[{title}]\n{source.get('data', '')}"}
        return {"type": "text", "text": f"[{title} omitted: this provider takes no documents]"}
    return None


def _user_content(parts: list[dict[str, Any]]) -> str | list[dict[str, Any]]:
    # Plain text as a string: the widest-supported form among compatible gateways.
    if all(p["type"] == "text" for p in parts):
        return "\n\n".join(p["text"] for p in parts)
    return parts


def to_chat_messages(request: ModelRequest) -> list[dict[str, Any]]:
    notes: dict[int, list[str]] = {}
    for index, text in request.system_notes:
        notes.setdefault(index, []).append(text)
    out: list[dict[str, Any]] = []
    if request.system and request.system.strip():
        out.append({"role": "system", "content": request.system})

    def flush_notes(index: int) -> None:
        out.extend({"role": "system", "content": text} for text in notes.pop(index, []) if text.strip())

    for index, message in enumerate(request.messages):
        content = message.get("content")
        blocks = [{"type": "text", "text": content}] if isinstance(content, str) else list(content or [])
        if message.get("role") == "assistant":
            flush_notes(index)
            text = "".join(str(b.get("text", "")) for b in blocks if b.get("type") == "text")
            calls = [
                {
                    "id": b["id"],
                    "type": "function",
                    "function": {"name": b["name"], "arguments": json.dumps(b.get("input") or {})},
                }
                for b in blocks
                if b.get("type") == "tool_use"
            ]
            if not text.strip() and not calls:
                continue  # thinking only: nothing Chat Completions can take
            entry: dict[str, Any] = {"role": "assistant", "content": text if text.strip() else None}
            if calls:
                entry["tool_calls"] = calls
            out.append(entry)
            continue
        for b in blocks:
            if b.get("type") == "tool_result":
                result = _text(b.get("content")) or "(no output)"
                if b.get("is_error"):
                    result = f"Error: {result}"
                out.append({"role": "tool", "tool_call_id": b.get("tool_use_id"), "content": result})
        flush_notes(index)
        parts = [p for p in (_user_part(b) for b in blocks if b.get("type") != "tool_result") if p is not None]
        if parts:
            out.append({"role": "user", "content": _user_content(parts)})
    for index in sorted(notes):
        flush_notes(index)
    return out


def to_chat_tools(tools: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            "type": "function",
            "function": {
                "name": tool["name"],
                **({"description": tool["description"]} if tool.get("description") else {}),
                "parameters": tool.get("input_schema") or {"type": "object", "properties": {}},
            },
        }
        for tool in tools
    ]
