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
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import orjson
import psycopg
from _support import BENCH_KEY, agentry_server, scratch_database

PAYLOAD = {"type": "user.interrupt", "note": "bench"}

# wrk runs one Lua state per thread; with as many threads as connections, thread N's one
# connection appends to session N (mod the number of sessions) and nothing else.
WRK_SCRIPT = """
local sessions = {%(sessions)s}
local counter = 0
function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
end
function init(args)
  path = "/v1/sessions/" .. sessions[(id %% #sessions) + 1] .. "/events"
  headers = {["x-api-key"] = "%(key)s", ["content-type"] = "application/json"}
  body = '%(body)s'
end
function request()
  return wrk.format("POST", path, headers, body)
end
"""


def ensure_wrk() -> None:
    if shutil.which("wrk") is None:
        print("installing wrk …", flush=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True)


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


def wrk_append_rate(base: str, sessions: list[str], seconds: float, connections: int) -> float:
    script = WRK_SCRIPT % {
        "sessions": ", ".join(f'"{s}"' for s in sessions),
        "key": BENCH_KEY,
        "body": orjson.dumps({"events": [PAYLOAD]}).decode(),
    }
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as lua:
        lua.write(script)
        lua.flush()
        output = subprocess.run(
            ["wrk", f"-t{connections}", f"-c{connections}", f"-d{seconds}s", "-s", lua.name, base],
            capture_output=True, text=True, check=True,
        ).stdout
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    if non_2xx:
        sys.exit(f"bench: {non_2xx.group(1)} appends were refused:\n{output}")
    found = re.search(r"Requests/sec:\s+([0-9.]+)", output)
    if found is None:
        sys.exit(f"bench: no request rate in wrk's output:\n{output}")
    return float(found.group(1))


def make_sessions(base: str, count: int) -> list[str]:
    with httpx.Client(base_url=base, headers={"x-api-key": BENCH_KEY}, timeout=60) as http:
        agent = http.post("/v1/agents", json={"name": "bench", "model": "m"}).json()
        env = http.post("/v1/environments", json={"name": "bench"}).json()
        sessions = []
        for _ in range(count):
            created = http.post("/v1/sessions", json={"agent": agent["id"], "environment_id": env["id"]})
            created.raise_for_status()
            sessions.append(created.json()["id"])
        return sessions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    ensure_wrk()
    n = args.concurrency

    with scratch_database() as raw_url:
        print(f"baseline: raw psycopg, one row per transaction, {n} connections …", flush=True)
        baseline = raw_insert_rate(raw_url, args.seconds, n)
    print(f"  {baseline:,.0f} inserts/s", flush=True)

    with scratch_database() as api_url, tempfile.TemporaryDirectory() as data_dir:
        with agentry_server(api_url, Path(data_dir)) as base:
            sessions = make_sessions(base, n + 1)
            wrk_append_rate(base, sessions[:n], 2, n)  # warm-up
            print(f"agentry: POST /v1/sessions/{{id}}/events, wrk, {n} connections on 1 session …", flush=True)
            single = wrk_append_rate(base, sessions[n:], args.seconds, n)
            print(f"  {single:,.0f} appends/s", flush=True)
            print(f"agentry: POST /v1/sessions/{{id}}/events, wrk, {n} connections on {n} sessions …", flush=True)
            spread = wrk_append_rate(base, sessions[:n], args.seconds, n)
            print(f"  {spread:,.0f} appends/s", flush=True)
    print(f"ratio (1 session): API append rate / raw insert rate = {single / baseline:.3f}")
    print(f"ratio: API append rate / raw insert rate = {spread / baseline:.3f}")


if __name__ == "__main__":
    main()
