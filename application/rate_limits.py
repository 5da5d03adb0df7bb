"""Requests per minute, per workspace and per caller, as token buckets.

Each bucket holds up to a minute's allowance and refills continuously (the limit / 60 per
second), as the Anthropic API meters: a burst of a full minute's requests is allowed, then
one request per refill interval. A request takes one token from its workspace's bucket and
one from its caller's (the API key, or the person); it is refused when either is empty, and
then takes neither. Buckets live in the process: with several API processes each meters on
its own (see the README).

A workspace's limit is its own override if it set one, else the organization's (a setting);
a caller's limit is a setting. ``0`` in a setting turns that limit off."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from application.errors import ApplicationError

# A bucket refilled to the brim is the same as none: forget such buckets once this many exist.
MAX_IDLE_BUCKETS = 10_000


class RateLimited(ApplicationError):
    """The caller or its workspace spent its allowance; ``retry_after`` seconds restore a request."""

    code = "rate_limit_exceeded"

    def __init__(self, message: str, decision: Decision) -> None:
        super().__init__(message)
        self.decision = decision


@dataclass(frozen=True)
class Decision:
    """What the tightest bucket a request was metered by says (for the response headers)."""

    allowed: bool
    limit: int
    remaining: int
    # Seconds until the bucket is full again, and (when refused) until one request is allowed.
    reset_seconds: float
    retry_after_seconds: float = 0.0


@dataclass
class _Bucket:
    tokens: float
    stamp: float
    limit: int


class TokenBuckets:
    """Buckets by name; each call names the limit it is metered by (limits may change)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def take(self, metered: list[tuple[str, int]]) -> Decision:
        """One token from each named bucket, or none when any is empty."""
        with self._lock:
            now = self._clock()
            levels = [(self._level(name, limit, now), limit) for name, limit in metered]
            allowed = all(bucket.tokens >= 1 for bucket, _ in levels)
            if allowed:
                for bucket, _ in levels:
                    bucket.tokens -= 1
            if len(self._buckets) > MAX_IDLE_BUCKETS:
                self._forget_full(now)
            return _tightest(levels, allowed)

    def _level(self, name: str, limit: int, now: float) -> _Bucket:
        bucket = self._buckets.get(name)
        if bucket is None:
            bucket = self._buckets[name] = _Bucket(float(limit), now, limit)
        if limit > bucket.limit:
            bucket.tokens += limit - bucket.limit  # a raised limit is room at once
        bucket.limit = limit
        bucket.tokens = min(float(limit), bucket.tokens + (now - bucket.stamp) * limit / 60.0)
        bucket.stamp = now
        return bucket

    def _forget_full(self, now: float) -> None:
        # Without its limit at hand, a bucket idle for a minute is surely full again.
        self._buckets = {name: bucket for name, bucket in self._buckets.items() if now - bucket.stamp < 60.0}


def _tightest(levels: list[tuple[_Bucket, int]], allowed: bool) -> Decision:
    def decision(bucket: _Bucket, limit: int) -> Decision:
        rate = limit / 60.0
        remaining = max(0, math.floor(bucket.tokens))
        reset = (limit - bucket.tokens) / rate if rate else 0.0
        retry = 0.0 if allowed else max(0.0, (1 - bucket.tokens) / rate) if rate else 60.0
        return Decision(allowed, limit, remaining, max(0.0, reset), retry)

    decisions = [decision(bucket, limit) for bucket, limit in levels]
    if not allowed:
        return max(decisions, key=lambda d: d.retry_after_seconds)
    return min(decisions, key=lambda d: (d.remaining, -d.reset_seconds))


@dataclass(frozen=True)
class Limits:
    """The organization's limits (settings): requests per minute per workspace and per caller."""

    workspace_requests_per_minute: int
    caller_requests_per_minute: int
    # Per client address, on the routes that take no credential yet (login, registration,
    # invite acceptance): each costs a password hash, whoever sends it.
    address_requests_per_minute: int = 0


class RateLimiter:
    """Meters a request by its workspace and its caller."""

    def __init__(
        self,
        limits: Limits,
        workspace_override: Callable[[str], int | None],
        buckets: TokenBuckets | None = None,
    ) -> None:
        self._limits = limits
        self._override = workspace_override
        self._buckets = buckets or TokenBuckets()

    def meter_address(self, address: str) -> Decision | None:
        """None when addresses are not metered; raises ``RateLimited`` when one is spent."""
        limit = self._limits.address_requests_per_minute
        if limit <= 0:
            return None
        decision = self._buckets.take([("address:" + address, limit)])
        if not decision.allowed:
            raise RateLimited(
                f"too many sign-in requests from this address ({limit} per minute); retry in "
                f"{math.ceil(decision.retry_after_seconds)} s",
                decision,
            )
        return decision

    def meter(self, workspace_id: str, caller_id: str) -> Decision | None:
        """None when no limit applies; raises ``RateLimited`` when one is spent."""
        metered: list[tuple[str, int]] = []
        override = self._override(workspace_id)
        workspace_limit = self._limits.workspace_requests_per_minute if override is None else override
        if workspace_limit > 0 or override is not None:
            metered.append(("workspace:" + workspace_id, workspace_limit))
        if self._limits.caller_requests_per_minute > 0:
            metered.append(("caller:" + caller_id, self._limits.caller_requests_per_minute))
        if not metered:
            return None
        if any(limit == 0 for _, limit in metered):
            # A workspace set to 0 requests per minute takes none (and never refills).
            refused = Decision(False, 0, 0, 60.0, 60.0)
            raise RateLimited(f"workspace {workspace_id!r} allows no requests (its limit is 0 per minute)", refused)
        decision = self._buckets.take(metered)
        if not decision.allowed:
            raise RateLimited(
                f"rate limit of {decision.limit} requests per minute reached; retry in "
                f"{math.ceil(decision.retry_after_seconds)} s",
                decision,
            )
        return decision
