"""``GET /v1/search`` on a real server (SQLite and PostgreSQL): agents, sessions and tasks by
keyword, ranked name-first, fused across kinds; only the caller's workspace; bad queries 400."""

from __future__ import annotations

from typing import Any

import httpx

from application.api_keys import generate_key as generate_api_key
from tests.support.server import RunningServer


def _ok(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    return response.json()


def _search(http: httpx.Client, **params: Any) -> list[dict[str, Any]]:
    return _ok(http.get("/v1/search", params=params))["data"]


def test_finds_agents_sessions_and_tasks_by_keyword_in_the_callers_workspace(server: RunningServer, http: httpx.Client) -> None:
    heron = _ok(http.post("/v1/agents", json={"name": "Heron", "model": "claude-sonnet-4-5", "description": "watches the lake"}))
    _ok(http.post("/v1/agents", json={"name": "Osprey", "model": "claude-sonnet-4-5", "description": "hunts beside the heron"}))
    env = _ok(http.post("/v1/environments", json={"name": "e", "config": {"type": "cloud"}}))
    session = _ok(http.post("/v1/sessions", json={"agent": heron["id"], "environment_id": env["id"], "title": "heron census"}))
    task = _ok(http.post("/v1/tasks", json={"title": "Count herons", "description": "north shore"}))
    _ok(http.post("/v1/tasks", json={"title": "Unrelated", "description": "nothing here"}))
    server.platform.projections.wait_for(server.platform.store.max_notification_id(), 10)

    found = _search(http, q="heron")
    by_kind = {(hit["type"], hit["id"]) for hit in found}
    assert ("agent", heron["id"]) in by_kind and ("session", session["id"]) in by_kind and ("task", task["id"]) in by_kind
    assert not any(hit["title"] == "Unrelated" for hit in found)
    agents = [hit for hit in found if hit["type"] == "agent"]
    # The name match outranks the description match, within its kind and in the fused order.
    assert [hit["title"] for hit in agents] == ["Heron", "Osprey"]
    assert found.index(agents[0]) < found.index(agents[1])
    assert agents[0]["object"]["id"] == heron["id"] and "heron" in agents[1]["snippet"].lower()
    assert [hit["score"] for hit in found] == sorted((hit["score"] for hit in found), reverse=True)

    only_tasks = _search(http, q="heron", types="task")
    assert [hit["id"] for hit in only_tasks] == [task["id"]]
    assert len(_search(http, q="heron", limit=1)) == 1
    # A LIKE wildcard in the query is a literal character.
    assert _search(http, q="%") == []

    key = generate_api_key()
    server.platform.services.api_keys.issue(key, name="other", tenant_id="other-tenant")
    with httpx.Client(base_url=server.base_url, headers={"x-api-key": key}, timeout=20) as other:
        assert _search(other, q="heron") == []


def test_bad_queries_are_400s(http: httpx.Client) -> None:
    for params in ({}, {"q": ""}, {"q": "   "}, {"q": "x" * 513}, {"q": "a", "limit": 0}, {"q": "a", "limit": "many"},
                   {"q": "a", "types": "agent,planet"}):
        response = http.get("/v1/search", params=params)
        assert response.status_code == 400, (params, response.text)
        assert response.json()["type"] == "error"


def test_finds_knowledge_and_memories_by_meaning(server: RunningServer, http: httpx.Client) -> None:
    base = _ok(http.post("/v1/knowledge_bases", json={"name": "Garden"}))
    document = _ok(http.post(
        f"/v1/knowledge_bases/{base['id']}/documents",
        json={"title": "Watering", "text": "Tomato plants need deep watering twice a week in the summer heat."},
    ))  # fmt: skip
    _ok(http.post(f"/v1/knowledge_bases/{base['id']}/documents", json={"title": "Taxes", "text": "File the VAT return by the end of the quarter."}))
    store = _ok(http.post("/v1/memory_stores", json={"name": "prefs"}))
    memory = _ok(http.post(f"/v1/memory_stores/{store['id']}/memories", json={"path": "/drinks.md", "content": "The user prefers green tea without sugar."}))
    platform = server.platform
    assert platform.services.vectors is not None
    assert platform.services.vectors.wait_for(platform.store.max_notification_id(), 60)

    garden = _search(http, q="how often should I irrigate vegetables", types="knowledge")
    assert garden and garden[0]["id"] == document["id"] and garden[0]["type"] == "knowledge"
    assert garden[0]["object"]["knowledge_base_id"] == base["id"] and garden[0]["object"]["chunk_index"] == 0
    drinks = _search(http, q="what beverage does the user like", types="memory")
    assert [hit["id"] for hit in drinks] == [memory["id"]]
    assert drinks[0]["title"] == "/drinks.md" and drinks[0]["object"]["content"].startswith("The user prefers")
    everything = _search(http, q="tea")
    assert ("memory", memory["id"]) in {(hit["type"], hit["id"]) for hit in everything}

    key = generate_api_key()
    server.platform.services.api_keys.issue(key, name="other", tenant_id="other-tenant")
    with httpx.Client(base_url=server.base_url, headers={"x-api-key": key}, timeout=20) as other:
        assert _search(other, q="what beverage does the user like", types="memory,knowledge") == []
