"""Model-provider adapters behind ``application.ports.ModelProvider`` and ``ProviderProbe``.

``SdkModelProvider`` picks the Anthropic Messages adapter for ``ant`` / ``ant-compatible``
targets and the OpenAI Chat Completions adapter for ``oai`` / ``oai-compatible``; both share
one cache of SDK clients. What a target's ``base_url`` means: see ``clients``.
"""

from __future__ import annotations

from collections.abc import Callable

from application.ports import Cancellation, ModelRequest, ModelResponse, ProviderDelta, ProviderTarget
from infra.providers.anthropic import AnthropicProvider
from infra.providers.clients import ClientCache
from infra.providers.openai import OpenAiProvider


class SdkModelProvider:
    def __init__(self) -> None:
        clients = ClientCache()
        self._anthropic = AnthropicProvider(clients)
        self._openai = OpenAiProvider(clients)

    def stream(
        self,
        target: ProviderTarget,
        request: ModelRequest,
        on_delta: Callable[[ProviderDelta], None],
        cancel: Cancellation,
    ) -> ModelResponse:
        adapter = self._anthropic if target.speaks_anthropic else self._openai
        return adapter.stream(target, request, on_delta, cancel)
