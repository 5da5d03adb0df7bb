"""A webhook endpoint's signing secret never leaves the server: not in the Kafka messages the
relay publishes for the endpoint (created, regenerated, deleted), sealed or not, and not in a
log line; a delivery's body, which the receiver gets, carries no secret either."""

from __future__ import annotations

import logging
import uuid
from pathlib import Path

import httpx
import pytest

from tests.support.kafka import Broker, relay_everything
from tests.support.server import running_server
from tests.support.webhook_receiver import WebhookReceiver


def test_no_kafka_message_and_no_log_line_holds_a_webhook_secret(
    postgres_url: str, broker: Broker, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    prefix = "w" + uuid.uuid4().hex[:8]
    receiver = WebhookReceiver()
    with receiver.running(), running_server(
        tmp_path / "data", postgres_url, kafka_bootstrap_servers=broker.bootstrap, kafka_topic_prefix=prefix
    ) as server, httpx.Client(base_url=server.base_url, headers={"x-api-key": server.api_key}, timeout=20) as http:
        endpoint = http.post("/v1/organizations/webhooks", json={"enabled_events": ["agent.created"], "url": receiver.url}).json()
        receiver.key = endpoint["signing_secret"]
        http.post("/v1/agents", json={"name": "announced", "model": "m"})
        receiver.wait_for(lambda r: len(r.accepted) == 1)
        regenerated = http.post(f"/v1/organizations/webhooks/{endpoint['id']}/regenerate_signing_secret").json()
        assert http.delete(f"/v1/organizations/webhooks/{endpoint['id']}").status_code == 200
        received = relay_everything(server.settings, broker.bootstrap, prefix, server.platform.store)
    assert not receiver.rejected

    secrets = [endpoint["signing_secret"], regenerated["signing_secret"]]
    hooks = [message for message in received.messages if message.topic == f"{prefix}.webhooks"]
    assert len(hooks) == 3, "created, regenerated, deleted"
    assert endpoint["id"].encode() in hooks[0].value
    for message in received.messages:
        raw = b"".join([message.key or b"", message.value or b"", *(value for _, value in message.headers)])
        assert b"ciphertext" not in raw, f"a sealed secret on {message.topic}"
        for secret in secrets:
            assert secret.removeprefix("whsec_").encode() not in raw, f"a secret on {message.topic}"
    for seen in receiver.attempts:
        assert not any(secret.removeprefix("whsec_") in seen.body for secret in secrets)
    for record in caplog.records:
        line = record.getMessage()
        assert not any(secret.removeprefix("whsec_") in line for secret in secrets), line
        if record.name.startswith(("agentry", "httpx")):  # (a Kafka client's debug lines quote events)
            assert receiver.url not in line, "a webhook URL in the logs"
