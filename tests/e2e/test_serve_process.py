"""`agentry serve` as an operator runs it: a real process, stopped with SIGTERM."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import httpx

from infra.sandbox.area import unmount_and_remove
from tests.support.fake_provider import API_KEY as PROVIDER_KEY
from tests.support.fake_provider import FakeProvider, Reply, Text, ToolUse
from tests.support.postgres import free_port
from tests.support.serve_process import start_serve

KEY = "agentry-serve-process-test-key-0123456789"


def test_sigterm_ends_open_streams_and_closes_the_platform(tmp_path: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "AGENTRY_DATA_DIR": str(tmp_path),
        "AGENTRY_BOOTSTRAP_API_KEY": KEY,
        "AGENTRY_PORT": str(port),
        "AGENTRY_LOG_LEVEL": "info",
    }
    env.pop("AGENTRY_DATABASE_URL", None)
    server, base = start_serve(env)
    try:
        http = httpx.Client(base_url=base, headers={"x-api-key": KEY}, timeout=30)
        agent = http.post("/v1/agents", json={"name": "a", "model": "m"}).json()
        env_ = http.post("/v1/environments", json={"name": "e"}).json()
        session = http.post("/v1/sessions", json={"agent": agent["id"], "environment_id": env_["id"]}).json()

        outcomes: list[str] = []

        def follow(path: str) -> None:
            try:
                with http.stream("GET", path) as stream:
                    for _ in stream.iter_lines():
                        pass
                outcomes.append("ended")
            except httpx.HTTPError as error:
                outcomes.append(type(error).__name__)

        paths = [f"/v1/sessions/{session['id']}/events/stream"] * 3 + ["/v1/notifications/stream"]
        streams = [threading.Thread(target=follow, args=(path,)) for path in paths]
        for thread in streams:
            thread.start()
        time.sleep(1)  # the streams are open and idle

        started = time.monotonic()
        server.send_signal(signal.SIGTERM)
        output, _ = server.communicate(timeout=15)
        stopped_after = time.monotonic() - started
        for thread in streams:
            thread.join(timeout=5)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()

    assert server.returncode == 0, output
    assert stopped_after < 5, f"shutdown waited {stopped_after:.1f}s on open streams"
    assert outcomes == ["ended"] * 4, "streams were cut off instead of ended"
    assert "agentry stopped cleanly" in output
    assert KEY not in output


def test_serve_runs_cloud_tools_in_its_sandbox_worker_children(tmp_path: Path, fake_provider: FakeProvider) -> None:
    port = free_port()
    env = {
        **os.environ,
        "AGENTRY_DATA_DIR": str(tmp_path),
        "AGENTRY_BOOTSTRAP_API_KEY": KEY,
        "AGENTRY_PORT": str(port),
        "AGENTRY_ANTHROPIC_API_KEY": PROVIDER_KEY,
        "AGENTRY_ANTHROPIC_BASE_URL": fake_provider.anthropic_base_url,
        "AGENTRY_SANDBOX_ROOT": str(Path("/tmp") / f"agentry-serve-sandboxes-{port}"),
    }
    env.pop("AGENTRY_DATABASE_URL", None)
    fake_provider.script(Reply([ToolUse("bash", {"command": "echo from the sandbox"})]), Reply([Text("Done.")]))
    server, base = start_serve(env)
    try:
        http = httpx.Client(base_url=base, headers={"x-api-key": KEY}, timeout=30)
        agent = http.post("/v1/agents", json={"name": "a", "model": "m", "tools": [{"type": "agent_toolset_20260401"}]}).json()
        cloud = http.post("/v1/environments", json={"name": "e"}).json()
        session = http.post("/v1/sessions", json={"agent": agent["id"], "environment_id": cloud["id"]}).json()
        http.post(
            f"/v1/sessions/{session['id']}/events",
            json={"events": [{"type": "user.message", "content": [{"type": "text", "text": "go"}]}]},
        )
        deadline = time.monotonic() + 60
        while True:
            events = http.get(f"/v1/sessions/{session['id']}/events", params={"limit": 1000}).json()["data"]
            if events[-1]["type"] == "session.status_idle":
                break
            assert time.monotonic() < deadline, [e["type"] for e in events]
            time.sleep(0.1)
        result = next(e for e in events if e["type"] == "agent.tool_result")
        assert not result["is_error"] and result["content"][0]["text"].strip() == "from the sandbox"
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(30)
        unmount_and_remove(Path(env["AGENTRY_SANDBOX_ROOT"]))
