"""`agentry serve --workers 2` on PostgreSQL, as an operator runs it: two API processes on one
port, one of which (holding a lease) runs the projections. Each request goes out on a connection of its own, and the test finds which process
accepted it (the server side of the connection is a socket in one of the two), so it knows
both served. Sessions, tails, lists and turns come out as they do with one process, and a
SIGKILL of the process running the projections loses nothing acknowledged, and the other
takes them over.

No Qdrant server runs here: ``AGENTRY_QDRANT_URL`` names a port where nothing listens, which
nothing in these tests reaches (session events give the vector projection nothing to index)."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.support.fake_provider import API_KEY as PROVIDER_KEY
from tests.support.fake_provider import FakeProvider
from tests.support.postgres import free_port
from tests.support.sdk_sessions import PLAIN_TURN
from tests.support.serve_process import ROOT
from tests.support.server import API_KEY_SECRET, ROOT_SECRET

KEY = "agentry-serve-workers-test-key-0123456789"
NOWHERE = "http://127.0.0.1:9"  # the discard port: no Qdrant answers there


def _env(tmp_path: Path, **settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENTRY_")}
    env.update({"AGENTRY_DATA_DIR": str(tmp_path / "data"), "AGENTRY_PORT": str(free_port())})
    env.update({"AGENTRY_" + name: value for name, value in settings.items()})
    return env


def _pg_env(tmp_path: Path, postgres_url: str, fake_provider: FakeProvider | None = None) -> dict[str, str]:
    provider = {"ANTHROPIC_API_KEY": PROVIDER_KEY, "ANTHROPIC_BASE_URL": fake_provider.anthropic_base_url} if fake_provider else {}
    return _env(
        tmp_path, DATABASE_URL=postgres_url, BOOTSTRAP_API_KEY=KEY, API_KEY_SECRET=API_KEY_SECRET,
        ROOT_SECRET=ROOT_SECRET, QDRANT_URL=NOWHERE, WORKERS="2", RUNTIME_LEASE="3", LOG_LEVEL="warning", KEEP_ALIVE_TIMEOUT="600",
        HEADER_TIMEOUT="600", **provider,
    )  # fmt: skip


class Api:
    """Requests to the server, each on a new connection; ``pid_of`` says which process took one."""

    def __init__(self, port: int, supervisor: int) -> None:
        self.port = port
        self.supervisor = supervisor

    def connect(self) -> http.client.HTTPConnection:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        conn.connect()
        return conn

    def call(self, method: str, path: str, body: Any = None, conn: http.client.HTTPConnection | None = None) -> tuple[int, Any]:
        own = conn is None
        conn = conn or self.connect()
        try:
            headers = {"x-api-key": KEY, "content-type": "application/json"}
            conn.request(method, path, body=None if body is None else json.dumps(body), headers=headers)
            response = conn.getresponse()
            return response.status, json.loads(response.read() or b"null")
        finally:
            if own:
                conn.close()

    def ok(self, method: str, path: str, body: Any = None, conn: http.client.HTTPConnection | None = None) -> Any:
        status, answer = self.call(method, path, body, conn)
        assert status < 300, (status, answer)
        return answer

    def children(self) -> list[int]:
        with open(f"/proc/{self.supervisor}/task/{self.supervisor}/children") as listed:
            return [int(pid) for pid in listed.read().split()]

    def pid_of(self, conn: http.client.HTTPConnection) -> int:
        """The process holding the server's end of ``conn`` (once it answered on it)."""
        assert conn.sock is not None
        client_port = conn.sock.getsockname()[1]
        inode = _server_socket_inode(self.port, client_port)
        for pid in self.children():
            if f"socket:[{inode}]" in _open_files(pid):
                return pid
        raise AssertionError(f"no child of {self.supervisor} holds the connection from port {client_port}")

    def connection_to_each(self) -> dict[int, http.client.HTTPConnection]:
        """An open connection to each of the two processes (new ones until both took one)."""
        found: dict[int, http.client.HTTPConnection] = {}
        spare = []
        deadline = time.monotonic() + 60
        while len(found) < 2:
            assert time.monotonic() < deadline, f"only {sorted(found)} took connections; children {self.children()}"
            conn = self.connect()
            self.ok("GET", "/v1/agents?limit=1", conn=conn)
            pid = self.pid_of(conn)
            if pid in found:
                spare.append(conn)
            else:
                found[pid] = conn
        for conn in spare:
            conn.close()
        return found


