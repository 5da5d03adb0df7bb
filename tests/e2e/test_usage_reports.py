"""Usage and cost reports on a real server (SQLite and PostgreSQL), read through the official
SDK's ``client.beta.organization.analytics``: sessions driven by the fake provider with known
token counts, then every report, grouping, filter, bucket boundary and page, the workspaces
each caller may read, and a rebuild of the projection that yields exactly the live rows."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import anthropic
import httpx
import pytest
import sqlalchemy as sa

from projections.usage import usage, usage_sessions
from tests.support.fake_provider import FakeProvider, Reply, Text
from tests.support.postgres import fresh_database
from tests.support.sdk_sessions import idles, say, wait_for
from tests.support.server import RunningServer, provider_settings, running_server

PRICED = "claude-sonnet-4-6"  # $3 / $15 per million tokens in, out
CHEAP = "claude-haiku-4-5"  # $1 / $5
UNPRICED = "house-model-x"  # no list price
SONNET = {"input_tokens": 1000, "output_tokens": 200, "cache_read_input_tokens": 100, "cache_creation_input_tokens": 40}
HOUSE = {"input_tokens": 500, "output_tokens": 50}
HAIKU = {"input_tokens": 300, "output_tokens": 30}
# 1000×3 + 200×15 + 100×0.3 + 40×3.75 = 6180 micro-dollars a request, twice: 1.236 cents.
SONNET_COST = "1.236"
HAIKU_COST = "0.045"  # 300×1 + 30×5 = 450 micro-dollars


@dataclass
class Recorded:
    server: RunningServer
    admin: anthropic.Anthropic  # the organization admin (the bootstrap key)
    member: anthropic.Anthropic  # a non-admin key of the default workspace
    research: anthropic.Anthropic  # a key of the Research workspace
    research_id: str
    priced_agent: str
    unpriced_agent: str
    cheap_agent: str
    house_session: str
    house_ended: datetime  # when the unpriced model's one request ended

    @property
    def start(self) -> datetime:
        return self.house_ended - timedelta(days=1)


def _sdk(server: RunningServer, key: str, **headers: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=server.base_url, api_key=key, max_retries=0, timeout=20, default_headers=headers)


def _key(http: httpx.Client, workspace_id: str, role: str = "member") -> str:
    response = http.post("/v1/organizations/api_keys", json={"name": f"{role} key", "workspace_id": workspace_id, "role": role})
    assert response.status_code == 200, response.text
    return str(response.json()["key"])


def _session(client: anthropic.Anthropic, model: str) -> tuple[str, str]:
    agent = client.beta.agents.create(name=f"on {model}", model=model)
    env = client.beta.environments.create(name="env")
    return agent.id, client.beta.sessions.create(agent=agent.id, environment_id=env.id).id


def _turns(client: anthropic.Anthropic, session_id: str, count: int) -> list[Any]:
    for turn in range(count):
        say(client, session_id, f"turn {turn}")
        events = wait_for(client, session_id, idles(turn + 1))
    return events


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def recorded(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, fake_provider_server: FakeProvider
) -> Iterator[Recorded]:
    """One server per backend with usage of three agents in two workspaces."""
    with _database(request) as database_url, running_server(
        tmp_path_factory.mktemp("usage") / "data", database_url, **provider_settings(fake_provider_server)
    ) as server:
        fake = fake_provider_server
        fake.reset()
        admin = _sdk(server, server.api_key)
        with httpx.Client(base_url=server.base_url, headers={"x-api-key": server.api_key}, timeout=20) as http:
            research_id = admin.beta.organization.workspaces.create(name="Research").id
            member = _sdk(server, _key(http, "default"))
            research = _sdk(server, _key(http, research_id, "admin"))
        fake.script(*(Reply([Text("sonnet says hi")], usage=SONNET) for _ in range(2)))
        priced_agent, priced_session = _session(admin, PRICED)
        _turns(admin, priced_session, 2)
        fake.script(Reply([Text("house says hi")], usage=HOUSE))
        unpriced_agent, house_session = _session(admin, UNPRICED)
        ended = next(e for e in _turns(admin, house_session, 1) if e.type == "span.model_request_end")
        fake.script(Reply([Text("haiku says hi")], usage=HAIKU))
        cheap_agent, cheap_session = _session(research, CHEAP)
        _turns(research, cheap_session, 1)
        assert not fake.violations, fake.violations
        server.platform.projections.catch_up()
        yield Recorded(
            server, admin, member, research, research_id, priced_agent, unpriced_agent, cheap_agent, house_session,
            ended.processed_at.astimezone(UTC),
        )  # fmt: skip


def _database(request: pytest.FixtureRequest) -> Any:
    """A context giving the module's database URL: "" (embedded SQLite) or a fresh PostgreSQL one."""
    if request.param == "postgres":
        return fresh_database(request.getfixturevalue("postgres_server_url"))
    return _Nothing()


