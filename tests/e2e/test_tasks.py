"""Tasks, boards and departments on a real server (SQLite and PostgreSQL): the lifecycle,
optimistic edits, references that must exist, sub-tasks, and every list filter."""

from __future__ import annotations

from typing import Any

import httpx
import pytest


def _post(http: httpx.Client, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = http.post(path, json=body)
    assert response.status_code == 200, response.text
    return response.json()


def _ids(http: httpx.Client, **params: Any) -> list[str]:
    response = http.get("/v1/tasks", params=params)
    assert response.status_code == 200, response.text
    return [task["id"] for task in response.json()["data"]]


@pytest.fixture
def filed(http: httpx.Client) -> dict[str, Any]:
    """A department with a board, an agent called Sierra, and three tasks."""
    department = _post(http, "/v1/departments", {"name": "Marketing", "emoji": "📣", "sort_order": 1})
    board = _post(http, "/v1/boards", {"name": "Content", "department_id": department["id"]})
    other_board = _post(http, "/v1/boards", {"name": "Ops"})
    sierra = _post(http, "/v1/agents", {"name": "Sierra", "model": "claude-opus-4-7"})
    blog = _post(
        http,
        "/v1/tasks",
        {
            "title": "Write a blog post about AI tools",
            "description": "500 words on the top 5 productivity tools",
            "board_id": board["id"],
            "assigned_agent_id": sierra["id"],
            "priority": "high",
            "due_date": "2026-03-20T00:00:00Z",
            "tags": ["blog", "seo"],
            "requires_approval": True,
            "metadata": {"campaign": "spring"},
        },
    )
    invoice = _post(http, "/v1/tasks", {"title": "Pay the invoices", "board_id": other_board["id"], "due_date": "2026-05-01T09:00:00+02:00", "tags": ["finance"]})
    idea = _post(http, "/v1/tasks", {"title": "Ideas", "status": "in_progress"})
    return {"department": department, "board": board, "other_board": other_board, "sierra": sierra, "blog": blog, "invoice": invoice, "idea": idea}


def test_a_task_is_created_read_and_listed_with_every_field(http: httpx.Client, filed: dict[str, Any]) -> None:
    blog = filed["blog"]
    assert blog["type"] == "task" and blog["id"].startswith("task_")
    assert blog["status"] == "todo" and blog["version"] == 1 and blog["priority"] == "high"
    assert blog["due_date"] == "2026-03-20T00:00:00.000000Z" and blog["tags"] == ["blog", "seo"]
    assert blog["requires_approval"] is True and blog["assigned_agent_id"] == filed["sierra"]["id"]
    assert blog["parent_task_id"] is None and blog["archived_at"] is None
    assert http.get(f"/v1/tasks/{blog['id']}").json() == blog
    assert filed["idea"]["status"] == "in_progress" and filed["idea"]["priority"] == "medium"
    assert filed["invoice"]["due_date"] == "2026-05-01T07:00:00.000000Z"  # kept in UTC
    listed = http.get("/v1/tasks").json()
    assert [task["id"] for task in listed["data"]] == [filed["idea"]["id"], filed["invoice"]["id"], blog["id"]]
    assert listed["data"][2] == blog


def test_every_filter_narrows_the_list(http: httpx.Client, filed: dict[str, Any]) -> None:
    blog, invoice, idea = filed["blog"]["id"], filed["invoice"]["id"], filed["idea"]["id"]
    assert _ids(http, board_id=filed["board"]["id"]) == [blog]
    assert _ids(http, assigned_agent_id=filed["sierra"]["id"]) == [blog]
    assert _ids(http, status="in_progress") == [idea]
    assert _ids(http, status=["in_progress", "todo"]) == [idea, invoice, blog]
    assert _ids(http, priority="high") == [blog]
    assert _ids(http, tag="seo") == [blog]
    assert _ids(http, tag=["blog", "finance"]) == []  # every tag must be there
    assert _ids(http, due_before="2026-04-01T00:00:00Z") == [blog]
    assert _ids(http, due_after="2026-04-01T00:00:00Z") == [invoice]
    assert _ids(http, q="PRODUCTIVITY") == [blog]  # the description, any case
    assert _ids(http, q="invoice") == [invoice]  # the title
    assert _ids(http, q="sierr") == [blog]  # the assigned agent's name
    assert _ids(http, q="100%") == [] and _ids(http, q="_") == []  # LIKE's wildcards are literal
    for bad in ({"status": "approvedish"}, {"priority": "p0"}, {"due_before": "yesterday"}, {"archived": "maybe"}, {"q": "x" * 201}):
        response = http.get("/v1/tasks", params=bad)
        assert response.status_code == 400, (bad, response.text)


def test_renaming_the_agent_moves_the_search(http: httpx.Client, filed: dict[str, Any]) -> None:
    sierra = filed["sierra"]
    assert http.post(f"/v1/agents/{sierra['id']}", json={"version": 1, "name": "Atlas"}).status_code == 200
    assert _ids(http, q="sierra") == [] and _ids(http, q="atlas") == [filed["blog"]["id"]]


def test_updates_are_optimistic_and_only_change_what_is_sent(http: httpx.Client, filed: dict[str, Any]) -> None:
    task = filed["blog"]["id"]
    moved = _post(http, f"/v1/tasks/{task}", {"version": 1, "status": "in_progress", "priority": "urgent"})
    assert moved["status"] == "in_progress" and moved["priority"] == "urgent" and moved["version"] == 3
    assert moved["title"] == filed["blog"]["title"] and moved["tags"] == ["blog", "seo"]
    stale = http.post(f"/v1/tasks/{task}", json={"version": 1, "title": "stale"})
    assert stale.status_code == 409 and "version" in stale.json()["error"]["message"]
    patched = http.patch(f"/v1/tasks/{task}", json={"tags": None, "board_id": None, "assigned_agent_id": None, "due_date": None})
    assert patched.status_code == 200, patched.text
    assert patched.json() | {"updated_at": None} == moved | {
        "tags": [], "board_id": None, "assigned_agent_id": None, "due_date": None, "version": 5, "updated_at": None
    }
    assert http.get("/v1/tasks", params={"tag": "seo"}).json()["data"] == []
    assert _ids(http, assigned_agent_id=filed["sierra"]["id"]) == []
    unchanged = _post(http, f"/v1/tasks/{task}", {"title": filed["blog"]["title"]})
    assert unchanged["version"] == 5  # nothing differed: nothing recorded
    for verdict in ("approved", "rejected"):
        refused = http.post(f"/v1/tasks/{task}", json={"status": verdict})
        assert refused.status_code == 400, refused.text
    assert http.post(f"/v1/tasks/{task}", json={"title": None}).status_code == 400


def test_references_must_exist_be_the_callers_and_live(http: httpx.Client, filed: dict[str, Any]) -> None:
    missing = {
        "board_id": "board_abcdefgh12345678",
        "assigned_agent_id": "agent_abcdefgh12345678",
        "parent_task_id": "task_abcdefgh12345678",
    }
    for field, value in missing.items():
        response = http.post("/v1/tasks", json={"title": "t", field: value})
        assert response.status_code == 404, (field, response.text)
    assert http.post("/v1/boards", json={"name": "b", "department_id": "dept_abcdefgh12345678"}).status_code == 404
    board = filed["other_board"]["id"]
    assert _post(http, f"/v1/boards/{board}/archive", {})["archived_at"] is not None
    archived = http.post("/v1/tasks", json={"title": "t", "board_id": board})
    assert archived.status_code == 400 and "archived" in archived.json()["error"]["message"]
    assert http.post(f"/v1/agents/{filed['sierra']['id']}/archive").status_code == 200
    assert http.post("/v1/tasks", json={"title": "t", "assigned_agent_id": filed["sierra"]["id"]}).status_code == 400
    assert [board["id"] for board in http.get("/v1/boards").json()["data"]] == [filed["board"]["id"]]
    assert len(http.get("/v1/boards", params={"include_archived": "true"}).json()["data"]) == 2
    assert [b["id"] for b in http.get("/v1/boards", params={"department_id": filed["department"]["id"]}).json()["data"]] == [
        filed["board"]["id"]
    ]


def test_sub_tasks_and_no_task_is_its_own_ancestor(http: httpx.Client, filed: dict[str, Any]) -> None:
    parent = filed["blog"]["id"]
    child = _post(http, "/v1/tasks", {"title": "Outline", "parent_task_id": parent})
    grandchild = _post(http, "/v1/tasks", {"title": "Headings", "parent_task_id": child["id"]})
    assert _ids(http, parent_task_id=parent) == [child["id"]]
    for ancestor in (grandchild["id"], child["id"]):  # its own descendants
        looped = http.post(f"/v1/tasks/{parent}", json={"parent_task_id": ancestor})
        assert looped.status_code == 400 and "ancestor" in looped.json()["error"]["message"], looped.text
    assert http.post(f"/v1/tasks/{parent}", json={"parent_task_id": parent}).status_code == 400
    assert http.post(f"/v1/tasks/{child['id']}", json={"parent_task_id": None}).json()["parent_task_id"] is None


def test_archive_and_delete(http: httpx.Client, filed: dict[str, Any]) -> None:
    task = filed["idea"]["id"]
    archived = _post(http, f"/v1/tasks/{task}/archive", {})
    assert archived["archived_at"] is not None and archived["version"] == 2
    refused = http.post(f"/v1/tasks/{task}", json={"title": "late"})
    assert refused.status_code == 400 and "archived" in refused.json()["error"]["message"], refused.text
    assert task not in _ids(http)
    assert _ids(http, archived="true") == [task]
    assert task in _ids(http, include_archived="true")
    assert task not in _ids(http, archived="false", include_archived="true")
    gone = http.delete(f"/v1/tasks/{filed['invoice']['id']}")
    assert gone.status_code == 200 and gone.json() == {"id": filed["invoice"]["id"], "type": "task_deleted"}
    assert http.get(f"/v1/tasks/{filed['invoice']['id']}").status_code == 404
    assert http.delete(f"/v1/tasks/{filed['invoice']['id']}").status_code == 404
    assert _ids(http, tag="finance") == [] and filed["invoice"]["id"] not in _ids(http, include_archived="true")


def test_departments_and_boards_are_edited_and_archived(http: httpx.Client, filed: dict[str, Any]) -> None:
    department = filed["department"]
    renamed = http.patch(f"/v1/departments/{department['id']}", json={"name": "Growth", "sort_order": None, "emoji": None})
    assert renamed.status_code == 200, renamed.text
    assert renamed.json() | {"updated_at": None} == department | {"name": "Growth", "sort_order": 0, "emoji": None, "updated_at": None}
    assert http.get(f"/v1/departments/{department['id']}").json()["name"] == "Growth"
    board = _post(http, f"/v1/boards/{filed['board']['id']}", {"description": "posts", "department_id": None})
    assert board["description"] == "posts" and board["department_id"] is None
    assert http.get("/v1/boards", params={"department_id": department["id"]}).json()["data"] == []
    assert _post(http, f"/v1/departments/{department['id']}/archive", {})["archived_at"] is not None
    assert http.post(f"/v1/departments/{department['id']}", json={"name": "x"}).status_code == 400
    assert http.get("/v1/departments").json()["data"] == []
    assert http.post("/v1/boards", json={"name": "b", "department_id": department["id"]}).status_code == 400


def test_agents_sit_in_departments_and_boards(http: httpx.Client, filed: dict[str, Any]) -> None:
    department, board = filed["department"]["id"], filed["board"]["id"]
    atlas = _post(http, "/v1/agents", {"name": "Atlas", "model": "m", "department_id": department, "primary_board_id": board})
    assert atlas["department_id"] == department and atlas["primary_board_id"] == board
    assert "department_id" not in filed["sierra"]  # an agent made as the SDK makes it looks as the SDK expects
    listed = {a["id"] for a in http.get("/v1/agents", params={"department_id": department}).json()["data"]}
    assert listed == {atlas["id"]}
    assert {a["id"] for a in http.get("/v1/agents", params={"board_id": board}).json()["data"]} == {atlas["id"]}
    for name, value in (("department_id", "dept_abcdefgh12345678"), ("primary_board_id", "board_abcdefgh12345678")):
        assert http.post("/v1/agents", json={"name": "x", "model": "m", name: value}).status_code == 404
    moved = _post(http, f"/v1/agents/{atlas['id']}", {"version": 1, "department_id": None})
    assert moved["department_id"] is None and moved["version"] == 2
    assert http.get("/v1/agents", params={"department_id": department}).json()["data"] == []
