"""Meters every request an API key or a person makes (after authentication, which names the
workspace and the caller) and says where the caller stands in the headers both SDKs read:
``anthropic-ratelimit-requests-*`` and OpenAI's ``x-ratelimit-*-requests``. A refused request
is a 429 with ``retry-after`` / ``retry-after-ms``, which the SDKs wait out and retry.

Workers' credentials are not metered: their polls and heartbeats pace themselves, and a
throttled heartbeat would cost a lease."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import falcon.asgi

from application.rate_limit_config import RateLimitConfig
from application.rate_limits import Decision, RateLimited, RateLimiter
from application.sessions import PLATFORM_WORKER_ROLE, WORKER_ROLE
from application.tenancy import Principal
from interfaces.http.common import run

UNMETERED_ROLES = (WORKER_ROLE, PLATFORM_WORKER_ROLE)


class RateLimiting:
    def __init__(self, limiter: RateLimiter, config: RateLimitConfig, sign_in_paths: frozenset[str]) -> None:
        self._limiter = limiter
        self._config = config
        self._sign_in_paths = sign_in_paths

    async def process_request(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        who = getattr(req.context, "principal", None)
        if who is None and req.path in self._sign_in_paths:
            try:
                req.context.rate_limit = self._limiter.meter_address(req.remote_addr or "-")
            except RateLimited as refused:
                req.context.rate_limit = refused.decision
                raise
            return
        if not isinstance(who, Principal) or who.role in UNMETERED_ROLES:
            return
        if not self._config.knows(who.tenant_id):
            await run(self._config.override, who.tenant_id)  # a store read, every few seconds
        try:
            req.context.rate_limit = self._limiter.meter(who.tenant_id, who.user_id or who.key_id)
        except RateLimited as refused:
            req.context.rate_limit = refused.decision
            raise

    async def process_response(self, req, resp, resource, req_succeeded) -> None:  # noqa: ANN001
        decision: Decision | None = getattr(req.context, "rate_limit", None)
        if decision is None:
            return
        reset_at = datetime.now(UTC) + timedelta(seconds=decision.reset_seconds)
        resp.set_header("anthropic-ratelimit-requests-limit", str(decision.limit))
        resp.set_header("anthropic-ratelimit-requests-remaining", str(decision.remaining))
        resp.set_header("anthropic-ratelimit-requests-reset", reset_at.strftime("%Y-%m-%dT%H:%M:%SZ"))
        resp.set_header("x-ratelimit-limit-requests", str(decision.limit))
        resp.set_header("x-ratelimit-remaining-requests", str(decision.remaining))
        resp.set_header("x-ratelimit-reset-requests", _duration(decision.reset_seconds))
        if not decision.allowed:
            resp.set_header("retry-after", str(max(1, math.ceil(decision.retry_after_seconds))))
            resp.set_header("retry-after-ms", str(max(1, math.ceil(decision.retry_after_seconds * 1000))))
            resp.set_header("x-should-retry", "true")


def _duration(seconds: float) -> str:
    """OpenAI's spelling of a wait: ``1.5s``, ``6m0s``."""
    if seconds < 60:
        return f"{round(seconds, 3):g}s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes}m{rest}s"
