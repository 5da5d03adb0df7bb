"""A task run end to end on a real server with the fake model provider (SQLite and
PostgreSQL): executed, reviewed, rejected with feedback, revised, approved — each step in the
task and in its session's log."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.fake_provider import API_KEY as PROVIDER_KEY
from tests.support.fake_provider import FakeProvider, Reply, Text
from tests.support.postgres import free_port
from tests.support.serve_process import start_serve
from tests.support.server import RunningServer

CRASH_KEY = "agentry-task-crash-test-key-0123456789"

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
    # The whole story is in the activity feed, oldest first.
    feed = http.get("/v1/activity", params={"entity_id": task["id"], "order": "asc", "limit": 100}).json()["data"]
    assert [entry["action"] for entry in feed] == [
        "task.created", "task.executed", "task.status_changed", "task.result_recorded", "task.status_changed",
        "task.rejected", "task.status_changed", "task.result_recorded", "task.status_changed",
        "task.approved", "task.status_changed",
    ]  # fmt: skip
    approval = feed[-2]
    assert approval["actor"]["type"] == "api_key" and approval["entity_type"] == "task"
    # Each time it waited for a verdict, the workspace was told.
    notified = http.get("/v1/notifications", params={"limit": 100}).json()["data"]
    awaited = [n for n in notified if n["task_id"] == task["id"] and n["kind"] == "approval_awaited"]
    assert len(awaited) == 2 and not any(n["read"] for n in awaited), notified


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


@pytest.mark.parametrize("when", ["before", "after"])
def test_a_crash_around_the_tasks_move_moves_it_exactly_once(tmp_path: Path, fake_provider: FakeProvider, when: str) -> None:
    """SIGKILL between the session going idle and the task moving (``before``), or after the
    task moved but before the follower kept its position (``after``): once restarted, the
    task has moved exactly once."""
    env = {
        **os.environ,
        "AGENTRY_DATA_DIR": str(tmp_path),
        "AGENTRY_BOOTSTRAP_API_KEY": CRASH_KEY,
        "AGENTRY_PORT": str(free_port()),
        "AGENTRY_ANTHROPIC_API_KEY": PROVIDER_KEY,
        "AGENTRY_ANTHROPIC_BASE_URL": fake_provider.anthropic_base_url,
    }
    env.pop("AGENTRY_DATABASE_URL", None)
    fake_provider.script(Reply([Text("Done once.")]))
    server, base = start_serve({**env, "AGENTRY_FAULT_INJECTION": f"task_result:{when}"})
    try:
        with httpx.Client(base_url=base, headers={"x-api-key": CRASH_KEY}, timeout=30) as http:
            agent = _post(http, "/v1/agents", {"name": "a", "model": MODEL})
            task = _post(http, "/v1/tasks", {"title": "Once", "assigned_agent_id": agent["id"]})
            _post(http, f"/v1/tasks/{task['id']}/execute")
        assert server.wait(60) == -signal.SIGKILL, "the fault was meant to kill the server"
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    server, base = start_serve(env)
    try:
        with httpx.Client(base_url=base, headers={"x-api-key": CRASH_KEY}, timeout=30) as http:
            done = _task_when(http, task["id"], "done")
            # Created, Executed, in progress, ResultRecorded, done: a second record would be a 6th.
            assert done["result"] == "Done once." and done["version"] == 5, done
            time.sleep(1)  # the follower has caught up long since; nothing more arrives
            assert http.get(f"/v1/tasks/{task['id']}").json()["version"] == 5
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(30)
    assert len(fake_provider.requests) == 1, "the turn itself ran once"


def _comments_when(http: httpx.Client, task_id: str, count: int, timeout: float = 20.0) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        comments = http.get(f"/v1/tasks/{task_id}/comments").json()["data"]
        if len(comments) >= count:
            return comments
        assert time.monotonic() < deadline, f"{len(comments)} comments, wanted {count}: {comments}"
        time.sleep(0.05)


def test_mentions_resolve_and_a_mentioned_agent_replies_in_the_thread(http: httpx.Client, fake_provider: FakeProvider) -> None:
    fake_provider.script(Reply([Text("Pricing section added below.")]))
    sierra = _post(http, "/v1/agents", {"name": "Sierra", "model": MODEL})
    _post(http, "/v1/agents", {"name": "Sierra Two", "model": MODEL})  # @Sierra is its first word too
    retired = _post(http, "/v1/agents", {"name": "Retired", "model": MODEL})
    assert http.post(f"/v1/agents/{retired['id']}/archive").status_code == 200
    invite = _post(http, "/v1/organizations/invites", {"email": "kim.lee@example.com", "role": "user"})
    kim = _post(http, "/v1/auth/invites/accept", {"token": invite["token"], "password": "kim-password-1", "name": "Kim Lee"})
    task = _post(http, "/v1/tasks", {"title": "Blog post", "description": "Top 5 AI tools"})

    comment = _post(http, f"/v1/tasks/{task['id']}/comments", {"content": "Great work @SierraTwo! @kim.lee, @Retired and @nobody: see this."})
    assert comment["type"] == "task_comment" and comment["author"]["type"] == "api_key" and comment["reply_to"] is None
    assert [(m["type"], m["name"]) for m in comment["mentions"]] == [("agent", "Sierra Two"), ("user", "Kim Lee")]
    assert comment["mentions"][1]["id"] == kim["id"]
    thread = _comments_when(http, task["id"], 2)
    assert thread[0] == comment
    reply = thread[1]
    assert reply["author"]["type"] == "agent" and reply["author"]["id"] != sierra["id"]
    assert reply["content"] == "Pricing section added below." and reply["reply_to"] == comment["id"]
    asked = fake_provider.requests[0].body["messages"][0]["content"]
    assert "Great work @SierraTwo!" in str(asked) and "Blog post" in str(asked)
    time.sleep(0.5)
    assert len(http.get(f"/v1/tasks/{task['id']}/comments").json()["data"]) == 2  # one reply, not more

    suggested = http.get("/v1/mentions/search", params={"q": "sie"}).json()["data"]
    assert [(s["name"], s["handle"]) for s in suggested] == [("Sierra", "Sierra"), ("Sierra Two", "SierraTwo")]
    assert [s["id"] for s in http.get("/v1/mentions/search", params={"q": "@KIM"}).json()["data"]] == [kim["id"]]
    assert http.get("/v1/mentions/search", params={"q": "retired"}).json()["data"] == []
    assert http.post("/v1/tasks/task_abcdefgh12345678/comments", json={"content": "x"}).status_code == 404
    assert http.get("/v1/tasks/task_abcdefgh12345678/comments").status_code == 404
    assert http.post(f"/v1/tasks/{task['id']}/comments", json={"content": ""}).status_code == 400


def test_a_refused_run_sends_the_task_back_to_do_and_it_runs_again(http: httpx.Client, fake_provider: FakeProvider) -> None:
    fake_provider.script(Reply([Text("I can't help with that.")], stop_reason="refusal"), Reply([Text("Done after all.")]))
    agent = _post(http, "/v1/agents", {"name": "Careful", "model": MODEL})
    task = _post(http, "/v1/tasks", {"title": "Tricky", "assigned_agent_id": agent["id"]})
    first = _post(http, f"/v1/tasks/{task['id']}/execute")
    back = _task_when(http, task["id"], "todo")
    assert back["result"] is None and back["session_id"] == first["session_id"]  # no result from a refusal
    second = _post(http, f"/v1/tasks/{task['id']}/execute")  # not "already running"
    assert second["session_id"] != first["session_id"]
    assert _task_when(http, task["id"], "done")["result"] == "Done after all."


def test_review_is_left_only_by_a_reviewer_and_due_dates_stay_plausible(server: RunningServer, http: httpx.Client) -> None:
    member_key = _post(http, "/v1/organizations/api_keys", {"name": "member", "role": "member"})["key"]
    task = _post(http, "/v1/tasks", {"title": "In review", "status": "review"})
    with httpx.Client(base_url=server.base_url, headers={"x-api-key": member_key}, timeout=20) as member:
        skipped = member.patch(f"/v1/tasks/{task['id']}", json={"status": "done"})
        assert skipped.status_code == 403, skipped.text
        assert member.patch(f"/v1/tasks/{task['id']}", json={"title": "Renamed"}).status_code == 200
    assert _post(http, f"/v1/tasks/{task['id']}", {"status": "done"})["status"] == "done"  # an admin may
    for due in ("0001-01-01T00:30:00+01:00", "9999-12-31T23:59:59-05:00"):
        refused = http.post("/v1/tasks", json={"title": "x", "due_date": due})
        assert refused.status_code == 400 and "due" in refused.json()["error"]["message"], refused.text


@pytest.mark.parametrize("stop", ["cancel", "archive", "delete"])
def test_stopping_a_running_task_interrupts_its_session(http: httpx.Client, fake_provider: FakeProvider, stop: str) -> None:
    fake_provider.script(Reply([Text("Still working on it.", tokens=20)], latency=0.5, token_delay=0.2))
    agent = _post(http, "/v1/agents", {"name": "Busy", "model": MODEL})
    task = _post(http, "/v1/tasks", {"title": "Long one", "assigned_agent_id": agent["id"]})
    session_id = _post(http, f"/v1/tasks/{task['id']}/execute")["session_id"]
    if stop == "cancel":
        assert _post(http, f"/v1/tasks/{task['id']}", {"status": "cancelled"})["status"] == "cancelled"
    elif stop == "archive":
        assert _post(http, f"/v1/tasks/{task['id']}/archive")["archived_at"] is not None
    else:
        assert http.delete(f"/v1/tasks/{task['id']}").status_code == 200
    kinds = [e["type"] for e in http.get(f"/v1/sessions/{session_id}/events", params={"limit": 100}).json()["data"]]
    assert "user.interrupt" in kinds, kinds
    deadline = time.monotonic() + 20
    while http.get(f"/v1/sessions/{session_id}").json()["status"] != "idle":
        assert time.monotonic() < deadline, "the interrupted session never went idle"
        time.sleep(0.05)
