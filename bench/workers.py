"""How the API append rate grows from one API process to two (`agentry serve --workers N`) on
PostgreSQL: wrk posts one event per request, each of its 8 connections to a session of its
own (as bench/append.py does), against a fresh server and database for each measurement.
Rounds alternate 1 and 2 processes (the machine is shared: drift hits both); the best of
each is compared.

    .venv/bin/python bench/workers.py [--seconds 10] [--rounds 2]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from _support import BENCH_KEY, ROOT, free_port, scratch_database

SESSIONS = 8
PAYLOAD = '{"events":[{"type":"user.interrupt"}]}'

# Thread n (one connection each: -t8 -c8) posts to session n.
LUA = """
local sessions = {%(sessions)s}
local next_index = 1
local threads = {}

function setup(thread)
  thread:set("session", sessions[next_index])
  next_index = next_index + 1
end

function init(args)
  wrk.method = "POST"
  wrk.path = "/v1/sessions/" .. session .. "/events"
  wrk.body = '%(payload)s'
  wrk.headers["content-type"] = "application/json"
  wrk.headers["x-api-key"] = "%(key)s"
end
"""


@contextmanager
def serving(processes: int, database_url: str, data_dir: Path) -> Iterator[str]:
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("AGENTRY_")},
        "AGENTRY_DATABASE_URL": database_url,
        "AGENTRY_DATA_DIR": str(data_dir),
        "AGENTRY_BOOTSTRAP_API_KEY": BENCH_KEY,
        "AGENTRY_API_KEY_SECRET": "agentry-bench-key-hashing-secret-0123456789",
        "AGENTRY_ROOT_SECRET": "agentry-bench-root-secret-0123456789-abcdefgh",
        "AGENTRY_LOG_LEVEL": "warning",
        "AGENTRY_RATE_LIMIT_WORKSPACE_RPM": "0",
        "AGENTRY_RATE_LIMIT_CALLER_RPM": "0",
        # Several processes need a Qdrant server; appends never reach the index, so none need
        # answer (the same setting for both runs: the only difference is the process count).
        "AGENTRY_QDRANT_URL": "http://127.0.0.1:9",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "interfaces.cli.main", "serve", "--port", str(port), "--workers", str(processes)],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        if processes > 1:
            _wait_for_children(process.pid, processes, port)
        else:
            _wait_for_children(process.pid, 0, port)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=90)


def _wait_for_children(pid: int, count: int, port: int) -> None:
    """Until the server answers and, with ``count`` children (the supervisor starts them one
    after another), each of them has (found by which holds the server's end of a connection)."""
    deadline = time.monotonic() + 180  # a shared machine: the first start creates the tables
    served: set[int] = set()
    answered = False
    while not answered or len(served) < count:
        if time.monotonic() > deadline:
            sys.exit("bench: the API processes did not all start")
        with open(f"/proc/{pid}/task/{pid}/children") as listed:
            children = [int(child) for child in listed.read().split()]
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=10) as probe:
                probe.sendall(b"GET /healthz HTTP/1.1\r\nHost: bench\r\n\r\n")
                answered = probe.recv(256).startswith(b"HTTP/1.1 200")
                inode = _server_inode(port, probe.getsockname()[1])
                served.update(child for child in children if inode and _holds(child, inode))
        except OSError:
            time.sleep(0.2)


def _server_inode(server_port: int, client_port: int) -> str:
    with open("/proc/net/tcp") as table:
        for line in list(table)[1:]:
            fields = line.split()
            if int(fields[1].split(":")[1], 16) == server_port and int(fields[2].split(":")[1], 16) == client_port:
                return fields[9]
    return ""


def _holds(pid: int, inode: str) -> bool:
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") == f"socket:[{inode}]":
                return True
        except FileNotFoundError:
            pass
    return False


def sessions_for(base: str) -> list[str]:
    with httpx.Client(base_url=base, headers={"x-api-key": BENCH_KEY}, timeout=60) as http:
        agent = http.post("/v1/agents", json={"name": "bench", "model": "m"}).json()
        env = http.post("/v1/environments", json={"name": "bench"}).json()
        return [
            http.post("/v1/sessions", json={"agent": agent["id"], "environment_id": env["id"]}).json()["id"]
            for _ in range(SESSIONS)
        ]


def wrk_rate(base: str, sessions: list[str], seconds: int, script_dir: Path) -> float:
    script = script_dir / "append.lua"
    script.write_text(
        LUA % {"sessions": ", ".join(f'"{s}"' for s in sessions), "payload": PAYLOAD, "key": BENCH_KEY}
    )
    command = ["wrk", f"-t{SESSIONS}", f"-c{SESSIONS}", f"-d{seconds}s", "-s", str(script), base]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    if non_2xx:
        sys.exit(f"bench: {non_2xx.group(1)} responses were not 2xx:\n{output}")
    found = re.search(r"Requests/sec:\s+([0-9.]+)", output)
    if found is None:
        sys.exit(f"bench: no request rate in wrk's output:\n{output}")
    return float(found.group(1))


def measure(processes: int, seconds: int) -> float:
    with scratch_database() as url, tempfile.TemporaryDirectory() as data_dir:
        with serving(processes, url, Path(data_dir)) as base:
            sessions = sessions_for(base)
            wrk_rate(base, sessions, 3, Path(data_dir))  # warm-up: connections, caches, JIT of the plans
            return wrk_rate(base, sessions, seconds, Path(data_dir))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        subprocess.run(["apt-get", "install", "-y", "wrk"], check=False)
        if shutil.which("wrk") is None:
            sys.exit("bench: wrk is not installed and could not be (apt-get install wrk)")

    rates: dict[int, list[float]] = {1: [], 2: []}
    for round_ in range(1, args.rounds + 1):
        for processes in (1, 2):
            rate = measure(processes, args.seconds)
            rates[processes].append(rate)
            print(f"round {round_}: {processes} API process{'es' if processes > 1 else ''}: {rate:,.0f} appends/s", flush=True)
    one, two = max(rates[1]), max(rates[2])
    print(f"best: 1 process {one:,.0f} appends/s, 2 processes {two:,.0f} appends/s ({os.cpu_count()} cores)")
    print(f"ratio: 2-process append rate / 1-process append rate = {two / one:.2f}")


if __name__ == "__main__":
    main()
