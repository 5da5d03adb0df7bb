"""A task run end to end on a real server with the fake model provider (SQLite and
PostgreSQL): executed, reviewed, rejected with feedback, revised, approved — each step in the
task and in its session's log."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from tests.support.fake_provider import FakeProvider, Reply, Text
from tests.support.server import RunningServer

MODEL = "claude-sonnet-4-6"


def _post(http: httpx.Client, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    response = http.post(path, json=body or {})
    assert response.status_code == 200, response.text
    return response.json()


def _task_when(http: httpx.Client, task_id: str, status: str, timeout: float = 20.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        task = http.get(f"/v1/tasks/{task_id}").json()
        if task["status"] == status:
            return task
        assert time.monotonic() < deadline, f"task still {task['status']}, wanted {status}: {task}"
        time.sleep(0.05)


def _texts(http: httpx.Client, session_id: str, kind: str) -> list[str]:
    events = http.get(f"/v1/sessions/{session_id}/events", params={"types[]": kind, "limit": 100}).json()["data"]
    return [block["text"] for event in events for block in event["content"] if block["type"] == "text"]


def test_a_task_is_executed_reviewed_rejected_revised_and_approved(
    server: RunningServer, http: httpx.Client, fake_provider: FakeProvider
) -> None:
    fake_provider.script(
        Reply([Text("Draft: five tools.")]),
        Reply([Text("Revised: five tools, with prices.")]),
    )
    agent = _post(http, "/v1/agents", {"name": "Sierra", "model": MODEL})
    task = _post(
        http,
        "/v1/tasks",
        {"title": "Blog post", "description": "Top 5 AI tools", "assigned_agent_id": agent["id"], "requires_approval": True},
    )
    started = _post(http, f"/v1/tasks/{task['id']}/execute")
    assert started["status"] == "in_progress" and started["session_id"].startswith("sesn_")
    assert started["environment_id"].startswith("env_default")
    session_id = started["session_id"]
    session = http.get(f"/v1/sessions/{session_id}").json()
    assert session["agent"]["id"] == agent["id"] and session["metadata"] == {"agentry_task_id": task["id"]}

    review = _task_when(http, task["id"], "review")
    assert review["result"] == "Draft: five tools."
    assert _texts(http, session_id, "user.message") == ["Blog post\n\nTop 5 AI tools"]

    rejected = http.post(f"/v1/tasks/{task['id']}/reject", json={"comment": "Add the prices."})
    assert rejected.status_code == 200, rejected.text
    assert rejected.json()["status"] == "in_progress" and rejected.json()["session_id"] == session_id
    revised = _task_when(http, task["id"], "review")
    assert revised["result"] == "Revised: five tools, with prices."
    assert _texts(http, session_id, "user.message") == ["Blog post\n\nTop 5 AI tools", "Add the prices."]

    approved = _post(http, f"/v1/tasks/{task['id']}/approve", {"comment": "Ship it."})
    assert approved["status"] == "approved" and approved["result"] == revised["result"]
    assert http.post(f"/v1/tasks/{task['id']}/approve").status_code == 400  # not in review any more
    assert [item["status"] for item in http.get("/v1/tasks").json()["data"]] == ["approved"]


def test_a_task_without_approval_is_done_and_runs_only_once_at_a_time(
    http: httpx.Client, fake_provider: FakeProvider
) -> None:
    fake_provider.script(Reply([Text("Paid.")], latency=1.0))
    agent = _post(http, "/v1/agents", {"name": "Clerk", "model": MODEL})
    environment = _post(http, "/v1/environments", {"name": "books"})
    unassigned = _post(http, "/v1/tasks", {"title": "Nobody's"})
    refused = http.post(f"/v1/tasks/{unassigned['id']}/execute")
    assert refused.status_code == 400 and "no assigned agent" in refused.json()["error"]["message"]
    task = _post(http, "/v1/tasks", {"title": "Pay the invoices", "assigned_agent_id": agent["id"]})
    started = _post(http, f"/v1/tasks/{task['id']}/execute", {"environment_id": environment["id"]})
    assert started["environment_id"] == environment["id"]
    again = http.post(f"/v1/tasks/{task['id']}/execute")
    assert again.status_code == 400 and "already running" in again.json()["error"]["message"]
    done = _task_when(http, task["id"], "done")
    assert done["result"] == "Paid." and done["session_id"] == started["session_id"]
    for verdict, body in (("approve", {}), ("reject", {"comment": "no"})):
        assert http.post(f"/v1/tasks/{task['id']}/{verdict}", json=body).status_code == 400  # not in review
    assert http.post(f"/v1/tasks/{task['id']}/reject", json={}).status_code == 400  # a comment is required
    assert http.post(f"/v1/tasks/{task['id']}/execute", json={"environment_id": "env_abcdefgh12345678"}).status_code == 404


def test_only_a_workspace_admin_reviews(server: RunningServer, http: httpx.Client) -> None:
    member_key = _post(http, "/v1/organizations/api_keys", {"name": "member", "role": "member"})["key"]
    task = _post(http, "/v1/tasks", {"title": "Review me", "status": "review"})
    with httpx.Client(base_url=server.base_url, headers={"x-api-key": member_key}, timeout=20) as member:
        for verdict, body in (("approve", {}), ("reject", {"comment": "no"})):
            refused = member.post(f"/v1/tasks/{task['id']}/{verdict}", json=body)
            assert refused.status_code == 403, refused.text
        assert member.get(f"/v1/tasks/{task['id']}").json()["status"] == "review"
    rejected = _post(http, f"/v1/tasks/{task['id']}/reject", {"comment": "never run, so rejected"})
    assert rejected["status"] == "rejected" and rejected["session_id"] is None
