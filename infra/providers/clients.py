"""One SDK client per (provider, base URL, key, headers), kept for reuse so requests to the
same provider share a connection pool (a new client per request would pay a TLS handshake
every model call).

What a ``base_url`` means: the provider root each SDK expects. Anthropic: the host root, e.g.
``https://api.anthropic.com`` (the SDK itself appends ``/v1/messages``); a trailing ``/v1`` is
dropped, so a URL written for tools that expect it (``https://gateway/v1``) works too. OpenAI:
everything before ``/chat/completions``, e.g. ``https://api.openai.com/v1`` or
``https://api.groq.com/openai/v1``; it is used as given, since compatible gateways put their
version segment anywhere. A ``vendor/model`` wire name is sent unchanged (OpenRouter-style
gateways need the prefix).

SDK-level retries are off: the runtime retries itself, with session events for each attempt.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

import anthropic
import openai

from application.ports import ProviderTarget

CONNECT_TIMEOUT = 10.0
# The SDK's per-read bound; the whole exchange is bounded separately (``EXCHANGE_TIMEOUT``).
READ_TIMEOUT = 300.0
EXCHANGE_TIMEOUT = 300.0
_CACHE_SIZE = 64


def anthropic_base_url(base_url: str | None) -> str | None:
    if not base_url:
        return None
    root = base_url.rstrip("/")
    return root[: -len("/v1")] if root.endswith("/v1") else root


def openai_base_url(base_url: str | None) -> str | None:
    return base_url.rstrip("/") if base_url else None


def host_of(target: ProviderTarget) -> str:
    """The provider's host, for messages ("could not connect to …")."""
    default = "api.anthropic.com" if target.speaks_anthropic else "api.openai.com"
    if not target.base_url:
        return default
    rest = target.base_url.split("://", 1)[-1]
    return rest.split("/", 1)[0] or default


class ClientCache:
    def __init__(self) -> None:
        self._clients: OrderedDict[tuple[Any, ...], Any] = OrderedDict()
        self._lock = threading.Lock()

    def anthropic(
        self, target: ProviderTarget, timeout: float = READ_TIMEOUT, connect: float = CONNECT_TIMEOUT
    ) -> anthropic.Anthropic:
        def make() -> anthropic.Anthropic:
            headers = dict(target.custom_headers)
            if target.provider == "ant-compatible":
                # Compatible gateways authenticate with x-api-key (the SDK sends only a Bearer header).
                headers.setdefault("x-api-key", target.api_key)
            return anthropic.Anthropic(
                api_key=target.api_key,
                base_url=anthropic_base_url(target.base_url),
                default_headers=headers or None,
                max_retries=0,
                timeout=anthropic.Timeout(timeout, connect=connect),
            )

        return self._get(
            ("ant", target.provider, target.base_url, target.api_key, _frozen(target.custom_headers), timeout, connect),
            make,
        )

    def openai(
        self, target: ProviderTarget, timeout: float = READ_TIMEOUT, connect: float = CONNECT_TIMEOUT
    ) -> openai.OpenAI:
        def make() -> openai.OpenAI:
            return openai.OpenAI(
                api_key=target.api_key,
                base_url=openai_base_url(target.base_url),
                default_headers=dict(target.custom_headers) or None,
                max_retries=0,
                timeout=openai.Timeout(timeout, connect=connect),
            )

        return self._get(
            ("oai", target.provider, target.base_url, target.api_key, _frozen(target.custom_headers), timeout, connect),
            make,
        )

    def _get(self, key: tuple[Any, ...], make: Any) -> Any:
        with self._lock:
            client = self._clients.get(key)
            if client is not None:
                self._clients.move_to_end(key)
                return client
        client = make()
        with self._lock:
            self._clients[key] = client
            while len(self._clients) > _CACHE_SIZE:
                # Not closed: another thread may still be streaming through it; its pool is
                # released when the last reference goes.
                self._clients.popitem(last=False)
        return client


def _frozen(headers: dict[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(headers.items()))
