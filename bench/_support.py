"""Shared by the benchmarks: a scratch PostgreSQL database, a real `agentry serve`, and a
raw reader of SSE responses."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx
import psycopg

ROOT = Path(__file__).resolve().parent.parent
BENCH_KEY = "agentry-bench-key-0123456789-abcdefghijkl"


def server_url() -> str:
    return (
        os.environ.get("AGENTRY_BENCH_POSTGRES_URL")
        or os.environ.get("AGENTRY_TEST_POSTGRES_URL")
        or "postgresql://postgres@127.0.0.1:5432/postgres"
    )


@contextmanager
def scratch_database() -> Iterator[str]:
    base = server_url()
    name = "agentry_bench_" + uuid.uuid4().hex[:10]
    try:
        with psycopg.connect(base, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as error:
        sys.exit(f"bench: cannot reach PostgreSQL at {base} (set AGENTRY_BENCH_POSTGRES_URL): {error}")
    url = base.rpartition("/")[0] + "/" + name
    try:
        yield url
    finally:
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_serving(base: str, process: subprocess.Popen[bytes]) -> None:
    """Returns once the server at ``base`` answers ``/healthz``; exits the bench if it died."""
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            sys.exit("bench: the server did not start")
        time.sleep(0.1)


@contextmanager
def agentry_server(
    database_url: str,
    data_dir: Path,
    root: Path = ROOT,
    log: Path | None = None,
    *,
    extra_env: dict[str, str] | None = None,
    extra_args: Sequence[str] = (),
    ready: Callable[[str, subprocess.Popen[bytes], int], None] | None = None,
) -> Iterator[str]:
    """A running ``agentry serve``; with ``log``, its output (and its children's) goes there.
    ``ready(base, process, port)`` replaces the wait for ``/healthz`` (several processes)."""
    port = free_port()
    env = {
        **os.environ,
        "AGENTRY_DATABASE_URL": database_url,
        "AGENTRY_DATA_DIR": str(data_dir),
        "AGENTRY_BOOTSTRAP_API_KEY": BENCH_KEY,
        "AGENTRY_API_KEY_SECRET": "agentry-bench-key-hashing-secret-0123456789",
        "AGENTRY_ROOT_SECRET": "agentry-bench-root-secret-0123456789-abcdefgh",
        "AGENTRY_LOG_LEVEL": "warning",
        # The benches load one key far past any sensible limit: metering stays, refusals go.
        "AGENTRY_RATE_LIMIT_WORKSPACE_RPM": "0",
        "AGENTRY_RATE_LIMIT_CALLER_RPM": "0",
        **(extra_env or {}),
    }
    output = log.open("ab") if log is not None else None
    process = subprocess.Popen(
        [sys.executable, "-m", "interfaces.cli.main", "serve", "--port", str(port), *extra_args], cwd=root, env=env,
        stdout=output or subprocess.DEVNULL, stderr=output or subprocess.DEVNULL,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        (ready or (lambda url, child, _port: wait_until_serving(url, child)))(base, process, port)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=90)
        if output is not None:
            output.close()


@contextmanager
def fake_provider_child(script: str, *args: str) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """The fake provider in a child process (its own GIL): ``script --fake *args`` prints its
    URL, then serves until its stdin closes. Yields the URL and the child."""
    child = subprocess.Popen(
        [sys.executable, script, "--fake", *args],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    assert child.stdout is not None
    url = child.stdout.readline().strip()
    if not url.startswith("http"):
        sys.exit("bench: the fake provider did not start")
    try:
        yield url, child
    finally:
        assert child.stdin is not None
        child.stdin.close()
        child.wait(timeout=20)


class SseReader(asyncio.Protocol):
    """Reads one raw SSE response (no HTTP client in the way of the measurement): ``opened``
    fails unless it starts with a 200, and each read's complete frames — ``buffer`` up to
    ``end``, the last blank line — go to ``frames`` with the time they arrived by ``clock``."""

    def __init__(self, opened: asyncio.Future[None], clock: Callable[[], float]) -> None:
        self._opened = opened
        self._clock = clock
        self._pending = b""

    def data_received(self, data: bytes) -> None:
        now = self._clock()
        if not self._opened.done():
            if data.startswith(b"HTTP/1.1 200"):
                self._opened.set_result(None)
            else:
                self._opened.set_exception(RuntimeError(data[:200].decode(errors="replace")))
        buffer = self._pending + data
        end = buffer.rfind(b"\n\n")
        if end < 0:
            self._pending = buffer
            return
        self._pending = buffer[end + 2:]
        self.frames(buffer, end, now)

    def frames(self, buffer: bytes, end: int, now: float) -> None:
        raise NotImplementedError


def ensure_wrk() -> None:
    """wrk from the system's packages (a Python client tops out below what the server reaches)."""
    if shutil.which("wrk") is None:
        print("installing wrk …", flush=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=False)
        if shutil.which("wrk") is None:
            sys.exit("bench: wrk is not installed and could not be (apt-get install wrk)")


def run_wrk(arguments: Sequence[str]) -> float:
    """wrk's request rate; the bench stops if any response was not 2xx."""
    ensure_wrk()
    output = subprocess.run(["wrk", *arguments], capture_output=True, text=True, check=True).stdout
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    if non_2xx:
        sys.exit(f"bench: {non_2xx.group(1)} responses were not 2xx:\n{output}")
    found = re.search(r"Requests/sec:\s+([0-9.]+)", output)
    if found is None:
        sys.exit(f"bench: no request rate in wrk's output:\n{output}")
    return float(found.group(1))


def wrk_requests_per_second(url: str, seconds: int, connections: int = 16) -> float:
    """``wrk``'s request rate for GETs of ``url`` with the bench key."""
    return run_wrk(["-t2", f"-c{connections}", f"-d{seconds}s", "-H", f"x-api-key: {BENCH_KEY}", url])


# wrk runs one Lua state per thread; with as many threads as connections, thread N's one
# connection appends to session N (mod the number of sessions) and nothing else.
APPEND_SCRIPT = """
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


def wrk_append_rate(base: str, sessions: list[str], seconds: float, connections: int, body: str) -> float:
    """Appends/s of ``body`` (a JSON request body) with ``connections`` wrk connections spread
    over ``sessions``."""
    script = APPEND_SCRIPT % {"sessions": ", ".join(f'"{s}"' for s in sessions), "key": BENCH_KEY, "body": body}
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as lua:
        lua.write(script)
        lua.flush()
        return run_wrk([f"-t{connections}", f"-c{connections}", f"-d{seconds}s", "-s", lua.name, base])


def make_sessions(base: str, count: int) -> list[str]:
    """``count`` sessions of one agent and environment, created through the API."""
    with httpx.Client(base_url=base, headers={"x-api-key": BENCH_KEY}, timeout=60) as http:
        agent = http.post("/v1/agents", json={"name": "bench", "model": "m"}).json()
        env = http.post("/v1/environments", json={"name": "bench"}).json()
        sessions = []
        for _ in range(count):
            created = http.post("/v1/sessions", json={"agent": agent["id"], "environment_id": env["id"]})
            created.raise_for_status()
            sessions.append(created.json()["id"])
        return sessions


def served_read_rate(script: str, kind: str, seconds: int, check: Callable[[str], None] | None = None) -> float:
    """Runs ``script --serve KIND PORT DATA_DIR`` (an embedded server in a child), makes one
    agent, optionally ``check``s the server at its base URL, and returns wrk's rate for
    ``GET /v1/agents?limit=1``."""
    import tempfile

    port = free_port()
    with tempfile.TemporaryDirectory() as data_dir:
        process = subprocess.Popen([sys.executable, script, "--serve", kind, str(port), data_dir], cwd=ROOT)
        try:
            base = f"http://127.0.0.1:{port}"
            wait_until_serving(base, process)
            created = httpx.post(base + "/v1/agents", json={"name": "a", "model": "m"}, headers={"x-api-key": BENCH_KEY})
            created.raise_for_status()
            if check is not None:
                check(base)
            return wrk_requests_per_second(base + "/v1/agents?limit=1", seconds)
        finally:
            process.terminate()
            process.wait(timeout=15)


def compare_alternating(measure: Callable[[str], float], baseline: tuple[str, str], candidate: tuple[str, str]) -> None:
    """Three rounds of (baseline, candidate) measured in turn (the machine is shared: runs
    alternate so drift hits both), then the best of each and their ratio."""
    rates: dict[str, list[float]] = {baseline[0]: [], candidate[0]: []}
    for _ in range(3):
        for kind, _label in (baseline, candidate):
            rates[kind].append(measure(kind))
    width = max(len(baseline[1]), len(candidate[1])) + 1
    for kind, label in (baseline, candidate):
        runs = ", ".join(f"{r:.0f}" for r in rates[kind])
        print(f"{label + ':':<{width}} {max(rates[kind]):8.0f} requests/s  (runs: {runs})")
    ratio = max(rates[candidate[0]]) / max(rates[baseline[0]])
    print(f"{'ratio ' + candidate[0] + ' ÷ ' + baseline[0] + ':':<{width}} {ratio:.2f}")
