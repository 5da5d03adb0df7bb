"""Proxied chat completions: ``POST /v1/chat/completions`` through Agentry ÷ the same request
sent straight to the fake provider it proxies to, both driven by `wrk` in the same run.

For each concurrency C (``--concurrency 1,8,32``) it prints:

- throughput: completions/s through Agentry ÷ completions/s direct (wrk, C connections,
  closed loop: each connection sends its next request when the last one is answered);
- the latency Agentry adds: p50 (p99) of wrk's per-request latency through Agentry − p50
  (p99) direct. wrk times each request from its first byte written to its response's last
  byte read, so with ``--stream`` a request ends at ``data: [DONE]``;
- that every response was right: wrk's non-2xx count, its socket errors (connect, read,
  write, timeout), and a check of every body in wrk's ``response`` hook (non-streaming: a
  200 holding the fake's whole reply text; streaming: a 200 ending in ``data: [DONE]`` with
  no error frame). Any failure is printed and marks the row.

The provider is ``tests/support/fake_provider.py`` in a child process (its own GIL), answering
every request after ``--latency`` (default 50 ms) with ``--tokens`` tokens and no delay
between them, so a streamed and a plain answer take the provider the same time (Agentry's
runtime always streams from the provider; the direct baseline sends the client's body as
is). The fake times each request it serves (read → last byte written); the p50 of that is
printed for both legs so a slower provider under the heavier load shows.

Agentry: a fresh `agentry serve` per C (embedded SQLite, or ``--postgres`` for a scratch
database) with an ``oai-compatible`` model card aimed at the fake (created with its probe,
which the fake answers), one checked completion, then ``--warmup`` seconds of wrk load not
counted. Every completion through Agentry is a full recorded turn: a new session, its
events, the runtime's model request, the reply read back from the session's log. The body is
the same both ways: one user message, ``model`` = the card's ``model_id`` (the fake ignores
the name).

The machine is shared and noisy, so the ratio against the baseline measured just before, in
the same run, is the figure; absolute rates drift.

    .venv/bin/python bench/chat.py [--concurrency 1,8,32] [--seconds 8] [--stream] [--postgres]

Measured here (2 cores shared with other sessions, load average 3–6; 50 ms + 5 tokens; 8 s
per leg; every response through Agentry a right 200, no socket errors):

    SQLite, non-streaming   C=1: 0.61 of direct, added p50 29 ms / p99 95 ms
                            C=8: 0.25 (39/s vs 153/s), added p50 148 ms / p99 264 ms
                            C=32: 0.07 (44/s vs 597/s), added p50 643 ms / p99 1012 ms
    SQLite, stream=true     C=1: 0.73, added 18 / 28 ms; C=8: 0.24, 155 / 310 ms;
                            C=32: 0.05 (27/s), 1086 / 1585 ms
    PostgreSQL, non-stream  C=1: 0.55, added 37 / 81 ms; C=8: 0.30, 119 / 197 ms;
                            C=32: 0.06 (37/s), 714 / 2171 ms

Through Agentry the rate stops near 40–45 completions/s whatever C: `agentry serve` then uses
~90–100 % of one core, ~20–30 ms of CPU per completion (the column "serve CPU/compl"), so
the added latency above C≈8 is queueing for that one core.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from _support import BENCH_KEY, ROOT, agentry_server, fake_provider_child, scratch_database

PROVIDER_KEY = "fake-provider-key-0123456789abcdef"
MODEL_ID = "bench-chat"
WORD = "benchword"  # the reply is this word, repeated once per token


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -- the fake provider: a child process -----------------------------------------------------


def _serve_fake(latency: float, tokens: int) -> None:
    """Runs the fake provider; prints its OpenAI base URL, then answers ``dump`` on stdin with
    what it served since the last dump (one JSON line) until stdin closes."""
    sys.path.insert(0, str(ROOT))
    from tests.support.fake_provider import FakeProvider, Reply, Text

    with contextlib.suppress(ImportError):
        import uvloop

        uvloop.install()
    with FakeProvider() as fake:
        fake.default = Reply([Text(WORD * tokens, tokens=tokens)], latency=latency)
        print(fake.openai_base_url, flush=True)
        for line in sys.stdin:
            if line.strip() != "dump":
                continue
            taken, fake.requests = fake.requests, []  # a fresh list: the served ones are dropped
            times = [r.answered_at - r.received_at for r in taken if r.answered_at]
            print(
                json.dumps(
                    {
                        "requests": len(taken),
                        "streamed": sum(r.stream for r in taken),
                        "violations": sum(len(r.violations) for r in taken),
                        "provider_p50": statistics.median(times) * 1000 if times else float("nan"),
                    }
                ),
                flush=True,
            )


def served_by_fake(child: subprocess.Popen[str]) -> dict[str, Any]:
    assert child.stdin is not None and child.stdout is not None
    child.stdin.write("dump\n")
    child.stdin.flush()
    return json.loads(child.stdout.readline())


# -- the load: wrk with a Lua script ----------------------------------------------------------

# Every response is checked in wrk's ``response`` hook (each thread counts its own; ``done``
# adds them up) and the figures come out as one JSON line.
LUA = """
wrk.method = "POST"
wrk.body = [[%(body)s]]
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer %(key)s"

