"""Token buckets and the limiter, on a clock the test moves."""

from __future__ import annotations

import pytest

from application.rate_limits import Limits, RateLimited, RateLimiter, TokenBuckets
from domain.rate_limits import UnenforcedLimit, WorkspaceRateLimits


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def limiter(workspace: int, caller: int, overrides: dict[str, int] | None = None) -> tuple[RateLimiter, Clock]:
    clock = Clock()
    found = overrides or {}
    return RateLimiter(Limits(workspace, caller), found.get, TokenBuckets(clock)), clock


def test_a_full_minute_may_be_spent_at_once_then_one_request_per_refill() -> None:
    meter, clock = limiter(workspace=0, caller=60)
    for left in range(59, -1, -1):
        decision = meter.meter("ws", "key-a")
        assert decision is not None and decision.allowed and decision.remaining == left
    with pytest.raises(RateLimited) as refused:
        meter.meter("ws", "key-a")
    assert refused.value.decision.limit == 60
    assert refused.value.decision.retry_after_seconds == pytest.approx(1.0)
    clock.now += 0.5
    with pytest.raises(RateLimited) as still:
        meter.meter("ws", "key-a")
    assert still.value.decision.retry_after_seconds == pytest.approx(0.5)
    clock.now += 0.5
    assert meter.meter("ws", "key-a") is not None  # one token came back
    assert meter.meter("ws", "key-b") is not None  # another caller has its own bucket


def test_a_workspace_bucket_is_shared_by_its_callers_and_a_refusal_takes_from_neither() -> None:
    meter, clock = limiter(workspace=3, caller=2)
    meter.meter("ws", "a")
    meter.meter("ws", "a")
    with pytest.raises(RateLimited):
        meter.meter("ws", "a")  # a's own bucket is empty; the workspace keeps its last token
    meter.meter("ws", "b")  # so b gets it
    with pytest.raises(RateLimited) as refused:
        meter.meter("ws", "b")
    assert refused.value.decision.limit == 3  # the workspace's bucket refused
    meter.meter("other-ws", "c")  # another workspace is untouched


def test_an_override_replaces_the_organization_value_and_zero_refuses_everything() -> None:
    meter, _ = limiter(workspace=1000, caller=0, overrides={"small": 2, "closed": 0})
    meter.meter("small", "a")
    meter.meter("small", "a")
    with pytest.raises(RateLimited):
        meter.meter("small", "a")
    with pytest.raises(RateLimited) as closed:
        meter.meter("closed", "a")
    assert "allows no requests" in str(closed.value)


def test_zero_settings_turn_metering_off() -> None:
    meter, _ = limiter(workspace=0, caller=0)
    assert all(meter.meter("ws", "a") is None for _ in range(1000))


def test_headers_report_the_tighter_bucket() -> None:
    meter, _ = limiter(workspace=100, caller=10)
    decision = meter.meter("ws", "a")
    assert decision is not None and (decision.limit, decision.remaining) == (10, 9)
    assert decision.reset_seconds == pytest.approx(6.0)  # one token at 10 per minute


def test_a_workspace_sets_and_clears_only_enforced_limits() -> None:
    limits = WorkspaceRateLimits(workspace_id="ws")
    assert limits.set_limits({"requests_per_minute": 50})
    assert not limits.set_limits({"requests_per_minute": 50})  # nothing changed, nothing recorded
    assert limits.overrides == {"requests_per_minute": 50}
    assert limits.set_limits({"requests_per_minute": None})
    assert limits.overrides == {}
    with pytest.raises(UnenforcedLimit):
        limits.set_limits({"tokens_per_minute": 5})


def test_a_raised_limit_is_room_at_once_and_a_lowered_one_caps_the_bucket() -> None:
    overrides: dict[str, int] = {"ws": 2}
    clock = Clock()
    meter = RateLimiter(Limits(1000, 0), overrides.get, TokenBuckets(clock))
    meter.meter("ws", "a")
    meter.meter("ws", "a")
    overrides["ws"] = 5
    assert [meter.meter("ws", "a") is not None for _ in range(3)] == [True, True, True]
    with pytest.raises(RateLimited):
        meter.meter("ws", "a")
    overrides["ws"] = 1000
    meter.meter("ws", "a")
    overrides["ws"] = 1
    meter.meter("ws", "a")  # the bucket shrinks to one
    with pytest.raises(RateLimited):
        meter.meter("ws", "a")
