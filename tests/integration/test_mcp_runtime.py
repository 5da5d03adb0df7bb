"""MCP calls in the turn loop, below the HTTP edge: a driver that stops mid-call leaves the
call marked started, and the next driver ends it with an error result without making it
again (at most once); drivers refreshing one credential together refresh it once."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from application.agents import AgentService
from application.environments import EnvironmentService
from application.mcp_credentials import McpCredentials
from application.ports import CredentialLocks, McpCallOutcome, McpCancellation, McpCancelled, McpListedTool
from application.runtime import CancelToken, DefaultProviders, ModelResolver, SessionRuntime
from application.runtime.mcp import McpTools
from application.sessions import SessionService
from application.tenancy import Principal
from application.vaults import VaultService
from domain.ids import stream_id
from domain.sessions import Session
from infra.credential_locks import LocalCredentialLocks, PostgresCredentialLocks
from infra.event_store import EventsourcingEventStore
from infra.http_poster import HttpxPoster
from infra.mcp_client import SdkMcpClient
from infra.providers import SdkModelProvider
from infra.settings import Settings
from interfaces.bootstrap import build_cipher
from tests.support.fake_provider import API_KEY, FakeProvider, Reply, Text, ToolUse
from tests.support.mcp_server import TestMcpServer

ALICE = Principal("tenant-a", "key-a")
BEARER = "integration-bearer-24242424"


@pytest.fixture
def mcp() -> Iterator[TestMcpServer]:
    server = TestMcpServer().start()
    yield server
    server.stop()


class _World:
    def __init__(self, tmp_path: Path, fake_provider: FakeProvider) -> None:
        self.store = EventsourcingEventStore({"PERSISTENCE_MODULE": "eventsourcing.popo"})
        self.cipher = build_cipher(Settings(data_dir=tmp_path / "data"))
        self.vaults = VaultService(self.store, self.cipher, HttpxPoster())
        self.agents, self.environments = AgentService(self.store), EnvironmentService(self.store)
        self.sessions = SessionService(self.store, self.agents, self.environments)
        self.models = ModelResolver(
            None, DefaultProviders(anthropic_api_key=API_KEY, anthropic_base_url=fake_provider.anthropic_base_url)
        )

    def credentials(self, locks: CredentialLocks | None = None) -> McpCredentials:
        return McpCredentials(self.store, self.cipher, HttpxPoster(), self.vaults, locks or LocalCredentialLocks())

    def runtime(self, client: Any) -> SessionRuntime:
        return SessionRuntime(self.store, SdkModelProvider(), self.models, mcp=McpTools(client, self.credentials()))

    def session(self, url: str, auth: dict[str, Any]) -> tuple[str, str, str]:
        vault_id = self.vaults.create(ALICE, {"display_name": "v"}).view["id"]
        credential_id = self.vaults.create_credential(ALICE, vault_id, {"auth": auth}).view["id"]
        agent = self.agents.create(
            ALICE,
            {
                "name": "bot",
                "model": "claude-haiku-4-5",
                "mcp_servers": [{"type": "url", "name": "docs", "url": url}],
                "tools": [
                    {"type": "mcp_toolset", "mcp_server_name": "docs", "default_config": {"permission_policy": {"type": "always_allow"}}}
                ],
            },
        ).view
        env = self.environments.create(ALICE, {"name": "e"}).view
        fields = {"agent": agent["id"], "environment_id": env["id"], "vault_ids": [vault_id]}
        return self.sessions.create(ALICE, fields).view["id"], vault_id, credential_id

    def log(self, session_id: str) -> list[tuple[str, dict[str, Any]]]:
        return [
            (event.public_type, event.payload)
            for event in self.store.read_stream(stream_id(session_id))
            if hasattr(event, "public_type")
        ]


class _DiesMidCall:
    """Makes the call, then behaves as a process shutting down before it could record it."""

    def __init__(self, real: SdkMcpClient, token: CancelToken) -> None:
        self._real, self._token = real, token

    def list_tools(self, url: str, bearer: str | None, cancel: McpCancellation, deadline: float) -> list[McpListedTool]:
        return self._real.list_tools(url, bearer, cancel, deadline)

    def call_tool(
        self, url: str, bearer: str | None, name: str, arguments: dict[str, Any], cancel: McpCancellation, deadline: float
    ) -> McpCallOutcome:
        self._real.call_tool(url, bearer, name, arguments, cancel, deadline)
        self._token.shutting_down = True
        self._token.cancel()
        raise McpCancelled


def test_a_call_left_started_by_a_dead_driver_ends_in_an_error_and_is_never_made_again(
    tmp_path: Path, fake_provider: FakeProvider, mcp: TestMcpServer
) -> None:
    world = _World(tmp_path, fake_provider)
    mcp.accepted.add(BEARER)
    session_id, _, _ = world.session(mcp.url, {"type": "static_bearer", "mcp_server_url": mcp.url, "token": BEARER})
    world.sessions.send(ALICE, session_id, [{"type": "user.message", "content": [{"type": "text", "text": "add"}]}])
    fake_provider.script(Reply([ToolUse("mcp__docs__add", {"a": 1, "b": 2})]), Reply([Text("Unsure.")]))
    dying = CancelToken()
    world.runtime(_DiesMidCall(SdkMcpClient(), dying)).take_turns(session_id, dying)
    assert len(mcp.calls) == 1
    left = world.store.load(stream_id(session_id))
    assert isinstance(left, Session) and left.status == "running" and left.started_mcp_calls
    assert "agent.mcp_tool_result" not in [kind for kind, _ in world.log(session_id)]

    world.runtime(SdkMcpClient()).take_turns(session_id, CancelToken())
    log = world.log(session_id)
    [result] = [payload for kind, payload in log if kind == "agent.mcp_tool_result"]
    assert result["is_error"] and "may or may not have run" in result["content"][0]["text"]
    assert len(mcp.calls) == 1  # not made again
    assert log[-1][0] == "session.status_idle" and log[-1][1]["stop_reason"]["type"] == "end_turn"
    assert world.store.load(stream_id(session_id)).mcp_calls == {}


@pytest.mark.parametrize("shape", ["one process", "two processes on postgres"])
def test_drivers_refreshing_one_credential_together_refresh_it_once(
    request: pytest.FixtureRequest, tmp_path: Path, fake_provider: FakeProvider, mcp: TestMcpServer, shape: str
) -> None:
    world = _World(tmp_path, fake_provider)
    mcp.refresh_tokens["shared-refresh-13131313"] = "shared-new-access-14141414"
    auth = {
        "type": "mcp_oauth",
        "mcp_server_url": mcp.url,
        "access_token": "shared-old-access-15151515",
        "expires_at": (datetime.now(UTC) + timedelta(seconds=20)).isoformat(),
        "refresh": {
            "client_id": "c",
            "refresh_token": "shared-refresh-13131313",
            "token_endpoint": mcp.token_url,
            "token_endpoint_auth": {"type": "none"},
        },
    }
    _, vault_id, _ = world.session(mcp.url, auth)
    bearers = [world.credentials().bearer_for(ALICE.tenant_id, [vault_id], mcp.url + "/") for _ in range(6)]
    if shape == "one process":
        shared = world.credentials()  # its drivers share the process's lock
        holders = [shared] * len(bearers)
    else:
        # Each "process" has its own local locks; only the advisory lock is shared.
        conninfo = request.getfixturevalue("postgres_url")
        processes = [world.credentials(PostgresCredentialLocks(conninfo)) for _ in range(3)]
        holders = [processes[index % 3] for index in range(len(bearers))]
    got: list[str] = []

    def renew(holder: McpCredentials, bearer: Any) -> None:
        assert holder.expiring(bearer)
        fresh = holder.renewed(ALICE.tenant_id, bearer)
        got.append(fresh.token if fresh else "")

    threads = [threading.Thread(target=renew, args=pair) for pair in zip(holders, bearers, strict=True)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    assert got == ["shared-new-access-14141414"] * len(bearers)
    assert len(mcp.refreshes) == 1
    # A later driver with the old bearer finds the stored refresh: no second request.
    assert world.credentials().renewed(ALICE.tenant_id, bearers[0]).token == "shared-new-access-14141414"  # type: ignore[union-attr]
    assert len(mcp.refreshes) == 1


def test_without_a_shared_lock_two_processes_would_both_refresh(
    tmp_path: Path, fake_provider: FakeProvider, mcp: TestMcpServer
) -> None:
    """The check above can fail: with process-local locks only, processes that read the vault
    before either stored the refresh each ask the token endpoint."""
    world = _World(tmp_path, fake_provider)
    mcp.refresh_tokens["lone-refresh-16161616"] = "lone-new-access-17171717"
    auth = {
        "type": "mcp_oauth",
        "mcp_server_url": mcp.url,
        "access_token": "lone-old-access-18181818",
        "refresh": {
            "client_id": "c",
            "refresh_token": "lone-refresh-16161616",
            "token_endpoint": mcp.token_url,
            "token_endpoint_auth": {"type": "none"},
        },
    }
    _, vault_id, _ = world.session(mcp.url, auth)
    bearer = world.credentials().bearer_for(ALICE.tenant_id, [vault_id], mcp.url)
    gate = threading.Barrier(2)

    class Racing(LocalCredentialLocks):
        def holding(self, credential_id: str) -> Any:
            gate.wait(5)  # both "processes" are past their own lock before either refreshes
            return super().holding(credential_id)

    threads = [
        threading.Thread(target=world.credentials(Racing()).renewed, args=(ALICE.tenant_id, bearer)) for _ in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    assert len(mcp.refreshes) == 2
