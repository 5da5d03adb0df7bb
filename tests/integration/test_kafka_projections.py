"""Projections fed from Kafka in a consumer group: idempotent by event id, offsets and rows
committed together, and the same read model as projecting straight from the event store."""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path

import sqlalchemy as sa

from domain.agents import Agent
from domain.environments import Environment
from domain.sessions import Session
from infra.event_store import EventsourcingEventStore, event_store_env
from infra.settings import Settings
from interfaces.bootstrap import build_kafka_projector, build_relay
from projections import tables
from projections.activity import activity
from projections.kafka_runner import offsets
from projections.resources import all_projections
from projections.runner import ReadModelRunner, create_engine
from projections.usage import usage
from tests.support.kafka import Broker


def _settings(postgres_url: str, broker: Broker, tmp_path: Path, prefix: str, group: str) -> Settings:
    return Settings(
        data_dir=tmp_path,
        database_url=postgres_url,
        kafka_bootstrap_servers=broker.bootstrap,
        kafka_topic_prefix=prefix,
        kafka_projector_group=group,
    )


def _seed(store: EventsourcingEventStore) -> None:
    for i in range(12):
        agent = Agent(agent_id=f"agent_kp{i:012d}", tenant_id="t", definition={"name": f"a{i}", "metadata": {}})
        store.save(agent)
        agent.update({"name": f"b{i}"})
        store.save(agent)
        if i % 4 == 0:
            agent.archive()
            store.save(agent)
    # Too large for the broker: published without its state, projected from the store.
    big = Agent(agent_id="agent_kpbig00000000", tenant_id="t", definition={"name": "big", "system": "x" * 1_200_000, "metadata": {}})
    store.save(big)
    env = Environment(environment_id="env_kp00000000001", tenant_id="t", definition={"name": "e", "metadata": {}})
    store.save(env)
    session = Session(
        session_id="sesn_kp0000000001", tenant_id="t", agent={"id": "agent_kp000000000000", "version": 2},
        environment_id=env.environment_id, details={},
    )
    session.record("session.status_running", "sevt_1", {})
    session.begin_request("sevt_span")  # a model request: a row of usage, its tokens and its cost
    session.finish_request("sevt_span", [], "sevt_end", {"model_usage": {"input_tokens": 7, "output_tokens": 3}}, {}, 42, True)
    store.save(session)
    resource = {"id": "sesrsc_kp0000000001", "type": "github_repository", "url": "https://github.com/a/b",
                "mount_path": "/workspace/b", "created_at": "2026-01-01T00:00:00.000000Z", "updated_at": "2026-01-01T00:00:00.000000Z"}
    session.add_resource(resource)
    session.rotate_resource_token(resource["id"])
    store.save(session)


def _snapshot(engine: sa.Engine) -> dict:
    with engine.connect() as conn:
        return {
            "agents": sorted((r.id, r.doc["name"], r.doc["version"], r.archived) for r in conn.execute(sa.select(tables.agents))),
            "versions": sorted((r.agent_id, r.version) for r in conn.execute(sa.select(tables.agent_versions))),
            "environments": sorted(r.id for r in conn.execute(sa.select(tables.environments))),
            "sessions": sorted((r.id, r.status) for r in conn.execute(sa.select(tables.sessions))),
            "session_resources": sorted((r.id, r.doc["updated_at"]) for r in conn.execute(sa.select(tables.session_resources))),
            # Every event once, the very same entry as from the store (all of these are published).
            "activity": sorted((r.stream_id, r.version, repr(sorted(r.doc.items()))) for r in conn.execute(sa.select(activity))),
            "usage": sorted(
                (r.width, r.session_id, r.requests, r.uncached_input_tokens, r.output_tokens, r.cost_micros)
                for r in conn.execute(sa.select(usage))
            ),
        }


def _project_until(projector, engine: sa.Engine, expected: dict, timeout: float = 60) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        projector.poll_once(timeout_ms=200)
        if _snapshot(engine) == expected:
            return
    raise AssertionError(f"read model never matched: {_snapshot(engine)}")


def test_kafka_projection_matches_the_store_projection_and_ignores_redelivery(postgres_server_url, broker, tmp_path) -> None:  # noqa: ANN001
    from tests.support.postgres import fresh_database

    prefix, group = "p" + uuid.uuid4().hex[:8], "g" + uuid.uuid4().hex[:8]
    with fresh_database(postgres_server_url) as events_db, fresh_database(postgres_server_url) as reference_db:
        settings = _settings(events_db, broker, tmp_path, prefix, group)
        store = EventsourcingEventStore(event_store_env(settings))
        _seed(store)

        # The reference: the same projections fed straight from the event store.
        reference_engine = create_engine(Settings(database_url=reference_db).read_model_url)
        reference = ReadModelRunner(reference_engine, store, all_projections())
        reference.setup()
        reference.catch_up()
        expected = _snapshot(reference_engine)
        assert len(expected["agents"]) == 13 and expected["sessions"] == [("sesn_kp0000000001", "running")]
        assert len(expected["activity"]) == store.max_notification_id()
        ((_, rotated_at),) = expected["session_resources"]
        assert rotated_at > "2026-01-01T00:00:00.000000Z"  # the rotation reached the read model
        assert [row[2:] for row in expected["usage"]] == [(1, 7, 3, 42)] * 3  # a minute, an hour and a day row

        stop = threading.Event()
        relay = build_relay(settings)
        relay_thread = threading.Thread(target=relay.run, args=(stop.is_set,), daemon=True)
        relay_thread.start()
        try:
            projector = build_kafka_projector(settings)
            _project_until(projector, projector.engine, expected)
            applied_first = projector.applied
            projector.close()

            # Redelivery: a new member of the group is handed everything from offset 0 again.
            with projector.engine.begin() as conn:
                conn.execute(sa.delete(offsets))
            again = build_kafka_projector(settings)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and not again._consumer.assignment():
                again.poll_once(timeout_ms=200)
            total = store.max_notification_id()
            while time.monotonic() < deadline and again.received < total:
                again.poll_once(timeout_ms=200)
            assert again.received >= total, "the redelivery did not happen"
            assert again.applied == 0, "a redelivered event was applied twice"
            assert _snapshot(again.engine) == expected
            again.close()
        finally:
            stop.set()
            relay_thread.join(timeout=15)
            relay.close()
            store.close()
            reference_engine.dispose()
        assert applied_first >= len(expected["agents"])
