"""Tool round trips through the environments work queue: N sessions each make ``--calls``
trivial ``bash`` calls (``--command``, default ``true``) that a worker runs, against the same
number of calls of the same tool run with no server between.

Per N it prints round trips/s through the queue ÷ baseline calls/s, and the latency the queue
adds: p50 / p99 over every call of (its round trip − the baseline's median call).

- round trip: measured at the fake provider, from writing the last byte of the answer that
  carries the ``bash`` tool_use (``RecordedRequest.answered_at``) to reading the next model
  request of that session, the one that carries its tool_result (``received_at``). So it holds
  everything between two model requests and nothing of the model: recording the answer and
  the ``agent.tool_use``, its delivery to the worker on the session's SSE stream, the SDK
  runner's dispatch, the tool itself, the worker's POST of the result, recording it,
  continuing the turn, and the next request to the provider.
- rate: round trips ÷ the window from the first one's start to the last one's end (the fake
  answers at once, so the model's share of the window is a few ms per call).
- where the time goes (p50s; ``processed_at`` is stamped as an event is made, just before its
  append commits): answer → ``agent.tool_use`` recorded; recorded → the worker starts
  executing (its log line "executing tool", self-hosted only); → the result recorded
  (``user.tool_result`` / ``agent.tool_result``); → the next model request read. And the
  round trip's p50 over the first and the last tenth of each session's calls: the log, and
  the transcript sent to the model, grow with every call.
- CPU: what every process of the run spent (``/proc``) from the confirmations to the last
  session's idle, per round trip, by its part: the server, the SDK workers (with their bash),
  the sandbox worker and its sandboxes, the fake, this process (with ``--postgres`` the
  database's own CPU is not counted); beside it the baseline's CPU per call.

Self-hosted (default): an environment ``{type: self_hosted}`` with an environment key, and
N processes of the official SDK's ``EnvironmentWorker``, unchanged (it serves one session at a
time per process). Baseline: N processes, each running the SDK toolset's own ``bash``
(``beta_agent_toolset_20260401(AgentToolContext(…))``, the tool the worker calls) ``--calls``
times in a row, in-process.

``--sandbox``: a ``cloud`` environment served by the ``agentry sandbox-worker`` that
``agentry serve`` starts (one process, N sessions at once, needs root and bubblewrap).
Baseline: one process, N sessions' sandboxes (``infra.sandbox``) each running the same calls
through ``sandbox_tools``, the tools that worker hands the SDK runner.

Every N gets a fresh ``agentry serve`` (embedded SQLite, or ``--postgres``, self-hosted only)
with the default Anthropic provider pointed at a fake in a child process. Each agent has the
built-in toolset with ``glob`` on ``always_ask``: every session's first call is a ``glob``
that waits for its confirmation, so the workers pick their items up (poll, ack, heartbeat,
stream and reconcile; the sandbox and its helper) before anything is timed, and the N
sessions start together once every process of the run is quiet and all are confirmed. The
fake answers requests in the order they come from one script (N ``glob`` calls, N ×
``--calls`` ``bash`` calls, then a text that ends each turn), so the sessions share the calls,
not always evenly.

    .venv/bin/python bench/tools.py [--sessions 1,4] [--calls 100] [--command true] [--sandbox] [--postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import anthropic
import httpx
from _support import BENCH_KEY, ROOT, agentry_server, scratch_database

MARK = "bench-tools "
EXECUTING = "executing tool tool=bash tool_use_id="
TOOLSET = {
    "type": "agent_toolset_20260401",
    "configs": [{"name": "glob", "permission_policy": {"type": "always_ask"}}],
}


# -- the fake provider: a child process -----------------------------------------------------


def _serve_fake() -> None:
    """Runs the fake provider and prints its URL; then answers lines on stdin until it closes:
    ``script N CALLS COMMAND`` (N glob calls, then N × CALLS bash calls, then text),
    ``count`` (requests so far) and ``dump`` (every request's timings, one JSON line)."""
    sys.path.insert(0, str(ROOT))
    from tests.support.fake_provider import FakeProvider, Reply, Text, ToolUse

    with FakeProvider() as fake:
        fake.default = Reply([Text("done")])
        print(fake.anthropic_base_url, flush=True)
        for line in sys.stdin:
            words = line.split(maxsplit=3)
            if words[:1] == ["script"]:
                count, calls, command = int(words[1]), int(words[2]), words[3].rstrip("\n")
                fake.script(*[Reply([ToolUse("glob", {"pattern": "*.gate"})]) for _ in range(count)])
                fake.script(*[Reply([ToolUse("bash", {"command": command})]) for _ in range(count * calls)])
                print("scripted", flush=True)
            elif words[:1] == ["count"]:
                print(len(fake.requests), flush=True)
            elif words[:1] == ["dump"]:
                taken, fake.requests = fake.requests, []
                to_wall = time.time() - time.monotonic()  # the events' processed_at is wall-clock
                rows = []
                for request in taken:
                    messages = request.body.get("messages", []) if isinstance(request.body, dict) else []
                    first = json.dumps(messages[0].get("content")) if messages else ""
                    marker = first.split(MARK, 1)[1].split('"', 1)[0] if MARK in first else ""
                    previous = messages[-2].get("content") if len(messages) >= 2 else None
                    answered = next(
                        (b.get("name") for b in previous or [] if isinstance(b, dict) and b.get("type") == "tool_use"), None
                    ) if isinstance(previous, list) else None
                    rows.append([
                        marker, len(messages), request.received_at + to_wall, request.answered_at + to_wall,
                        answered, len(request.violations),
                    ])
                print(json.dumps(rows), flush=True)


class Fake:
    def __init__(self) -> None:
        self.child = subprocess.Popen(
            [sys.executable, __file__, "--fake"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        self.url = self._ask(None)
        if not self.url.startswith("http"):
            sys.exit("bench: the fake provider did not start")

    def _ask(self, line: str | None) -> str:
        assert self.child.stdin is not None and self.child.stdout is not None
        if line is not None:
            self.child.stdin.write(line + "\n")
            self.child.stdin.flush()
        return self.child.stdout.readline().strip()

    def script(self, count: int, calls: int, command: str) -> None:
        self._ask(f"script {count} {calls} {command}")

    def count(self) -> int:
        return int(self._ask("count"))

    def dump(self) -> list[list[Any]]:
        rows: list[list[Any]] = json.loads(self._ask("dump"))
        return rows

    def close(self) -> None:
        assert self.child.stdin is not None
        self.child.stdin.close()
        self.child.wait(timeout=20)


# -- the SDK's worker, unchanged, one process per session -----------------------------------


def _serve_worker(base_url: str, environment_id: str, environment_key: str, workdir: str) -> None:
    """As tests/support/environment_worker.py, with the runner's "executing tool" lines
    stamped (wall clock) on stderr."""
    import logging

    logging.basicConfig(level=logging.WARNING, format="%(created).6f %(name)s %(message)s")
    logging.getLogger("anthropic.lib.tools._beta_session_runner").setLevel(logging.INFO)

    async def serve() -> None:
        client = anthropic.AsyncAnthropic(base_url=base_url, api_key="not-used-by-the-worker", max_retries=2)
        worker = client.beta.environments.work.worker(
            environment_id=environment_id, environment_key=environment_key, workdir=workdir, memory_sync_interval=None
        )
        print("worker polling", flush=True)
        await worker.run()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve())


@contextlib.contextmanager
def sdk_workers(base: str, environment_id: str, key: str, count: int, scratch: Path) -> Iterator[list[Path]]:
    """``count`` worker processes, each with its own workdir; yields their stderr files."""
    processes, logs = [], []
    try:
        for i in range(count):
            workdir, log = scratch / f"worker-{i}", scratch / f"worker-{i}.log"
            workdir.mkdir()
            with log.open("w") as stderr:
                processes.append(subprocess.Popen(
                    [sys.executable, __file__, "--worker", base, environment_id, key, str(workdir)],
                    stdout=subprocess.PIPE, stderr=stderr, text=True,
                ))
            logs.append(log)
        for process, log in zip(processes, logs, strict=True):
            assert process.stdout is not None
            if process.stdout.readline().strip() != "worker polling":
                sys.exit("bench: an environment worker did not start:\n" + log.read_text()[-2000:])
        yield logs
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)


def executing_times(logs: list[Path]) -> dict[str, float]:
    """agent.tool_use event id → when a worker began executing it (wall clock)."""
    found = {}
    for log in logs:
        for line in log.read_text().splitlines():
            if EXECUTING in line:
                found[line.split(EXECUTING, 1)[1].split()[0]] = float(line.split(" ", 1)[0])
    return found


# -- the baseline: the same tool, no server between -----------------------------------------


def _run_baseline(kind: str, sessions: int, calls: int, command: str, where: str, config: str) -> None:
    """Prints "ready" once set up, waits for a line on stdin, runs ``calls`` calls of the
    ``bash`` tool in each of ``sessions`` concurrent sessions, prints each call's
    [start, end] (time.monotonic(), one clock for every process) and the CPU seconds it and
    its children spent meanwhile as one JSON line."""

    from anthropic.lib.tools import ToolError

    async def run() -> None:
        tools: list[Any] = []
        sandboxes: list[Any] = []
        if kind == "sdk":
            from anthropic.lib.tools.agent_toolset import AgentToolContext, beta_agent_toolset_20260401

            for i in range(sessions):
                workdir = Path(where) / f"baseline-{i}"
                workdir.mkdir(exist_ok=True)
                tools.append(next(t for t in beta_agent_toolset_20260401(AgentToolContext(workdir=workdir)) if t.name == "bash"))
        else:
            sys.path.insert(0, str(ROOT))
            from infra.sandbox import Sandbox, sandbox_tools

            settings = json.loads(config)
            os.chmod(where, 0o711)  # each session's uid must reach its own directory
            sandboxes = await asyncio.gather(*(
                Sandbox.create(where, f"sesn_bench_{i}", networking=settings.get("networking"), packages=settings.get("packages"))
                for i in range(sessions)
            ))
            tools = [next(t for t in sandbox_tools(s) if t.name == "bash") for s in sandboxes]
        print("ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        spans: list[list[float]] = []

        async def session(tool: Any) -> None:
            for _ in range(calls):
                started = time.monotonic()
                with contextlib.suppress(ToolError):  # a failing command: the runner's error result
                    await tool.call({"command": command})
                spans.append([started, time.monotonic()])

        cpu = tree_cpu(os.getpid())
        try:
            await asyncio.gather(*(session(tool) for tool in tools))
            cpu = tree_cpu(os.getpid()) - cpu
        finally:
            from anthropic.lib.tools._beta_functions import aclose_runnable_tool

            for tool in tools:
                await aclose_runnable_tool(tool)  # the bash process, as the runner closes it
            for sandbox in sandboxes:
                await sandbox.close()
        print(json.dumps({"spans": spans, "cpu": cpu}), flush=True)

    asyncio.run(run())


def baseline(sandbox: bool, sessions: int, calls: int, command: str, config: dict[str, Any]) -> tuple[list[list[float]], float]:
    """The worker's shape: a process per session (the SDK worker), or one for all (the sandbox worker)."""
    shape = [("sandbox", sessions)] if sandbox else [("sdk", 1)] * sessions
    with tempfile.TemporaryDirectory(prefix="agentry-bench-") as where:
        # Their stderr is kept apart: asyncio's child watcher may note the bash the SDK's
        # tool kills on close ("Unknown child process pid …"); it is shown only on a failure.
        errors = Path(where) / "stderr"
        with errors.open("w") as stderr:
            children = [
                subprocess.Popen(
                    [sys.executable, __file__, "--baseline", kind, str(count), str(calls), command, where, json.dumps(config)],
                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr, text=True,
                )
                for kind, count in shape
            ]
        for child in children:
            assert child.stdout is not None
            if child.stdout.readline().strip() != "ready":
                sys.exit("bench: the baseline did not start:\n" + errors.read_text()[-2000:])
        for child in children:
            assert child.stdin is not None
            child.stdin.write("go\n")
            child.stdin.flush()
        spans, cpu = [], 0.0
        for child in children:
            output, _ = child.communicate(timeout=600)
            if child.returncode != 0 or not output.strip():
                sys.exit("bench: the baseline failed:\n" + errors.read_text()[-2000:])
            measured = json.loads(output.strip().splitlines()[-1])
            spans.extend(measured["spans"])
            cpu += measured["cpu"]
        return spans, cpu


# -- CPU by process ------------------------------------------------------------------------

TICKS = os.sysconf("SC_CLK_TCK")


def process_table() -> dict[int, tuple[int, float, str]]:
    """pid → (parent pid, CPU seconds so far, command line) of every process on the machine."""
    found: dict[int, tuple[int, float, str]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
            command = (stat.parent / "cmdline").read_bytes()
        except OSError:
            continue
        fields = text.rsplit(")", 1)[1].split()
        found[int(stat.parent.name)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / TICKS, command.decode(errors="replace"))
    return found


def tree_cpu(root: int) -> float:
    """CPU seconds so far of ``root`` and every process below it."""
    table = process_table()
    children: dict[int, list[int]] = {}
    for pid, (parent, _, _) in table.items():
        children.setdefault(parent, []).append(pid)
    total, todo = 0.0, [root]
    while todo:
        pid = todo.pop()
        total += table[pid][1] if pid in table else 0.0
        todo.extend(children.get(pid, []))
    return total


def cpu_snapshot(fake_pid: int) -> dict[int, tuple[str, float]]:
    """pid → (its part, CPU seconds so far) for every process under this one: "bench" (this
    process), "fake provider", "server" (agentry serve), "sandbox worker" (its child),
    "sandboxes" (below that), "workers" (the SDK workers and their bash)."""
    found = process_table()
    me = os.getpid()
    below = {"server": "sandbox worker", "sandbox worker": "sandboxes"}

    def part(pid: int, depth: int = 0) -> str | None:
        if pid == me:
            return "bench"
        if pid == fake_pid:
            return "fake provider"
        if pid not in found or depth > 20:
            return None
        parent, _, command = found[pid]
        if parent == me:
            return "server" if "\0serve\0" in command else "workers"
        above = part(parent, depth + 1)
        return None if above is None or above == "bench" else below.get(above, above)

    return {pid: (role, found[pid][1]) for pid in found if (role := part(pid)) is not None}


def cpu_by_role(before: dict[int, tuple[str, float]], after: dict[int, tuple[str, float]]) -> dict[str, float]:
    spent: dict[str, float] = {}
    for pid, (role, seconds) in after.items():
        spent[role] = spent.get(role, 0.0) + seconds - (before[pid][1] if pid in before else 0.0)
    return spent


# -- through the queue ----------------------------------------------------------------------


def _wait(what: str, done: Any, logs: list[Path], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            sys.exit(f"bench: timed out waiting for {what}{_tails(logs)}")
        time.sleep(0.2)


def _seconds(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def _tails(logs: list[Path]) -> str:
    return "".join(f"\n--- {log.name}:\n{log.read_text()[-1500:]}" for log in logs if log.exists())


def quiet() -> bool:
    """Whether this process and all below it used under a tenth of a core for half a second."""
    before = tree_cpu(os.getpid())
    time.sleep(0.5)
    return tree_cpu(os.getpid()) - before < 0.05


@dataclass
class Run:
    rows: list[list[Any]]  # the fake's requests: marker, messages, received, answered, answered tool, violations
    events: dict[str, list[Any]]  # session id → its events
    markers: dict[str, str]  # marker → session id
    executing: dict[str, float]  # agent.tool_use id → when a worker began executing it
    config: dict[str, Any]  # the environment's
    cpu: dict[str, float]  # CPU seconds spent while the calls ran, by the part a process plays
    pickup: list[float]  # per work item: created → acknowledged by a worker (self-hosted)


def through_the_queue(database_url: str, fake: Fake, sandbox: bool, count: int, calls: int, command: str) -> Run:
    os.environ["AGENTRY_SANDBOX_WORKERS"] = "1" if sandbox else "0"
    os.environ["AGENTRY_SANDBOX_SLOTS"] = str(max(8, count))
    if sandbox:
        config: dict[str, Any] = {"type": "cloud", "networking": {"type": "limited", "allowed_hosts": []}}
    else:
        config = {"type": "self_hosted"}
    with tempfile.TemporaryDirectory(prefix="agentry-bench-") as where, contextlib.ExitStack() as stack:
        scratch = Path(where)
        logs = [scratch / "server.log"]
        if sandbox:  # the sandboxes live here too, so nothing is left behind; each uid must reach its own
            os.chmod(scratch, 0o711)
            os.environ["AGENTRY_SANDBOX_ROOT"] = str(scratch / "sandboxes")
        base = stack.enter_context(agentry_server(database_url, scratch / "data", log=logs[0]))
        http = stack.enter_context(httpx.Client(base_url=base, headers={"x-api-key": BENCH_KEY}, timeout=60))
        environment = http.post("/v1/environments", json={"name": "bench", "config": config}).raise_for_status().json()
        agent = http.post(
            "/v1/agents", json={"name": "bench", "model": "claude-sonnet-4-6", "tools": [TOOLSET]}
        ).raise_for_status().json()
        session_ids = [
            http.post("/v1/sessions", json={"agent": agent["id"], "environment_id": environment["id"]}).raise_for_status().json()["id"]
            for _ in range(count)
        ]
        markers = {str(i): sid for i, sid in enumerate(session_ids)}
        if not sandbox:
            key = http.post(f"/v1/environments/{environment['id']}/keys", json={"name": "bench"}).raise_for_status().json()["key"]
            logs += stack.enter_context(sdk_workers(base, environment["id"], key, count, scratch))
        fake.script(count, calls, command)
        for marker, sid in markers.items():
            say = {"type": "user.message", "content": [{"type": "text", "text": MARK + marker}]}
            http.post(f"/v1/sessions/{sid}/events", json={"events": [say]}).raise_for_status()

        def idle() -> bool:
            return all(http.get(f"/v1/sessions/{sid}").raise_for_status().json()["status"] == "idle" for sid in session_ids)

        def taken() -> bool:
            stats = http.get(f"/v1/environments/{environment['id']}/work/stats").raise_for_status().json()
            return bool(stats["depth"] == 0 and stats["pending"] == 0)

        # The gate: every session waits for its glob's confirmation, every item is claimed and
        # acknowledged. A worker then still starts serving (the sandbox and its helper's SDK
        # import; the heartbeat, the session, the runner's stream and its reconcile), so
        # nothing is timed until every process of the run has gone quiet.
        _wait("the sessions' first calls", lambda: fake.count() >= count and idle(), logs)
        _wait("the workers to take the sessions", taken, logs)
        _wait("the workers to settle", quiet, logs)
        pickup: list[float] = []
        if not sandbox:  # how long an item waited for a worker (its list takes the environment key)
            items = http.get(
                f"/v1/environments/{environment['id']}/work", headers={"authorization": f"Bearer {key}", "x-api-key": ""}
            ).raise_for_status().json()["data"]
            pickup = [_seconds(item["acknowledged_at"]) - _seconds(item["created_at"]) for item in items if item.get("acknowledged_at")]
        print("  every session is held by its worker; confirming the gate calls …", flush=True)
        cpu_before = cpu_snapshot(fake.child.pid)
        for sid in session_ids:
            log = http.get(f"/v1/sessions/{sid}/events", params={"limit": 100}).raise_for_status().json()["data"]
            use = next(e for e in log if e["type"] == "agent.tool_use")
            confirm = {"type": "user.tool_confirmation", "tool_use_id": use["id"], "result": "allow"}
            http.post(f"/v1/sessions/{sid}/events", json={"events": [confirm]}).raise_for_status()
        total = count * (calls + 2)
        last, seen, stalled = time.monotonic(), 0, time.monotonic()
        # Only the fake is asked while the calls run (it is another process): the server
        # hears nothing from this loop until the last model request has arrived.
        while (got := fake.count()) < total or not idle():
            if got != seen:
                seen, stalled = got, time.monotonic()
            elif time.monotonic() - stalled > 60:
                sys.exit(f"bench: no model request for 60 s ({got}/{total}){_tails(logs)}")
            if time.monotonic() - last >= 2:
                last = time.monotonic()
                print(f"    {max(0, got - 2 * count)}/{count * calls} round trips", flush=True)
            time.sleep(0.25)
        cpu = cpu_by_role(cpu_before, cpu_snapshot(fake.child.pid))
        rows = fake.dump()
        client = anthropic.Anthropic(base_url=base, api_key=BENCH_KEY, max_retries=0)
        events = {sid: list(client.beta.sessions.events.list(sid, limit=1000)) for sid in session_ids}
        run = Run(rows, events, markers, {}, dict(environment.get("config") or config), cpu, pickup)
        stack.close()  # the workers stop, then the server: the workers' logs are complete
        run.executing = executing_times(logs[1:])
        return run


# -- the figures ----------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))] if ordered else float("nan")


def p50(values: list[float]) -> float:
    return statistics.median(values) * 1000 if values else float("nan")


def summarise(run: Run, spans: list[list[float]], base_cpu: float) -> dict[str, Any]:
    trips: list[tuple[float, float]] = []
    early: list[float] = []  # the round trips of the first tenth of each session's calls
    late: list[float] = []  # of the last tenth: the log (and the transcript) is longer
    parts: dict[str, list[float]] = {"recorded": [], "to_worker": [], "worker": [], "result": [], "next": []}
    errors = 0
    by_session: dict[str, list[list[Any]]] = {}
    for row in run.rows:
        by_session.setdefault(row[0], []).append(row)
    for marker, rows in by_session.items():
        rows.sort(key=lambda r: r[1])  # by message count: the session's requests in order
        pairs = [(a, b) for a, b in zip(rows, rows[1:], strict=False) if b[4] == "bash"]
        trips.extend((a[3], b[2]) for a, b in pairs)
        tenth = max(1, len(pairs) // 10)
        early.extend(b[2] - a[3] for a, b in pairs[:tenth])
        late.extend(b[2] - a[3] for a, b in pairs[-tenth:])
        log = run.events.get(run.markers.get(marker, ""), [])
        uses = [e for e in log if e.type == "agent.tool_use" and e.name == "bash"]
        results = {e.tool_use_id: e for e in log if e.type in ("user.tool_result", "agent.tool_result")}
        errors += sum(1 for u in uses if u.id not in results or results[u.id].is_error)
        if len(uses) != len(pairs):
            continue  # cannot pair the log with the fake's view: no breakdown for this session
        for (a, b), use in zip(pairs, uses, strict=True):
            result = results.get(use.id)
            if result is None:
                continue
            recorded, answered = use.processed_at.timestamp(), result.processed_at.timestamp()
            parts["recorded"].append(recorded - a[3])
            parts["result"].append(answered - recorded)
            parts["next"].append(b[2] - answered)
            if use.id in run.executing:
                parts["to_worker"].append(run.executing[use.id] - recorded)
                parts["worker"].append(answered - run.executing[use.id])
    durations = [end - start for start, end in spans]
    base_call = statistics.median(durations)
    window = max(end for _, end in trips) - min(start for start, _ in trips)
    rate = len(trips) / window
    base_rate = len(spans) / (max(end for _, end in spans) - min(start for start, _ in spans))
    added = [(end - start) - base_call for start, end in trips]
    return {
        "trips": len(trips),
        "rate": rate,
        "base_rate": base_rate,
        "ratio": rate / base_rate,
        "trip_p50": p50([end - start for start, end in trips]),
        "trip_p99": percentile([end - start for start, end in trips], 0.99) * 1000,
        "early_p50": p50(early),
        "late_p50": p50(late),
        "base_p50": base_call * 1000,
        "base_p99": percentile(durations, 0.99) * 1000,
        "added_p50": p50(added),
        "added_p99": percentile(added, 0.99) * 1000,
        "parts": {name: p50(values) for name, values in parts.items()},
        "errors": errors,
        "violations": sum(r[5] for r in run.rows),
        "pickup": p50(run.pickup),
        "cpu": {role: seconds * 1000 / len(trips) for role, seconds in sorted(run.cpu.items(), key=lambda i: -i[1])},
        "cores": sum(run.cpu.values()) / window,
        "cpu_total": sum(run.cpu.values()) * 1000 / len(trips),
        "base_cpu": base_cpu * 1000 / len(spans),
    }


def report(row: dict[str, Any], sandbox: bool) -> None:
    parts = row["parts"]
    worker = (
        f"→ result recorded {parts['result']:.1f} ms" if sandbox
        else f"→ worker executing {parts['to_worker']:.1f} ms → result recorded {parts['worker']:.1f} ms"
    )
    cpu = ", ".join(f"{role} {ms:.1f}" for role, ms in row["cpu"].items())
    print(
        f"  {row['rate']:.1f} round trips/s ÷ baseline {row['base_rate']:.1f} calls/s = {row['ratio']:.3f}; "
        f"added p50 {row['added_p50']:.1f} ms p99 {row['added_p99']:.1f} ms\n"
        f"  round trip p50 {row['trip_p50']:.1f} ms p99 {row['trip_p99']:.1f} ms (p50 over the first tenth of each "
        f"session's calls {row['early_p50']:.1f} ms, the last tenth {row['late_p50']:.1f} ms); "
        f"baseline call p50 {row['base_p50']:.2f} ms p99 {row['base_p99']:.2f} ms\n"
        f"  where, p50: model answered → tool_use recorded {parts['recorded']:.1f} ms {worker} "
        f"→ next model request {parts['next']:.1f} ms\n"
        f"  CPU per round trip {row['cpu_total']:.1f} ms ({cpu}; {row['cores']:.2f} cores busy), "
        f"per baseline call {row['base_cpu']:.2f} ms; "
        f"{row['trips']} round trips, {row['errors']} error results, {row['violations']} invalid model requests",
        flush=True,
    )
    if not sandbox:
        print(f"  untimed: a work item waited p50 {row['pickup']:.0f} ms for a worker to acknowledge it", flush=True)


def main() -> None:
    if sys.argv[1:2] == ["--fake"]:
        _serve_fake()
        return
    if sys.argv[1:2] == ["--worker"]:
        _serve_worker(*sys.argv[2:6])
        return
    if sys.argv[1:2] == ["--baseline"]:
        kind, sessions, calls, command, where, config = sys.argv[2:8]
        _run_baseline(kind, int(sessions), int(calls), command, where, config)
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", default="1,4", help="concurrent sessions, one measurement each")
    parser.add_argument("--calls", type=int, default=100, help="bash calls per session")
    parser.add_argument("--command", default="true", help="the bash command each call runs")
    parser.add_argument("--rounds", type=int, default=1, help="measure each N this many times")
    parser.add_argument("--sandbox", action="store_true", help="a cloud environment on agentry sandbox-worker")
    parser.add_argument("--postgres", action="store_true", help="a scratch PostgreSQL database (self-hosted only)")
    args = parser.parse_args()
    if args.sandbox and args.postgres:
        sys.exit("bench: --sandbox needs the embedded server (it starts the sandbox worker)")
    if args.sandbox and os.geteuid() != 0:
        sys.exit("bench: --sandbox needs root (and bubblewrap)")
    counts = [int(n) for n in args.sessions.split(",")]
    shape = "cloud environment, agentry sandbox-worker" if args.sandbox else "self-hosted environment, SDK EnvironmentWorker per session"
    rows = []
    with contextlib.ExitStack() as stack:
        fake = Fake()
        stack.callback(fake.close)
        os.environ["AGENTRY_ANTHROPIC_API_KEY"] = "fake-provider-key-0123456789abcdef"
        os.environ["AGENTRY_ANTHROPIC_BASE_URL"] = fake.url
        database_url = stack.enter_context(scratch_database()) if args.postgres else ""
        print(
            f"{shape}; {'PostgreSQL' if args.postgres else 'embedded SQLite'}; each call: bash {args.command!r}; "
            "the fake provider answers at once",
            flush=True,
        )
        for _ in range(args.rounds):
            for count in counts:
                print(f"{count} session{'s' * (count > 1)} × {args.calls} calls through the queue …", flush=True)
                run = through_the_queue(database_url, fake, args.sandbox, count, args.calls, args.command)
                print(f"  baseline: the same {count * args.calls} calls with no server between …", flush=True)
                spans, base_cpu = baseline(args.sandbox, count, args.calls, args.command, run.config)
                row = {"count": count, **summarise(run, spans, base_cpu)}
                rows.append(row)
                report(row, args.sandbox)
    print()
    print("added: a round trip (the model's answer → its next request) − the baseline's median call")
    print(f"{'N':>4} {'trips/s':>8} {'baseline/s':>11} {'ratio':>7} {'added p50':>10} {'added p99':>10} {'CPU/trip':>9}")
    for row in rows:
        print(
            f"{row['count']:>4} {row['rate']:>8.1f} {row['base_rate']:>11.1f} {row['ratio']:>7.3f} "
            f"{row['added_p50']:>7.1f} ms {row['added_p99']:>7.1f} ms {row['cpu_total']:>6.1f} ms"
        )


if __name__ == "__main__":
    main()
