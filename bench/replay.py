"""Reading a 20k-event session back, on PostgreSQL, against a raw psycopg read of the same
rows measured in this run on the same server:

(a) paging the whole log over HTTP (``GET /v1/sessions/{id}/events``, the largest page, the
    page cursor) ÷ the raw read;
(b) SSE replay of the whole log (``GET /v1/sessions/{id}/events/stream`` with
    ``Last-Event-ID: 0``, read until the last seq arrives) ÷ the raw read.

Each rate is events per second, best of five runs (the machine is shared). The raw read is
psycopg's default (text) protocol; the log itself reads its rows in binary.

Measured on this machine (2 cores, load ~10 from other work), same bench, back to back:
before fast reads 0.127 (paging) and 0.060 (replay); after 0.686 and 0.828.

    .venv/bin/python bench/replay.py [--events 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import orjson
import psycopg
from _support import BENCH_KEY, ROOT, SseReader, agentry_server, scratch_database

sys.path.insert(0, str(ROOT))
from domain.ids import stream_id  # noqa: E402

RUNS = 5
BATCH = 100  # the most events one POST takes
# An event of a realistic size: a few hundred bytes of client text.
NOTE = "replay bench " * 20


async def seed(base: str, total: int) -> str:
    """One session holding ``total`` user events, posted in full batches a few at a time."""
    headers = {"x-api-key": BENCH_KEY}
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=120) as http:
        agent = (await http.post("/v1/agents", json={"name": "bench", "model": "m"})).json()
        env = (await http.post("/v1/environments", json={"name": "bench"})).json()
        created = await http.post("/v1/sessions", json={"agent": agent["id"], "environment_id": env["id"]})
        session_id: str = created.json()["id"]
        for start in range(0, total, BATCH):
            events = [
                {"type": "user.interrupt", "n": n, "note": NOTE, "tags": ["a", "b"], "score": n / 7}
                for n in range(start, min(total, start + BATCH))
            ]
            response = await http.post(f"/v1/sessions/{session_id}/events", json={"events": events})
            response.raise_for_status()
        return session_id


def raw_read_seconds(url: str, stream: str) -> tuple[float, int]:
    """The time to read every stored row of the session's stream with plain psycopg (the
    columns a reader needs), and how many rows that is."""
    with psycopg.connect(url) as conn:
        started = time.perf_counter()
        rows = conn.execute(
            "SELECT originator_version, topic, state FROM agentryevents_events"
            " WHERE originator_id = %s ORDER BY originator_version",
            (stream,),
        ).fetchall()
        return time.perf_counter() - started, len(rows)


def page_all(base: str, session_id: str) -> tuple[float, int, int]:
    """Pages the whole log at the largest page size: (seconds, events, last seq)."""
    with httpx.Client(base_url=base, headers={"x-api-key": BENCH_KEY}, timeout=120) as http:
        http.get("/healthz")  # the connection is open before the clock starts
        count, last_seq, token = 0, 0, None
        started = time.perf_counter()
        while True:
            params: dict[str, str | int] = {"limit": 1000}
            if token:
                params["page"] = token
            response = http.get(f"/v1/sessions/{session_id}/events", params=params)
            response.raise_for_status()
            body = orjson.loads(response.content)
            count += len(body["data"])
            if body["data"]:
                last_seq = body["data"][-1]["seq"]
            token = body["next_page"]
            if not token:
                return time.perf_counter() - started, count, last_seq


class _Replay(SseReader):
    """Counts the frames with an ``id:`` (stored events) until ``expected`` arrived."""

    def __init__(self, opened: asyncio.Future[None], done: asyncio.Future[float], expected: int) -> None:
        super().__init__(opened, time.perf_counter)
        self._done = done
        self._expected = expected
        self.count = 0
        self.last_id = 0

    def frames(self, buffer: bytes, end: int, now: float) -> None:
        self.count += buffer.count(b"\nid: ", 0, end)
        if self.count >= self._expected and not self._done.done():
            at = buffer.rfind(b"\nid: ", 0, end) + 5
            self.last_id = int(buffer[at:buffer.index(b"\n", at)])
            self._done.set_result(now)


async def replay_all(base: str, session_id: str, expected: int) -> tuple[float, int, int]:
    """Replays the whole log over SSE from the start: (seconds, events, last seq)."""
    url = urlsplit(base)
    request = (
        f"GET /v1/sessions/{session_id}/events/stream HTTP/1.1\r\nHost: {url.netloc}\r\n"
        f"x-api-key: {BENCH_KEY}\r\nAccept: text/event-stream\r\nLast-Event-ID: 0\r\n\r\n"
    ).encode()
    loop = asyncio.get_running_loop()
    opened: asyncio.Future[None] = loop.create_future()
    done: asyncio.Future[float] = loop.create_future()
    reader = _Replay(opened, done, expected)
    transport, _ = await loop.create_connection(lambda: reader, url.hostname, url.port)
    try:
        started = time.perf_counter()
        transport.write(request)
        await asyncio.wait_for(opened, 60)
        finished = await asyncio.wait_for(done, 600)
        return finished - started, reader.count, reader.last_id
    finally:
        transport.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=20_000)
    args = parser.parse_args()

    with scratch_database() as url, tempfile.TemporaryDirectory() as data_dir:
        with agentry_server(url, Path(data_dir)) as base:
            print(f"seeding one session with {args.events:,} events …", flush=True)
            session_id = asyncio.run(seed(base, args.events))
            stream = str(stream_id(session_id))
            raw, paged, replayed = [], [], []
            for _ in range(RUNS):  # alternating, so drift on a shared machine hits all three
                seconds, rows = raw_read_seconds(url, stream)
                raw.append(seconds)
                seconds, events, last_seq = page_all(base, session_id)
                paged.append(seconds)
                if events < args.events:
                    raise SystemExit(f"bench: paging returned {events} events, fewer than the {args.events} sent")
                seconds, replayed_events, replayed_last = asyncio.run(replay_all(base, session_id, events))
                replayed.append(seconds)
                if (replayed_events, replayed_last) != (events, last_seq):
                    raise SystemExit(f"bench: replay sent {replayed_events} events up to seq {replayed_last}, "
                                     f"paging {events} up to seq {last_seq}")
    raw_rate, page_rate, replay_rate = (events / min(times) for times in (raw, paged, replayed))
    print(f"raw psycopg read ({rows:,} rows): {raw_rate:12,.0f} events/s  (runs, s: {_runs(raw)})")
    print(f"HTTP paging, limit 1000:     {page_rate:12,.0f} events/s  (runs, s: {_runs(paged)})")
    print(f"SSE replay from seq 0:       {replay_rate:12,.0f} events/s  (runs, s: {_runs(replayed)})")
    print(f"ratio: HTTP paging rate / raw read rate = {page_rate / raw_rate:.3f}")
    print(f"ratio: SSE replay rate / raw read rate = {replay_rate / raw_rate:.3f}")


def _runs(times: list[float]) -> str:
    return ", ".join(f"{t:.3f}" for t in times)


if __name__ == "__main__":
    main()
