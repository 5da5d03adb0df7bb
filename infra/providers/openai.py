"""OpenAI Chat Completions (and compatible gateways) through the official ``openai`` SDK,
streaming with ``stream_options.include_usage`` so the last chunk carries the usage.

Never the Responses API (spec §B.1: compatible gateways implement only Chat Completions).
The answer is returned in the port's Anthropic shape: one text block (the streamed content,
``TextDelta`` index 0), then a ``tool_use`` block per tool call with its ``call_…`` id.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

from application.ports import (
    Cancellation,
    ModelRequest,
    ModelResponse,
    ModelUsage,
    ProviderDelta,
    ProviderTarget,
    TextDelta,
)
from infra.providers.chat_messages import to_chat_messages, to_chat_tools
from infra.providers.clients import ClientCache, host_of
from infra.providers.errors import classify
from infra.providers.exchange import Exchange, model_exchange

STOP_REASONS = {
    "stop": "end_turn",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "length": "max_tokens",
    "content_filter": "refusal",
}


def token_limit(target: ProviderTarget, count: int) -> dict[str, int]:
    """OpenAI's own API wants ``max_completion_tokens`` (its reasoning models refuse
    ``max_tokens``); compatible gateways widely know only ``max_tokens``."""
    return {"max_completion_tokens": count} if target.provider == "oai" else {"max_tokens": count}


def request_kwargs(target: ProviderTarget, request: ModelRequest) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "model": target.model,
        "messages": to_chat_messages(request),
        **token_limit(target, request.max_tokens),
    }
    if request.tools:
        kwargs["tools"] = to_chat_tools(request.tools)
    if request.temperature is not None:
        kwargs["temperature"] = request.temperature
    if request.stop:
        kwargs["stop"] = request.stop
    return kwargs


def parse_arguments(arguments: str) -> dict[str, Any]:
    """A tool call's arguments; text that is not a JSON object is kept under ``_raw_arguments``
    so the runtime can answer the call with an error instead of losing it."""
    try:
        parsed = json.loads(arguments) if arguments.strip() else {}
    except ValueError:
        return {"_raw_arguments": arguments}
    return parsed if isinstance(parsed, dict) else {"_raw_arguments": arguments}


def usage_of(usage: Any) -> ModelUsage:
    """Chat usage in the port's (Anthropic) terms: ``prompt_tokens`` counts cached tokens too,
    while ``input_tokens`` does not, so the cached part moves to ``cache_read_input_tokens``."""
    if usage is None:
        return ModelUsage()
    details = getattr(usage, "prompt_tokens_details", None)
    cached = (getattr(details, "cached_tokens", None) or 0) if details is not None else 0
    prompt = usage.prompt_tokens or 0
    return ModelUsage(
        input_tokens=max(0, prompt - cached),
        output_tokens=usage.completion_tokens or 0,
        cache_read_input_tokens=cached,
    )


def _read_to_the_end(stream: Any) -> None:
    """Makes the SDK's stream read its body to the end once ``[DONE]`` arrives. The SDK stops
    reading at ``[DONE]`` and closes the response with the body's last bytes unread, which
    makes httpx drop the connection: every model request would then open a new one (a new
    TLS handshake to a real provider). Measured against the fake: no connection survived a
    request before, one connection serves them all after."""
    events = stream._iter_events

    def iter_events() -> Any:
        iterator = events()
        for sse in iterator:
            if sse.data.startswith("[DONE]"):
                for _rest in iterator:
                    pass
            yield sse

    stream._iter_events = iter_events


class OpenAiProvider:
    def __init__(self, clients: ClientCache | None = None) -> None:
        self._clients = clients or ClientCache()

    def stream(
        self,
        target: ProviderTarget,
        request: ModelRequest,
        on_delta: Callable[[ProviderDelta], None],
        cancel: Cancellation,
    ) -> ModelResponse:
        client = self._clients.openai(target)
        kwargs = request_kwargs(target, request)
        host = host_of(target)

        def work(exchange: Exchange[ProviderDelta]) -> ModelResponse:
            text: list[str] = []
            calls: dict[int, dict[str, Any]] = {}
            finish: str | None = None
            usage = None
            try:
                stream = client.chat.completions.create(**kwargs, stream=True, stream_options={"include_usage": True})
                exchange.attach(stream.response)
                _read_to_the_end(stream)
                with stream:
                    for chunk in stream:
                        if chunk.usage is not None:
                            usage = chunk.usage
                        for choice in chunk.choices:
                            if choice.index != 0:
                                continue
                            delta = choice.delta
                            if delta.content:
                                text.append(delta.content)
                                exchange.emit(TextDelta(0, delta.content))
                            for call in delta.tool_calls or []:
                                slot = calls.setdefault(call.index, {"id": None, "name": "", "arguments": ""})
                                slot["id"] = call.id or slot["id"]
                                if call.function is not None:
                                    slot["name"] += call.function.name or ""
                                    slot["arguments"] += call.function.arguments or ""
                            finish = choice.finish_reason or finish
            except Exception as exc:
                raise classify(exc, target, host) from None
            content: list[dict[str, Any]] = []
            joined = "".join(text)
            if joined:
                content.append({"type": "text", "text": joined})
            for index in sorted(calls):
                call = calls[index]
                content.append(
                    {
                        "type": "tool_use",
                        "id": call["id"] or f"call_{uuid.uuid4().hex[:24]}",
                        "name": call["name"],
                        "input": parse_arguments(call["arguments"]),
                    }
                )
            stop = STOP_REASONS.get(finish or "", "tool_use" if calls else "end_turn")
            return ModelResponse(content=content, stop_reason=stop, usage=usage_of(usage))

        return model_exchange(host, work, on_delta, cancel)
