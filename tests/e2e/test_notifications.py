"""Notifications and the dashboard on a real server (SQLite and PostgreSQL): a task executed on
the fake provider notifies the workspace when done or awaiting approval, a failed turn does
too; mentions reach only the person mentioned; each caller reads (one, all) for themselves;
the live stream sends new ones and replays after ``Last-Event-ID``; a rebuild yields exactly
the live notifications; another workspace sees none of it."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import orjson
import pytest

from domain.ids import stream_id
from domain.tasks import Task
from tests.support.fake_provider import FakeProvider, Reply, Text, bad_key
from tests.support.server import RunningServer

MODEL = "claude-sonnet-4-6"
PASSWORD = "a-long-enough-password"


def _post(http: httpx.Client, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    response = http.post(path, json=body or {})
    assert response.status_code == 200, response.text
    return response.json()


def _eventually(probe: Callable[[], Any], timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = probe()
        if found:
            return found
        assert time.monotonic() < deadline, "gave up waiting"
        time.sleep(0.05)


def _notifications(http: httpx.Client, **params: Any) -> list[dict[str, Any]]:
    response = http.get("/v1/notifications", params={"limit": 100, **params})
    assert response.status_code == 200, response.text
    return list(response.json()["data"])


def _unread(http: httpx.Client) -> int:
    response = http.get("/v1/notifications/unread_count")
    assert response.status_code == 200, response.text
    return int(response.json()["unread_count"])


def _task_done(http: httpx.Client, title: str) -> dict[str, Any]:
    task = _post(http, "/v1/tasks", {"title": title})
    return _post(http, f"/v1/tasks/{task['id']}", {"status": "done"})


def _client(server: RunningServer, key: str) -> httpx.Client:
    return httpx.Client(base_url=server.base_url, headers={"x-api-key": key}, timeout=20)


def test_task_runs_and_failed_turns_notify_the_workspace(
    server: RunningServer, http: httpx.Client, fake_provider: FakeProvider
) -> None:
    fake_provider.script(Reply([Text("Paid.")]), Reply([Text("Draft: five tools.")]), bad_key())
    agent = _post(http, "/v1/agents", {"name": "Sierra", "model": MODEL})
    paid = _post(http, "/v1/tasks", {"title": "Pay the invoices", "assigned_agent_id": agent["id"]})
    _post(http, f"/v1/tasks/{paid['id']}/execute")
    done = _eventually(lambda: [n for n in _notifications(http) if n["kind"] == "task_done"])
    post = _post(http, "/v1/tasks", {"title": "Blog post", "assigned_agent_id": agent["id"], "requires_approval": True})
    run = _post(http, f"/v1/tasks/{post['id']}/execute")
    awaited = _eventually(lambda: [n for n in _notifications(http) if n["kind"] == "approval_awaited"])
    assert http.get(f"/v1/tasks/{post['id']}").json()["status"] == "review"

    assert done[0]["task_id"] == paid["id"] and done[0]["title"] == "Task “Pay the invoices” is done"
    assert done[0]["message"] == "Paid." and done[0]["recipient"] == {"type": "workspace"}
    assert awaited[0]["task_id"] == post["id"] and awaited[0]["message"] == "Draft: five tools."
    assert awaited[0]["title"] == "Task “Blog post” awaits approval"

    session = _post(http, "/v1/sessions", {"agent": agent["id"], "environment_id": run["environment_id"], "title": "Doomed"})
    message = {"type": "user.message", "content": [{"type": "text", "text": "hi"}]}
    assert http.post(f"/v1/sessions/{session['id']}/events", json={"events": [message]}).status_code == 202
    failed = _eventually(lambda: [n for n in _notifications(http) if n["kind"] == "session_error"])
    assert failed[0]["session_id"] == session["id"] and failed[0]["title"] == "Session “Doomed” failed"
    assert failed[0]["error_type"] and failed[0]["message"]

    listed = _notifications(http)
    assert [n["kind"] for n in listed] == ["session_error", "approval_awaited", "task_done"]
    assert [n["position"] for n in listed] == sorted((n["position"] for n in listed), reverse=True)
    assert _unread(http) == 3 and all(n["read"] is False for n in listed)
    assert http.get(f"/v1/notifications/{done[0]['id']}").json() == done[0]


def test_each_caller_marks_read_for_themselves_and_a_rebuild_yields_the_same_notifications(
    server: RunningServer, http: httpx.Client
) -> None:
    member_key = _post(http, "/v1/organizations/api_keys", {"name": "member", "role": "member"})["key"]
    for title in ("one", "two", "three"):
        _task_done(http, title)
    three, two, one = _notifications(http)
    assert [n["title"] for n in (one, two, three)] == ["Task “one” is done", "Task “two” is done", "Task “three” is done"]

    marked = http.post(f"/v1/notifications/{one['id']}/read")
    assert marked.status_code == 200 and marked.json() == {**one, "read": True}
    again = http.patch(f"/v1/notifications/{one['id']}/read")  # Mission Control's verb; read already
    assert again.status_code == 200 and again.json()["read"] is True
    assert _unread(http) == 2
    assert [n["id"] for n in _notifications(http, read="true")] == [one["id"]]
    assert [n["id"] for n in _notifications(http, read="false")] == [three["id"], two["id"]]
    first = http.get("/v1/notifications", params={"limit": 2}).json()
    assert [n["id"] for n in first["data"]] == [three["id"], two["id"]] and first["next_page"]
    rest = http.get("/v1/notifications", params={"limit": 2, "page": first["next_page"]}).json()
    assert [n["id"] for n in rest["data"]] == [one["id"]] and rest["data"][0]["read"] is True
    oldest_first = _notifications(http, order="asc")
    assert [n["id"] for n in oldest_first] == [one["id"], two["id"], three["id"]]

    with _client(server, member_key) as member:
        assert _unread(member) == 3, "another key's marks are its own"
        upto = _post(member, "/v1/notifications/read_all", {"up_to": two["position"]})
        assert upto == {"type": "notifications_read", "up_to": two["position"], "unread_count": 1}
        assert [n["id"] for n in _notifications(member, read="false")] == [three["id"]]
    assert _unread(http) == 2

    everything = _post(http, "/v1/notifications/read_all")
    assert everything == {"type": "notifications_read", "up_to": three["position"], "unread_count": 0}
    four = _task_done(http, "four")
    assert [n["task_id"] for n in _notifications(http, read="false")] == [four["id"]]
    assert _unread(http) == 1

    for path, body in (("/v1/notifications/ntf_000000000000000000000000/read", None), ("/v1/notifications/read_all", {"up_to": -1})):
        refused = http.post(path, json=body)
        assert refused.status_code in (400, 404) and refused.json()["type"] == "error", refused.text
    assert http.get("/v1/notifications", params={"read": "maybe"}).status_code == 400

    with _client(server, member_key) as member:
        before = (_notifications(http), _notifications(member), _unread(http), _unread(member))
        server.platform.projections.rebuild("notifications")
        assert (_notifications(http), _notifications(member), _unread(http), _unread(member)) == before


def _person(server: RunningServer, http: httpx.Client, email: str) -> tuple[str, httpx.Client]:
    invite = _post(http, "/v1/organizations/invites", {"email": email, "role": "user"})
    user = http.post("/v1/auth/invites/accept", json={"token": invite["token"], "password": PASSWORD}, headers={"x-api-key": ""})
    assert user.status_code == 200, user.text
    login = http.post("/v1/auth/login", json={"email": email, "password": PASSWORD}, headers={"x-api-key": ""})
    assert login.status_code == 200, login.text
    token = login.json()["access_token"]
    return user.json()["id"], httpx.Client(base_url=server.base_url, headers={"authorization": f"Bearer {token}"}, timeout=20)


def _comment(server: RunningServer, task_id: str, author: dict[str, Any], mentions: list[dict[str, Any]]) -> None:
    """The comment command is built elsewhere: the event it records, saved straight to the store."""
    store = server.platform.store
    task = store.load(stream_id(task_id))
    task.trigger_event(
        Task.Commented, comment_id="cmt_0123456789abcdef", author=author, content="@Bo please check", mentions=mentions,
        reply_to=None,
    )  # fmt: skip
    store.save(task)


def test_a_mention_reaches_only_the_person_mentioned(server: RunningServer, http: httpx.Client) -> None:
    bo_id, bo = _person(server, http, "bo@example.com")
    cy_id, cy = _person(server, http, "cy@example.com")
    with bo, cy:
        task = _task_done(http, "Quarterly report")
        mentions = [{"type": "user", "id": bo_id, "name": "Bo"}, {"type": "agent", "id": "agent_0123456789abcdef", "name": "A"}]
        _comment(server, task["id"], {"type": "user", "id": cy_id}, mentions)
        mention = _eventually(lambda: [n for n in _notifications(bo) if n["kind"] == "mention"])[0]
        assert mention["recipient"] == {"type": "user", "id": bo_id} and mention["actor"] == {"type": "user", "id": cy_id}
        assert mention["task_id"] == task["id"] and mention["message"] == "@Bo please check"
        assert [n["kind"] for n in _notifications(bo)] == ["mention", "task_done"], "Bo's own and the workspace's"
        assert [n["kind"] for n in _notifications(cy)] == ["task_done"]
        assert [n["kind"] for n in _notifications(http)] == ["task_done"], "an API key sees the workspace's"
        for other in (cy, http):
            assert other.get(f"/v1/notifications/{mention['id']}").status_code == 404
            assert other.post(f"/v1/notifications/{mention['id']}/read").status_code == 404
        assert _unread(bo) == 2
        assert bo.post(f"/v1/notifications/{mention['id']}/read").json()["read"] is True
        assert _unread(bo) == 1 and _unread(cy) == 1


class Frames:
    """The frames of one SSE response, read as they come."""

    def __init__(self, response: httpx.Response) -> None:
        self._lines = response.iter_lines()

    def next(self) -> tuple[str, dict[str, Any]]:
        frame: dict[str, str] = {}
        for line in self._lines:
            if line == "":
                if "data" in frame:
                    assert frame["event"] == "notification"
                    return frame["id"], orjson.loads(frame["data"])
                frame = {}
                continue
            if line.startswith(":"):
                continue  # a keep-alive
            name, _, value = line.partition(": ")
            frame[name] = value
        raise AssertionError("the stream ended")


@pytest.fixture
def streamed(server: RunningServer) -> Iterator[Callable[..., Any]]:
    client = httpx.Client(base_url=server.base_url, headers={"x-api-key": server.api_key}, timeout=httpx.Timeout(20, read=5))

    def open_stream(**options: Any) -> Any:
        return client.stream("GET", "/v1/notifications/stream", **options)

    yield open_stream
    client.close()


def test_the_stream_sends_new_notifications_live_and_replays_after_last_event_id(
    server: RunningServer, http: httpx.Client, streamed: Callable[..., Any]
) -> None:
    before = _task_done(http, "before the stream")
    with streamed() as response:
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
        frames = Frames(response)
        live = _task_done(http, "while streaming")
        first_id, first = frames.next()  # not the one made before the stream opened: it starts live
        assert first["task_id"] == live["id"] and first_id == str(first["position"]) and first["read"] is False
        assert server.platform.services.notification_feed.follower_count() == 1
    _eventually(lambda: server.platform.services.notification_feed.follower_count() == 0)

    missed = [_task_done(http, f"missed {i}") for i in range(3)]
    with streamed(headers={"Last-Event-ID": first_id}) as response:
        frames = Frames(response)
        replayed = [frames.next() for _ in missed]
        assert [doc["task_id"] for _, doc in replayed] == [task["id"] for task in missed]
        assert [int(id_) for id_, _ in replayed] == sorted(int(id_) for id_, _ in replayed)
        more = _task_done(http, "after the replay")
        assert frames.next()[1]["task_id"] == more["id"], "then live, with no gap"
    with streamed(params={"after": 0, "max_seconds": 1}) as response:
        frames = Frames(response)
        assert frames.next()[1]["title"] == f"Task “{before['title']}” is done", "from the start"
        for _ in range(5):
            frames.next()
        with pytest.raises(AssertionError, match="ended"):
            frames.next()  # max_seconds ends it
    with streamed(params={"after": replayed[-1][0], "max_seconds": 0}) as response:
        frames = Frames(response)
        assert frames.next()[1]["task_id"] == more["id"]
        with pytest.raises(AssertionError, match="ended"):
            frames.next()  # 0: what is there, then the end
    for bad in ({"headers": {"Last-Event-ID": "not-a-number"}}, {"params": {"max_seconds": -1}}, {"params": {"after": "x"}}):
        with streamed(**bad) as response:
            assert response.status_code == 400


def test_the_dashboard_counts_the_workspace_and_no_other(server: RunningServer, http: httpx.Client) -> None:
    agent = _post(http, "/v1/agents", {"name": "a", "model": MODEL})
    _post(http, f"/v1/agents/{_post(http, '/v1/agents', {'name': 'b', 'model': MODEL})['id']}/archive")
    environment = _post(http, "/v1/environments", {"name": "e"})
    _post(http, "/v1/sessions", {"agent": agent["id"], "environment_id": environment["id"]})
    for status in ("todo", "done", "cancelled", "review"):
        _post(http, "/v1/tasks", {"title": status, "status": status})
    _task_done(http, "finished")
    archived = _post(http, "/v1/tasks", {"title": "filed away"})
    _post(http, f"/v1/tasks/{archived['id']}/archive")

    stats = http.get("/v1/dashboard/stats").json()
    assert stats["agents"] == {"total": 2, "live": 1, "archived": 1}
    tasks = stats["tasks"]
    assert tasks["total"] == 6 and tasks["archived"] == 1 and tasks["completed"] == 2
    assert tasks["by_status"] == {
        "todo": 2, "in_progress": 0, "review": 1, "approved": 0, "rejected": 0, "done": 2, "cancelled": 1,
    }  # fmt: skip
    assert tasks["completion_rate"] == 0.4  # 2 of the 5 not cancelled
    assert stats["sessions"]["total"] == 1 and stats["sessions"]["by_status"]["idle"] == 1 and stats["sessions"]["running"] == 0

    workspace = _post(http, "/v1/organizations/workspaces", {"name": "elsewhere"})
    key = _post(http, "/v1/organizations/api_keys", {"name": "w", "workspace_id": workspace["id"], "role": "admin"})["key"]
    with _client(server, key) as other:
        empty = other.get("/v1/dashboard/stats").json()
        assert empty["agents"]["total"] == 0 and empty["tasks"]["total"] == 0 and empty["tasks"]["completion_rate"] is None
        assert empty["sessions"]["total"] == 0
        assert _notifications(other) == [] and _unread(other) == 0
        assert _post(other, "/v1/notifications/read_all") == {"type": "notifications_read", "up_to": 0, "unread_count": 0}
    # Created done or in review notifies too: done, review, finished.
    assert _unread(http) == 3, "the other workspace's read all left this one's alone"
