"""Projections are exactly-once: rows and position commit together, runners do not collide,
and a rebuild reproduces the same read model."""

from __future__ import annotations

import logging
import threading
import time

import pytest
import sqlalchemy as sa

from domain.agents import Agent
from domain.environments import Environment
from infra.event_store import EventsourcingEventStore
from projections import tables
from projections.resources import AgentsProjection, all_projections
from projections.runner import ReadModelProjection, ReadModelRunner
from projections.task_runs import TaskFollower
from tests.support.decodes import record_decodes


class Crash(Exception):
    pass


class CrashingAgents(AgentsProjection):
    """Fails on the Nth event it sees, once, like a process dying mid-batch."""

    def __init__(self, crash_at: int) -> None:
        super().__init__()
        self.remaining = crash_at

    def apply(self, conn, event) -> None:  # noqa: ANN001
        self.remaining -= 1
        if self.remaining == 0:
            raise Crash()
        super().apply(conn, event)


def _seed(store: EventsourcingEventStore, count: int) -> list[str]:
    ids = []
    for i in range(count):
        agent = Agent(agent_id=f"agent_seed{i:08d}", tenant_id="t", definition={"name": f"n{i}", "metadata": {}})
        if i % 3 == 0:
            agent.update({"name": f"renamed{i}"})
        store.save(agent)
        ids.append(agent.agent_id)
    return ids


def _rows(engine: sa.Engine) -> tuple[list, list]:
    with engine.connect() as conn:
        agents = conn.execute(sa.select(tables.agents.c.id, tables.agents.c.doc).order_by(tables.agents.c.id)).all()
        versions = conn.execute(
            sa.select(tables.agent_versions.c.agent_id, tables.agent_versions.c.version).order_by(
                tables.agent_versions.c.agent_id, tables.agent_versions.c.version
            )
        ).all()
    return [(r.id, r.doc["name"], r.doc["version"]) for r in agents], list(versions)


def test_a_crash_mid_batch_applies_nothing_and_the_retry_applies_everything_once(backend) -> None:  # noqa: ANN001
    store, engine = backend
    ids = _seed(store, 20)
    crashing = ReadModelRunner(engine, store, [CrashingAgents(crash_at=17)], batch_size=100)
    crashing.setup()
    with pytest.raises(Crash):
        crashing.catch_up()
    assert crashing.positions()["agents"] == 0
    assert _rows(engine) == ([], [])

    runner = ReadModelRunner(engine, store, [AgentsProjection()], batch_size=7)
    assert runner.catch_up() == store.max_notification_id()
    agents, versions = _rows(engine)
    assert [a[0] for a in agents] == sorted(ids)
    assert len(versions) == 20 + 7  # every third agent (7 of 20) was renamed once
    assert runner.catch_up() == store.max_notification_id()
    assert _rows(engine) == (agents, versions), "catching up again must change nothing"


def test_two_runners_on_one_read_model_never_apply_an_event_twice(backend) -> None:  # noqa: ANN001
    store, engine = backend
    _seed(store, 60)
    runners = [ReadModelRunner(engine, store, all_projections(), batch_size=5) for _ in range(2)]
    runners[0].setup()
    errors = []

    def run(runner: ReadModelRunner) -> None:
        try:
            runner.catch_up()
        except Exception as error:  # noqa: BLE001
            errors.append(error)

    threads = [threading.Thread(target=run, args=(r,)) for r in runners]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    agents, versions = _rows(engine)
    assert len(agents) == 60 and len(versions) == 80
    assert set(runners[0].positions().values()) == {store.max_notification_id()}


def test_a_runner_whose_kept_positions_went_stale_applies_nothing_twice_and_misses_nothing(
    backend, caplog: pytest.LogCaptureFixture  # noqa: ANN001
) -> None:
    """The loop a write wakes starts from the positions it last left, without reading them
    back: when another runner moved them meanwhile, its claim fails and it reads them again."""
    store, engine = backend
    first, second = (ReadModelRunner(engine, store, all_projections(), batch_size=4) for _ in range(2))
    first.setup()
    ids: list[str] = []
    caplog.set_level(logging.INFO, logger="agentry.projections")
    for round_number in range(4):
        for i in range(6):
            agent = Agent(agent_id=f"agent_st{round_number}x{i:04d}", tenant_id="t", definition={"name": f"n{i}", "metadata": {}})
            if i % 2:
                agent.update({"name": f"renamed{i}"})
            store.save(agent)
            ids.append(agent.agent_id)
        # Turn about; from round 2 on, each runner's kept copy is behind what the other applied.
        assert (first if round_number % 2 else second)._follow() == store.max_notification_id()
    assert first._follow() == store.max_notification_id()
    assert sum("advanced by another runner" in record.getMessage() for record in caplog.records) == 2  # rounds 3 and 4
    agents, versions = _rows(engine)
    assert [a[0] for a in agents] == sorted(ids)
    assert len(versions) == 24 + 12  # one version each, and every other agent renamed once
    with engine.connect() as conn:
        activity_rows = conn.execute(sa.text("SELECT count(*) FROM rm_activity")).scalar()
    assert activity_rows == store.max_notification_id()  # one row per event: none twice


