"""The cleartext of a model card's key never leaves the server: not in the Kafka messages the
relay publishes (with a card created, rotated, used by a turn and deleted), not in a log."""

from __future__ import annotations

import logging
import time
import uuid
from pathlib import Path

import httpx
import pytest

from tests.support.fake_provider import API_KEY as PROVIDER_KEY
from tests.support.fake_provider import FakeProvider, Reply, Text
from tests.support.kafka import Broker, relay_everything
from tests.support.server import running_server

HEADER_SECRET = "gateway-header-secret-5f2c9a"


def test_no_kafka_message_and_no_log_line_holds_a_cards_secrets(
    postgres_url: str, broker: Broker, tmp_path: Path, fake_provider: FakeProvider, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    prefix = "s" + uuid.uuid4().hex[:8]
    fake_provider.script(Reply([Text("through the card")]))
    with running_server(
        tmp_path / "data", postgres_url, kafka_bootstrap_servers=broker.bootstrap, kafka_topic_prefix=prefix
    ) as server, httpx.Client(base_url=server.base_url, headers={"x-api-key": server.api_key}, timeout=20) as http:
        card = http.post(
            "/v1/model_cards",
            json={
                "model_id": "house", "provider": "ant-compatible", "model": "claude-haiku-4-5",
                "api_key": PROVIDER_KEY, "base_url": fake_provider.anthropic_base_url,
                "custom_headers": {"X-Gateway": HEADER_SECRET}, "probe": False,
            },
        ).json()
        agent = http.post("/v1/agents", json={"name": "a", "model": "house"}).json()
        env = http.post("/v1/environments", json={"name": "e"}).json()
        session = http.post("/v1/sessions", json={"agent": agent["id"], "environment_id": env["id"]}).json()
        http.post(
            f"/v1/sessions/{session['id']}/events",
            json={"events": [{"type": "user.message", "content": [{"type": "text", "text": "hi"}]}]},
        )
        deadline = time.monotonic() + 20
        while http.get(f"/v1/sessions/{session['id']}").json()["status"] != "idle" or len(fake_provider.requests) < 1:
            assert time.monotonic() < deadline, "the turn did not finish"
            time.sleep(0.05)
        assert fake_provider.requests[-1].headers["x-gateway"] == HEADER_SECRET  # the card was used
        assert http.delete(f"/v1/model_cards/{card['id']}").status_code == 200
        received = relay_everything(server.settings, broker.bootstrap, prefix, server.platform.store)

    # the search covers what matters: the card's events and the turn it drove
    assert any(message.topic.endswith(".model_cards") for message in received.messages)
    assert any(b"through the card" in (message.value or b"") for message in received.messages)
    for message in received.messages:
        raw = b"".join([message.key or b"", message.value or b"", *(value for _, value in message.headers)])
        for secret in (PROVIDER_KEY, HEADER_SECRET, PROVIDER_KEY[4:-4]):
            assert secret.encode() not in raw, f"{secret!r} in a message on {message.topic}"
    for record in caplog.records:
        line = record.getMessage()
        assert PROVIDER_KEY not in line and HEADER_SECRET not in line, line
