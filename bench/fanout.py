"""Live fan-out: N open SSE streams on one session while wrk appends to it, on PostgreSQL.

For N = 1, 50, 200, 1000 it prints the append rate with N streams open ÷ the rate with none
(measured just before, each on a fresh `agentry serve`), and the delivery latency p50/p99
from a probe append's acknowledgement to its arrival at every stream. The streams are held
by a separate asyncio process (raw sockets), the load comes from wrk, the probe (20
appends/s) from this process.

    .venv/bin/python bench/fanout.py [--streams 1,50,200,1000] [--seconds 5] [--root DIR]

``--root`` serves another checkout of Agentry (e.g. the code before a change, unpacked with
``git archive``) with this venv, to compare.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from _support import BENCH_KEY, ROOT, SseReader, agentry_server, scratch_database

LOAD_BODY = '{"events":[{"type":"user.interrupt","note":"load"}]}'
PROBE_EVENT = {"type": "user.interrupt", "probe": 1}
PROBE_MARK = b'"probe":1'
PROBES_PER_SECOND = 20
WRK_CONNECTIONS = 4


# -- the streams: a separate process of raw asyncio sockets -------------------------------


class _Stream(SseReader):
    """Notes when each probe frame arrives (wall clock)."""

    def __init__(self, arrivals: list[tuple[int, float]], opened: asyncio.Future[None]) -> None:
        super().__init__(opened, time.time)
        self._arrivals = arrivals

    def frames(self, buffer: bytes, end: int, now: float) -> None:
        at = buffer.find(PROBE_MARK, 0, end)
        while at >= 0:
            id_at = buffer.rfind(b"\nid: ", 0, at) + 5
            self._arrivals.append((int(buffer[id_at:buffer.index(b"\n", id_at)]), now))
            at = buffer.find(PROBE_MARK, at + 1, end)


async def _hold_streams(base: str, session_id: str, count: int) -> None:
    url = urlsplit(base)
    request = (
        f"GET /v1/sessions/{session_id}/events/stream HTTP/1.1\r\nHost: {url.netloc}\r\n"
        f"x-api-key: {BENCH_KEY}\r\nAccept: text/event-stream\r\n\r\n"
    ).encode()
    loop = asyncio.get_running_loop()
    arrivals: list[tuple[int, float]] = []
    transports = []
    for start in range(0, count, 50):  # open in waves so the accept queue never overflows
        wave = []
        for _ in range(min(50, count - start)):
            opened: asyncio.Future[None] = loop.create_future()
            transport, _ = await loop.create_connection(
                lambda opened=opened: _Stream(arrivals, opened), url.hostname, url.port
            )
            transport.write(request)
            transports.append(transport)
            wave.append(opened)
        await asyncio.wait_for(asyncio.gather(*wave), 60)
    print("ready", flush=True)
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    for transport in transports:
        transport.close()
    print(json.dumps(arrivals), flush=True)


# -- load, probe, measurement ---------------------------------------------------------------


def _wrk(base: str, session_id: str, seconds: int, script_dir: Path) -> tuple[float, int]:
    script = script_dir / "append.lua"
    script.write_text(
        'wrk.method = "POST"\n'
        f"wrk.body = '{LOAD_BODY}'\n"
        'wrk.headers["Content-Type"] = "application/json"\n'
        f'wrk.headers["x-api-key"] = "{BENCH_KEY}"\n'
    )
    result = subprocess.run(
        ["wrk", "-t1", f"-c{WRK_CONNECTIONS}", f"-d{seconds}s", "--timeout", "10s", "-s", str(script),
         f"{base}/v1/sessions/{session_id}/events"],
        capture_output=True, text=True, check=True,
    )
    rate = float(re.search(r"Requests/sec:\s+([0-9.]+)", result.stdout).group(1))  # type: ignore[union-attr]
    failed = re.search(r"Non-2xx or 3xx responses:\s+([0-9]+)", result.stdout)
    return rate, int(failed.group(1)) if failed else 0


def _probe(base: str, session_id: str, stop: threading.Event, acks: dict[int, float]) -> None:
    with httpx.Client(base_url=base, headers={"x-api-key": BENCH_KEY}, timeout=30) as http:
        while not stop.is_set():
            started = time.monotonic()
            response = http.post(f"/v1/sessions/{session_id}/events", json={"events": [PROBE_EVENT]})
            acked = time.time()
            response.raise_for_status()
            acks[response.json()["data"][0]["seq"]] = acked
            stop.wait(max(0.0, 1 / PROBES_PER_SECOND - (time.monotonic() - started)))


def _new_session(base: str) -> str:
    with httpx.Client(base_url=base, headers={"x-api-key": BENCH_KEY}, timeout=30) as http:
        agent = http.post("/v1/agents", json={"name": "bench", "model": "m"}).json()
        env = http.post("/v1/environments", json={"name": "bench"}).json()
        created = http.post("/v1/sessions", json={"agent": agent["id"], "environment_id": env["id"]})
        return created.json()["id"]


def measure(database_url: str, root: Path, streams: int, seconds: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as data_dir, agentry_server(database_url, Path(data_dir), root) as base:
        session_id = _new_session(base)
        client = None
        if streams:
            client = subprocess.Popen(
                [sys.executable, __file__, "--hold", base, session_id, str(streams)],
                stdout=subprocess.PIPE, text=True,
            )
            assert client.stdout is not None
            if client.stdout.readline().strip() != "ready":
                sys.exit("bench: the streams did not open")
        acks: dict[int, float] = {}
        stop = threading.Event()
        prober = threading.Thread(target=_probe, args=(base, session_id, stop, acks))
        prober.start()
        rate, failed = _wrk(base, session_id, seconds, Path(data_dir))
        stop.set()
        prober.join()
        time.sleep(1.0)  # let the last probes arrive
        result = {"rate": rate, "failed": failed, "probes": len(acks)}
        if client is not None:
            client.send_signal(signal.SIGTERM)
            output, _ = client.communicate(timeout=60)
            arrivals = json.loads(output.strip().splitlines()[-1])
            delays = sorted((at - acks[seq]) * 1000 for seq, at in arrivals if seq in acks)
            expected = len(acks) * streams
            result["missed"] = expected - len(delays)
            if delays:
                result["p50"] = statistics.median(delays)
                result["p99"] = delays[min(len(delays) - 1, int(len(delays) * 0.99))]
        return result


def main() -> None:
    if len(sys.argv) == 5 and sys.argv[1] == "--hold":
        try:
            import uvloop

            uvloop.install()
        except ImportError:
            pass
        asyncio.run(_hold_streams(sys.argv[2], sys.argv[3], int(sys.argv[4])))
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--streams", default="1,50,200,1000")
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--root", type=Path, default=ROOT, help="the Agentry checkout to serve")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("bench: needs wrk (apt-get install -y wrk)")

    # The streams, wrk and the probe together exceed the default connection limit (1000).
    os.environ.setdefault("AGENTRY_MAX_CONNECTIONS", str(max(int(n) for n in args.streams.split(",")) + 100))
    with scratch_database() as url:
        # Each N is paired with a baseline measured just before it: on a shared machine the
        # rate drifts more between minutes than between neighbouring measurements.
        for count in (int(n) for n in args.streams.split(",")):
            print(f"{count} streams: wrk -c{WRK_CONNECTIONS} appending to one session, first with no stream open …", flush=True)
            baseline = measure(url, args.root, 0, args.seconds)
            got = measure(url, args.root, count, args.seconds)
            print(
                f"  {baseline['rate']:,.0f} → {got['rate']:,.0f} appends/s  ratio {got['rate'] / baseline['rate']:.2f}  "
                f"delivery p50 {got.get('p50', float('nan')):.1f} ms  p99 {got.get('p99', float('nan')):.1f} ms  "
                f"(missed {got['missed']:.0f} of {got['probes'] * count:.0f}, non-2xx {got['failed'] + baseline['failed']:.0f})",
                flush=True,
            )

if __name__ == "__main__":
    main()
