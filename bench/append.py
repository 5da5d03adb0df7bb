"""API append rate (POST /v1/sessions/{id}/events on PostgreSQL) ÷ raw psycopg
one-row-per-transaction insert rate, both measured in this run on the same server.

    .venv/bin/python bench/append.py [--events 2000] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import threading
import time
from pathlib import Path

import httpx
import orjson
import psycopg
from _support import BENCH_KEY, agentry_server, scratch_database

PAYLOAD = {"type": "user.interrupt", "note": "bench"}


def raw_insert_rate(url: str, total: int, concurrency: int) -> float:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE raw_events (id bigserial PRIMARY KEY, stream text, body jsonb)")
    per_worker = total // concurrency

    def work(worker: int) -> None:
        with psycopg.connect(url, autocommit=True) as conn:
            body = orjson.dumps(PAYLOAD).decode()
            for _ in range(per_worker):
                conn.execute("INSERT INTO raw_events (stream, body) VALUES (%s, %s)", (f"s{worker}", body))

    threads = [threading.Thread(target=work, args=(n,)) for n in range(concurrency)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return per_worker * concurrency / (time.perf_counter() - started)


async def api_append_rate(base: str, total: int, concurrency: int) -> float:
    headers = {"x-api-key": BENCH_KEY}
    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, headers=headers, limits=limits, timeout=60) as http:
        agent = (await http.post("/v1/agents", json={"name": "bench", "model": "m"})).json()
        env = (await http.post("/v1/environments", json={"name": "bench"})).json()
        sessions = []
        for _ in range(concurrency):  # one session per worker: appends do not contend
            created = await http.post("/v1/sessions", json={"agent": agent["id"], "environment_id": env["id"]})
            sessions.append(created.json()["id"])
        per_worker = total // concurrency

        async def work(session_id: str) -> None:
            for _ in range(per_worker):
                response = await http.post(f"/v1/sessions/{session_id}/events", json={"events": [PAYLOAD]})
                response.raise_for_status()

        await asyncio.gather(*(work(s) for s in sessions[:2]))  # warm-up
        started = time.perf_counter()
        await asyncio.gather(*(work(s) for s in sessions))
        elapsed = time.perf_counter() - started
        return per_worker * concurrency / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()

    with scratch_database() as raw_url:
        print(f"baseline: raw psycopg, one row per transaction, {args.concurrency} connections …", flush=True)
        baseline = raw_insert_rate(raw_url, args.events, args.concurrency)
    print(f"  {baseline:,.0f} inserts/s", flush=True)

    with scratch_database() as api_url, tempfile.TemporaryDirectory() as data_dir:
        with agentry_server(api_url, Path(data_dir)) as base:
            print(f"agentry: POST /v1/sessions/{{id}}/events, {args.concurrency} concurrent clients …", flush=True)
            api = asyncio.run(api_append_rate(base, args.events, args.concurrency))
    print(f"  {api:,.0f} appends/s", flush=True)
    print(f"ratio: API append rate / raw insert rate = {api / baseline:.3f}")


if __name__ == "__main__":
    main()
