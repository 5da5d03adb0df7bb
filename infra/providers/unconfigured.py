"""The provider used until one is configured: it answers every turn with a clear notice,
so a session still moves running → idle and the user can see why nothing else happened."""

from __future__ import annotations

from typing import Any

NOTICE = (
    "No model provider is configured on this Agentry server, so this message was recorded "
    "but not sent to a model. Model providers are not built yet; until they are, every "
    "user message is answered with this notice."
)


class UnconfiguredProvider:
    name = "unconfigured"

    def reply(self, agent: dict[str, Any], transcript: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{"type": "text", "text": NOTICE}]