local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) good = 0; bad = 0; sample = "" end

function response(status, headers, body)
  local ok
  if %(stream)s then
    ok = status == 200 and string.find(body, "data: [DONE]", 1, true) ~= nil
         and string.find(body, '"error"', 1, true) == nil
  else
    ok = status == 200 and string.find(body, "%(expect)s", 1, true) ~= nil
  end
  if ok then good = good + 1 else
    bad = bad + 1
    if sample == "" then sample = status .. " " .. string.sub(body, 1, 300) end
  end
end

function done(summary, latency, requests)
  local good, bad, sample = 0, 0, ""
  for _, t in ipairs(threads) do
    good = good + t:get("good"); bad = bad + t:get("bad")
    if sample == "" then sample = t:get("sample") end
  end
  local e = summary.errors
  io.write(string.format(
    'RESULT {"requests": %%d, "seconds": %%f, "good": %%d, "bad": %%d, "non_2xx": %%d, ' ..
    '"connect": %%d, "read": %%d, "write": %%d, "timeout": %%d, ' ..
    '"p50": %%f, "p90": %%f, "p99": %%f, "max": %%f, "mean": %%f}\\n',
    summary.requests, summary.duration / 1e6, good, bad, e.status, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000,
    latency.max / 1000, latency.mean / 1000))
  if sample ~= "" then io.write("SAMPLE " .. sample .. "\\n") end