class _Nothing:
    def __enter__(self) -> str:
        return ""

    def __exit__(self, *_: Any) -> None:
        return None


def _analytics(client: anthropic.Anthropic) -> Any:
    return client.beta.organization.analytics


def _rows(report: Any) -> list[Any]:
    """Every result of every bucket of every page."""
    return [row for bucket in report for row in bucket.results]


def _by(rows: list[Any], name: str) -> dict[Any, Any]:
    return {getattr(row, name): row for row in rows}


# -- the bucketed reports ------------------------------------------------------------------------


def test_the_usage_report_totals_every_request_of_the_callers_workspaces(recorded: Recorded) -> None:
    (row,) = _rows(_analytics(recorded.admin).usage_report.list(starting_at=recorded.start, limit=31))
    assert row.requests == 4
    assert row.uncached_input_tokens == 2 * 1000 + 500 + 300
    assert row.output_tokens == 2 * 200 + 50 + 30
    assert row.cache_read_input_tokens == 200
    assert row.cache_creation.ephemeral_5m_input_tokens == 80 and row.cache_creation.ephemeral_1h_input_tokens == 0
    assert row.server_tool_use.web_search_requests == 0
    assert row.model is None and row.product is None  # not grouped


def test_group_by_model_and_by_agent_break_usage_out(recorded: Recorded) -> None:
    analytics = _analytics(recorded.admin)
    by_model = _by(_rows(analytics.usage_report.list(starting_at=recorded.start, group_by=["model"], limit=31)), "model")
    assert set(by_model) == {PRICED, UNPRICED, CHEAP}
    assert (by_model[PRICED].requests, by_model[PRICED].uncached_input_tokens, by_model[PRICED].output_tokens) == (2, 2000, 400)
    assert (by_model[UNPRICED].requests, by_model[UNPRICED].uncached_input_tokens) == (1, 500)
    # Agentry's agent is one more grouping (the SDK sends any value it is given)
    by_agent = _by(
        _rows(analytics.usage_report.list(starting_at=recorded.start, group_by=["agent_id", "speed"], limit=31)), "agent_id"  # type: ignore[list-item]
    )
    assert set(by_agent) == {recorded.priced_agent, recorded.unpriced_agent, recorded.cheap_agent}
    assert by_agent[recorded.cheap_agent].output_tokens == 30 and by_agent[recorded.cheap_agent].speed == "standard"
    assert by_agent[recorded.cheap_agent].model is None  # grouped by agent and speed only


def test_filters_narrow_the_usage(recorded: Recorded) -> None:
    analytics = _analytics(recorded.admin)

    def rows(**filters: Any) -> list[Any]:
        return _rows(analytics.usage_report.list(starting_at=recorded.start, limit=31, **filters))

    (priced,) = rows(models=[PRICED])
    assert priced.requests == 2 and priced.uncached_input_tokens == 2000
    (mine,) = rows(extra_query={"agent_ids": [recorded.unpriced_agent]})
    assert mine.output_tokens == 50
    (research,) = rows(extra_query={"workspace_ids": [recorded.research_id]})
    assert research.output_tokens == 30
    assert rows(models=["no-such-model"]) == []
    assert rows(context_windows=["200k-1M"]) == []
    assert rows(context_windows=["0-200k"])[0].requests == 4
    assert rows(speeds=["fast"]) == []
    # What Agentry never records matches nothing; a region's absence matches everything.
    assert rows(products=["chat"]) == [] and rows(claude_tag_categories=["engaged"]) == []
    assert rows(inference_geos=["us"]) == [] and rows(inference_geos=["not_available"])[0].requests == 4
    # No request records its API key: the empty entry matches all of them.
    assert rows(extra_query={"api_key_ids": [""]})[0].requests == 4
    assert rows(extra_query={"api_key_ids": ["apikey_01BcDeFgHjKmNpQrStUvWxYz"]}) == []


