"""Many live tails on one session: shared reads, exact delivery, gone clients noticed at once."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

import interfaces.http.live as live_module
from tests.support.server import RunningServer


def _session(http: httpx.Client) -> str:
    agent = http.post("/v1/agents", json={"name": "a", "model": "m"}).json()
    env = http.post("/v1/environments", json={"name": "e"}).json()
    return http.post("/v1/sessions", json={"agent": agent["id"], "environment_id": env["id"]}).json()["id"]


def _send(http: httpx.Client, session_id: str, count: int) -> None:
    response = http.post(f"/v1/sessions/{session_id}/events", json={"events": [{"type": "user.interrupt"}] * count})
    assert response.status_code == 202, response.text


def _frames(lines: Iterator[str]) -> Iterator[tuple[str, int]]:
    """(type, seq) of each SSE frame."""
    event_type = None
    for line in lines:
        if line.startswith("event: "):
            event_type = line[7:]
        elif line.startswith("id: "):
            assert event_type is not None
            yield event_type, int(line[4:])


async def _collect(server: RunningServer, session_id: str, streams: int, until_seq: int, params: dict) -> list[list[int]]:
    """Opens ``streams`` streams and reads each until ``until_seq``."""
    headers = {"x-api-key": server.api_key}
    limits = httpx.Limits(max_connections=streams + 4)
    async with httpx.AsyncClient(base_url=server.base_url, headers=headers, timeout=30, limits=limits) as http:
        opened = asyncio.Event()
        count = 0

        async def follow() -> list[int]:
            nonlocal count
            seqs: list[int] = []
            async with http.stream("GET", f"/v1/sessions/{session_id}/events/stream", params=params) as response:
                assert response.status_code == 200
                count += 1
                if count == streams:
                    opened.set()
                event_type = None
                async for line in response.aiter_lines():
                    if line.startswith("event: "):
                        event_type = line[7:]
                    elif line.startswith("id: "):
                        assert event_type == "user.interrupt"
                        seqs.append(int(line[4:]))
                        if seqs[-1] >= until_seq:
                            return seqs
            return seqs

        tasks = [asyncio.create_task(follow()) for _ in range(streams)]
        await asyncio.wait_for(opened.wait(), 20)
        return await asyncio.wait_for(asyncio.gather(*tasks), 60)


def _wait_followers(server: RunningServer, count: int, within: float) -> float:
    started = time.monotonic()
    while server.platform.services.live.follower_count() != count:
        assert time.monotonic() - started < within, (
            f"{server.platform.services.live.follower_count()} followers, expected {count}"
        )
        time.sleep(0.01)
    return time.monotonic() - started


def test_many_tails_each_get_every_event_once_in_order_from_shared_reads(server: RunningServer, http: httpx.Client) -> None:
    session_id = _session(http)
    log = server.platform.services.session_log
    reads = 0
    chunk = log.chunk

    def counting_chunk(*args: Any, **kwargs: Any) -> Any:
        nonlocal reads
        reads += 1
        return chunk(*args, **kwargs)

    log.chunk = counting_chunk  # type: ignore[method-assign]
    streams, batches, per_batch = 40, 15, 4
    total = batches * per_batch
    result: list[list[list[int]]] = []

    def tails() -> None:
        result.append(asyncio.run(_collect(server, session_id, streams, total, {})))

    reader = threading.Thread(target=tails)
    reader.start()
    _wait_followers(server, streams, within=20)
    for _ in range(batches):
        _send(http, session_id, per_batch)
    reader.join(timeout=90)
    assert result, "the tails did not finish"
    for seqs in result[0]:
        assert seqs == list(range(1, total + 1))
    # Shared reads, a few per batch (a batch's append and what the runtime adds after it may wake
    # the reader apart on a loaded box), not one per tail per change (40 × 15 = 600).
    assert reads <= 3 * batches + 2, reads
    _wait_followers(server, 0, within=2)


def test_tails_behind_a_tiny_shared_buffer_read_on_their_own_without_gaps_or_duplicates(
    server: RunningServer, http: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(live_module, "BUFFER_BATCHES", 1)  # any tail that lags falls behind it
    session_id = _session(http)
    _send(http, session_id, 30)  # history to replay first
    total = 30 + 20 * 5
    result: list[list[list[int]]] = []

    def tails() -> None:
        result.append(asyncio.run(_collect(server, session_id, 10, total, {"replay": "1"})))

    reader = threading.Thread(target=tails)
    reader.start()
    def send_batches() -> None:
        for _ in range(10):
            _send(http, session_id, 5)

    senders = [threading.Thread(target=send_batches) for _ in range(2)]
    for sender in senders:
        sender.start()
    for sender in senders:
        sender.join()
    reader.join(timeout=90)
    assert result, "the tails did not finish"
    for seqs in result[0]:
        assert seqs == list(range(1, total + 1))


def test_a_client_that_goes_away_is_let_go_at_once(server: RunningServer, http: httpx.Client) -> None:
    session_id = _session(http)
    url = f"{server.base_url}/v1/sessions/{session_id}/events/stream"

    async def open_and_drop(count: int) -> None:
        clients = [httpx.AsyncClient(headers={"x-api-key": server.api_key}, timeout=10) for _ in range(count)]
        responses = []
        for client in clients:
            request = client.build_request("GET", url)
            responses.append(await client.send(request, stream=True))
        assert all(response.status_code == 200 for response in responses)
        await asyncio.to_thread(_wait_followers, server, count, 10)
        for response, client in zip(responses, clients, strict=True):
            await response.aclose()
            await client.aclose()

    asyncio.run(open_and_drop(25))
    # Keep-alives come every 15 s; without watching the connection nothing would notice before
    # the first one. The bound stays far below 15 s so a loaded machine does not fail it.
    _wait_followers(server, 0, within=5.0)


def test_another_tenants_stream_is_not_found(server: RunningServer, http: httpx.Client) -> None:
    session_id = _session(http)
    bob_key = "agentry-bob-key-0123456789"
    server.platform.services.api_keys.issue(bob_key, name="bob", tenant_id="tenant-bob")
    gone = httpx.get(
        f"{server.base_url}/v1/sessions/{session_id}/events/stream", headers={"x-api-key": bob_key}, timeout=10
    )
    assert gone.status_code == 404 and gone.json()["type"] == "error"


def test_a_page_of_large_events_stops_at_its_byte_cap_and_continues_exactly(http: httpx.Client) -> None:
    session_id = _session(http)
    big = "x" * 1_500_000  # three fill the 4 MiB page cap
    for n in range(5):
        response = http.post(
            f"/v1/sessions/{session_id}/events",
            json={"events": [{"type": "user.interrupt", "n": n, "pad": big}]},
        )
        assert response.status_code == 202
    pages, params = [], {"limit": 1000}
    while True:
        body = http.get(f"/v1/sessions/{session_id}/events", params=params).json()
        pages.append([event["n"] for event in body["data"]])
        if body["next_page"] is None:
            break
        params = {"limit": 1000, "page": body["next_page"]}
    assert pages == [[0, 1, 2], [3, 4]]


def test_an_idle_stream_gets_keepalives_from_the_sweep_and_events_still_flow(
    server: RunningServer, http: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Keep-alives come from one sweep over all tails (no timer per write); an idle tail
    # must still ping, and a ping must not disturb what follows.
    monkeypatch.setattr(live_module, "KEEPALIVE_SECONDS", 0.2)
    session_id = _session(http)
    headers = {"x-api-key": server.api_key}
    with httpx.Client(base_url=server.base_url, headers=headers, timeout=10) as client:
        with client.stream("GET", f"/v1/sessions/{session_id}/events/stream") as response:
            assert response.status_code == 200
            lines = response.iter_lines()
            pings = 0
            for line in lines:
                if line == ": ping":
                    pings += 1
                    if pings == 2:
                        break
            _send(http, session_id, 1)
            frames = _frames(lines)
            event_type, seq = next(frames)
            assert event_type == "user.interrupt" and seq > 0
    _wait_followers(server, 0, 5)
