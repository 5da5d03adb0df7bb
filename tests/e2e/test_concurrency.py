"""Optimistic concurrency through the real HTTP stack."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import httpx


def _race(http: httpx.Client, agent_id: str, expected_version: int, names: list[str]) -> list[httpx.Response]:
    barrier = threading.Barrier(len(names))

    def update(name: str) -> httpx.Response:
        barrier.wait()
        return http.post(f"/v1/agents/{agent_id}", json={"version": expected_version, "name": name})

    with ThreadPoolExecutor(len(names)) as pool:
        return list(pool.map(update, names))


def test_two_updates_on_the_same_version_one_wins_one_conflicts(http: httpx.Client) -> None:
    agent = http.post("/v1/agents", json={"name": "start", "model": "m"}).json()
    for round_number in range(1, 6):
        responses = _race(http, agent["id"], round_number, [f"a{round_number}", f"b{round_number}"])
        statuses = sorted(r.status_code for r in responses)
        assert statuses == [200, 409], [r.text for r in responses]
        loser = next(r for r in responses if r.status_code == 409)
        assert loser.json()["error"]["type"] == "conflict_error"
        assert loser.headers["x-should-retry"] == "false"
        winner = next(r for r in responses if r.status_code == 200).json()
        assert winner["version"] == round_number + 1
        current = http.get(f"/v1/agents/{agent['id']}").json()
        assert (current["version"], current["name"]) == (winner["version"], winner["name"])

    versions = http.get(f"/v1/agents/{agent['id']}/versions", params={"limit": 100}).json()["data"]
    assert [v["version"] for v in versions] == [6, 5, 4, 3, 2, 1]


def test_concurrent_sends_to_one_session_lose_nothing(http: httpx.Client) -> None:
    agent = http.post("/v1/agents", json={"name": "a", "model": "m"}).json()
    env = http.post("/v1/environments", json={"name": "e"}).json()
    session = http.post("/v1/sessions", json={"agent": agent["id"], "environment_id": env["id"]}).json()
    url = f"/v1/sessions/{session['id']}/events"

    def send(i: int) -> int:
        # Racing appends are retried by the server on the fresh stream: no client retry.
        return http.post(url, json={"events": [{"type": "user.interrupt", "note": str(i)}]}).status_code

    with ThreadPoolExecutor(8) as pool:
        assert set(pool.map(send, range(24))) == {202}
    log = http.get(url, params={"limit": 1000}).json()["data"]
    assert sorted(int(e["note"]) for e in log) == list(range(24))
    assert [e["seq"] for e in log] == list(range(1, 25))
