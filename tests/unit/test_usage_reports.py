"""The rules of the usage and cost reports: a request's cost divided among its token types,
the range a query covers, the groupings it may ask for, and whose usage a caller reads."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from application.errors import Invalid
from application.tenancy import Principal
from application.usage_reports import (
    LEGACY_USAGE_GROUP_BY,
    ReportQuery,
    check_group_by,
    context_window,
    report_range,
    split_cost,
    visible_workspaces,
)
from projections.usage import cents

NOON = datetime(2026, 3, 2, 12, 34, 56, tzinfo=UTC)


def test_a_priced_models_cost_splits_exactly_by_its_list_prices() -> None:
    tokens = {"uncached_input_tokens": 1000, "output_tokens": 200, "cache_read_input_tokens": 100,
              "cache_creation.ephemeral_5m_input_tokens": 40}  # fmt: skip
    # claude-sonnet-4-6: $3 in, $15 out per million: 3000 + 3000 + 30 + 150 micro-dollars
    assert split_cost("claude-sonnet-4-6", tokens, 6180) == {
        "uncached_input_tokens": 3000,
        "output_tokens": 3000,
        "cache_read_input_tokens": 30,
        "cache_creation.ephemeral_5m_input_tokens": 150,
        "cache_creation.ephemeral_1h_input_tokens": 0,
    }


@pytest.mark.parametrize("total", [0, 1, 7, 999, 123_457])
def test_the_parts_always_add_up_to_the_recorded_cost(total: int) -> None:
    tokens = {"uncached_input_tokens": 3, "output_tokens": 7, "cache_read_input_tokens": 11}
    parts = split_cost("a-card-handle", tokens, total)  # no list price: the standard proportions
    assert sum(parts.values()) == total and all(part >= 0 for part in parts.values())


def test_a_cost_without_tokens_is_counted_as_input() -> None:
    assert split_cost("claude-haiku-4-5", {}, 12)["uncached_input_tokens"] == 12


def test_amounts_are_fractional_cents() -> None:
    assert [cents(0), cents(1), cents(6180), cents(100_000), cents(123_456_789)] == ["0", "0.0001", "0.618", "10", "12345.6789"]


def test_the_context_window_tier_turns_at_200k_prompt_tokens() -> None:
    assert (context_window(200_000), context_window(200_001)) == ("0-200k", "200k-1M")


def test_a_range_rounds_outward_to_whole_buckets() -> None:
    query = ReportQuery(starting_at=NOON, ending_at=NOON + timedelta(minutes=1), width="1h", group_by=())
    assert (query.start, query.end) == (_epoch(NOON.replace(minute=0, second=0)), _epoch(NOON.replace(hour=13, minute=0, second=0)))
    minutes = ReportQuery(starting_at=NOON, ending_at=NOON, width="1m", group_by=())
    assert minutes.end - minutes.start == 60  # a moment inside a minute is that minute
    aligned = NOON.replace(second=0)
    assert ReportQuery(starting_at=aligned, ending_at=aligned, width="1m", group_by=()).end == _epoch(aligned)


def test_a_row_report_covers_whole_hours_and_an_open_one_the_current_hour() -> None:
    closed = ReportQuery(starting_at=NOON - timedelta(hours=3), ending_at=NOON, width=None, group_by=())
    assert closed.end == _epoch(NOON.replace(minute=0, second=0))
    opened = ReportQuery(starting_at=NOON - timedelta(hours=3), ending_at=NOON, width=None, group_by=(), open_ended=True)
    assert opened.end == _epoch(NOON.replace(hour=13, minute=0, second=0))


def test_the_range_defaults_to_now_or_31_days_and_may_not_exceed_31_days() -> None:
    assert report_range(NOON, None, NOON + timedelta(days=1)) == NOON + timedelta(days=1)
    assert report_range(NOON, None, NOON + timedelta(days=90)) == NOON + timedelta(days=31)
    assert report_range(NOON, None, NOON - timedelta(days=1)) == NOON  # a range that starts later than now is empty
    assert report_range(NOON, NOON + timedelta(days=31), NOON) == NOON + timedelta(days=31)
    with pytest.raises(Invalid, match="31 days"):
        report_range(NOON, NOON + timedelta(days=31, seconds=1), NOON)
    with pytest.raises(Invalid, match="before"):
        report_range(NOON, NOON - timedelta(seconds=1), NOON)


def test_group_by_takes_known_dimensions_once_each() -> None:
    assert check_group_by(["model", "model", "speed"], LEGACY_USAGE_GROUP_BY) == ("model", "speed")
    with pytest.raises(Invalid, match="token_type"):
        check_group_by(["token_type"], LEGACY_USAGE_GROUP_BY)
    dimensions = ["model", "speed", "agent_id", "session_id", "workspace_id"]
    allowed = (*dimensions, "environment_id", "cost_type", "token_type")
    assert len(check_group_by([*dimensions, "cost_type", "token_type"], allowed, 5)) == 7
    with pytest.raises(Invalid, match="at most 5"):
        check_group_by([*dimensions, "environment_id"], allowed, 5)


def test_organization_admins_read_every_workspace_and_others_their_own() -> None:
    assert visible_workspaces(Principal("default", "apikey_1", organization_role="admin")) is None
    assert visible_workspaces(Principal("wrkspc_a", "apikey_2", workspaces=frozenset({"wrkspc_a"}))) == {"wrkspc_a"}
    person = Principal("wrkspc_a", "user:1", role="member", user_id="user_1", workspaces=frozenset({"wrkspc_a", "default"}))
    assert visible_workspaces(person) == {"wrkspc_a", "default"}
    # a caller with no list of workspaces and no organization role reads only the one it acts in
    assert visible_workspaces(Principal("wrkspc_b", "sandbox")) == {"wrkspc_b"}


def _epoch(moment: datetime) -> int:
    return int(moment.timestamp())
