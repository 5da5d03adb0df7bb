"""An MCP credential's secrets never leave the server through Kafka: with a turn that listed
and called a real MCP server, refreshed the OAuth token on a 401 and stored the new tokens,
no message the relay publishes (vaults, sessions, …) holds a token in clear."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from tests.support.fake_provider import API_KEY as PROVIDER_KEY
from tests.support.fake_provider import FakeProvider, Reply, Text, ToolUse
from tests.support.kafka import Broker, relay_everything
from tests.support.mcp_server import TestMcpServer
from tests.support.server import running_server

ACCESS = "kafka-mcp-access-61616161"
REFRESH = "kafka-mcp-refresh-62626262"
CLIENT_SECRET = "kafka-mcp-client-secret-63636363"
NEW_ACCESS = "kafka-mcp-new-access-64646464"


def test_no_kafka_message_holds_an_mcp_credentials_tokens(
    postgres_url: str, broker: Broker, tmp_path: Path, fake_provider: FakeProvider
) -> None:
    mcp = TestMcpServer().start()
    mcp.refresh_tokens[REFRESH] = NEW_ACCESS  # ACCESS is refused: a 401, then a refresh
    prefix = "m" + uuid.uuid4().hex[:8]
    fake_provider.script(Reply([ToolUse("mcp__docs__echo_secret", {})]), Reply([Text("echoed")]))
    try:
        with running_server(
            tmp_path / "data",
            postgres_url,
            anthropic_api_key=PROVIDER_KEY,
            anthropic_base_url=fake_provider.anthropic_base_url,
            kafka_bootstrap_servers=broker.bootstrap,
            kafka_topic_prefix=prefix,
        ) as server, httpx.Client(base_url=server.base_url, headers={"x-api-key": server.api_key}, timeout=20) as http:
            vault = http.post("/v1/vaults", json={"display_name": "k"}).json()
            auth = {
                "type": "mcp_oauth",
                "mcp_server_url": mcp.url,
                "access_token": ACCESS,
                "expires_at": (datetime.now(UTC) + timedelta(days=1)).isoformat(),
                "refresh": {
                    "client_id": "k",
                    "refresh_token": REFRESH,
                    "token_endpoint": mcp.token_url,
                    "token_endpoint_auth": {"type": "client_secret_basic", "client_secret": CLIENT_SECRET},
                },
            }
            assert http.post(f"/v1/vaults/{vault['id']}/credentials", json={"auth": auth}).status_code == 200
            agent = http.post(
                "/v1/agents",
                json={
                    "name": "a",
                    "model": "claude-haiku-4-5",
                    "mcp_servers": [{"type": "url", "name": "docs", "url": mcp.url}],
                    "tools": [
                        {"type": "mcp_toolset", "mcp_server_name": "docs", "default_config": {"permission_policy": {"type": "always_allow"}}}
                    ],
                },
            ).json()
            env = http.post("/v1/environments", json={"name": "e"}).json()
            session = http.post(
                "/v1/sessions", json={"agent": agent["id"], "environment_id": env["id"], "vault_ids": [vault["id"]]}
            ).json()
            http.post(
                f"/v1/sessions/{session['id']}/events",
                json={"events": [{"type": "user.message", "content": [{"type": "text", "text": "echo"}]}]},
            )
            deadline = time.monotonic() + 20
            while http.get(f"/v1/sessions/{session['id']}").json()["status"] != "idle" or len(fake_provider.requests) < 2:
                assert time.monotonic() < deadline, "the turn did not finish"
                time.sleep(0.05)
            assert [call.bearer for call in mcp.calls] == [NEW_ACCESS] and len(mcp.refreshes) == 1
            rotated = next(iter(mcp.refresh_tokens))
            received = relay_everything(server.settings, broker.bootstrap, prefix, server.platform.store)
    finally:
        mcp.stop()

    # the search covers what matters: the credential's refresh and the MCP result
    assert sum(1 for message in received.messages if message.topic.endswith(".vaults")) >= 3
    assert any(b"you sent [redacted]" in (message.value or b"") for message in received.messages)
    for message in received.messages:
        raw = b"".join([message.key or b"", message.value or b"", *(value for _, value in message.headers)])
        for secret in (ACCESS, REFRESH, CLIENT_SECRET, NEW_ACCESS, rotated):
            assert secret.encode() not in raw, f"{secret[:10]}… in a message on {message.topic}"
