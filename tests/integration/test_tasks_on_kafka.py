"""A task's run — executed, reviewed, rejected with feedback, revised, approved — reaches
Kafka: its events on ``agentry.tasks`` (in the order they happened, keyed by the task), its
board and department on ``agentry.boards``."""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path

import httpx
import orjson

from domain.ids import stream_id
from interfaces.bootstrap import build_relay
from tests.conftest import provider_settings
from tests.support.fake_provider import FakeProvider, Reply, Text
from tests.support.kafka import Broker, read_topics
from tests.support.server import running_server


def _wait_for(http: httpx.Client, task_id: str, status: str, version: int) -> None:
    deadline = time.monotonic() + 20
    while True:
        task = http.get(f"/v1/tasks/{task_id}").json()
        if task["status"] == status and task["version"] == version:
            return
        assert time.monotonic() < deadline, f"the task is {task['status']} at version {task['version']}"
        time.sleep(0.05)


def test_a_task_run_is_on_kafka_in_order(postgres_url: str, broker: Broker, tmp_path: Path, fake_provider: FakeProvider) -> None:
    prefix = "t" + uuid.uuid4().hex[:8]
    fake_provider.script(Reply([Text("Report written.")]), Reply([Text("Report with sources.")]))
    with running_server(
        tmp_path / "data", postgres_url, kafka_bootstrap_servers=broker.bootstrap, kafka_topic_prefix=prefix,
        **provider_settings(fake_provider),
    ) as server, httpx.Client(base_url=server.base_url, headers={"x-api-key": server.api_key}, timeout=20) as http:
        department = http.post("/v1/departments", json={"name": "Research"}).json()
        board = http.post("/v1/boards", json={"name": "Reports", "department_id": department["id"]}).json()
        agent = http.post("/v1/agents", json={"name": "Atlas", "model": "claude-sonnet-4-6"}).json()
        task = http.post(
            "/v1/tasks", json={"title": "Report", "board_id": board["id"], "assigned_agent_id": agent["id"], "requires_approval": True}
        ).json()
        assert http.post(f"/v1/tasks/{task['id']}/execute").status_code == 200
        _wait_for(http, task["id"], "review", version=5)
        assert http.post(f"/v1/tasks/{task['id']}/reject", json={"comment": "Cite sources."}).status_code == 200
        _wait_for(http, task["id"], "review", version=9)
        assert http.post(f"/v1/tasks/{task['id']}/approve", json={}).status_code == 200

        relay = build_relay(server.settings)
        stop = threading.Event()
        thread = threading.Thread(target=relay.run, args=(stop.is_set,), daemon=True)
        thread.start()
        try:
            topics = [f"{prefix}.tasks", f"{prefix}.boards"]
            received = read_topics(broker.bootstrap, topics, lambda r: len(r.messages) >= 13)
        finally:
            stop.set()
            thread.join(timeout=10)
            relay.close()

    on_tasks = [m for m in received.messages if m.topic == f"{prefix}.tasks"]
    kinds = [dict(m.headers)["event_type"].decode() for m in on_tasks]
    assert kinds == [
        "Task.Created", "Task.Executed", "Task.StatusChanged", "Task.ResultRecorded", "Task.StatusChanged",
        "Task.Rejected", "Task.StatusChanged", "Task.ResultRecorded", "Task.StatusChanged", "Task.Approved",
        "Task.StatusChanged",
    ]  # fmt: skip
    assert {m.key for m in on_tasks} == {str(stream_id(task["id"])).encode()}  # one key: one partition, in order
    versions = [orjson.loads(m.value)["aggregate_version"] for m in on_tasks]
    assert versions == list(range(1, 12))
    statuses = [orjson.loads(m.value)["state"].get("status") for m in on_tasks if b"StatusChanged" in dict(m.headers)["event_type"]]
    assert statuses == ["in_progress", "review", "in_progress", "review", "approved"]
    rejected = next(orjson.loads(m.value)["state"] for m in on_tasks if dict(m.headers)["event_type"] == b"Task.Rejected")
    assert rejected["comment"] == "Cite sources." and rejected["by"]["type"] == "api_key"
    on_boards = {dict(m.headers)["event_type"].decode() for m in received.messages if m.topic == f"{prefix}.boards"}
    assert on_boards == {"Department.Created", "Board.Created"}
