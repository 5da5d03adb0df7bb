"""Which provider answers an agent's ``model``: the tenant's model card with that
``model_id``, else the server's default provider, else none (the turn says what to set)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from application.ports import ProviderTarget

OPENAI_PREFIXES = ("gpt-", "o1", "o3", "o4", "chatgpt-")


class CardLookup(Protocol):
    def target_for(self, tenant_id: str, handle: str) -> ProviderTarget | None: ...


@dataclass(frozen=True)
class DefaultProviders:
    """``AGENTRY_ANTHROPIC_API_KEY`` / ``_BASE_URL`` and ``AGENTRY_OPENAI_API_KEY`` /
    ``_BASE_URL``. With both set, a model named like OpenAI's (``gpt-…``, ``o3…``) goes to
    OpenAI and every other to Anthropic."""

    anthropic_api_key: str = ""
    anthropic_base_url: str = ""
    openai_api_key: str = ""
    openai_base_url: str = ""

    def target_for(self, handle: str) -> ProviderTarget | None:
        anthropic = (
            ProviderTarget("ant", handle, self.anthropic_api_key, self.anthropic_base_url or None)
            if self.anthropic_api_key
            else None
        )
        openai = (
            ProviderTarget("oai", handle, self.openai_api_key, self.openai_base_url or None)
            if self.openai_api_key
            else None
        )
        if anthropic and openai:
            return openai if handle.startswith(OPENAI_PREFIXES) else anthropic
        return anthropic or openai


def missing_provider_message(handle: str) -> str:
    return (
        f"No model provider is configured for model {handle!r}. Create a model card with "
        f"model_id {handle!r} (POST /v1/model_cards), or start the server with "
        "AGENTRY_ANTHROPIC_API_KEY (and optionally AGENTRY_ANTHROPIC_BASE_URL) or "
        "AGENTRY_OPENAI_API_KEY (and optionally AGENTRY_OPENAI_BASE_URL); then send the "
        "message again."
    )


class ModelResolver:
    def __init__(self, cards: CardLookup | None, defaults: DefaultProviders) -> None:
        self._cards = cards
        self._defaults = defaults

    def target_for(self, tenant_id: str, handle: str) -> ProviderTarget | None:
        if self._cards is not None:
            target = self._cards.target_for(tenant_id, handle)
            if target is not None:
                return target
        return self._defaults.target_for(handle)
