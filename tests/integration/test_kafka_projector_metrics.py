"""`agentry project --from kafka` answers /metrics on its own port (AGENTRY_METRICS_PORT): each
partition's position and lag (read by the consumer's loop, never by the scrape thread), events
applied per projection, and one JSON line per batch. Real PostgreSQL, the real tansu broker."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families

from domain.agents import Agent
from infra.event_store import EventsourcingEventStore, event_store_env
from infra.settings import Settings
from interfaces.bootstrap import build_kafka_projector_process, build_relay
from projections.kafka_runner import offsets
from projections.resources import all_projections
from tests.support.kafka import Broker
from tests.support.postgres import free_port

ROOT = Path(__file__).resolve().parents[2]
EVENTS = 12  # six agents, each created and updated


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float] | None:
    try:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics").text
    except httpx.TransportError:
        return None
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def series(found: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str) -> dict[tuple[tuple[str, str], ...], float]:
    return {labels: value for (sample, labels), value in found.items() if sample == name}


def _settings(postgres_url: str, broker: Broker, tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path,
        database_url=postgres_url,
        kafka_bootstrap_servers=broker.bootstrap,
        kafka_topic_prefix="t" + uuid.uuid4().hex[:8],
        kafka_projector_group="g" + uuid.uuid4().hex[:8],
    )


def _publish(settings: Settings) -> None:
    """Records EVENTS events and relays them to the topics (the relay stops once all are acknowledged)."""
    store = EventsourcingEventStore(event_store_env(settings))
    try:
        for index in range(EVENTS // 2):
            agent = Agent(agent_id=f"agent_{uuid.uuid4().hex[:16]}", tenant_id="t", definition={"name": f"a{index}"})
            store.save(agent)
            agent.update({"name": f"b{index}"})
            store.save(agent)
        head = store.max_notification_id()
    finally:
        store.close()
    relay = build_relay(settings)
    stop = threading.Event()
    thread = threading.Thread(target=relay.run, args=(stop.is_set,), daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while relay.relay.position < head:
            assert time.monotonic() < deadline, "the relay never published the events"
            time.sleep(0.05)
    finally:
        stop.set()
        thread.join(timeout=30)
        relay.close()


def each_projection(count: int) -> dict[tuple[tuple[str, str], ...], float]:
    """The applied-events series when every projection applied ``count`` events."""
    return {(("projection", projection.name),): count for projection in all_projections()}


@pytest.fixture
def projecting(postgres_url: str, broker: Broker, tmp_path: Path) -> Iterator[tuple[Settings, Any, int]]:
    """EVENTS events on the topics, and a projector process (not yet polling) with its metrics
    port: ``(settings, process, port)``."""
    settings = _settings(postgres_url, broker, tmp_path)
    _publish(settings)
    process = build_kafka_projector_process(settings)
    try:
        yield settings, process, process.telemetry.serve(0)
    finally:
        process.close()


def test_partition_lag_is_what_the_consumer_has_not_read_yet(projecting: tuple[Settings, Any, int]) -> None:
    settings, process, port = projecting
    projector = process.projector
    deadline = time.monotonic() + 60
    while projector.poll_once(timeout_ms=200, max_records=1) == 0:  # one record, then look
        assert time.monotonic() < deadline, "nothing was ever projected"
    behind = scrape(port)
    assert behind is not None
    lags = series(behind, "agentry_kafka_consumer_lag_records")
    # One record read of EVENTS: a partition fetched so far is behind (a partition is
    # reported once a fetch of it came back, which is when its high watermark is known).
    assert 0 < sum(lags.values()) <= 2 * EVENTS, lags  # records and at most a commit marker each
    while projector.applied < EVENTS * len(all_projections()):
        assert time.monotonic() < deadline, projector.applied
        projector.poll_once(timeout_ms=200)
    projector.poll_once(timeout_ms=200)  # reads past the last transaction's commit marker
    caught_up = scrape(port)
    assert caught_up is not None
    lags = series(caught_up, "agentry_kafka_consumer_lag_records")
    positions = series(caught_up, "agentry_kafka_consumer_position")
    assert lags and set(lags.values()) == {0.0}, lags
    assert lags.keys() == positions.keys()
    read = {dict(labels)["topic"] for labels, position in positions.items() if position > 0}
    assert read == {f"{settings.kafka_topic_prefix}.agents"}  # where the agents' events went
    assert sum(positions.values()) >= EVENTS
    assert series(caught_up, "agentry_projection_events_applied_total") == each_projection(EVENTS)
    assert series(caught_up, "agentry_projection_batches_failed_total") == {(): 0.0}


def _project_all(process: Any, expected_each: int, timeout: float = 60) -> None:
    """Runs the projector's own loop (with its retries) until every projection applied ``expected_each``."""
    projector = process.projector
    total = expected_each * len(all_projections())
    deadline = time.monotonic() + timeout
    projector.run(lambda: projector.applied >= total or time.monotonic() > deadline)
    assert projector.applied == total, projector.applied


