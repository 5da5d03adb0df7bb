"""Anthropic Messages through the official ``anthropic`` SDK, streaming.

The request already has the Messages shape (``ModelRequest``); mid-conversation system notes
are folded into ``system``, since the Messages API has no system turns.
"""

from __future__ import annotations

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
    ThinkingStarted,
)
from infra.providers.clients import ClientCache, host_of
from infra.providers.errors import classify
from infra.providers.exchange import Exchange, model_exchange

# Stop reasons outside the port's set, folded into the nearest one.
_STOP = {"pause_turn": "end_turn", "model_context_window_exceeded": "max_tokens"}


def request_kwargs(target: ProviderTarget, request: ModelRequest) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"model": target.model, "max_tokens": request.max_tokens, "messages": request.messages}
    system = "\n\n".join(
        part for part in [request.system or "", *(note for _, note in request.system_notes)] if part.strip()
    )
    if system:  # an empty system is refused: leave it out
        kwargs["system"] = system
    if request.tools:
        kwargs["tools"] = request.tools
    # No ``temperature``: the Messages API of the SDK this adapter speaks (anthropic 2.14) has
    # no sampling parameters any more, so a chat completion's temperature reaches OpenAI-style
    # providers only.
    if request.stop:
        kwargs["stop_sequences"] = request.stop
    return kwargs


def content_block(block: Any) -> dict[str, Any] | None:
    """One SDK content block as the port's plain dict (``None`` for kinds the runtime does not use)."""
    if block.type == "text":
        return {"type": "text", "text": block.text}
    if block.type == "thinking":
        return {"type": "thinking", "thinking": block.thinking, "signature": block.signature}
    if block.type == "redacted_thinking":
        return {"type": "redacted_thinking", "data": block.data}
    if block.type == "tool_use":
        return {"type": "tool_use", "id": block.id, "name": block.name, "input": dict(block.input or {})}
    return None


def usage_of(usage: Any) -> ModelUsage:
    return ModelUsage(
        input_tokens=usage.input_tokens or 0,
        output_tokens=usage.output_tokens or 0,
        cache_read_input_tokens=getattr(usage, "cache_read_input_tokens", None) or 0,
        cache_creation_input_tokens=getattr(usage, "cache_creation_input_tokens", None) or 0,
    )


class AnthropicProvider:
    def __init__(self, clients: ClientCache | None = None) -> None:
        self._clients = clients or ClientCache()

    def stream(
        self,
        target: ProviderTarget,
        request: ModelRequest,
        on_delta: Callable[[ProviderDelta], None],
        cancel: Cancellation,
    ) -> ModelResponse:
        client = self._clients.anthropic(target)
        kwargs = request_kwargs(target, request)
        host = host_of(target)

        def work(exchange: Exchange[ProviderDelta]) -> ModelResponse:
            try:
                with client.messages.stream(**kwargs) as stream:
                    exchange.attach(stream.response)
                    text_ordinal: dict[int, int] = {}  # block index → position among text blocks
                    for event in stream:
                        if event.type == "content_block_start":
                            kind = event.content_block.type
                            if kind == "text":
                                text_ordinal[event.index] = len(text_ordinal)
                            elif kind in ("thinking", "redacted_thinking"):
                                exchange.emit(ThinkingStarted())
                        elif event.type == "content_block_delta" and event.delta.type == "text_delta":
                            if event.delta.text:
                                exchange.emit(TextDelta(text_ordinal.get(event.index, 0), event.delta.text))
                    final = stream.get_final_message()
            except Exception as exc:
                raise classify(exc, target, host) from None
            content = [b for b in (content_block(block) for block in final.content) if b is not None]
            stop = final.stop_reason or "end_turn"
            return ModelResponse(content=content, stop_reason=_STOP.get(stop, stop), usage=usage_of(final.usage))

        return model_exchange(host, work, on_delta, cancel)
