"""Projections applied many events per transaction give the read model they give one event
at a time, and a batch that fails leaves every projection's rows and position as they were."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from domain.agents import Agent
from domain.environments import Environment
from domain.sessions import Session
from infra.event_store import EventsourcingEventStore
from projections import tables
from projections.activity import ActivityProjection, activity, activity_streams
from projections.bulk import COPY_FROM
from projections.resources import SessionsProjection, all_projections
from projections.runner import ReadModelProjection, ReadModelRunner


def _turn(session: Session, turn: int) -> None:
    span = f"sevt_{session.session_id}_{turn}"
    session.record("session.status_running", f"{span}_r", {})
    session.record("user.message", f"{span}_u", {"content": [{"type": "text", "text": f"question {turn}"}]})
    session.record("span.model_request_start", span, {})
    session.record(
        "span.model_request_end", f"{span}_e",
        {"model_request_start_id": span, "model_usage": {"input_tokens": 100 + turn, "output_tokens": 7}},
    )  # fmt: skip
    session.record_cost(span, 250 + turn, True)
    session.record("agent.message", f"{span}_a", {"content": [{"type": "text", "text": f"answer {turn}"}]})
    session.record("session.status_idle", f"{span}_i", {"stop_reason": {"type": "end_turn"}})


def _seed(store: EventsourcingEventStore, count: int) -> None:
    """Aggregates whose later events land in other batches than their first: agents renamed
    and archived, environments changed, sessions taking turns and changing their details."""
    held: list[Any] = []
    for i in range(count):
        agent = Agent(agent_id=f"agent_bt{i:08d}", tenant_id=f"t{i % 3}", definition={"name": f"a{i}", "model": "m", "metadata": {}})
        environment = Environment(environment_id=f"env_bt{i:08d}", tenant_id=f"t{i % 3}", definition={"name": f"e{i}", "config": {}})
        session = Session(
            session_id=f"sesn_bt{i:08d}", tenant_id=f"t{i % 3}", agent={"id": agent.agent_id, "version": 1, "model": "m"},
            environment_id=environment.environment_id, details={},
        )  # fmt: skip
        _turn(session, 0)
        store.save(agent, environment, session)
        held.append((agent, environment, session))
    for i, (agent, environment, session) in enumerate(held):
        agent.update({"name": f"renamed{i}", "model": "m"})
        _turn(session, 1)
        if i % 2:
            environment.update({"name": f"changed{i}"})
            session.update({"title": f"title {i}"})
        if i % 3 == 0:
            agent.archive()
            session.archive()
        store.save(agent, environment, session)


def _read_model(engine: sa.Engine, projections: list[ReadModelProjection]) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every read-model table, in a stable order."""
    dumped = {}
    with engine.connect() as conn:
        for projection in projections:
            for table in projection.tables:
                rows = conn.execute(sa.select(table)).all()
                dumped[table.name] = sorted(repr(tuple(row)) for row in rows)
    return dumped


def test_a_rebuild_in_large_batches_gives_the_rows_of_live_projection_one_event_at_a_time(backend) -> None:  # noqa: ANN001
    store, engine = backend
    one_by_one = ReadModelRunner(engine, store, all_projections(), batch_size=1)
    one_by_one.setup()
    _seed(store, 12)
    head = store.max_notification_id()
    assert one_by_one.catch_up() == head
    live = _read_model(engine, all_projections())
    assert any(live[name] for name in ("rm_sessions", "rm_usage", "rm_activity", "rm_agent_versions"))

    batched = ReadModelRunner(engine, store, all_projections(), batch_size=500)
    assert batched.rebuild(*batched.names) == head
    assert set(batched.positions().values()) == {head}
    assert _read_model(engine, all_projections()) == live

    # Live catch-up in middling batches, from a read model emptied by rebuilding from nothing.
    middling = ReadModelRunner(engine, store, all_projections(), batch_size=9)
    with engine.begin() as conn:
        for projection in all_projections():
            for table in projection.tables:
                conn.execute(sa.delete(table))
        conn.execute(sa.update(tables.positions).values(position=0))
    assert middling.catch_up() == head
    assert _read_model(engine, all_projections()) == live


class Crash(Exception):
    pass


class CrashingSessions(SessionsProjection):
    """Fails on the Nth event it is given, like a process dying in the middle of a batch (after
    other projections have written their share of it)."""

    name = "sessions"

    def __init__(self, crash_at: int) -> None:
        super().__init__()
        self.remaining = crash_at

    def apply(self, conn, event) -> None:  # noqa: ANN001
        self.remaining -= 1
        if self.remaining == 0:
            raise Crash()
        super().apply(conn, event)


def test_a_failure_while_the_activity_rows_stream_into_copy_leaves_nothing_behind(backend, monkeypatch) -> None:  # noqa: ANN001
    """On PostgreSQL a large batch's activity rows go to COPY as they are made: a failure in the
    middle of making them rolls back the rows already sent, the streams' subjects and every
    position; the retry applies the batch once."""
    store, engine = backend
    _seed(store, 6)
    head = store.max_notification_id()
    assert head >= COPY_FROM + 20
    made = ActivityProjection._row
    calls = [0]

    def failing_row(*args: Any) -> dict[str, Any]:
        calls[0] += 1
        if calls[0] == COPY_FROM + 10:
            raise Crash()
        return made(*args)

    monkeypatch.setattr(ActivityProjection, "_row", staticmethod(failing_row))
    runner = ReadModelRunner(engine, store, all_projections(), batch_size=500)
    runner.setup()
    with pytest.raises(Crash):
        runner.catch_up()
    assert set(runner.positions().values()) == {0}
    with engine.connect() as conn:
        for table in (activity, activity_streams, tables.sessions):
            assert conn.execute(sa.select(sa.func.count()).select_from(table)).scalar() == 0, table.name
    monkeypatch.setattr(ActivityProjection, "_row", staticmethod(made))
    assert runner.catch_up() == head
    done = _read_model(engine, all_projections())
    fresh = ReadModelRunner(engine, store, all_projections(), batch_size=1)
    fresh.rebuild(*fresh.names)
    assert _read_model(engine, all_projections()) == done


def test_a_failure_in_the_middle_of_a_batch_leaves_every_projections_rows_and_position_as_they_were(backend) -> None:  # noqa: ANN001
    store, engine = backend
    _seed(store, 6)
    head = store.max_notification_id()
    projections = [p if p.name != "sessions" else CrashingSessions(crash_at=40) for p in all_projections()]
    runner = ReadModelRunner(engine, store, projections, batch_size=30)
    runner.setup()
    with pytest.raises(Crash):
        runner.catch_up()
    # The first batch (30 events) committed whole; the second, in which sessions failed, not at all.
    positions = runner.positions()
    assert set(positions.values()) == {30}
    with engine.connect() as conn:
        activity_rows = conn.execute(sa.select(sa.func.count()).select_from(activity)).scalar()
    assert activity_rows == 30

    assert runner.catch_up() == head  # the retry applies the rest, once
    done = _read_model(engine, all_projections())
    fresh = ReadModelRunner(engine, store, all_projections(), batch_size=1)
    fresh.rebuild(*fresh.names)
    assert _read_model(engine, all_projections()) == done
