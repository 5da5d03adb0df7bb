"""The usage projection and its reports on SQLite and PostgreSQL, fed a session's real domain
events at chosen moments: requests on either side of a minute boundary, a cost recorded a
moment after its tokens, a grader's request, a span closed without a response, a model with no
list price, a projection that starts cold (its attribution cache empty), and the reports'
buckets and pages read over those rows."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from application.usage_reports import Filters, ReportQuery
from domain.sessions import Session
from infra.settings import Settings
from projections import tables
from projections.runner import create_engine
from projections.usage import UsageProjection, UsageReports, usage
from tests.support.postgres import database_of

TEN = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
PRICED = "claude-sonnet-4-6"


@pytest.fixture(params=["sqlite", "postgres"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sa.Engine]:
    engine = create_engine(Settings(data_dir=tmp_path, database_url=database_of(request)).read_model_url)
    tables.metadata.create_all(engine)
    yield engine
    engine.dispose()


class Recorder:
    """A session whose events are stamped with the moments a test chooses."""

    def __init__(self, session_id: str = "sesn_usage000001", model: str = PRICED, tenant: str = "default") -> None:
        self.session = Session(
            session_id=session_id, tenant_id=tenant, agent={"id": "agent_1", "version": 1, "model": {"id": model}},
            environment_id="env_1", details={},
        )  # fmt: skip
        self._spans = 0

    def events(self, *moments: datetime) -> list[Any]:
        """The session's pending events, the n-th stamped ``moments[n]`` (the last moment for the rest)."""
        pending = self.session.collect_events()
        return [
            dataclasses.replace(event, timestamp=moments[min(index, len(moments) - 1)])
            for index, event in enumerate(pending)
        ]

    def request(self, tokens: dict[str, int], cost: int, priced: bool = True) -> None:
        self._spans += 1
        span = f"sevt_span{self._spans}"
        self.session.begin_request(span)
        self.session.finish_request(span, [], f"sevt_end{self._spans}", {"model_usage": tokens, "is_error": False}, {}, cost, priced)


def apply(engine: sa.Engine, projection: UsageProjection, events: list[Any]) -> None:
    with engine.begin() as conn:
        for event in events:
            projection.apply(conn, event)


def query(start: datetime, end: datetime, width: str | None = "1m", **fields: Any) -> ReportQuery:
    return ReportQuery(starting_at=start, ending_at=end, width=width, **{"group_by": (), **fields})


def requests_by_bucket(report: dict[str, Any]) -> list[tuple[str, list[int]]]:
    return [(bucket["starting_at"], [row["requests"] for row in bucket["results"]]) for bucket in report["data"]]


def test_requests_either_side_of_a_minute_boundary_land_in_their_own_minute(engine: sa.Engine) -> None:
    recorder, projection = Recorder(), UsageProjection()
    apply(engine, projection, recorder.events(TEN - timedelta(minutes=5)))
    recorder.request({"input_tokens": 100, "output_tokens": 10}, 450)
    last_microsecond = TEN + timedelta(minutes=1) - timedelta(microseconds=1)
    apply(engine, projection, recorder.events(last_microsecond))  # start, end and cost all in 10:00
    recorder.request({"input_tokens": 200, "output_tokens": 20}, 900)
    apply(engine, projection, recorder.events(TEN + timedelta(minutes=1)))  # 10:01:00.000000
    reports = UsageReports(engine)

    minutes = reports.usage_report(None, query(TEN, TEN + timedelta(minutes=2)))
    assert requests_by_bucket(minutes) == [("2026-03-02T10:00:00Z", [1]), ("2026-03-02T10:01:00Z", [1])]
    assert [bucket["results"][0]["uncached_input_tokens"] for bucket in minutes["data"]] == [100, 200]
    assert requests_by_bucket(reports.usage_report(None, query(TEN + timedelta(minutes=1), TEN + timedelta(minutes=2)))) == [
        ("2026-03-02T10:01:00Z", [1])
    ]
    assert reports.usage_report(None, query(TEN - timedelta(minutes=1), TEN))["data"][0]["results"] == []
    hours = reports.usage_report(None, query(TEN, TEN + timedelta(hours=1), "1h"))
    assert requests_by_bucket(hours) == [("2026-03-02T10:00:00Z", [2])]
    days = reports.cost_report(None, query(TEN, TEN, "1d"))  # a day bucket holds a moment that starts it
    assert [(b["starting_at"], [r["amount"] for r in b["results"]]) for b in days["data"]] == [("2026-03-02T00:00:00Z", ["0.135"])]


def test_a_cost_recorded_after_the_minute_turned_stays_with_its_tokens(engine: sa.Engine) -> None:
    recorder, projection = Recorder(), UsageProjection()
    recorder.request({"input_tokens": 1000, "output_tokens": 100}, 4500)
    boundary = TEN + timedelta(minutes=1)
    # Started, UserMessage… none here: Started, span start, span end at 10:00:59.999999, cost at 10:01:00
    events = recorder.events(TEN, TEN, boundary - timedelta(microseconds=1), boundary)
    assert type(events[-1]).__qualname__ == "Session.RequestCosted" and events[-1].timestamp == boundary
    apply(engine, projection, events)
    report = UsageReports(engine).cost_report(None, query(TEN, boundary + timedelta(minutes=1)))
    assert [(b["starting_at"], [(r["amount"], r["requests"]) for r in b["results"]]) for b in report["data"]] == [
        ("2026-03-02T10:00:00Z", [("0.45", 1)]),
        ("2026-03-02T10:01:00Z", []),
    ]


