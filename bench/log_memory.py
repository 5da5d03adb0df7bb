"""Peak server memory (VmHWM) for one `GET …/events?limit=1000` and one `?replay=1` stream on
a session of 30 events of 7.9 MB each, each on a fresh `agentry serve` (cold caches).

    .venv/bin/python bench/log_memory.py [--root DIR]

``--root`` serves another checkout (e.g. the code before a change) with this venv, to compare.
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
from _support import BENCH_KEY, ROOT, agentry_server, scratch_database

EVENTS = 30
PAD = "x" * 7_900_000


def peak_mib(port: str) -> int:
    found = subprocess.run(["pgrep", "-f", f"serve --port {port}"], capture_output=True, text=True, check=True)
    pid = found.stdout.split()[0]
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM"):
            return int(line.split()[1]) // 1024
    raise RuntimeError("no VmHWM")


def fill(base: str) -> str:
    with httpx.Client(base_url=base, headers={"x-api-key": BENCH_KEY}, timeout=120) as http:
        agent = http.post("/v1/agents", json={"name": "m", "model": "m"}).json()
        env = http.post("/v1/environments", json={"name": "m"}).json()
        created = http.post("/v1/sessions", json={"agent": agent["id"], "environment_id": env["id"]})
        session_id = created.json()["id"]
        for _ in range(EVENTS):
            sent = http.post(f"/v1/sessions/{session_id}/events", json={"events": [{"type": "user.interrupt", "pad": PAD}]})
            sent.raise_for_status()
    return session_id


def read(base: str, session_id: str, what: str) -> Iterator[int]:
    with httpx.Client(base_url=base, headers={"x-api-key": BENCH_KEY}, timeout=300) as http:
        if what == "page":
            yield len(http.get(f"/v1/sessions/{session_id}/events", params={"limit": 1000}).json()["data"])
            return
        seen = 0
        with http.stream("GET", f"/v1/sessions/{session_id}/events/stream", params={"replay": "1"}) as stream:
            for line in stream.iter_lines():
                seen += line.startswith("id: ")
                if seen == EVENTS:
                    break
        yield seen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, default=ROOT, help="the Agentry checkout to serve")
    args = parser.parse_args()
    with scratch_database() as url, tempfile.TemporaryDirectory() as data_dir:
        print(f"filling a session with {EVENTS} events of {len(PAD) / 1e6:.1f} MB …", flush=True)
        with agentry_server(url, Path(data_dir), args.root) as base:
            session_id = fill(base)
        for what in ("page", "replay"):
            with agentry_server(url, Path(data_dir), args.root) as base:
                port = base.rsplit(":", 1)[1]
                before = peak_mib(port)
                (count,) = read(base, session_id, what)
                print(f"  {what}: {count} events, server peak {before} → {peak_mib(port)} MiB", flush=True)


if __name__ == "__main__":
    main()