def test_the_cost_report_prices_each_request_at_its_recorded_list_cost(recorded: Recorded) -> None:
    analytics = _analytics(recorded.admin)
    by_model = _by(_rows(analytics.cost_report.list(starting_at=recorded.start, group_by=["model"], limit=31)), "model")
    assert by_model[PRICED].amount == SONNET_COST and by_model[PRICED].list_amount == SONNET_COST
    assert by_model[PRICED].currency == "USD" and by_model[PRICED].requests == 2
    assert by_model[CHEAP].amount == HAIKU_COST
    assert by_model[UNPRICED].amount == "0" and by_model[UNPRICED].requests == 1  # no list price: counted, at 0
    (total,) = _rows(analytics.cost_report.list(starting_at=recorded.start, limit=31))
    assert total.amount == "1.281" and total.requests == 4 and total.cost_type is None


def test_the_cost_report_breaks_a_cost_out_by_token_type(recorded: Recorded) -> None:
    report = _analytics(recorded.admin).cost_report.list(
        starting_at=recorded.start, group_by=["token_type"], models=[PRICED], limit=31
    )
    parts = {row.token_type: row for row in _rows(report)}
    assert {name: row.amount for name, row in parts.items()} == {
        "uncached_input_tokens": "0.6",
        "output_tokens": "0.6",
        "cache_read_input_tokens": "0.006",
        "cache_creation.ephemeral_5m_input_tokens": "0.03",
    }
    assert all(row.cost_type == "tokens" and row.requests is None for row in parts.values())
    (combined,) = _rows(_analytics(recorded.admin).cost_report.list(starting_at=recorded.start, group_by=["cost_type"], models=[PRICED], limit=31))
    assert combined.cost_type == "tokens" and combined.amount == SONNET_COST and combined.token_type is None


def test_buckets_start_and_end_at_the_bucket_boundaries(recorded: Recorded) -> None:
    analytics = _analytics(recorded.admin)
    minute = recorded.house_ended.replace(second=0, microsecond=0)

    def buckets(start: datetime, end: datetime, width: str = "1m", **params: Any) -> list[Any]:
        return list(analytics.usage_report.list(starting_at=start, ending_at=end, bucket_width=width, models=[UNPRICED], **params))

    (bucket,) = buckets(minute, minute + timedelta(minutes=1))
    assert (bucket.starting_at, bucket.ending_at) == (minute, minute + timedelta(minutes=1))
    assert [row.requests for row in bucket.results] == [1]
    assert buckets(minute, minute) == []  # an empty range has no bucket
    (after,) = buckets(minute + timedelta(minutes=1), minute + timedelta(minutes=2))
    assert after.results == []  # every bucket of the range is listed, empty where nothing happened
    (before,) = buckets(minute - timedelta(minutes=1), minute)
    assert before.results == []
    # a range that starts inside the minute is rounded down to it, one that ends inside it up
    (rounded,) = buckets(minute + timedelta(seconds=1), minute + timedelta(seconds=2))
    assert rounded.starting_at == minute and [row.requests for row in rounded.results] == [1]
    # hours, a page of two buckets at a time, followed by the SDK across pages
    hour = minute.replace(minute=0)
    pages = analytics.usage_report.list(
        starting_at=hour - timedelta(hours=2), ending_at=hour + timedelta(hours=1), bucket_width="1h", limit=2, models=[UNPRICED]
    )
    assert len(pages.data) == 2 and pages.has_more and pages.next_page
    every = list(pages)
    assert [b.starting_at for b in every] == [hour - timedelta(hours=2), hour - timedelta(hours=1), hour]
    assert [len(b.results) for b in every] == [0, 0, 1]
    # days: 7 buckets a page by default
    days = analytics.usage_report.list(starting_at=hour - timedelta(days=10), ending_at=hour + timedelta(hours=1))
    assert len(days.data) == 7 and days.has_more


