"""Built-in tools run by the official SDK's ``EnvironmentWorker`` (unchanged, in its own
process) against a self-hosted environment's work queue, and the queue's own API."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import pytest

from application.work_queue import TEARDOWN_GRACE_SECONDS
from infra.work_leases import SqlWorkLeases
from interfaces.bootstrap import sandbox_worker_key
from tests.support.environment_worker import environment_worker
from tests.support.fake_provider import API_KEY as PROVIDER_KEY
from tests.support.fake_provider import FakeProvider, Reply, Text, ToolUse
from tests.support.postgres import database_of
from tests.support.sdk_sessions import idles, say, sdk_client, wait_for
from tests.support.server import RunningServer, running_server

TOOLSET = {"type": "agent_toolset_20260401"}
ASKING_TOOLSET = {"type": "agent_toolset_20260401", "default_config": {"permission_policy": {"type": "always_ask"}}}


@pytest.fixture(params=["sqlite", "postgres"])
def served(request: pytest.FixtureRequest, tmp_path: Path, fake_provider: FakeProvider) -> Iterator[RunningServer]:
    database_url = database_of(request)
    settings: dict[str, Any] = {
        "anthropic_api_key": PROVIDER_KEY,
        "anthropic_base_url": fake_provider.anthropic_base_url,
        "work_lease_seconds": 4.0,
        "worker_timeout_seconds": 20.0,
    }
    with running_server(tmp_path / "data", database_url, **settings) as running:
        yield running


def _self_hosted(server: RunningServer, tools: list[dict[str, Any]]) -> tuple[str, str, str]:
    """(environment id, its key, a session on it whose agent has ``tools``)."""
    client = sdk_client(server)
    environment = client.beta.environments.create(name="on-prem", config={"type": "self_hosted"})
    key = httpx.post(
        f"{server.base_url}/v1/environments/{environment.id}/keys",
        headers={"x-api-key": server.api_key}, json={"name": "worker"},
    ).json()["key"]
    agent = client.beta.agents.create(name="builder", model="claude-sonnet-4-6", tools=tools)
    session = client.beta.sessions.create(agent=agent.id, environment_id=environment.id)
    return environment.id, key, session.id


def _results(events: list[Any]) -> dict[str, Any]:
    return {e.tool_use_id: e for e in events if e.type in ("user.tool_result", "agent.tool_result")}


def test_the_sdk_worker_writes_runs_and_reads_a_file(served: RunningServer, fake_provider: FakeProvider, tmp_path: Path) -> None:
    client = sdk_client(served)
    environment_id, key, session_id = _self_hosted(served, [TOOLSET])
    workdir = tmp_path / "workspace"
    target = str(workdir / "hello.sh")
    fake_provider.script(
        Reply([ToolUse("write", {"file_path": target, "content": "echo hello from $0\n"})]),
        Reply([ToolUse("bash", {"command": f"bash {target}"})]),
        Reply([ToolUse("read", {"file_path": target})]),
        Reply([Text("All done.")]),
    )
    with environment_worker(served.base_url, environment_id, key, workdir) as worker:
        say(client, session_id, "write a script, run it, read it back")
        events = wait_for(client, session_id, lambda log: log[-1].type == "session.status_idle", timeout=60)
        assert events[-1].stop_reason.type == "end_turn", worker.output
    uses = [e for e in events if e.type == "agent.tool_use"]
    assert [use.name for use in uses] == ["write", "bash", "read"]
    results = _results(events)
    assert set(results) == {use.id for use in uses}
    assert all(result.type == "user.tool_result" and not result.is_error for result in results.values())
    assert "hello from" in results[uses[1].id].content[0].text
    assert "echo hello" in results[uses[2].id].content[0].text
    assert (workdir / "hello.sh").read_text() == "echo hello from $0\n"
    # While the worker ran the tools the session was running, never idle in between.
    assert [e.type for e in events].count("session.status_idle") == 1
    # The model saw each result before its next request.
    assert fake_provider.requests[1].body["messages"][-1]["content"][0]["tool_use_id"] == uses[0].id
    # The item was let go once the session went idle (the list is read-model fed: a moment).
    operator = sdk_client(served)
    items = httpx.get(
        f"{served.base_url}/v1/environments/{environment_id}/work", headers={"authorization": f"Bearer {key}"}
    ).json()["data"]
    assert len(items) == 1 and items[0]["data"] == {"type": "session", "id": session_id}
    item = operator.beta.environments.work.retrieve(items[0]["id"], environment_id=environment_id)
    assert item.state in ("stopping", "stopped")


@pytest.mark.parametrize("answer", ["allow", "deny"])
def test_always_ask_holds_the_call_until_the_user_answers(
    served: RunningServer, fake_provider: FakeProvider, tmp_path: Path, answer: str
) -> None:
    client = sdk_client(served)
    environment_id, key, session_id = _self_hosted(served, [ASKING_TOOLSET])
    workdir = tmp_path / "workspace"
    fake_provider.script(Reply([ToolUse("bash", {"command": "echo ran > proof.txt; echo ran"})]), Reply([Text("Done.")]))
    with environment_worker(served.base_url, environment_id, key, workdir) as worker:
        say(client, session_id, "run it")
        events = wait_for(client, session_id, idles(1), timeout=30)
        use = next(e for e in events if e.type == "agent.tool_use")
        assert use.evaluated_permission == "ask"
        assert events[-1].stop_reason.type == "requires_action" and events[-1].stop_reason.event_ids == [use.id]
        time.sleep(1.0)  # the worker has seen the call: it must not run it unconfirmed
        assert not (workdir / "proof.txt").exists()
        confirmation: dict[str, Any] = {"type": "user.tool_confirmation", "tool_use_id": use.id, "result": answer}
        if answer == "deny":
            confirmation["deny_message"] = "not today"
        client.beta.sessions.events.send(session_id, events=[confirmation])
        events = wait_for(client, session_id, idles(2), timeout=60)
        assert events[-1].stop_reason.type == "end_turn", worker.output
    result = _results(events)[use.id]
    if answer == "allow":
        assert result.type == "user.tool_result" and not result.is_error
        assert result.content[0].text.strip() == "ran"
        assert (workdir / "proof.txt").read_text() == "ran\n"
        # Allowed, the session ran again while the worker worked.
        after = [e.type for e in events[events.index(next(e for e in events if e.type == "user.tool_confirmation")):]]
        assert after[:2] == ["user.tool_confirmation", "session.status_running"]
    else:
        assert result.type == "agent.tool_result" and result.is_error
        assert result.content[0].text == "Denied: not today"
        assert not (workdir / "proof.txt").exists()
    assert len([e for e in events if e.type in ("user.tool_result", "agent.tool_result")]) == 1


def _bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def test_the_queue_speaks_the_sdk_protocol_and_scopes_its_credentials(served: RunningServer, fake_provider: FakeProvider) -> None:
    client = sdk_client(served)
    environment_id, key, session_id = _self_hosted(served, [TOOLSET])
    _, other_key, other_session = _self_hosted(served, [TOOLSET])
    base = f"{served.base_url}/v1/environments/{environment_id}/work"
    api = {"x-api-key": served.api_key}
    # Nothing queued: a JSON null, at once or after the long poll.
    for query in ("", "?block_ms=200"):
        empty = httpx.get(f"{base}/poll{query}", headers=_bearer(key))
        assert empty.status_code == 200 and empty.content == b"null"
    assert httpx.get(f"{base}/poll?block_ms=0", headers=_bearer(key)).status_code == 400
    # A tool call queues the session.
    fake_provider.script(Reply([ToolUse("bash", {"command": "true"})]), Reply([Text("ok")]))
    say(client, session_id, "go")
    deadline = time.monotonic() + 10
    stats = httpx.get(f"{base}/stats", headers=api).json()
    while stats["depth"] == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
        stats = httpx.get(f"{base}/stats", headers=api).json()
    assert stats["type"] == "work_queue_stats" and stats["depth"] == 1 and stats["pending"] == 0
    # Wrong credentials: an API key cannot list, an environment key cannot read as an
    # operator or act for another environment, nor use the rest of the API.
    assert httpx.get(base, headers=api).status_code == 403
    assert httpx.get(f"{base}/stats", headers=_bearer(key)).status_code == 403
    assert httpx.get(f"{base}/poll", headers=_bearer(other_key)).status_code == 403
    assert httpx.get(f"{served.base_url}/v1/agents", headers=_bearer(key)).status_code == 403
    assert httpx.get(f"{base}/poll", headers=_bearer(key + "x")).status_code == 401
    # The official client polls and acknowledges.
    worker = anthropic.Anthropic(base_url=served.base_url, api_key=None, auth_token=key, max_retries=0)
    work = worker.beta.environments.work.poll(environment_id, block_ms=500, anthropic_worker_id="w-1")
    assert work is not None and work.state == "queued" and work.data.id == session_id and work.secret
    # The stats are a read model's: the claim reaches them a moment after the poll answered.
    deadline = time.monotonic() + 10
    while httpx.get(f"{base}/stats", headers=api).json()["pending"] != 1:
        assert time.monotonic() < deadline, "the claim never reached the queue's stats"
        time.sleep(0.05)
    assert httpx.get(f"{base}/stats", headers=api).json()["workers_polling"] == 1
    assert worker.beta.environments.work.poll(environment_id) is None  # claimed: not handed out twice
    acked = worker.beta.environments.work.ack(work.id, environment_id=environment_id)
    assert acked.state == "starting" and acked.secret is None
    # The secret's token works for this item and its session only.
    import base64
    import json

    token = json.loads(base64.urlsafe_b64decode(work.secret + "=" * (-len(work.secret) % 4)))["sessions_token"]
    assert httpx.get(f"{served.base_url}/v1/sessions/{session_id}", headers=_bearer(token)).status_code == 200
    assert httpx.get(f"{served.base_url}/v1/sessions/{other_session}", headers=_bearer(token)).status_code == 403
    assert httpx.get(f"{served.base_url}/v1/sessions", headers=_bearer(token)).status_code == 403
    assert httpx.get(f"{base}/{work.id}", headers=_bearer(token)).status_code == 403
    # … and it sends only the results of the calls its worker runs.
    for event in ({"type": "user.message", "content": [{"type": "text", "text": "hi"}]}, {"type": "user.interrupt"}):
        sent = httpx.post(f"{served.base_url}/v1/sessions/{session_id}/events", headers=_bearer(token), json={"events": [event]})
        assert sent.status_code == 403, sent.text
    # Heartbeats: the first claims the lease, each echoes the last, a stale echo is a 412.
    beater = anthropic.Anthropic(base_url=served.base_url, api_key=None, auth_token=token, max_retries=0)
    first = beater.beta.environments.work.heartbeat(work.id, environment_id=environment_id, expected_last_heartbeat="NO_HEARTBEAT")
    assert first.lease_extended and first.state == "active" and first.ttl_seconds == 4
    second = beater.beta.environments.work.heartbeat(
        work.id, environment_id=environment_id, expected_last_heartbeat=first.last_heartbeat
    )
    assert second.lease_extended and second.last_heartbeat != first.last_heartbeat
    with pytest.raises(anthropic.APIStatusError) as stale:
        beater.beta.environments.work.heartbeat(work.id, environment_id=environment_id, expected_last_heartbeat=first.last_heartbeat)
    assert stale.value.status_code == 412
    assert stale.value.body["error"]["details"]["current_state"]["last_heartbeat"] == second.last_heartbeat  # type: ignore[index]
    # The operator reads and labels the item; the worker lists it.
    operator = sdk_client(served)
    seen = operator.beta.environments.work.retrieve(work.id, environment_id=environment_id)
    assert seen.state == "active" and seen.latest_heartbeat_at == second.last_heartbeat and seen.secret is None
    labelled = operator.beta.environments.work.update(work.id, environment_id=environment_id, metadata={"host": "rack-7"})
    assert labelled.metadata == {"host": "rack-7"} and labelled.latest_heartbeat_at == second.last_heartbeat
    listed = worker.beta.environments.work.list(environment_id)
    assert [item.id for item in listed.data] == [work.id]
    # Stopping: graceful first (the next heartbeat tells the worker), then forced; again is a 409.
    assert beater.beta.environments.work.stop(work.id, environment_id=environment_id, force=False).state == "stopping"
    told = beater.beta.environments.work.heartbeat(work.id, environment_id=environment_id, expected_last_heartbeat="whatever")
    assert told.state == "stopping" and not told.lease_extended
    # The token outlives the 4 s lease by the teardown grace: the worker's flush still gets in.
    lease = SqlWorkLeases(served.platform.projections.engine).get(work.id)
    assert lease is not None and lease.expires_at >= time.time() + TEARDOWN_GRACE_SECONDS - 10
    assert lease.last_heartbeat == second.last_heartbeat
    assert worker.beta.environments.work.stop(work.id, environment_id=environment_id, force=True).state == "stopped"
    with pytest.raises(anthropic.APIStatusError) as again:
        worker.beta.environments.work.stop(work.id, environment_id=environment_id, force=True)
    assert again.value.status_code == 409
    # A stopped item's token is dead.
    assert httpx.get(f"{served.base_url}/v1/sessions/{session_id}", headers=_bearer(token)).status_code == 401
    missing = httpx.get(f"{base}/work_000000000000000000000000", headers=api)
    assert missing.status_code == 404 and missing.json()["error"]["type"] == "not_found_error"


def test_a_worker_killed_mid_tool_is_replaced_and_the_result_is_recorded_once(
    served: RunningServer, fake_provider: FakeProvider, tmp_path: Path
) -> None:
    client = sdk_client(served)
    environment_id, key, session_id = _self_hosted(served, [TOOLSET])
    workdir = tmp_path / "workspace"
    marker = workdir / "runs.txt"
    fake_provider.script(
        Reply([ToolUse("bash", {"command": f"echo run >> {marker}; sleep 3; echo finished"})]),
        Reply([Text("Finished.")]),
    )
    with environment_worker(served.base_url, environment_id, key, workdir) as first:
        say(client, session_id, "take your time")
        deadline = time.monotonic() + 20
        while not marker.exists():
            assert time.monotonic() < deadline, first.output
            time.sleep(0.05)
        first.kill()
    with environment_worker(served.base_url, environment_id, key, workdir) as second:
        events = wait_for(client, session_id, idles(1), timeout=60)
        assert events[-1].stop_reason.type == "end_turn", second.output
    use = next(e for e in events if e.type == "agent.tool_use")
    results = [e for e in events if e.type in ("user.tool_result", "agent.tool_result")]
    assert len(results) == 1 and results[0].tool_use_id == use.id
    assert results[0].content[0].text.strip() == "finished"
    assert marker.read_text() == "run\nrun\n"  # the second worker ran it again


def test_an_item_its_worker_gave_up_on_ends_the_call_and_the_next_call_gets_a_new_item(
    served: RunningServer, fake_provider: FakeProvider, tmp_path: Path
) -> None:
    client = sdk_client(served)
    environment_id, key, session_id = _self_hosted(served, [TOOLSET])
    fake_provider.script(
        Reply([ToolUse("bash", {"command": "true"})]),
        Reply([ToolUse("bash", {"command": "echo second"})]),
        Reply([Text("Done.")]),
    )
    say(client, session_id, "go")
    hand = anthropic.Anthropic(base_url=served.base_url, api_key=None, auth_token=key, max_retries=0)
    first = hand.beta.environments.work.poll(environment_id, block_ms=999)
    deadline = time.monotonic() + 10
    while first is None and time.monotonic() < deadline:
        first = hand.beta.environments.work.poll(environment_id, block_ms=999)
    assert first is not None
    hand.beta.environments.work.ack(first.id, environment_id=environment_id)
    hand.beta.environments.work.stop(first.id, environment_id=environment_id, force=True)  # a worker giving up
    with environment_worker(served.base_url, environment_id, key, tmp_path / "workspace") as worker:
        events = wait_for(client, session_id, idles(1), timeout=60)
        assert events[-1].stop_reason.type == "end_turn", worker.output
    uses = [e for e in events if e.type == "agent.tool_use"]
    results = _results(events)
    assert results[uses[0].id].is_error and "no worker" in results[uses[0].id].content[0].text
    assert not results[uses[1].id].is_error and results[uses[1].id].content[0].text.strip() == "second"
    items = httpx.get(f"{served.base_url}/v1/environments/{environment_id}/work", headers=_bearer(key)).json()["data"]
    assert len(items) == 2 and first.id in {item["id"] for item in items}


def test_an_interrupt_ends_the_wait_and_asks_the_worker_to_stop(served: RunningServer, fake_provider: FakeProvider) -> None:
    client = sdk_client(served)
    environment_id, key, session_id = _self_hosted(served, [TOOLSET])
    fake_provider.script(Reply([ToolUse("bash", {"command": "sleep 600"})]))
    say(client, session_id, "go")
    hand = anthropic.Anthropic(base_url=served.base_url, api_key=None, auth_token=key, max_retries=0)
    work = None
    deadline = time.monotonic() + 10
    while work is None and time.monotonic() < deadline:
        work = hand.beta.environments.work.poll(environment_id, block_ms=999)
    assert work is not None
    hand.beta.environments.work.ack(work.id, environment_id=environment_id)
    beat = hand.beta.environments.work.heartbeat(work.id, environment_id=environment_id, expected_last_heartbeat="NO_HEARTBEAT")
    assert beat.state == "active" and beat.lease_extended
    assert client.beta.sessions.retrieve(session_id).status == "running"  # waiting for the worker
    client.beta.sessions.events.send(session_id, events=[{"type": "user.interrupt"}])
    events = wait_for(client, session_id, idles(1), timeout=20)
    assert events[-1].stop_reason.type == "end_turn"
    told = hand.beta.environments.work.heartbeat(work.id, environment_id=environment_id, expected_last_heartbeat=beat.last_heartbeat)
    assert told.state in ("stopping", "stopped") and not told.lease_extended
    cancelled = next(e for e in events if e.type == "agent.tool_result")
    assert cancelled.is_error and "interrupted" in cancelled.content[0].text
    # The call can no longer be answered: the worker's late result is refused.
    late = httpx.post(
        f"{served.base_url}/v1/sessions/{session_id}/events",
        headers={"x-api-key": served.api_key},
        json={"events": [{"type": "user.tool_result", "tool_use_id": next(e.id for e in events if e.type == "agent.tool_use"), "content": [{"type": "text", "text": "late"}]}]},
    )
    assert late.status_code == 400


def test_a_cloud_item_is_claimed_only_by_agentrys_own_workers(served: RunningServer, fake_provider: FakeProvider) -> None:
    client = sdk_client(served)
    cloud = client.beta.environments.create(name="cloud")
    key = httpx.post(
        f"{served.base_url}/v1/environments/{cloud.id}/keys", headers={"x-api-key": served.api_key}, json={}
    ).json()["key"]
    agent = client.beta.agents.create(name="builder", model="claude-sonnet-4-6", tools=[TOOLSET])
    session_id = client.beta.sessions.create(agent=agent.id, environment_id=cloud.id).id
    fake_provider.script(Reply([ToolUse("bash", {"command": "true"})]))
    say(client, session_id, "go")
    platform = {"authorization": f"Bearer {sandbox_worker_key(served.settings)}"}
    base = f"{served.base_url}/v1/environments/{cloud.id}/work"
    deadline = time.monotonic() + 10
    while httpx.get(f"{base}/stats", headers={"x-api-key": served.api_key}).json()["depth"] == 0:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    # Neither the environment's key nor an API key takes it: tools there run in sandboxes only.
    for headers in (_bearer(key), {"x-api-key": served.api_key}):
        assert httpx.get(f"{base}/poll", headers=headers, params={"block_ms": 100}).content == b"null"
    assert httpx.get(f"{served.base_url}/v1/work/poll", headers=_bearer(key)).status_code == 403
    assert httpx.get(f"{base}/poll", headers=platform).status_code == 403
    work = httpx.get(f"{served.base_url}/v1/work/poll", headers=platform, params={"block_ms": 500}).json()
    assert work["data"]["id"] == session_id and work["environment"]["config"]["type"] == "cloud"
