"""`agentry relay` answers /metrics on its own port (AGENTRY_METRICS_PORT) and logs one JSON
line per batch: real PostgreSQL, the real tansu broker, the real command."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import orjson
from prometheus_client.parser import text_string_to_metric_families

from domain.agents import Agent
from infra.event_store import EventsourcingEventStore, event_store_env
from infra.settings import Settings
from tests.support.kafka import Broker
from tests.support.postgres import free_port

ROOT = Path(__file__).resolve().parents[2]


def scrape(port: int) -> dict[str, float] | None:
    try:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics").text
    except httpx.TransportError:
        return None
    return {sample.name: sample.value for family in text_string_to_metric_families(text) for sample in family.samples}


def test_the_relay_reports_its_position_and_lag_on_its_metrics_port(postgres_url: str, broker: Broker, tmp_path: Path) -> None:
    prefix = "t" + uuid.uuid4().hex[:8]
    settings = Settings(data_dir=tmp_path, database_url=postgres_url, kafka_bootstrap_servers=broker.bootstrap, kafka_topic_prefix=prefix)
    store = EventsourcingEventStore(event_store_env(settings))
    try:
        for index in range(5):
            store.save(Agent(agent_id=f"agent_{uuid.uuid4().hex[:16]}", tenant_id="t", definition={"name": f"a{index}"}))
        head = store.max_notification_id()
    finally:
        store.close()
    port = free_port()
    env = {
        **os.environ,
        "AGENTRY_DATABASE_URL": postgres_url,
        "AGENTRY_KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap,
        "AGENTRY_KAFKA_TOPIC_PREFIX": prefix,
        "AGENTRY_DATA_DIR": str(tmp_path),
        "AGENTRY_METRICS_PORT": str(port),
        "AGENTRY_LOG_FORMAT": "json",
        "AGENTRY_LOG_LEVEL": "info",
    }
    relay = subprocess.Popen(
        [sys.executable, "-m", "interfaces.cli.main", "relay"], cwd=ROOT, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        found: dict[str, Any] | None = None
        while time.monotonic() < deadline and relay.poll() is None:
            found = scrape(port)
            if found and found.get("agentry_relay_position", 0) >= head:
                break
            time.sleep(0.1)
    finally:
        relay.send_signal(signal.SIGTERM)
        output, _ = relay.communicate(timeout=30)
    assert found is not None and found["agentry_relay_position"] == head, output
    assert found["agentry_relay_lag_events"] == 0
    lines = [orjson.loads(line) for line in output.splitlines() if line.startswith("{")]
    batches = [line for line in lines if line.get("step") == "relay_batch"]
    assert sum(line["acknowledged"] for line in batches) == 5
    assert batches[-1]["position"] == head