def _open_files(pid: int) -> set[str]:
    found: set[str] = set()
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except FileNotFoundError:
        return found
    for fd in fds:
        try:
            found.add(os.readlink(f"/proc/{pid}/fd/{fd}"))
        except FileNotFoundError:
            pass  # closed since it was listed
    return found


def _server_socket_inode(local_port: int, remote_port: int) -> str:
    """The inode of this host's TCP socket from ``local_port`` to ``remote_port``."""
    with open("/proc/net/tcp") as table:
        next(table)
        for line in table:
            fields = line.split()
            local, remote, inode = fields[1], fields[2], fields[9]
            if int(local.split(":")[1], 16) == local_port and int(remote.split(":")[1], 16) == remote_port:
                return inode
    raise AssertionError(f"no socket from port {local_port} to port {remote_port}")


def _follower_pid(api: Api, postgres_url: str) -> int:
    """The process holding the log-following lease: the one whose socket is the lock's
    connection to PostgreSQL."""
    from infra.pg_advisory_lease import LOG_FOLLOWING_LOCK_KEY

    deadline = time.monotonic() + 60
    while True:
        with psycopg.connect(postgres_url) as conn:
            row = conn.execute(
                "SELECT a.client_port, inet_server_port() FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
                " WHERE l.locktype = 'advisory' AND l.granted AND l.objid = %s"
                " AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())",
                (LOG_FOLLOWING_LOCK_KEY,),
            ).fetchone()
        if row is not None:
            inode = _server_socket_inode(row[0], row[1])
            holders = [pid for pid in api.children() if f"socket:[{inode}]" in _open_files(pid)]
            assert len(holders) == 1, holders
            return holders[0]
        assert time.monotonic() < deadline, "no process took the log-following lease"
        time.sleep(0.1)