# -- the row reports ---------------------------------------------------------------------------


def test_the_usage_rows_group_by_agent_workspace_and_session(recorded: Recorded) -> None:
    analytics = _analytics(recorded.admin)
    rows = list(analytics.usage.list(starting_at=recorded.start, group_by=["agent_id", "workspace_id"]))
    assert [(row.group.agent_id, row.group.workspace_id, row.usage.total_tokens) for row in rows] == [
        (recorded.priced_agent, "default", 2 * (1000 + 200 + 100 + 40)),  # highest total_tokens first
        (recorded.unpriced_agent, "default", 550),
        (recorded.cheap_agent, recorded.research_id, 330),
    ]
    assert all(row.group.model is None and row.group.actor is None for row in rows)
    by_requests = list(analytics.usage.list(starting_at=recorded.start, group_by=["model"], order_by="requests", order="asc"))
    assert [row.usage.requests for row in by_requests] == [1, 1, 2]
    (house,) = analytics.usage.list(starting_at=recorded.start, group_by=["session_id"], session_ids=[recorded.house_session])
    assert house.group.session_id == recorded.house_session and house.usage.output_tokens == 50
    # a page of one row at a time, followed by the SDK
    first = analytics.usage.list(starting_at=recorded.start, group_by=["model"], limit=1)
    assert len(first.data) == 1 and first.has_more
    assert [row.group.model for row in first] == [PRICED, UNPRICED, CHEAP]


def test_the_cost_rows_in_hourly_buckets(recorded: Recorded) -> None:
    analytics = _analytics(recorded.admin)
    hour = recorded.house_ended.replace(minute=0, second=0, microsecond=0)
    rows = list(
        analytics.cost.list(
            starting_at=hour - timedelta(hours=1), ending_at=hour + timedelta(hours=1), time_bucket_width="1h",
            group_by=["model"], models=[UNPRICED],
        )  # fmt: skip
    )
    assert [(row.starting_at, row.ending_at, row.group.model, row.cost.amount, row.cost.requests) for row in rows] == [
        (hour, hour + timedelta(hours=1), UNPRICED, "0", 1)
    ]
    split = list(analytics.cost.list(starting_at=recorded.start, group_by=["cost_type", "token_type", "workspace_id"]))
    research = [row for row in split if row.group.workspace_id == recorded.research_id]
    assert {(row.group.token_type, row.cost.amount) for row in research} == {
        ("uncached_input_tokens", "0.03"),
        ("output_tokens", "0.015"),
    }


# -- who sees what -----------------------------------------------------------------------------


def test_a_workspace_key_reads_only_its_workspace_and_the_admin_reads_all(recorded: Recorded) -> None:
    def workspaces(client: anthropic.Anthropic, **params: Any) -> dict[Any, int]:
        rows = _rows(_analytics(client).usage_report.list(starting_at=recorded.start, limit=31, group_by=["workspace_id"], **params))  # type: ignore[list-item]
        return {row.workspace_id: row.requests for row in rows}

    assert workspaces(recorded.admin) == {"default": 3, recorded.research_id: 1}
    assert workspaces(recorded.member) == {"default": 3}
    assert workspaces(recorded.research) == {recorded.research_id: 1}
    # naming another workspace narrows to nothing rather than widening
    assert workspaces(recorded.research, extra_query={"workspace_ids": ["default"]}) == {}
    # the admin's workspace header does not narrow an organization report
    header = _sdk(recorded.server, recorded.server.api_key, **{"anthropic-workspace-id": recorded.research_id})
    assert workspaces(header) == {"default": 3, recorded.research_id: 1}


