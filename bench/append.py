"""API append rate (POST /v1/sessions/{id}/events on PostgreSQL) ÷ raw psycopg
one-row-per-transaction insert rate, both measured in this run on the same server.

The load comes from ``wrk`` (installed from the system's packages when missing): a Python
client tops out below what the server reaches. Two cases, each with the same number of
connections as the baseline has threads: one session per connection, and every connection
appending to one session.

    .venv/bin/python bench/append.py [--seconds 8] [--concurrency 8]

Measured on the shared 2-core box (other work running; the baseline swings 1.7k–6k/s):
before group commit and the held-copy commands, 128 appends/s on 8 sessions and 106 on one
(ratios 0.025 and 0.021 against 5.0k inserts/s); after, 268–302 and 272–333 appends/s
(0.050–0.099 and 0.055–0.101, baselines 6.1k and 2.7k). The server then spends about 2.4 ms
of CPU per append, more than half of it in the in-process readers that follow the log
(projections, vectors, webhooks, change feed), and is held to one core.
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from pathlib import Path

import orjson
import psycopg
from _support import agentry_server, ensure_wrk, make_sessions, scratch_database, wrk_append_rate

PAYLOAD = {"type": "user.interrupt", "note": "bench"}

def raw_insert_rate(url: str, seconds: float, concurrency: int) -> float:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE raw_events (id bigserial PRIMARY KEY, stream text, body jsonb)")
    counts = [0] * concurrency
    deadline = time.perf_counter() + seconds

    def work(worker: int) -> None:
        with psycopg.connect(url, autocommit=True) as conn:
            body = orjson.dumps(PAYLOAD).decode()
            while time.perf_counter() < deadline:
                conn.execute("INSERT INTO raw_events (stream, body) VALUES (%s, %s)", (f"s{worker}", body))
                counts[worker] += 1

    threads = [threading.Thread(target=work, args=(n,)) for n in range(concurrency)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(counts) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    ensure_wrk()
    n = args.concurrency
    body = orjson.dumps({"events": [PAYLOAD]}).decode()

    with scratch_database() as raw_url:
        print(f"baseline: raw psycopg, one row per transaction, {n} connections …", flush=True)
        baseline = raw_insert_rate(raw_url, args.seconds, n)
    print(f"  {baseline:,.0f} inserts/s", flush=True)

    with scratch_database() as api_url, tempfile.TemporaryDirectory() as data_dir:
        with agentry_server(api_url, Path(data_dir)) as base:
            sessions = make_sessions(base, n + 1)
            wrk_append_rate(base, sessions[:n], 2, n, body)  # warm-up
            print(f"agentry: POST /v1/sessions/{{id}}/events, wrk, {n} connections on 1 session …", flush=True)
            single = wrk_append_rate(base, sessions[n:], args.seconds, n, body)
            print(f"  {single:,.0f} appends/s", flush=True)
            print(f"agentry: POST /v1/sessions/{{id}}/events, wrk, {n} connections on {n} sessions …", flush=True)
            spread = wrk_append_rate(base, sessions[:n], args.seconds, n, body)
            print(f"  {spread:,.0f} appends/s", flush=True)
    print(f"ratio (1 session): API append rate / raw insert rate = {single / baseline:.3f}")
    print(f"ratio: API append rate / raw insert rate = {spread / baseline:.3f}")


if __name__ == "__main__":
    main()
