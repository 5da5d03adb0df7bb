"""MCP tools in the runtime, end to end: the official anthropic SDK as the client, a real MCP
server (the ``mcp`` package's own, on localhost, requiring a bearer, with an OAuth token
endpoint) and the fake model provider calling its tools as ``mcp__docs__<tool>``."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anthropic
import httpx2
import pytest

from tests.e2e.test_model_cards import _stored_bytes
from tests.support.fake_provider import API_KEY as PROVIDER_KEY
from tests.support.fake_provider import FakeProvider, Reply, Text, ToolUse
from tests.support.mcp_server import TestMcpServer
from tests.support.postgres import database_of, free_port
from tests.support.sdk_sessions import idles, say, sdk_client, wait_for
from tests.support.server import RunningServer, running_server

BEARER = "mcp-static-bearer-77777777"
ACCESS = "mcp-oauth-access-88888888"
REFRESH = "mcp-oauth-refresh-99999999"
CLIENT_SECRET = "mcp-oauth-client-secret-12121212"
NEW_ACCESS = "mcp-oauth-new-access-34343434"
CALL_TIMEOUT = 2.0


@pytest.fixture(scope="session")
def mcp_server_once() -> Iterator[TestMcpServer]:
    server = TestMcpServer().start()
    yield server
    server.stop()


@pytest.fixture
def mcp(mcp_server_once: TestMcpServer) -> Iterator[TestMcpServer]:
    mcp_server_once.reset()
    yield mcp_server_once
    mcp_server_once.reset()


@pytest.fixture(params=["sqlite", "postgres"])
def served(request: pytest.FixtureRequest, tmp_path: Path, fake_provider: FakeProvider) -> Iterator[RunningServer]:
    settings = {
        "anthropic_api_key": PROVIDER_KEY,
        "anthropic_base_url": fake_provider.anthropic_base_url,
        "runtime_retries": 1,
        "runtime_retry_base_seconds": 0.05,
        "mcp_call_timeout": CALL_TIMEOUT,
    }
    with running_server(tmp_path / "data", database_of(request), **settings) as running:
        yield running


def _toolset(policy: str | None = None, **fields: Any) -> dict[str, Any]:
    toolset: dict[str, Any] = {"type": "mcp_toolset", "mcp_server_name": "docs", **fields}
    if policy is not None:
        toolset["default_config"] = {"permission_policy": {"type": policy}}
    return toolset


def _session(
    client: anthropic.Anthropic,
    url: str,
    tools: list[dict[str, Any]],
    vault_ids: list[str],
    servers: list[dict[str, Any]] | None = None,
) -> str:
    agent = client.beta.agents.create(
        name="mcp user",
        model="claude-sonnet-4-6",
        mcp_servers=servers or [{"type": "url", "name": "docs", "url": url}],  # type: ignore[list-item]
        tools=tools,  # type: ignore[arg-type]
    )
    env = client.beta.environments.create(name="env")
    return client.beta.sessions.create(agent=agent.id, environment_id=env.id, vault_ids=vault_ids).id


def _vault_with(client: anthropic.Anthropic, auth: dict[str, Any]) -> tuple[str, str]:
    vault = client.beta.vaults.create(display_name="mcp")
    credential = client.beta.vaults.credentials.create(vault_id=vault.id, auth=auth)  # type: ignore[arg-type]
    return vault.id, credential.id


def _oauth(mcp: TestMcpServer, expires_at: datetime) -> dict[str, Any]:
    return {
        "type": "mcp_oauth",
        "mcp_server_url": mcp.url,
        "access_token": ACCESS,
        "expires_at": expires_at.isoformat(),
        "refresh": {
            "client_id": "agentry-test",
            "refresh_token": REFRESH,
            "token_endpoint": mcp.token_url,
            "token_endpoint_auth": {"type": "client_secret_post", "client_secret": CLIENT_SECRET},
        },
    }


def _of_type(events: list[Any], kind: str) -> list[Any]:
    return [event for event in events if event.type == kind]


@pytest.mark.parametrize("answer", ["allow", "deny"])
def test_mcp_tools_are_offered_and_each_call_waits_for_a_confirmation_by_default(
    served: RunningServer, fake_provider: FakeProvider, mcp: TestMcpServer, answer: str
) -> None:
    client = sdk_client(served)
    mcp.accepted.add(BEARER)
    vault_id, _ = _vault_with(client, {"type": "static_bearer", "mcp_server_url": mcp.url, "token": BEARER})
    disabled = {"name": "slow", "enabled": False}
    session_id = _session(client, mcp.url, [_toolset(configs=[disabled])], [vault_id])
    fake_provider.script(Reply([ToolUse("mcp__docs__add", {"a": 2, "b": 3})]), Reply([Text("It is 5.")]))
    say(client, session_id, "add 2 and 3")
    events = wait_for(client, session_id, idles(1))

    offered = {tool["name"]: tool for tool in fake_provider.requests[0].body["tools"]}
    assert set(offered) == {"mcp__docs__add", "mcp__docs__echo_secret"}  # slow is disabled
    assert offered["mcp__docs__add"]["input_schema"]["required"] == ["a", "b"]
    assert offered["mcp__docs__add"]["description"] == "Adds two integers"
    [use] = _of_type(events, "agent.mcp_tool_use")
    assert (use.mcp_server_name, use.name, use.input) == ("docs", "add", {"a": 2, "b": 3})
    assert use.evaluated_permission == "ask" and use.evaluation.type == "always_ask"
    assert events[-1].stop_reason.type == "requires_action" and events[-1].stop_reason.event_ids == [use.id]
    assert mcp.calls == []

    confirmation: dict[str, Any] = {"type": "user.tool_confirmation", "tool_use_id": use.id, "result": answer}
    if answer == "deny":
        confirmation["deny_message"] = "not today"
    client.beta.sessions.events.send(session_id, events=[confirmation])
    events = wait_for(client, session_id, idles(2))
    [result] = _of_type(events, "agent.mcp_tool_result")
    assert result.mcp_tool_use_id == use.id
    if answer == "allow":
        assert result.is_error is False and result.content[0].text == "5"
        assert [(call.tool, call.arguments, call.bearer) for call in mcp.calls] == [("add", {"a": 2, "b": 3}, BEARER)]
    else:
        assert result.is_error is True and result.content[0].text == "Denied: not today"
        assert mcp.calls == []
    assert events[-1].stop_reason.type == "end_turn"
    # The model saw its call under the name it used, answered in the next message.
    messages = fake_provider.requests[1].body["messages"]
    assert messages[-2]["content"][0]["name"] == "mcp__docs__add"
    assert messages[-1]["content"][0]["tool_use_id"] == messages[-2]["content"][0]["id"]
    assert _of_type(events, "session.error") == []


def test_always_allow_calls_at_once_with_the_first_matching_vaults_bearer_and_scrubs_it(
    served: RunningServer, fake_provider: FakeProvider, mcp: TestMcpServer
) -> None:
    client = sdk_client(served)
    second = "mcp-second-vault-bearer-56565656"
    mcp.accepted.update({BEARER, second})
    archived_vault, archived = _vault_with(client, {"type": "static_bearer", "mcp_server_url": mcp.url, "token": "archived-1234567"})
    client.beta.vaults.credentials.archive(archived, vault_id=archived_vault)
    first, _ = _vault_with(client, {"type": "static_bearer", "mcp_server_url": mcp.url + "/", "token": BEARER})
    later, _ = _vault_with(client, {"type": "static_bearer", "mcp_server_url": mcp.url, "token": second})
    session_id = _session(client, mcp.url, [_toolset("always_allow")], [archived_vault, first, later])
    fake_provider.script(
        Reply([ToolUse("mcp__docs__add", {"a": 40, "b": 2}), ToolUse("mcp__docs__echo_secret", {})]),
        Reply([Text("Done.")]),
    )
    say(client, session_id, "go")
    events = wait_for(client, session_id, idles(1))
    assert events[-1].stop_reason.type == "end_turn"
    uses = _of_type(events, "agent.mcp_tool_use")
    assert [use.evaluated_permission for use in uses] == ["allow", "allow"]
    results = {result.mcp_tool_use_id: result for result in _of_type(events, "agent.mcp_tool_result")}
    assert results[uses[0].id].content[0].text == "42"
    assert results[uses[1].id].content[0].text == "you sent [redacted]"
    assert [call.bearer for call in mcp.calls] == [BEARER, BEARER]
    assert len(_of_type(events, "session.status_idle")) == 1  # never stopped to ask


def test_oauth_tokens_are_refreshed_near_expiry_and_on_a_401_and_kept_sealed(
    served: RunningServer, fake_provider: FakeProvider, mcp: TestMcpServer
) -> None:
    client = sdk_client(served)
    mcp.refresh_tokens[REFRESH] = NEW_ACCESS
    soon = datetime.now(UTC) + timedelta(seconds=30)
    vault_id, credential_id = _vault_with(client, _oauth(mcp, soon))
    session_id = _session(client, mcp.url, [_toolset("always_allow")], [vault_id])
    fake_provider.script(Reply([ToolUse("mcp__docs__add", {"a": 1, "b": 1})]), Reply([Text("2.")]))
    say(client, session_id, "one plus one")
    events = wait_for(client, session_id, idles(1))
    # Near expiry: refreshed once, before the listing; the call went with the new token.
    assert len(mcp.refreshes) == 1 and mcp.refreshes[0]["refresh_token"] == REFRESH
    assert mcp.refreshes[0]["client_secret"] == CLIENT_SECRET
    assert [call.bearer for call in mcp.calls] == [NEW_ACCESS]
    assert _of_type(events, "agent.mcp_tool_result")[0].content[0].text == "2"
    stored = client.beta.vaults.credentials.retrieve(credential_id, vault_id=vault_id)
    assert stored.auth.expires_at is not None and stored.auth.expires_at > soon + timedelta(minutes=30)  # type: ignore[union-attr]

    # The server stops taking it: a 401, one refresh with the rotated refresh token, a retry.
    mcp.accepted.clear()
    rotated = next(iter(mcp.refresh_tokens))
    fake_provider.script(Reply([ToolUse("mcp__docs__add", {"a": 2, "b": 2})]), Reply([Text("4.")]))
    say(client, session_id, "two plus two")
    events = wait_for(client, session_id, idles(2))
    assert len(mcp.refreshes) == 2 and mcp.refreshes[1]["refresh_token"] == rotated
    assert mcp.calls[-1].bearer == f"{NEW_ACCESS}-next"
    assert _of_type(events, "agent.mcp_tool_result")[-1].content[0].text == "4"
    assert events[-1].stop_reason.type == "end_turn" and _of_type(events, "session.error") == []


def test_unreachable_and_refusing_servers_are_reported_and_do_not_block_the_turn(
    served: RunningServer, fake_provider: FakeProvider, mcp: TestMcpServer
) -> None:
    client = sdk_client(served)
    mcp.token_endpoint_status = 401
    vault_id, credential_id = _vault_with(client, _oauth(mcp, datetime.now(UTC) + timedelta(days=1)))
    down = f"http://127.0.0.1:{free_port()}/mcp"
    anonymous = mcp.url + "?no-credential=1"  # the same server, a URL no credential names
    servers = [
        {"type": "url", "name": "docs", "url": mcp.url},
        {"type": "url", "name": "down", "url": down},
        {"type": "url", "name": "anon", "url": anonymous},
    ]
    tools = [_toolset(), {"type": "mcp_toolset", "mcp_server_name": "down"}, {"type": "mcp_toolset", "mcp_server_name": "anon"}]
    session_id = _session(client, mcp.url, tools, [vault_id], servers)
    fake_provider.script(Reply([Text("No tools today.")]))
    say(client, session_id, "anything")
    events = wait_for(client, session_id, idles(1))
    assert events[-1].stop_reason.type == "end_turn"
    assert _of_type(events, "agent.message")[0].content[0].text == "No tools today."
    errors = {event.error.mcp_server_name: event.error for event in _of_type(events, "session.error")}
    assert errors["down"].type == "mcp_connection_failed_error" and errors["down"].retry_status.type == "retrying"
    assert "ConnectError" in errors["down"].message
    refused = errors["docs"]
    assert refused.type == "mcp_authentication_failed_error"
    assert credential_id in refused.message and "HTTP 401" in refused.message
    assert errors["anon"].type == "mcp_authentication_failed_error"
    assert "no credential in the session's vaults matches" in errors["anon"].message
    assert "tools" not in fake_provider.requests[0].body or fake_provider.requests[0].body["tools"] == []
    assert len(mcp.refreshes) == 1  # the refresh was tried once, on the 401
    assert "session.status_rescheduled" not in [event.type for event in events]


def test_a_call_is_bounded_by_its_timeout_and_ended_by_an_interrupt(
    served: RunningServer, fake_provider: FakeProvider, mcp: TestMcpServer
) -> None:
    client = sdk_client(served)
    mcp.accepted.add(BEARER)
    vault_id, _ = _vault_with(client, {"type": "static_bearer", "mcp_server_url": mcp.url, "token": BEARER})
    session_id = _session(client, mcp.url, [_toolset("always_allow")], [vault_id])
    fake_provider.script(Reply([ToolUse("mcp__docs__slow", {"seconds": 10})]), Reply([Text("Too slow.")]))
    started = time.monotonic()
    say(client, session_id, "be slow")
    events = wait_for(client, session_id, idles(1))
    assert time.monotonic() - started < CALL_TIMEOUT + 5
    [result] = _of_type(events, "agent.mcp_tool_result")
    assert result.is_error and f"no answer within {CALL_TIMEOUT:g} s" in result.content[0].text
    assert events[-1].stop_reason.type == "end_turn"

    fake_provider.script(Reply([ToolUse("mcp__docs__slow", {"seconds": 1.5})]))
    say(client, session_id, "again")
    deadline = time.monotonic() + 10
    while len(mcp.calls) < 2:
        assert time.monotonic() < deadline, "the second call never reached the server"
        time.sleep(0.02)
    interrupted = time.monotonic()
    client.beta.sessions.events.send(session_id, events=[{"type": "user.interrupt"}])
    events = wait_for(client, session_id, idles(2))
    assert time.monotonic() - interrupted < 1.4  # before the tool itself would have answered
    last = _of_type(events, "agent.mcp_tool_result")[-1]
    assert last.is_error and last.content[0].text == "The call was interrupted."
    assert events[-1].stop_reason.type == "end_turn"


def test_no_mcp_secret_reaches_a_response_the_stores_or_the_logs(
    served: RunningServer,
    fake_provider: FakeProvider,
    mcp: TestMcpServer,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level("DEBUG")
    bodies: list[str] = []

    def keep(response: httpx2.Response) -> None:
        response.read()
        bodies.append(response.text)

    client = anthropic.Anthropic(
        base_url=served.base_url,
        api_key=served.api_key,
        max_retries=0,
        http_client=httpx2.Client(event_hooks={"response": [keep]}),
    )
    mcp.refresh_tokens[REFRESH] = NEW_ACCESS  # the first listing gets a 401: refreshed, then kept
    vault_id, credential_id = _vault_with(client, _oauth(mcp, datetime.now(UTC) + timedelta(days=1)))
    session_id = _session(client, mcp.url, [_toolset("always_allow")], [vault_id])
    fake_provider.script(Reply([ToolUse("mcp__docs__echo_secret", {})]), Reply([Text("Seen.")]))
    say(client, session_id, "what bearer?")
    events = wait_for(client, session_id, idles(1))
    assert _of_type(events, "agent.mcp_tool_result")[0].content[0].text == "you sent [redacted]"
    assert mcp.calls[0].bearer == NEW_ACCESS and len(mcp.refreshes) == 1
    rotated = next(iter(mcp.refresh_tokens))
    client.beta.vaults.credentials.retrieve(credential_id, vault_id=vault_id)
    client.beta.sessions.retrieve(session_id)
    list(client.beta.sessions.events.list(session_id))
    client.close()

    stored = _stored_bytes(served)
    assert vault_id.encode() in stored and credential_id.encode() in stored  # the search reads the stores
    client_loggers = ("anthropic", "httpx", "httpcore")
    server_records = [record for record in caplog.records if not record.name.startswith(client_loggers)]
    logs = "\n".join(record.getMessage() for record in server_records) + "".join(capfd.readouterr())
    requests = "\n".join(str(request.body) for request in fake_provider.requests)
    for secret in (ACCESS, REFRESH, CLIENT_SECRET, NEW_ACCESS, rotated):
        assert not any(secret in body for body in bodies), f"{secret[:8]}… in a response"
        assert (secret.encode() in stored) is False, f"{secret[:8]}… stored in clear"
        assert (secret in logs) is False, f"{secret[:8]}… in the logs"
        assert (secret in requests) is False, f"{secret[:8]}… sent to the model"