def test_a_runner_decodes_only_the_events_its_projections_want_and_still_moves_past_the_rest(
    backend, monkeypatch: pytest.MonkeyPatch  # noqa: ANN001
) -> None:
    store, engine = backend
    ids = _seed(store, 5)
    for i in range(3):
        store.save(Environment(environment_id=f"env_skip{i}", tenant_id="t", definition={"name": "e", "config": {}}))
    head = store.max_notification_id()
    decoded, runner = _caught_up_watching_decodes(monkeypatch, backend, AgentsProjection(), batch_size=3)
    assert decoded and all(":Agent." in topic for topic in decoded)  # the environments' never
    assert [a[0] for a in _rows(engine)[0]] == sorted(ids)
    assert runner.positions()["agents"] == head


def test_the_task_followers_runner_decodes_only_what_it_follows(backend, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    store, _ = backend
    _seed(store, 3)
    store.save(Environment(environment_id="env_tf", tenant_id="t", definition={"name": "e", "config": {}}))
    head = store.max_notification_id()
    decoded, runner = _caught_up_watching_decodes(monkeypatch, backend, TaskFollower(), batch_size=4)
    assert decoded == []  # agents and environments: nothing it follows
    assert runner.positions()["task_runs"] == head


def _caught_up_watching_decodes(
    monkeypatch: pytest.MonkeyPatch, backend, projection: ReadModelProjection, batch_size: int  # noqa: ANN001
) -> tuple[list[str], ReadModelRunner]:
    """A runner of ``projection`` alone, caught up to the head: the topics it decoded, and it."""
    store, engine = backend
    decoded = record_decodes(monkeypatch, store)
    runner = ReadModelRunner(engine, store, [projection], batch_size=batch_size)
    runner.setup()
    assert runner.catch_up() == store.max_notification_id()
    return decoded, runner


def _wait_until(check, seconds: float = 30.0) -> bool:  # noqa: ANN001
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return check()


def test_positions_moved_back_behind_a_running_runner_are_found_in_a_quiet_spell(backend) -> None:  # noqa: ANN001
    """A rebuild elsewhere cut short (rows emptied, positions at 0) with no write after it: the
    running loop's kept positions are ahead of the database, and no claim would ever fail."""
    store, engine = backend
    ids = _seed(store, 12)
    runner = ReadModelRunner(engine, store, all_projections())
    runner.start(poll_seconds=0.1)
    try:
        assert _wait_until(lambda: [a[0] for a in _rows(engine)[0]] == sorted(ids))
        live = _rows(engine)
        with engine.begin() as conn:
            for projection in all_projections():
                for table in projection.tables:
                    conn.execute(sa.delete(table))
            conn.execute(sa.update(tables.positions).values(position=0))
        assert _wait_until(lambda: _rows(engine) == live), "the emptied read models were never replayed"
        assert set(runner.positions().values()) == {store.max_notification_id()}
    finally:
        runner.stop()
    # And a catch-up asked for directly starts from the positions as stored (not a kept copy).
    runner._left = runner.positions()
    with engine.begin() as conn:
        conn.execute(sa.delete(tables.agent_versions))
        conn.execute(sa.delete(tables.agents))
        conn.execute(sa.update(tables.positions).where(tables.positions.c.name == "agents").values(position=0))
    assert runner.catch_up() == store.max_notification_id()
    assert _rows(engine) == live


def test_rebuild_reproduces_the_read_model(backend) -> None:  # noqa: ANN001
    store, engine = backend
    _seed(store, 15)
    runner = ReadModelRunner(engine, store, all_projections())
    runner.setup()
    runner.catch_up()
    before = _rows(engine)
    with engine.begin() as conn:  # vandalise the read model
        conn.execute(sa.delete(tables.agent_versions))
        conn.execute(sa.update(tables.agents).values(doc={"name": "wrong", "version": 0}))
    assert runner.rebuild("agents") == store.max_notification_id()
    assert _rows(engine) == before
