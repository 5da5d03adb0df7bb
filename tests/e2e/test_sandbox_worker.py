"""Cloud environments' built-in tools run by `agentry sandbox-worker`: the official SDK's
worker in each session's bubblewrap sandbox, its results recorded as ``agent.tool_result``."""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import pytest

from tests.support.fake_provider import API_KEY as PROVIDER_KEY
from tests.support.fake_provider import FakeProvider, Reply, Text, ToolUse
from tests.support.postgres import database_of
from tests.support.sandbox import sessions_root
from tests.support.sandbox_worker_process import SANDBOX_WORKER_KEY, sandbox_worker
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
        "sandbox_worker_key": SANDBOX_WORKER_KEY,
        "work_lease_seconds": 6.0,
        "worker_timeout_seconds": 30.0,
    }
    with running_server(tmp_path / "data", database_url, **settings) as running:
        yield running


@pytest.fixture
def sandboxes() -> Iterator[Path]:
    # Outside the test's tmp folder: every parent of a sandbox must be searchable by its uid.
    with sessions_root() as root:
        yield root


def _cloud_session(client: anthropic.Anthropic, tools: list[dict[str, Any]], **config: Any) -> str:
    environment = client.beta.environments.create(name="cloud", config={"type": "cloud", **config})
    agent = client.beta.agents.create(name="builder", model="claude-sonnet-4-6", tools=tools)
    return client.beta.sessions.create(agent=agent.id, environment_id=environment.id).id


def _results(events: list[Any]) -> dict[str, Any]:
    return {e.tool_use_id: e for e in events if e.type in ("user.tool_result", "agent.tool_result")}


def test_a_cloud_session_writes_runs_and_reads_a_file_in_its_sandbox(
    served: RunningServer, fake_provider: FakeProvider, sandboxes: Path
) -> None:
    client = sdk_client(served)
    session_id = _cloud_session(client, [TOOLSET])
    fake_provider.script(
        Reply([ToolUse("write", {"file_path": "/workspace/hello.sh", "content": "echo hello from $(id -u)\n"})]),
        Reply([ToolUse("bash", {"command": "bash /workspace/hello.sh; cat /etc/shadow"})]),
        Reply([ToolUse("read", {"file_path": "/workspace/hello.sh"})]),
        Reply([Text("All done.")]),
        Reply([ToolUse("bash", {"command": "cat /workspace/hello.sh"})]),
        Reply([Text("Still there.")]),
    )
    with sandbox_worker(served.base_url, sandboxes) as worker:
        say(client, session_id, "write a script, run it, read it back")
        events = wait_for(client, session_id, idles(1), timeout=90)
        assert events[-1].stop_reason.type == "end_turn", worker.output
        uses = [e for e in events if e.type == "agent.tool_use"]
        assert [use.name for use in uses] == ["write", "bash", "read"]
        results = _results(events)
        assert set(results) == {use.id for use in uses}
        # The platform ran them: agent.tool_result, never user.tool_result.
        assert all(result.type == "agent.tool_result" for result in results.values())
        ran = results[uses[1].id].content[0].text
        assert "hello from" in ran, worker.output
        assert "hello from" in ran and "hello from 0" not in ran  # not root inside
        assert "Permission denied" in ran  # /etc/shadow stays closed
        assert "echo hello" in results[uses[2].id].content[0].text
        # The next turn finds the workspace as it was, and earlier calls are not run again.
        say(client, session_id, "is it still there?")
        events = wait_for(client, session_id, idles(2), timeout=90)
        assert events[-1].stop_reason.type == "end_turn", worker.output
    last = [e for e in events if e.type == "agent.tool_use"][-1]
    assert "echo hello" in _results(events)[last.id].content[0].text
    assert len(_results(events)) == 4


@pytest.mark.parametrize("answer", ["allow", "deny"])
def test_always_ask_on_a_cloud_environment(
    served: RunningServer, fake_provider: FakeProvider, sandboxes: Path, answer: str
) -> None:
    client = sdk_client(served)
    session_id = _cloud_session(client, [ASKING_TOOLSET])
    fake_provider.script(Reply([ToolUse("bash", {"command": "echo ran"})]), Reply([Text("Done.")]))
    with sandbox_worker(served.base_url, sandboxes) as worker:
        say(client, session_id, "run it")
        events = wait_for(client, session_id, idles(1), timeout=60)
        use = next(e for e in events if e.type == "agent.tool_use")
        assert events[-1].stop_reason.type == "requires_action"
        client.beta.sessions.events.send(
            session_id, events=[{"type": "user.tool_confirmation", "tool_use_id": use.id, "result": answer}]
        )
        events = wait_for(client, session_id, idles(2), timeout=60)
        assert events[-1].stop_reason.type == "end_turn", worker.output
    result = _results(events)[use.id]
    assert result.type == "agent.tool_result"
    if answer == "allow":
        assert not result.is_error and result.content[0].text.strip() == "ran"
    else:
        assert result.is_error and result.content[0].text.startswith("Denied")


