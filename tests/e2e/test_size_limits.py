"""Request bodies and session events over their caps are refused with a 413 that names the
cap, before anything is stored; events just under the caps are stored, and are no larger
than the encoded cap says once recorded."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from interfaces.http.limits import (
    MAX_BODY_BYTES,
    MAX_EVENT_CONTENT_BYTES,
    MAX_EVENT_ENCODED_BYTES,
)
from tests.support.server import RunningServer


def _session(http: httpx.Client) -> str:
    agent = http.post("/v1/agents", json={"name": "a", "model": "m"}).json()
    env = http.post("/v1/environments", json={"name": "e"}).json()
    return http.post("/v1/sessions", json={"agent": agent["id"], "environment_id": env["id"]}).json()["id"]


def _message(text: str) -> dict:
    return {"type": "user.message", "content": [{"type": "text", "text": text}]}


def _refused(response: httpx.Response, *words: str) -> str:
    assert response.status_code == 413, response.text[:500]
    body = response.json()
    assert body["type"] == "error" and body["error"]["type"] == "request_too_large"
    assert body["request_id"]
    for word in words:
        assert word in body["error"]["message"], body["error"]["message"]
    return body["error"]["message"]


def _event_count(http: httpx.Client, session_id: str) -> int:
    return len(http.get(f"/v1/sessions/{session_id}/events").json()["data"])


def test_a_body_over_8_mib_is_refused_with_its_cap(http: httpx.Client) -> None:
    too_big = b'{"name": "' + b"x" * MAX_BODY_BYTES + b'", "model": "m"}'
    _refused(http.post("/v1/agents", content=too_big, headers={"content-type": "application/json"}), "8 MiB")

    def chunks() -> Iterator[bytes]:  # no content-length: the cap holds on the bytes read
        for start in range(0, len(too_big), 1 << 20):
            yield too_big[start : start + (1 << 20)]

    _refused(http.post("/v1/agents", content=chunks(), headers={"content-type": "application/json"}), "8 MiB")
    assert http.get("/v1/agents").json()["data"] == []


def test_an_event_whose_content_is_over_the_cap_is_refused(http: httpx.Client) -> None:
    session_id = _session(http)
    big = "x" * (MAX_EVENT_CONTENT_BYTES + 1)
    message = _refused(
        http.post(f"/v1/sessions/{session_id}/events", json={"events": [_message("hi"), _message(big)]}),
        "events.1",
        "2 MiB",
        "content",
    )
    assert "most 2 MiB" in message
    assert _event_count(http, session_id) == 0, "nothing of a refused batch is stored"

    agent = http.post("/v1/agents", json={"name": "b", "model": "m"}).json()
    env = http.post("/v1/environments", json={"name": "f"}).json()
    before = len(http.get("/v1/sessions").json()["data"])
    _refused(
        http.post(
            "/v1/sessions",
            json={"agent": agent["id"], "environment_id": env["id"], "initial_events": [_message(big)]},
        ),
        "initial_events.0",
        "2 MiB",
    )
    assert len(http.get("/v1/sessions").json()["data"]) == before


def test_an_event_whose_encoding_is_over_the_cap_is_refused(http: httpx.Client) -> None:
    session_id = _session(http)
    # 1 MiB of content, but 6 MiB once each control character is escaped as \u0001.
    escaped = "\x01" * (1 << 20)
    _refused(
        http.post(f"/v1/sessions/{session_id}/events", json={"events": [_message(escaped)]}),
        "events.0",
        "encoded",
        "4 MiB",
    )
    assert _event_count(http, session_id) == 0


def test_events_just_under_the_caps_are_stored_within_the_encoded_cap(server: RunningServer, http: httpx.Client) -> None:
    session_id = _session(http)
    plain = "y" * (MAX_EVENT_CONTENT_BYTES - 100)
    escaped = "\x01" * ((MAX_EVENT_ENCODED_BYTES - 2048) // 6)
    for text in (plain, escaped):
        response = http.post(f"/v1/sessions/{session_id}/events", json={"events": [_message(text)]})
        assert response.status_code == 202, response.text[:300]
    stored = server.platform.store.notifications(0, 1000)
    largest = max(len(notification.state) for notification in stored)
    assert largest > MAX_EVENT_ENCODED_BYTES - 4096, "the escaped event is recorded near the cap"
    assert largest <= MAX_EVENT_ENCODED_BYTES, "a recorded event is within the encoded cap"
    texts = [
        event["content"][0]["text"]
        for event in http.get(f"/v1/sessions/{session_id}/events", params={"types[]": "user.message"}).json()["data"]
    ]
    assert texts == [plain, escaped]


@pytest.mark.parametrize("size", [MAX_EVENT_CONTENT_BYTES + 1])
def test_the_sdk_sees_the_cap_as_an_error_it_can_read(client, size: int) -> None:
    import anthropic

    agent = client.beta.agents.create(name="a", model="m")
    env = client.beta.environments.create(name="e")
    session = client.beta.sessions.create(agent=agent.id, environment_id=env.id)
    with pytest.raises(anthropic.APIStatusError) as raised:
        client.beta.sessions.events.send(session.id, events=[_message("z" * size)])
    assert raised.value.status_code == 413
    assert "2 MiB" in str(raised.value)
