"""The capability probe: one one-token, non-streaming request through the same SDK clients
(so the same URL, headers and authentication) the runtime will use, bounded to 6 s in all.

Verdicts (the card routes refuse a card on ``ok`` False and store nothing):

- 2xx that looks like the API → ok;
- 401, 403, 404, 405 → refused: the key, or the URL, is not accepted
  (``"Provider returned HTTP 401: <the provider's error.message, ≤240 chars>"``);
- no connection, or no answer within 6 s → refused (``"could not connect to <host>: …"``);
- a 2xx that is not the API's answer (some other web server at that URL) → refused;
- 429, 529, 5xx, 400, 402 → ok, with the status and reason kept: the provider recognised the
  key and URL and is busy, short of credit or picky about the one-token request; refusing the
  card would turn a provider's bad minute into a configuration error.
"""

from __future__ import annotations

from typing import Any

import anthropic
import openai

from application.ports import ProbeResult, ProviderTarget
from infra.providers.clients import ClientCache, host_of
from infra.providers.errors import _error_fields, scrub
from infra.providers.exchange import Exchange
from infra.providers.openai import token_limit

PROBE_TIMEOUT = 6.0
_REFUSED = frozenset({401, 403, 404, 405})
_REASON_CHARS = 240


class HttpProviderProbe:
    def __init__(self, clients: ClientCache | None = None, timeout: float = PROBE_TIMEOUT) -> None:
        self._clients = clients or ClientCache()
        self._timeout = timeout

    def probe(self, target: ProviderTarget) -> ProbeResult:
        host = host_of(target)

        def work(exchange: Exchange[None]) -> ProbeResult:
            try:
                raw = self._ask(target)
            except (anthropic.APIStatusError, openai.APIStatusError) as exc:
                return _status_verdict(exc.status_code, exc.body, target.api_key)
            except (anthropic.APITimeoutError, openai.APITimeoutError):
                return ProbeResult(False, f"could not connect to {host}: no answer within {self._timeout:.0f} s")
            except (anthropic.APIConnectionError, openai.APIConnectionError) as exc:
                cause = exc.__cause__ or exc
                return ProbeResult(
                    False, scrub(f"could not connect to {host}: {cause}", target.api_key)[:_REASON_CHARS]
                )
            exchange.attach(raw.http_response)
            try:
                body = raw.http_response.json()
            except ValueError:
                body = None
            expected = "content" if target.speaks_anthropic else "choices"
            if not isinstance(body, dict) or expected not in body:
                api = "Anthropic Messages" if target.speaks_anthropic else "OpenAI Chat Completions"
                return ProbeResult(
                    False,
                    f"{host} answered HTTP {raw.http_response.status_code}, but not as the {api} API",
                    raw.http_response.status_code,
                )
            return ProbeResult(True, status=raw.http_response.status_code)

        try:
            return Exchange[None]().run(
                work,
                lambda _: None,
                None,
                self._timeout,
                f"could not connect to {host}: no answer within {self._timeout:.0f} s",
            )
        except Exception as exc:  # the deadline, or anything unforeseen: a probe answers, never raises
            return ProbeResult(False, scrub(str(exc), target.api_key)[:_REASON_CHARS])

    def _ask(self, target: ProviderTarget) -> Any:
        hello: Any = [{"role": "user", "content": "hi"}]
        limit: Any = token_limit(target, 1)
        if target.speaks_anthropic:
            client = self._clients.anthropic(target, timeout=self._timeout, connect=self._timeout)
            return client.messages.with_raw_response.create(model=target.model, max_tokens=1, messages=hello)
        oai = self._clients.openai(target, timeout=self._timeout, connect=self._timeout)
        return oai.chat.completions.with_raw_response.create(model=target.model, messages=hello, **limit)


def _status_verdict(status: int, body: Any, api_key: str) -> ProbeResult:
    _, message = _error_fields(body)
    reason = scrub(message or "no reason given", api_key)[:_REASON_CHARS]
    text = f"Provider returned HTTP {status}: {reason}"
    return ProbeResult(status not in _REFUSED, text, status)
