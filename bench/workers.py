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
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _support import agentry_server, ensure_wrk, make_sessions, scratch_database, wrk_append_rate

SESSIONS = 8
PAYLOAD = '{"events":[{"type":"user.interrupt"}]}'

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


def measure(processes: int, seconds: int) -> float:
    def ready(_base: str, process: subprocess.Popen[bytes], port: int) -> None:
        _wait_for_children(process.pid, processes if processes > 1 else 0, port)

    with scratch_database() as url, tempfile.TemporaryDirectory() as data_dir:
        # Several processes need a Qdrant server; appends never reach the index, so none need
        # answer (the same setting for both runs: the only difference is the process count).
        with agentry_server(
            url, Path(data_dir), extra_env={"AGENTRY_QDRANT_URL": "http://127.0.0.1:9"},
            extra_args=("--workers", str(processes)), ready=ready,
        ) as base:  # fmt: skip
            sessions = make_sessions(base, SESSIONS)
            wrk_append_rate(base, sessions, 3, SESSIONS, PAYLOAD)  # warm-up: connections, caches, plans
            return wrk_append_rate(base, sessions, seconds, SESSIONS, PAYLOAD)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    ensure_wrk()

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
