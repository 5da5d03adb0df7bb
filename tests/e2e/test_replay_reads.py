"""Replay over SSE, read in chunks bounded by bytes: a stream resumed with Last-Event-ID in
the middle of a chunk carries on right after that seq, with nothing skipped or repeated,
and every frame's data is the JSON the list endpoint gives for that event, byte for byte."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

import application.session_log as session_log_module

EVENTS = 240


def _session(http: httpx.Client) -> str:
    agent = http.post("/v1/agents", json={"name": "a", "model": "m"}).json()
    env = http.post("/v1/environments", json={"name": "e"}).json()
    session_id: str = http.post("/v1/sessions", json={"agent": agent["id"], "environment_id": env["id"]}).json()["id"]
    for start in range(0, EVENTS, 80):
        events = [{"type": "user.interrupt", "n": n, "note": "é" * (n % 7)} for n in range(start, start + 80)]
        response = http.post(f"/v1/sessions/{session_id}/events", json={"events": events})
        assert response.status_code == 202, response.text
    return session_id


def _listed(http: httpx.Client, session_id: str) -> dict[int, bytes]:
    """seq → the event's JSON as the list endpoint's body holds it."""
    body = http.get(f"/v1/sessions/{session_id}/events", params={"limit": 1000}).content
    assert body.startswith(b'{"data":[') and body.endswith(b'],"next_page":null}')
    events = body[len(b'{"data":['):-len(b'],"next_page":null}')]
    found = {}
    for raw in events.replace(b'},{"n":', b'}\n{"n":').split(b"\n"):
        seq = int(raw.rsplit(b'"seq":', 1)[1].rstrip(b"}"))
        found[seq] = raw
    return found


def _frames(response: httpx.Response) -> Iterator[tuple[int, bytes]]:
    """(seq, data) of each frame with an id."""
    seq = None
    for line in response.iter_lines():
        if line.startswith("id: "):
            seq = int(line[4:])
        elif line.startswith("data: ") and seq is not None:
            yield seq, line[6:].encode()
            seq = None


def _replay(http: httpx.Client, session_id: str, last_event_id: int, until: int) -> list[tuple[int, bytes]]:
    got = []
    headers = {"Last-Event-ID": str(last_event_id)}
    with http.stream("GET", f"/v1/sessions/{session_id}/events/stream", headers=headers) as response:
        assert response.status_code == 200
        for seq, data in _frames(response):
            got.append((seq, data))
            if seq >= until:
                break
    return got


def test_a_replay_resumed_mid_chunk_continues_exactly_after_its_last_event_id(
    http: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    # About a dozen events a chunk: the resume points below fall inside chunks.
    monkeypatch.setattr(session_log_module, "CHUNK_MAX_BYTES", 1500)
    session_id = _session(http)
    listed = _listed(http, session_id)
    assert sorted(listed) == list(range(1, EVENTS + 1))

    first = _replay(http, session_id, 0, 101)  # a client that drops after seq 101 …
    assert [seq for seq, _ in first] == list(range(1, 102))
    for resume_after in (101, 37, 238):  # … and reconnects; others resume elsewhere
        got = _replay(http, session_id, resume_after, EVENTS)
        assert [seq for seq, _ in got] == list(range(resume_after + 1, EVENTS + 1)), resume_after
        assert all(data == listed[seq] for seq, data in got)
    assert all(data == listed[seq] for seq, data in first)