def test_packages_a_worker_cannot_install_end_the_start_in_a_session_error(
    served: RunningServer, fake_provider: FakeProvider, sandboxes: Path
) -> None:
    client = sdk_client(served)
    session_id = _cloud_session(
        client, [TOOLSET], packages={"type": "packages", "apt": ["agentry-no-such-package"]}
    )
    fake_provider.script(Reply([ToolUse("bash", {"command": "true"})]), Reply([Text("Could not run it.")]))
    with sandbox_worker(served.base_url, sandboxes) as worker:
        say(client, session_id, "run it")
        events = wait_for(client, session_id, idles(1), timeout=60)
        assert events[-1].stop_reason.type == "end_turn", worker.output
    error = next(e for e in events if e.type == "session.error")
    assert "apt" in error.error.message and "agentry-no-such-package" in error.error.message
    result = next(iter(_results(events).values()))
    assert result.is_error and "apt" in result.content[0].text



def test_one_sandbox_worker_serves_eight_sessions_at_once(
    request: pytest.FixtureRequest, tmp_path: Path, fake_provider: FakeProvider, sandboxes: Path
) -> None:
    settings: dict[str, Any] = {
        "anthropic_api_key": PROVIDER_KEY,
        "anthropic_base_url": fake_provider.anthropic_base_url,
        "sandbox_worker_key": SANDBOX_WORKER_KEY,
    }
    with running_server(tmp_path / "data", **settings) as served:
        client = sdk_client(served)
        environment = client.beta.environments.create(name="cloud")
        key = httpx.post(
            f"{served.base_url}/v1/environments/{environment.id}/keys", headers={"x-api-key": served.api_key}, json={}
        ).json()["key"]
        agent = client.beta.agents.create(name="sleeper", model="claude-sonnet-4-6", tools=[TOOLSET])
        sessions = [client.beta.sessions.create(agent=agent.id, environment_id=environment.id).id for _ in range(8)]
        # Each session's command holds its slot until every session's command is running.
        fake_provider.script(*[Reply([ToolUse("bash", {"command": "sleep 6; echo rested"})]) for _ in sessions])
        fake_provider.script(*[Reply([Text("Rested.")]) for _ in sessions])
        with sandbox_worker(served.base_url, sandboxes, slots=8) as worker:
            for session_id in sessions:
                say(client, session_id, "rest")
            most_active = 0
            deadline = time.monotonic() + 60
            while most_active < 8 and time.monotonic() < deadline:
                items = httpx.get(
                    f"{served.base_url}/v1/environments/{environment.id}/work",
                    headers={"authorization": f"Bearer {key}"}, params={"limit": 50},
                ).json()["data"]
                most_active = max(most_active, sum(item["state"] == "active" for item in items))
                time.sleep(0.2)
            assert most_active == 8, worker.output
            for session_id in sessions:
                events = wait_for(client, session_id, idles(1), timeout=60)
                result = next(e for e in events if e.type == "agent.tool_result")
                assert result.content[0].text.strip() == "rested"


def test_processes_a_session_started_are_gone_once_it_stops(
    served: RunningServer, fake_provider: FakeProvider, sandboxes: Path
) -> None:
    client = sdk_client(served)
    session_id = _cloud_session(client, [TOOLSET])
    seconds = str(random.randint(700_000, 799_999))  # a command line no other process runs
    marker = f"sleep {seconds}"
    fake_provider.script(
        Reply([ToolUse("bash", {"command": f"(trap '' TERM; nohup sleep {seconds} >/dev/null 2>&1 &); echo started"})]),
        Reply([Text("Left it running.")]),
    )
    with sandbox_worker(served.base_url, sandboxes) as worker:
        say(client, session_id, "start something")
        events = wait_for(client, session_id, idles(1), timeout=60)
        assert events[-1].stop_reason.type == "end_turn", worker.output
        assert _running(marker), "the background process never started"
        deadline = time.monotonic() + 30
        while _running(marker):
            assert time.monotonic() < deadline, "a process of a stopped session outlived it:\n" + worker.output
            time.sleep(0.2)


def _running(command_line: str) -> bool:
    import subprocess

    return subprocess.run(["pgrep", "-f", f"^{command_line}$"], capture_output=True).returncode == 0