@contextmanager
def two_processes(env: dict[str, str]) -> Iterator[Api]:
    server = subprocess.Popen(
        [sys.executable, "-m", "interfaces.cli.main", "serve"], cwd=ROOT, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 180  # two processes start one after the other, on a shared machine
    while True:
        try:
            with socket.create_connection(("127.0.0.1", int(env["AGENTRY_PORT"])), timeout=5) as probe:
                probe.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                if probe.recv(64).startswith(b"HTTP/1.1 200"):
                    break
        except OSError:
            pass
        if time.monotonic() >= deadline or server.poll() is not None:
            server.kill()
            raise AssertionError("the server did not start:\n" + server.communicate()[0])
        time.sleep(0.2)
    try:
        yield Api(int(env["AGENTRY_PORT"]), server.pid)
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            output, _ = server.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
            output, _ = server.communicate()
        assert server.returncode == 0, output
        assert "Traceback" not in output, output


def _session(api: Api) -> tuple[str, str]:
    agent = api.ok("POST", "/v1/agents", {"name": "a", "model": "m"})
    environment = api.ok("POST", "/v1/environments", {"name": "e"})
    return agent["id"], environment["id"]


def _events(api: Api, session_id: str) -> list[dict[str, Any]]:
    return list(api.ok("GET", f"/v1/sessions/{session_id}/events?limit=1000")["data"])


def _interrupt(api: Api, session_id: str, conn: http.client.HTTPConnection | None = None) -> list[str]:
    recorded = api.ok("POST", f"/v1/sessions/{session_id}/events", {"events": [{"type": "user.interrupt"}]}, conn)
    return [event["id"] for event in recorded["data"]]


def test_more_than_one_process_is_refused_on_sqlite_and_with_the_local_vector_index(tmp_path: Path, postgres_url: str) -> None:
    def refused(env: dict[str, str], *args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "interfaces.cli.main", "serve", *args], cwd=ROOT, env=env,
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert done.returncode == 2, done.stdout + done.stderr
        return done.stderr

    sqlite = refused(_env(tmp_path, BOOTSTRAP_API_KEY=KEY), "--workers", "2")
    assert "2 API processes need AGENTRY_DATABASE_URL (PostgreSQL)" in sqlite
    assert not (tmp_path / "data").exists(), "nothing was created"
    local = _env(
        tmp_path, DATABASE_URL=postgres_url, BOOTSTRAP_API_KEY=KEY, API_KEY_SECRET=API_KEY_SECRET, ROOT_SECRET=ROOT_SECRET, WORKERS="3"
    )
    assert "3 API processes need AGENTRY_QDRANT_URL (a Qdrant server)" in refused(local)
    assert "at least 1" in refused(local, "--workers", "0")


def _two_free_ports() -> int:
    """A port p with p + 1 free too (each API process serves metrics on the base + its index)."""
    while True:
        base = free_port()
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", base + 1))
            except OSError:
                continue
        return base


def _scrape(port: int) -> dict[tuple[str, str, str], float]:
    """``agentry_http_requests_total`` by (method, route, status) on one process's metrics port."""
    from prometheus_client.parser import text_string_to_metric_families

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", "/metrics")
    text = conn.getresponse().read().decode()
    conn.close()
    counts: dict[tuple[str, str, str], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "agentry_http_requests_total":
                key = (sample.labels["method"], sample.labels["route"], sample.labels["status"])
                counts[key] = counts.get(key, 0.0) + sample.value
    return counts


def test_two_processes_share_sessions_tails_lists_and_turns(tmp_path: Path, postgres_url: str, fake_provider: FakeProvider) -> None:
    metrics_port = _two_free_ports()
    env = {**_pg_env(tmp_path, postgres_url, fake_provider), "AGENTRY_METRICS_PORT": str(metrics_port)}
    with two_processes(env) as api:
        conns = api.connection_to_each()
        (first, a), (second, b) = conns.items()
        agent_id, environment_id = _session(api)

        # Sessions created through both processes; every list shows each exactly once.
        created = []
        for n in range(12):
            conn = a if n % 2 else b
            created.append(api.ok("POST", "/v1/sessions", {"agent": agent_id, "environment_id": environment_id}, conn)["id"])
        deadline = time.monotonic() + 30
        while True:
            listed = [s["id"] for s in api.ok("GET", "/v1/sessions?limit=100")["data"]]
            if set(created) <= set(listed) or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert sorted(listed) == sorted(created), "every session listed, none twice"

        # A tail on one process sees appends made through the other, in order, with no gap.
        session_id = created[0]
        tail = api.connect()
        tail.request("GET", f"/v1/sessions/{session_id}/events/stream", headers={"x-api-key": KEY})
        stream = tail.getresponse()
        assert stream.status == 200
        writer = a if api.pid_of(tail) != api.pid_of(a) else b
        assert api.pid_of(writer) != api.pid_of(tail)
        acked = []
        for _ in range(30):
            acked += _interrupt(api, session_id, writer)
        seen: list[tuple[int, str]] = []
        seq = 0
        while len(seen) < len(acked):
            line = stream.readline().decode()
            if line.startswith("id: "):
                seq = int(line[4:])
            elif line.startswith("data: "):
                seen.append((seq, json.loads(line[6:])["id"]))
        tail.close()
        assert [event_id for _, event_id in seen] == acked
        assert [seq for seq, _ in seen] == list(range(seen[0][0], seen[0][0] + len(seen))), "no gap"

        # Appends through both processes to one session: one log, each event once, in seq order.
        both = []
        for n in range(20):
            both += _interrupt(api, created[1], a if n % 2 else b)
        log = _events(api, created[1])
        assert [event["id"] for event in log] == both

        # A turn asked for through one process is taken once, by one of them.
        turn_session = created[2]
        api.ok(
            "POST", f"/v1/sessions/{turn_session}/events",
            {"events": [{"type": "user.message", "content": [{"type": "text", "text": "hi"}]}]}, a,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while (types := [e["type"] for e in _events(api, turn_session)])[-1:] != ["session.status_idle"]:
            assert time.monotonic() < deadline, types
            time.sleep(0.1)
        assert [e["type"] for e in _events(api, turn_session)] == ["user.message", *PLAIN_TURN]
        assert len(fake_provider.requests) == 1

        # Every projection reached the head of the log, each event applied once.
        status = _projections_status(env, deadline=time.monotonic() + 30)
        assert status and all(behind == 0 for behind in status.values()), status

        # Metrics: each process on its own port, together counting every session created;
        # the shared port says where they are instead of answering for one of them at random.
        created_counts = [_scrape(metrics_port + index).get(("POST", "/v1/sessions", "200"), 0.0) for index in (0, 1)]
        assert sum(created_counts) == len(created) and all(count > 0 for count in created_counts), created_counts
        shared, body = api.call("GET", "/metrics")
        assert shared == 404 and "AGENTRY_METRICS_PORT" in body["error"]["message"], (shared, body)
        for conn in conns.values():
            conn.close()
        assert first != second


def _projections_status(env: dict[str, str], deadline: float) -> dict[str, int]:
    while True:
        done = subprocess.run(
            [sys.executable, "-m", "interfaces.cli.main", "projections", "status"], cwd=ROOT, env=env,
            capture_output=True, text=True, timeout=60, check=True,
        )  # fmt: skip
        status = {line.split()[0]: int(line.split("behind")[1].split()[0]) for line in done.stdout.splitlines() if "behind" in line}
        if all(behind == 0 for behind in status.values()) or time.monotonic() > deadline:
            return status
        time.sleep(0.2)


def test_a_sigkilled_process_running_the_projections_loses_nothing_acknowledged(tmp_path: Path, postgres_url: str) -> None:
    env = _pg_env(tmp_path, postgres_url)
    with two_processes(env) as api:
        conns = api.connection_to_each()
        for conn in conns.values():
            conn.close()
        victim = _follower_pid(api, postgres_url)  # the process that runs the projections
        agent_id, environment_id = _session(api)
        sessions = [api.ok("POST", "/v1/sessions", {"agent": agent_id, "environment_id": environment_id})["id"] for _ in range(4)]
        acked: dict[str, list[str]] = {session_id: [] for session_id in sessions}
        failures: list[str] = []
        killed = threading.Event()
        after_kill = [0]

        def load(session_id: str) -> None:
            while len(acked[session_id]) < 120:
                try:
                    ids = _interrupt(api, session_id)
                except (OSError, http.client.HTTPException, AssertionError) as error:
                    failures.append(type(error).__name__)  # not acknowledged: the client tries again
                    continue
                acked[session_id] += ids
                if killed.is_set():
                    after_kill[0] += 1

        threads = [threading.Thread(target=load, args=(s,)) for s in sessions]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 120
        while sum(len(ids) for ids in acked.values()) < 100:
            assert time.monotonic() < deadline and all(t.is_alive() for t in threads), failures[-5:]
            time.sleep(0.01)
        os.kill(victim, signal.SIGKILL)
        killed.set()
        for thread in threads:
            thread.join(timeout=300)

        assert after_kill[0] > 0, "the other process went on serving"
        for session_id, ids in acked.items():
            logged = [event["id"] for event in _events(api, session_id)]
            assert set(ids) <= set(logged), f"{len(set(ids) - set(logged))} acknowledged events lost"
            assert len(logged) == len(set(logged))
        # The supervisor started another process in the dead one's place.
        deadline = time.monotonic() + 60
        while victim in api.children() or len(api.children()) < 2:
            assert time.monotonic() < deadline, api.children()
            time.sleep(0.1)
        assert len(api.connection_to_each()) == 2
        # The survivor (or the new process) follows the log now: new sessions reach the list.
        assert _follower_pid(api, postgres_url) != victim
        later = api.ok("POST", "/v1/sessions", {"agent": agent_id, "environment_id": environment_id})["id"]
        deadline = time.monotonic() + 60
        while later not in {s["id"] for s in api.ok("GET", "/v1/sessions?limit=100")["data"]}:
            assert time.monotonic() < deadline, "the projections stopped with the process that ran them"
            time.sleep(0.1)


@pytest.fixture(autouse=True)
def _linux_only() -> None:
    if not os.path.exists("/proc/net/tcp"):
        pytest.fail("these tests find which process holds a connection through /proc (Linux)")