def test_graders_count_closed_spans_do_not_and_an_unpriced_model_costs_nothing(engine: sa.Engine) -> None:
    priced, unpriced, projection = Recorder(), Recorder("sesn_usage000002", "house-model"), UsageProjection()
    priced.session.begin_request("sevt_closed")
    priced.session.close_request("sevt_closed_end", is_error=True)  # no response: no tokens, no cost
    marker = {"outcome_id": "outc_1", "iteration": 0, "outcome_evaluation_start_id": "sevt_grader", "result": "satisfied"}
    priced.session.record("span.outcome_evaluation_end", "sevt_grader_end", {**marker, "usage": {"input_tokens": 50, "output_tokens": 5}})
    priced.session.record_cost("sevt_grader", 225, True)
    unpriced.request({"input_tokens": 70, "output_tokens": 7}, 0, priced=False)
    apply(engine, projection, priced.events(TEN) + unpriced.events(TEN))
    reports = UsageReports(engine)
    grouped = ReportQuery(starting_at=TEN, ending_at=TEN + timedelta(hours=1), width=None, group_by=("model",), open_ended=False)
    rows = {row["group"]["model"]: row["cost"] for row in reports.cost(None, grouped)["data"]}
    assert rows == {
        PRICED: {"amount": "0.0225", "list_amount": "0.0225", "currency": "USD", "requests": 1},
        "house-model": {"amount": "0", "list_amount": "0", "currency": "USD", "requests": 1},
    }
    tokens = {row["group"]["model"]: row["usage"]["uncached_input_tokens"] for row in reports.usage(None, grouped)["data"]}
    assert tokens == {PRICED: 50, "house-model": 70}


def test_a_cold_projection_reads_the_sessions_attribution_from_its_row(engine: sa.Engine) -> None:
    recorder = Recorder(tenant="wrkspc_cold")
    apply(engine, UsageProjection(), recorder.events(TEN))
    recorder.request({"input_tokens": 10, "output_tokens": 1}, 45)
    apply(engine, UsageProjection(), recorder.events(TEN))  # another process, its cache empty
    report = UsageReports(engine).usage(
        frozenset({"wrkspc_cold"}), query(TEN, TEN + timedelta(hours=1), None, group_by=("workspace_id", "agent_id"))
    )
    assert [(row["group"]["workspace_id"], row["group"]["agent_id"], row["usage"]["requests"]) for row in report["data"]] == [
        ("wrkspc_cold", "agent_1", 1)
    ]
    assert UsageReports(engine).usage(frozenset({"default"}), query(TEN, TEN + timedelta(hours=1), None))["data"] == []


def test_bucket_pages_and_filters(engine: sa.Engine) -> None:
    recorder, projection = Recorder(), UsageProjection()
    apply(engine, projection, recorder.events(TEN))
    for minute in (0, 2, 4):
        recorder.request({"input_tokens": 10, "output_tokens": 1}, 45)
        apply(engine, projection, recorder.events(TEN + timedelta(minutes=minute, seconds=30)))
    reports = UsageReports(engine)
    pages, page = [], None
    while True:
        report = reports.usage_report(None, query(TEN, TEN + timedelta(minutes=5), limit=2, page=page))
        pages.append(requests_by_bucket(report))
        page = report["next_page"]
        if not report["has_more"]:
            break
    assert pages == [
        [("2026-03-02T10:00:00Z", [1]), ("2026-03-02T10:01:00Z", [])],
        [("2026-03-02T10:02:00Z", [1]), ("2026-03-02T10:03:00Z", [])],
        [("2026-03-02T10:04:00Z", [1])],
    ]
    narrowed = query(TEN, TEN + timedelta(minutes=5), "1h", filters=Filters(session_ids=("sesn_other",)))
    assert reports.usage_report(None, narrowed)["data"][0]["results"] == []
    nothing = query(TEN, TEN + timedelta(minutes=5), "1h", filters=Filters(nothing=True))
    assert reports.usage_report(None, nothing)["data"][0]["results"] == []


def test_every_request_adds_to_counters_without_reading_them(engine: sa.Engine) -> None:
    """Two requests of one session in one minute share their rows (one per width)."""
    recorder, projection = Recorder(), UsageProjection()
    recorder.request({"input_tokens": 10, "output_tokens": 1}, 45)
    recorder.request({"input_tokens": 20, "output_tokens": 2}, 90)
    apply(engine, projection, recorder.events(TEN))
    with engine.connect() as conn:
        rows = conn.execute(sa.select(usage.c.width, usage.c.requests, usage.c.uncached_input_tokens, usage.c.cost_micros)).all()
    assert sorted(tuple(row) for row in rows) == [("1d", 2, 30, 135), ("1h", 2, 30, 135), ("1m", 2, 30, 135)]
