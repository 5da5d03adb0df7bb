"""A NUL in an id, a filter, a page token or a JSON body is a 400 on both stores — on
PostgreSQL it used to reach a text parameter, or a read model's document, and come back as a
500."""

from __future__ import annotations

import logging

import httpx
import pytest

from projections.queries import encode_token

BAD_TEXT = [
    "/v1/sessions?agent_id=%00",
    "/v1/sessions?agent_id=ab%00cd&limit=5",
    "/v1/sessions?statuses[]=idle%00",
    "/v1/agents/%00",
    "/v1/agents/agent_x%00/versions",
    "/v1/sessions/sesn_%00/events",
    "/v1/sessions/sesn_%00/events/stream",
    "/v1/environments?page=" + encode_token("2026-01-01T00:00:00.000000Z", "env_\x00"),
    "/v1/agents?page=" + encode_token("2026-01-01T00:00:00.000000Z\x00", "agent_a"),
    "/v1/sessions?page=" + encode_token("2026-01-01T00:00:00.000000Z", "sesn_\x00"),
    "/v1/sessions/sesn_x/events?page=" + encode_token("asc\x00", 3),
    "/v1/agents?include_archived=%00",
    "/v1/agents?%00=1",
]


@pytest.mark.parametrize("path", BAD_TEXT)
def test_unstorable_text_in_a_path_or_query_is_a_400(
    http: httpx.Client, path: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="agentry"):
        response = http.get(path)
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error"
    assert body["request_id"]
    assert not [record for record in caplog.records if "unhandled" in record.getMessage()]


def test_an_encoded_lone_surrogate_is_harmless(http: httpx.Client) -> None:
    # Percent-decoding yields U+FFFD for bytes that are not UTF-8; nothing unstorable remains.
    assert http.get("/v1/sessions?agent_id=%ED%A0%80").json()["data"] == []
    assert http.get("/v1/sessions/sesn_%ED%A0%80").status_code == 404


def test_a_nul_in_a_json_body_is_a_400_and_stores_nothing(http: httpx.Client) -> None:
    # PostgreSQL text cannot hold a NUL: one in any field of an agent's read-model document
    # made every `agent:<name>` lookup and /v1/models of its workspace a 500 there.
    agent = http.post("/v1/agents", json={"name": "kept", "model": "m"}).json()
    refused = [
        http.post("/v1/agents", json={"name": "a\x00b", "model": "m"}),
        http.post("/v1/agents", json={"name": "a", "model": "m", "description": "d\x00"}),
        http.post("/v1/agents", json={"name": "a", "model": "m", "metadata": {"k\x00": "v"}}),
        http.post(f"/v1/agents/{agent['id']}", json={"version": 1, "system": ["s\x00"]}),
    ]
    env = http.post("/v1/environments", json={"name": "e"}).json()
    session = http.post("/v1/sessions", json={"agent": agent["id"], "environment_id": env["id"]}).json()
    refused.append(
        http.post(
            f"/v1/sessions/{session['id']}/events",
            json={"events": [{"type": "user.message", "content": [{"type": "text", "text": "x\x00y"}]}]},
        )
    )
    where = ["name", "description", "metadata.k\\u0000", "system.0", "events.0.content.0.text"]
    for response, field in zip(refused, where, strict=True):
        assert response.status_code == 400, response.text
        assert response.json()["error"]["message"].startswith(f"{field}: text may not contain a NUL"), response.text
    assert [item["name"] for item in http.get("/v1/agents").json()["data"]] == ["kept"]
    assert http.get(f"/v1/agents/{agent['id']}").json()["version"] == 1
    assert http.get(f"/v1/sessions/{session['id']}/events", params={"types[]": "user.message"}).json()["data"] == []
    assert http.get("/v1/models").status_code == 200
    assert http.get("/v1/models/agent:kept").json()["id"] == agent["id"]


def test_a_control_character_in_a_model_handle_is_a_400(http: httpx.Client) -> None:
    # A handle is a model's name: the catalogue sorts it and PostgreSQL extracts it as text,
    # where a NUL once made every later /v1/models of the tenant a 500.
    body = {"model_id": "house\x00model", "provider": "ant", "api_key": "k" * 32, "probe": False}
    for handle in ("house\x00model", "tab\tmodel", "del\x7f"):
        refused = http.post("/v1/model_cards", json={**body, "model_id": handle})
        assert refused.status_code == 400 and refused.json()["error"]["message"].startswith("model_id"), refused.text
    assert http.post("/v1/model_cards", json={**body, "model_id": "house-model", "model": "m\x00"}).status_code == 400
    assert http.post("/v1/model_cards", json={**body, "model_id": "house-model"}).status_code == 200
    assert [item["id"] for item in http.get("/v1/models").json()["data"]] == ["house-model"]
    bad_key = http.post("/v1/model_cards", json={**body, "model_id": "other", "api_key": "k\x00" * 16})
    assert bad_key.status_code == 400