# -- refusals -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "query", "says"),
    [
        ("usage_report", {}, "starting_at"),
        ("usage_report", {"starting_at": "yesterday"}, "RFC 3339"),
        ("usage_report", {"starting_at": "2026-03-02T00:00:00Z", "ending_at": "2026-03-01T00:00:00Z"}, "before"),
        ("cost_report", {"starting_at": "2026-01-01T00:00:00Z", "ending_at": "2026-03-01T00:00:00Z"}, "31 days"),
        ("usage_report", {"starting_at": "2026-01-01T00:00:00Z", "group_by[]": "cost_type"}, "group_by"),
        ("usage_report", {"starting_at": "2026-01-01T00:00:00Z", "bucket_width": "2d"}, "bucket_width"),
        ("usage_report", {"starting_at": "2026-01-01T00:00:00Z", "page": "nonsense"}, "page"),
        ("usage", {"starting_at": "2026-01-01T00:00:00Z", "time_bucket_width": "1h"}, "ending_at"),
        ("usage", {"starting_at": "2026-01-01T00:00:00Z", "ending_at": "2026-01-03T00:00:00Z", "time_bucket_width": "1m"}, "24 hours"),
        ("cost", {"starting_at": "2026-01-01T00:00:00Z", "group_by[]": ["model", "agent_id", "speed", "session_id", "workspace_id", "environment_id"]}, "at most 5"),
        ("cost", {"starting_at": "2026-01-01T00:00:00Z", "products[]": "bogus"}, "products"),
        ("usage", {"starting_at": "2026-01-01T00:00:00Z", "order_by": "amount"}, "order_by"),
        ("usage", {"starting_at": "9999-12-31T23:59:59Z"}, "between"),
    ],
)
def test_bad_report_queries_are_400s(recorded: Recorded, path: str, query: dict[str, Any], says: str) -> None:
    with httpx.Client(base_url=recorded.server.base_url, headers={"x-api-key": recorded.server.api_key}, timeout=20) as http:
        response = http.get(f"/v1/organizations/analytics/{path}", params=query)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and says in error["message"]


def test_a_page_token_is_a_position_in_any_query(recorded: Recorded) -> None:
    analytics = _analytics(recorded.admin)
    first = analytics.usage_report.list(starting_at=recorded.start, ending_at=recorded.start + timedelta(days=2), limit=1)
    assert first.next_page
    # the same position in a range that ends before it: an empty page, not an error
    empty = analytics.usage_report.list(starting_at=recorded.start, ending_at=recorded.start, page=first.next_page)
    assert empty.data == [] and not empty.has_more


# -- rebuilding ----------------------------------------------------------------------------------


def test_rebuilding_the_projection_yields_exactly_the_live_rows(recorded: Recorded) -> None:
    runner = recorded.server.platform.projections
    report = _analytics(recorded.admin).cost_report.list(starting_at=recorded.start, group_by=["model", "token_type"], limit=31)

    def rows() -> tuple[list[Any], list[Any]]:
        with runner.engine.connect() as conn:
            return (
                sorted(tuple(row) for row in conn.execute(sa.select(usage)).all()),
                sorted(tuple(map(str, row)) for row in conn.execute(sa.select(usage_sessions)).all()),
            )

    live = rows()
    assert len(live[0]) >= 3 * 3 and len(live[1]) == 3  # a minute, hour and day row of each of three sessions
    runner.rebuild("usage")
    assert rows() == live
    again = _analytics(recorded.admin).cost_report.list(starting_at=recorded.start, group_by=["model", "token_type"], limit=31)
    assert again.to_dict() == report.to_dict()


def test_reports_are_in_the_api_description(recorded: Recorded) -> None:
    with httpx.Client(base_url=recorded.server.base_url, timeout=20) as http:
        paths = http.get("/openapi.json").json()["paths"]
    for report in ("usage_report", "cost_report", "usage", "cost"):
        assert "get" in paths[f"/v1/organizations/analytics/{report}"]

