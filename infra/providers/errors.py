"""Turns what the SDKs raise into a ``ProviderError`` whose ``kind`` tells the runtime whether
to retry (spec §A.5: 429 rate-limited, 529 overloaded, 5xx / connection / error frame
request-failed) or to stop (401/403 authentication, 402 billing, 400/404 configuration).

The message is the provider's own reason, so a user can act on it, with the API key cut out:
some providers quote the key they refused, and the message reaches events and logs.
"""

from __future__ import annotations

import email.utils
import time
from typing import Any

import anthropic
import openai

from application.ports import ProviderError, ProviderTarget

_MAX_MESSAGE = 500


# Shorter header values are not scrubbed: replacing a 3-character value everywhere would
# garble the message and hide nothing.
_MIN_SCRUBBED = 8


def scrub(text: str, *secrets: str) -> str:
    """``text`` with every occurrence of each secret (and of a long one's tail) replaced."""
    for secret in secrets:
        if len(secret) < _MIN_SCRUBBED:
            continue
        text = text.replace(secret, "[redacted]")
        if len(secret) > 12:  # a key quoted with its head masked still must not leak whole
            text = text.replace(secret[4:], "[redacted]")
    return text[:_MAX_MESSAGE]


def _error_fields(body: Any) -> tuple[str, str]:
    """(type, message) from either provider's error body: ``{"type":"error","error":{…}}``
    (Anthropic), ``{"error":{…}}`` (OpenAI), or the inner object itself (stream frames)."""
    if isinstance(body, dict):
        nested = body.get("error")
        inner: dict[str, Any] = nested if isinstance(nested, dict) else body
        kind = inner.get("type") or inner.get("code") or ""
        message = inner.get("message") or ""
        return str(kind), str(message)
    return "", ""


def retry_after(headers: Any) -> float | None:
    """Seconds the provider asked us to wait: ``retry-after-ms``, or ``retry-after`` as seconds or an HTTP date."""
    if headers is None:
        return None
    millis = headers.get("retry-after-ms")
    try:
        if millis is not None:
            return max(0.0, float(millis) / 1000)
    except ValueError:
        pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        parsed = email.utils.parsedate_tz(value)
        return max(0.0, email.utils.mktime_tz(parsed) - time.time()) if parsed else None


def _kind_for(status: int, error_type: str, message: str) -> str:
    if error_type == "overloaded_error" or status == 529:
        return "overloaded"
    if status == 429 or error_type in ("rate_limit_error", "rate_limit_exceeded"):
        return "rate_limited"
    if status == 402 or error_type in ("billing_error", "insufficient_quota") or "credit balance" in message.lower():
        return "billing"
    if status in (401, 403) or error_type in ("authentication_error", "permission_error", "invalid_api_key"):
        return "authentication"
    if status >= 500 or status in (408, 409) or status < 400:
        # < 400: an error frame inside a 200 stream; the provider failed mid-answer.
        return "request_failed"
    if status in (400, 413, 422):
        # The provider refused this request (an image it cannot read, a prompt too long):
        # the turn ends, the session stays usable.
        return "invalid_request"
    return "configuration"


def classify(exc: BaseException, target: ProviderTarget, host: str) -> ProviderError:
    """The ``ProviderError`` for anything a provider call raised; its message never holds
    the target's key or a custom header's value (a gateway may quote what it was sent)."""
    secrets = (target.api_key, *target.custom_headers.values())
    if isinstance(exc, ProviderError):
        return exc
    if isinstance(exc, anthropic.APIStatusError | openai.APIStatusError):
        error_type, message = _error_fields(exc.body)
        status = exc.status_code
        text = message or f"HTTP {status} from {host}"
        return ProviderError(
            _kind_for(status, error_type, text),
            scrub(text, *secrets),
            status=status if status >= 400 else None,
            retry_after=retry_after(exc.response.headers),
        )
    if isinstance(exc, anthropic.APITimeoutError | openai.APITimeoutError):
        return ProviderError("request_failed", f"{host} did not answer in time")
    if isinstance(exc, anthropic.APIConnectionError | openai.APIConnectionError):
        cause = exc.__cause__ or exc
        return ProviderError("request_failed", scrub(f"could not connect to {host}: {cause}", *secrets))
    if isinstance(exc, openai.APIError):  # an error frame in the middle of a Chat Completions stream
        error_type, message = _error_fields(exc.body)
        return ProviderError(_kind_for(200, error_type, message), scrub(message or exc.message, *secrets))
    if isinstance(exc, TypeError | ValueError | AttributeError):
        # Agentry built a request the SDK refuses: no retry can help, so the turn ends at once
        # (retrying it looked like a provider stalling for a minute).
        return ProviderError("invalid_request", f"Agentry could not build the request to {host}: {type(exc).__name__}: {exc}")
    # The HTTP library's own errors escape the SDKs while a stream is read (connection reset,
    # read timeout, a truncated body); the request failed, and a retry may well succeed.
    return ProviderError(
        "request_failed", scrub(f"the stream from {host} broke off: {type(exc).__name__}: {exc}", *secrets)
    )