def test_a_rolled_back_batch_is_counted_once_and_its_events_once_when_retried(
    projecting: tuple[Settings, Any, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, process, port = projecting
    first = process.projector._projections[0]
    real_apply_all = first.apply_all
    failures = []

    def fails_once(*args: Any, **kwargs: Any) -> None:
        if not failures:
            failures.append(1)
            raise sa.exc.OperationalError("INSERT …", {}, Exception("the database went away"))
        real_apply_all(*args, **kwargs)

    monkeypatch.setattr(first, "apply_all", fails_once)
    _project_all(process, EVENTS)
    found = scrape(port)
    assert found is not None and failures == [1]
    assert series(found, "agentry_projection_batches_failed_total") == {(): 1.0}
    # The rows of the rolled-back batch were applied again, and counted, once.
    assert series(found, "agentry_projection_events_applied_total") == each_projection(EVENTS)


def test_a_batch_another_member_claimed_first_is_neither_applied_nor_counted(
    projecting: tuple[Settings, Any, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings, process, port = projecting
    projector = process.projector
    real_apply = projector._apply_partition_batch
    moved: list[tuple[str, int, int]] = []

    def claimed_elsewhere_first(tp: Any, messages: list[Any]) -> int:
        if not moved:
            # As if another member had committed this partition's first record already.
            moved.append((tp.topic, tp.partition, messages[0].offset))
            with projector.engine.begin() as conn:
                conn.execute(sa.delete(offsets).where((offsets.c.topic == tp.topic) & (offsets.c.partition == tp.partition)))
                conn.execute(sa.insert(offsets).values(
                    group_id=settings.kafka_projector_group, topic=tp.topic, partition=tp.partition,
                    next_offset=messages[0].offset + 1,
                ))  # fmt: skip
        return real_apply(tp, messages)

    monkeypatch.setattr(projector, "_apply_partition_batch", claimed_elsewhere_first)
    _project_all(process, EVENTS - 1)
    found = scrape(port)
    assert found is not None and len(moved) == 1
    assert series(found, "agentry_projection_events_applied_total") == each_projection(EVENTS - 1)
    assert series(found, "agentry_projection_batches_failed_total") == {(): 0.0}


def test_the_command_serves_the_projectors_metrics_on_its_port(postgres_url: str, broker: Broker, tmp_path: Path) -> None:
    settings = _settings(postgres_url, broker, tmp_path)
    _publish(settings)
    port = free_port()
    env = {
        **os.environ,
        "AGENTRY_DATABASE_URL": postgres_url,
        "AGENTRY_KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap,
        "AGENTRY_KAFKA_TOPIC_PREFIX": settings.kafka_topic_prefix,
        "AGENTRY_KAFKA_PROJECTOR_GROUP": settings.kafka_projector_group,
        "AGENTRY_DATA_DIR": str(tmp_path),
        "AGENTRY_METRICS_PORT": str(port),
        "AGENTRY_LOG_FORMAT": "json",
        "AGENTRY_LOG_LEVEL": "info",
    }
    log_path = tmp_path / "projector.log"  # a file, not a pipe nobody reads until the end
    with log_path.open("w") as log_file:
        projector = subprocess.Popen(
            [sys.executable, "-m", "interfaces.cli.main", "project", "--from", "kafka"], cwd=ROOT, env=env,
            stdout=log_file, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
    found: dict[Any, float] | None = None
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and projector.poll() is None:
            found = scrape(port)
            if found and series(found, "agentry_projection_events_applied_total").get((("projection", "agents"),)) == EVENTS:
                lags = series(found, "agentry_kafka_consumer_lag_records")
                if lags and set(lags.values()) == {0.0}:
                    break
            time.sleep(0.1)
    finally:
        projector.send_signal(signal.SIGTERM)
        try:
            projector.wait(timeout=30)
        except subprocess.TimeoutExpired:
            projector.kill()
            projector.wait()
    output = log_path.read_text()
    assert projector.returncode == 0, output
    assert found is not None, output
    assert series(found, "agentry_projection_events_applied_total")[(("projection", "agents"),)] == EVENTS, output
    assert set(series(found, "agentry_kafka_consumer_lag_records").values()) == {0.0}, output
    lines = [orjson.loads(line) for line in output.splitlines() if line.startswith("{")]
    batches = [line for line in lines if line.get("step") == "kafka_projection_batch"]
    assert sum(line["records"] for line in batches) == EVENTS, output
    assert all(line["applied"] == line["records"] * len(all_projections()) for line in batches)
