"""Every list endpoint takes the same query and answers the same envelope."""

from __future__ import annotations

import httpx
import pytest

LISTS = ["/v1/agents", "/v1/environments", "/v1/sessions", "/v1/model_cards"]


def _make(http: httpx.Client, path: str, n: int) -> list[str]:
    ids = []
    agent = http.post("/v1/agents", json={"name": "a", "model": "m"}).json()
    env = http.post("/v1/environments", json={"name": "e"}).json()
    for i in range(n):
        if path == "/v1/agents":
            body = http.post(path, json={"name": f"a{i}", "model": "m"}).json()
        elif path == "/v1/environments":
            body = http.post(path, json={"name": f"e{i}"}).json()
        elif path == "/v1/model_cards":
            body = http.post(path, json={"model_id": f"m{i}", "provider": "ant", "api_key": "offline-key", "probe": False}).json()
        else:
            body = http.post(path, json={"agent": agent["id"], "environment_id": env["id"]}).json()
        ids.append(body["id"])
    return ids


@pytest.mark.parametrize("path", LISTS)
def test_pages_walk_forward_and_back_and_filter_by_creation_time(http: httpx.Client, path: str) -> None:
    made = _make(http, path, 5)
    first = http.get(path, params={"limit": 2, "order": "asc"}).json()
    assert set(first) == {"data", "next_page", "prev_page"} and first["prev_page"] is None
    second = http.get(path, params={"limit": 2, "order": "asc", "page": first["next_page"]}).json()
    back = http.get(path, params={"limit": 2, "order": "asc", "page": second["prev_page"]}).json()
    assert [item["id"] for item in back["data"]] == [item["id"] for item in first["data"]]
    everything = http.get(path, params={"limit": 100, "order": "asc"}).json()["data"]
    assert [item["id"] for item in everything][-5:] == made
    third = everything[-3]["created_at"]
    after = http.get(path, params={"created_at[gt]": third, "limit": 100}).json()["data"]
    assert {item["id"] for item in after} == set(made[-2:])
    upto = http.get(path, params={"created_at[lte]": third, "created_at[gte]": third}).json()["data"]
    assert [item["id"] for item in upto] == [made[-3]]


@pytest.mark.parametrize("path", LISTS)
def test_a_page_token_from_elsewhere_is_a_400(http: httpx.Client, path: str) -> None:
    response = http.get(path, params={"page": "bm90IGEgdG9rZW4"})
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"


def test_a_page_stops_at_its_byte_budget_and_the_next_one_continues(
    http: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    import projections.queries

    monkeypatch.setattr(projections.queries, "MAX_PAGE_BYTES", 200_000)
    made = [
        http.post("/v1/agents", json={"name": f"a{i}", "model": "m", "system": "x" * 50_000}).json()["id"]
        for i in range(10)
    ]
    seen: list[str] = []
    page = http.get("/v1/agents", params={"limit": 100, "order": "asc"}).json()
    pages = 1
    while True:
        assert 1 <= len(page["data"]) <= 4
        seen += [item["id"] for item in page["data"]]
        if not page["next_page"]:
            break
        page = http.get("/v1/agents", params={"limit": 100, "order": "asc", "page": page["next_page"]}).json()
        pages += 1
    assert seen == made and pages >= 3


def test_a_token_of_one_list_is_refused_by_another_and_a_nested_one_is_a_400(http: httpx.Client) -> None:
    import base64

    for i in range(3):
        http.post("/v1/agents", json={"name": f"a{i}", "model": "m"})
    token = http.get("/v1/agents", params={"limit": 1}).json()["next_page"]
    assert http.get("/v1/agents", params={"limit": 1, "page": token}).status_code == 200
    assert http.get("/v1/environments", params={"page": token}).status_code == 400
    assert http.get("/v1/sessions", params={"page": token}).status_code == 400
    nested = base64.urlsafe_b64encode(b"[" * 450 + b"]" * 450).decode().rstrip("=")
    response = http.get("/v1/agents", params={"page": nested})
    assert response.status_code == 400 and response.json()["error"]["message"] == "invalid page token"


def test_an_emptied_page_still_leads_back(http: httpx.Client) -> None:
    made = [http.post("/v1/environments", json={"name": f"e{i}"}).json()["id"] for i in range(3)]
    first = http.get("/v1/environments", params={"limit": 2, "order": "asc"}).json()
    http.post(f"/v1/environments/{made[2]}/archive")
    second = http.get("/v1/environments", params={"limit": 2, "order": "asc", "page": first["next_page"]}).json()
    assert second["data"] == [] and second["next_page"] is None and second["prev_page"]
    back = http.get("/v1/environments", params={"limit": 2, "order": "asc", "page": second["prev_page"]}).json()
    assert [item["id"] for item in back["data"]] == made[:1]  # the rows before the key it came by
