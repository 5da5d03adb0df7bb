"""SIGKILL of `agentry serve` under concurrent appends (group commit at work): every append
the server acknowledged is in the log after a restart, each session's log in order."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.postgres import free_port
from tests.support.serve_process import start_serve
from tests.support.server import API_KEY_SECRET, ROOT_SECRET

KEY = "agentry-crash-append-key-0123456789-abcdef"
SESSIONS = 4
WRITERS = 8
ACKNOWLEDGED_BEFORE_KILL = 200


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_sigkill_under_concurrent_appends_loses_nothing_acknowledged(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    env = {
        **os.environ,
        "AGENTRY_DATA_DIR": str(tmp_path),
        "AGENTRY_BOOTSTRAP_API_KEY": KEY,
        "AGENTRY_PORT": str(free_port()),
        "AGENTRY_LOG_LEVEL": "warning",
        "AGENTRY_RATE_LIMIT_WORKSPACE_RPM": "0",
        "AGENTRY_RATE_LIMIT_CALLER_RPM": "0",
    }
    env.pop("AGENTRY_DATABASE_URL", None)
    if backend == "postgres":
        env["AGENTRY_DATABASE_URL"] = request.getfixturevalue("postgres_url")
        env["AGENTRY_API_KEY_SECRET"] = API_KEY_SECRET
        env["AGENTRY_ROOT_SECRET"] = ROOT_SECRET
    server, base = start_serve(env)
    acknowledged: list[tuple[str, str]] = []
    enough = threading.Event()
    try:
        with httpx.Client(base_url=base, headers={"x-api-key": KEY}, timeout=30) as http:
            agent = http.post("/v1/agents", json={"name": "a", "model": "m"}).json()["id"]
            environment = http.post("/v1/environments", json={"name": "e"}).json()["id"]
            sessions = [
                http.post("/v1/sessions", json={"agent": agent, "environment_id": environment}).json()["id"]
                for _ in range(SESSIONS)
            ]

        def write(session_id: str) -> None:
            with httpx.Client(base_url=base, headers={"x-api-key": KEY}, timeout=30) as client:
                while True:
                    try:
                        sent = client.post(f"/v1/sessions/{session_id}/events", json={"events": [{"type": "user.interrupt"}]})
                    except httpx.TransportError:
                        return  # the server is gone
                    if sent.status_code == 202:
                        acknowledged.extend((session_id, event["id"]) for event in sent.json()["data"])
                        if len(acknowledged) >= ACKNOWLEDGED_BEFORE_KILL:
                            enough.set()
                    elif sent.status_code != 409:
                        raise AssertionError(f"{sent.status_code}: {sent.text}")

        writers = [threading.Thread(target=write, args=(sessions[n % SESSIONS],)) for n in range(WRITERS)]
        for thread in writers:
            thread.start()
        enough.wait(120)
        server.send_signal(signal.SIGKILL)  # mid-load: saves are queued and in flight
        server.wait(30)
        for thread in writers:
            thread.join(60)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    assert len(acknowledged) >= ACKNOWLEDGED_BEFORE_KILL

    server, base = start_serve(env)
    try:
        with httpx.Client(base_url=base, headers={"x-api-key": KEY}, timeout=30) as http:
            logged: dict[str, list[dict[str, Any]]] = {}
            for session_id in sessions:
                events: list[dict[str, Any]] = []
                page: str | None = None
                while True:
                    params = {"limit": 1000, **({"page": page} if page else {})}
                    listed = http.get(f"/v1/sessions/{session_id}/events", params=params).json()
                    events.extend(listed["data"])
                    page = listed.get("next_page")
                    if not page:
                        break
                logged[session_id] = events
    finally:
        server.terminate()
        server.wait(30)
    recorded = {(session_id, event["id"]) for session_id, events in logged.items() for event in events}
    lost = [pair for pair in acknowledged if pair not in recorded]
    assert not lost, f"{len(lost)} acknowledged appends are not in the log"
    for events in logged.values():
        seqs = [event["seq"] for event in events]
        assert seqs == sorted(set(seqs)), "a session's log is out of order or repeats a position"