end
"""


def chat_body(stream: bool) -> str:
    body: dict[str, Any] = {"model": MODEL_ID, "messages": [{"role": "user", "content": "Say the bench word."}]}
    if stream:
        body["stream"] = True
    return json.dumps(body)


def run_wrk(url: str, key: str, concurrency: int, seconds: int, stream: bool, script_dir: Path) -> dict[str, Any]:
    script = script_dir / "chat.lua"
    script.write_text(
        LUA % {"body": chat_body(stream), "key": key, "stream": "true" if stream else "false", "expect": WORD * 2}
    )
    result = subprocess.run(
        ["wrk", "-t1", f"-c{concurrency}", f"-d{seconds}s", "--timeout", "10s", "-s", str(script),
         url + "/chat/completions"],
        capture_output=True, text=True,
    )
    lines = result.stdout.splitlines()
    found = [line[7:] for line in lines if line.startswith("RESULT ")]
    if result.returncode != 0 or not found:
        sys.exit(f"bench: wrk failed ({result.returncode}): {result.stdout[-2000:]} {result.stderr[-2000:]}")
    row: dict[str, Any] = json.loads(found[0])
    row["rate"] = row["requests"] / row["seconds"]
    row["sample"] = next((line[7:] for line in lines if line.startswith("SAMPLE ")), "")
    # ``bad`` holds the non-2xx answers too; the socket errors never reached ``response``.
    row["failed"] = row["bad"] + row["connect"] + row["read"] + row["write"] + row["timeout"]
    return row


# -- Agentry ----------------------------------------------------------------------------------


def add_card(base: str, provider_url: str) -> None:
    """The model card, probed against the fake; then one completion through it, checked."""
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {BENCH_KEY}"}, timeout=30) as http:
        card = http.post(
            "/v1/model_cards",
            json={
                "model_id": MODEL_ID, "provider": "oai-compatible", "model": "fake-model",
                "api_key": PROVIDER_KEY, "base_url": provider_url,
            },
        )
        if card.status_code != 200:
            sys.exit(f"bench: the model card was refused: {card.status_code} {card.text[:500]}")
        answer = http.post("/v1/chat/completions", content=chat_body(False), headers={"Content-Type": "application/json"})
        if answer.status_code != 200 or WORD not in answer.text:
            sys.exit(f"bench: the first completion failed: {answer.status_code} {answer.text[:500]}")


def tree_cpu(exclude: int) -> float:
    """CPU seconds (user + system) used so far by this process's descendants, without the
    subtree of ``exclude``: the `agentry serve` and its children, once wrk has exited."""
    parents: dict[int, int] = {}
    spent: dict[int, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        parents[int(entry.name)] = int(fields[1])
        spent[int(entry.name)] = (int(fields[11]) + int(fields[12])) / tick
    total, seen = 0.0, {os.getpid()}
    frontier = [os.getpid()]
    while frontier:
        parent = frontier.pop()
        for pid, ppid in parents.items():
            if ppid == parent and pid not in seen and pid != exclude:
                seen.add(pid)
                frontier.append(pid)
                total += spent[pid]
    return total


def fake_cpu(fake: subprocess.Popen[str]) -> float:
    fields = Path(f"/proc/{fake.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(
    concurrency: int, seconds: int, warmup: int, stream: bool, postgres: bool,
    provider_url: str, fake: subprocess.Popen[str],
) -> dict[str, Any]:
    with contextlib.ExitStack() as stack:
        scratch_dir = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        database_url = stack.enter_context(scratch_database()) if postgres else ""
        served_by_fake(fake)  # forget what came before
        progress(f"  direct to the fake, {seconds} s …")
        fake_before = fake_cpu(fake)
        direct = run_wrk(provider_url, PROVIDER_KEY, concurrency, seconds, stream, scratch_dir)
        direct["fake"] = served_by_fake(fake)
        direct["fake_cpu"] = fake_cpu(fake) - fake_before
        (scratch_dir / "data").mkdir()
        with agentry_server(database_url, scratch_dir / "data", log=scratch_dir / "serve.log") as base:
            add_card(base, provider_url)
            if warmup:
                progress(f"  through Agentry: warm-up {warmup} s …")
                run_wrk(base + "/v1", BENCH_KEY, concurrency, warmup, stream, scratch_dir)
                time.sleep(0.5)  # the turns wrk left behind at its end finish before the count
            served_by_fake(fake)
            progress(f"  through Agentry, {seconds} s …")
            fake_before, agentry_before = fake_cpu(fake), tree_cpu(fake.pid)
            proxied = run_wrk(base + "/v1", BENCH_KEY, concurrency, seconds, stream, scratch_dir)
            proxied["agentry_cpu"] = tree_cpu(fake.pid) - agentry_before
            proxied["fake_cpu"] = fake_cpu(fake) - fake_before
            time.sleep(0.5)
            proxied["fake"] = served_by_fake(fake)
        log = (scratch_dir / "serve.log").read_text(errors="replace")
        proxied["log_lines"] = [line for line in log.splitlines() if line.strip()][-5:]
    return {"c": concurrency, "direct": direct, "agentry": proxied}


def describe(leg: str, row: dict[str, Any]) -> str:
    fake = row["fake"]
    return (
        f"    {leg:<8} {row['rate']:8.1f}/s  p50 {row['p50']:7.1f} ms  p90 {row['p90']:7.1f} ms  p99 {row['p99']:7.1f} ms"
        f"  max {row['max']:7.1f} ms | {row['requests']} answered, {row['good']} right, {row['non_2xx']} non-2xx, "
        f"socket errors {row['connect']}/{row['read']}/{row['write']}/{row['timeout']} (connect/read/write/timeout) | "
        f"fake: {fake['requests']} requests ({fake['streamed']} streamed), {fake['violations']} invalid, "
        f"p50 {fake['provider_p50']:.1f} ms, CPU {row['fake_cpu'] * 1000 / max(1, row['requests']):.1f} ms per answer"
        + (
            f" | agentry serve CPU {row['agentry_cpu'] * 1000 / max(1, row['requests']):.1f} ms per answer "
            f"({row['agentry_cpu'] / row['seconds'] * 100:.0f}% of a core)"
            if "agentry_cpu" in row else ""
        )
    )


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--fake":
        _serve_fake(float(sys.argv[2]), int(sys.argv[3]))
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--concurrency", default="1,8,32", help="wrk connections, comma-separated")
    parser.add_argument("--seconds", type=int, default=8, help="wrk duration of each leg")
    parser.add_argument("--warmup", type=int, default=2, help="seconds of uncounted load on each fresh server")
    parser.add_argument("--latency", type=float, default=0.05, help="the fake's seconds before its first byte")
    parser.add_argument("--tokens", type=int, default=5, help="tokens in each reply")
    parser.add_argument("--stream", action="store_true", help="stream=true both ways (data-only SSE, [DONE])")
    parser.add_argument("--rounds", type=int, default=1, help="measure each C this many times")
    parser.add_argument("--postgres", action="store_true", help="a scratch PostgreSQL database, not embedded SQLite")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("bench: wrk is not installed (apt-get install wrk)")
    levels = [int(c) for c in args.concurrency.split(",")]
    os.environ.setdefault("AGENTRY_RUNTIME_WORKERS", str(max(32, 2 * max(levels))))
    rows = []
    with contextlib.ExitStack() as stack:
        provider_url, fake = stack.enter_context(fake_provider_child(__file__, str(args.latency), str(args.tokens)))
        shape = "PostgreSQL" if args.postgres else "embedded SQLite"
        progress(
            f"fake provider: {args.latency * 1000:.0f} ms to the first byte, {args.tokens} tokens; {shape}; "
            f"{'stream' if args.stream else 'non-stream'}; AGENTRY_RUNTIME_WORKERS={os.environ['AGENTRY_RUNTIME_WORKERS']}"
        )
        for _ in range(args.rounds):
            for concurrency in levels:
                progress(f"C = {concurrency}:")
                row = measure(
                    concurrency, args.seconds, args.warmup, args.stream, args.postgres, provider_url, fake
                )
                rows.append(row)
                for leg in ("direct", "agentry"):
                    progress(describe(leg, row[leg]))
                    if row[leg]["sample"]:
                        progress(f"      first wrong response: {row[leg]['sample']}")
                if row["agentry"]["failed"]:
                    progress("      agentry serve's last log lines:\n        " + "\n        ".join(row["agentry"]["log_lines"]))
    print()
    mode = "stream=true" if args.stream else "non-streaming"
    print(f"chat completions, {mode}, provider {args.latency * 1000:.0f} ms + {args.tokens} tokens, "
          f"{'PostgreSQL' if args.postgres else 'SQLite'}, {args.seconds:g} s per leg")
    print(
        f"{'C':>4} {'direct/s':>9} {'agentry/s':>10} {'ratio':>6} {'added p50':>10} {'added p99':>10}"
        f" {'agentry p50':>12} {'agentry p99':>12} {'serve CPU/compl':>16} {'all 200 + right':>16}"
    )
    for row in rows:
        direct, proxied = row["direct"], row["agentry"]
        verdict = "yes" if not proxied["failed"] else f"NO: {proxied['failed']} failed"
        if direct["failed"]:
            verdict += f" (direct: {direct['failed']} failed)"
        print(
            f"{row['c']:>4} {direct['rate']:>9.1f} {proxied['rate']:>10.1f} {proxied['rate'] / direct['rate']:>6.2f}"
            f" {proxied['p50'] - direct['p50']:>7.1f} ms {proxied['p99'] - direct['p99']:>7.1f} ms"
            f" {proxied['p50']:>9.1f} ms {proxied['p99']:>9.1f} ms"
            f" {proxied['agentry_cpu'] * 1000 / max(1, proxied['requests']):>13.1f} ms {verdict:>16}"
        )


if __name__ == "__main__":
    main()
