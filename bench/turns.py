"""Concurrent turns: N sessions each take one turn against a fake provider that answers in a
fixed ~1 s (first byte after ``--latency``, then 10 tokens ``--token-delay`` apart).

For N = 10, 50, 200 it prints turns/s ÷ the ideal (N / provider time), and the latency the
runtime adds: p50 / p99 over the N turns of (turn time − that turn's provider time).

- turn time: from writing the session's ``user.message`` POST to the arrival of its
  ``session.status_idle`` on the session's SSE stream (opened before any send);
- provider time: measured at the fake, from reading the model request to writing its last
  byte (``RecordedRequest.received_at`` → ``answered_at``); the request is matched to its
  session by the marker in the user message. So "added" holds everything that is not the
  provider: the API append, dispatch, the SDK client, recording the reply, the SSE delivery.
  The span events' own view (``span.model_request_start`` → ``_end`` ``processed_at``) is
  printed beside it: the part of the turn the runtime spends around its model request.
- "after 202": the same, counted from the acknowledgment of the POST (the message is
  recorded): what the runtime adds without the wait for the append itself.

Each N gets a fresh `agentry serve` (embedded SQLite, or ``--postgres`` for a scratch
database) with ``AGENTRY_RUNTIME_WORKERS`` ≥ 256 and the default Anthropic provider pointed
at the fake, and one warm-up turn. The fake runs in a child process and the client is raw
asyncio sockets (every POST on a connection opened beforehand), so neither the fake nor the
Python HTTP client shares the measuring process's GIL or becomes the bottleneck.

    .venv/bin/python bench/turns.py [--sessions 10,50,200] [--rounds 1] [--postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from _support import BENCH_KEY, ROOT, SseReader, agentry_server, fake_provider_child, scratch_database

MARK = "bench-turn "
FRAME = re.compile(rb"event: ([\w.]+)\nid: (\d+)\ndata: ([^\n]*)\n")
SPAN_TYPES = (b"span.model_request_start", b"span.model_request_end")


# -- the fake provider: a child process -----------------------------------------------------


def _serve_fake(latency: float, token_delay: float, tokens: int) -> None:
    """Runs the fake provider; prints its URL, then answers ``dump`` on stdin with the
    timings of the requests since the last dump (one JSON line) until stdin closes."""
    sys.path.insert(0, str(ROOT))
    from tests.support.fake_provider import FakeProvider, Reply, Text

    with FakeProvider() as fake:
        fake.default = Reply([Text("x" * (tokens * 4), tokens=tokens)], latency=latency, token_delay=token_delay)
        print(fake.anthropic_base_url, flush=True)
        for line in sys.stdin:
            if line.strip() != "dump":
                continue
            taken, fake.requests = fake.requests, []
            timings = []
            for request in taken:
                messages = request.body.get("messages", []) if isinstance(request.body, dict) else []
                content = messages[-1].get("content") if messages else None
                text = content if isinstance(content, str) else json.dumps(content)
                marker = text.split(MARK, 1)[1].split('"', 1)[0] if MARK in text else ""
                timings.append([marker, request.received_at, request.answered_at, request.violations])
            print(json.dumps(timings), flush=True)


def provider_timings(child: subprocess.Popen[str]) -> list[tuple[str, float, float, list[str]]]:
    assert child.stdin is not None and child.stdout is not None
    child.stdin.write("dump\n")
    child.stdin.flush()
    return [tuple(row) for row in json.loads(child.stdout.readline())]  # type: ignore[misc]


# -- the client: raw asyncio sockets ----------------------------------------------------------


@dataclass
class Turn:
    session_id: str
    sent: float = 0.0
    message_seq: int = 0
    acked: float = 0.0
    idle_at: float = 0.0
    frames: list[tuple[bytes, int, float, bytes]] = field(default_factory=list)  # type, seq, arrival, data
    errors: int = 0

    def idle_after_send(self) -> float:
        for kind, seq, arrival, _ in self.frames:
            if kind == b"session.status_idle" and seq > self.message_seq:
                return arrival
        return 0.0

    def span_seconds(self) -> float:
        """span.model_request_start → _end by their processed_at (the runtime's own view)."""
        stamps = {}
        for kind, seq, _, data in self.frames:
            if kind in SPAN_TYPES and seq > self.message_seq:
                stamps[kind] = datetime.fromisoformat(json.loads(data)["processed_at"].replace("Z", "+00:00"))
        if len(stamps) < 2:
            return float("nan")
        return (stamps[SPAN_TYPES[1]] - stamps[SPAN_TYPES[0]]).total_seconds()


class _Stream(SseReader):
    """Keeps each complete frame's type, seq and arrival time."""

    def __init__(self, turn: Turn, opened: asyncio.Future[None], idle: asyncio.Event) -> None:
        super().__init__(opened, time.monotonic)
        self._turn, self._idle = turn, idle

    def frames(self, buffer: bytes, end: int, now: float) -> None:
        for match in FRAME.finditer(buffer, 0, end + 2):
            kind = match.group(1)
            self._turn.frames.append((kind, int(match.group(2)), now, match.group(3)))
            if kind == b"session.error":
                self._turn.errors += 1
            if kind == b"session.status_idle" and self._turn.message_seq and not self._idle.is_set():
                if self._turn.idle_after_send():
                    self._idle.set()


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = re.search(rb"(?i)\r\ncontent-length: *(\d+)", head)
    if length is None:
        raise RuntimeError("bench: a response without content-length: " + head.decode(errors="replace"))
    return status, await reader.readexactly(int(length.group(1)))


async def run_turns(base: str, session_ids: list[str], progress: bool = True) -> list[Turn]:
    url = urlsplit(base)
    host, port = url.hostname or "127.0.0.1", url.port or 80
    loop = asyncio.get_running_loop()
    turns = [Turn(s) for s in session_ids]
    idles = [asyncio.Event() for _ in turns]
    transports = []
    # The streams first, in waves so the accept queue never overflows.
    for start in range(0, len(turns), 50):
        wave = []
        for turn, idle in zip(turns[start:start + 50], idles[start:start + 50], strict=True):
            opened: asyncio.Future[None] = loop.create_future()
            transport, _ = await loop.create_connection(
                lambda turn=turn, opened=opened, idle=idle: _Stream(turn, opened, idle), host, port
            )
            transport.write(
                f"GET /v1/sessions/{turn.session_id}/events/stream HTTP/1.1\r\nHost: {url.netloc}\r\n"
                f"x-api-key: {BENCH_KEY}\r\nAccept: text/event-stream\r\n\r\n".encode()
            )
            transports.append(transport)
            wave.append(opened)
        await asyncio.wait_for(asyncio.gather(*wave), 60)
    # One keep-alive connection per session for its send, opened (and so accepted) beforehand.
    connections = [await asyncio.open_connection(host, port) for _ in turns]
    requests = []
    for turn in turns:
        body = json.dumps(
            {"events": [{"type": "user.message", "content": [{"type": "text", "text": MARK + turn.session_id}]}]}
        ).encode()
        requests.append(
            f"POST /v1/sessions/{turn.session_id}/events HTTP/1.1\r\nHost: {url.netloc}\r\n"
            f"x-api-key: {BENCH_KEY}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
    for turn, (_, writer), request in zip(turns, connections, requests, strict=True):
        turn.sent = time.monotonic()
        writer.write(request)

    async def acknowledged(turn: Turn, reader: asyncio.StreamReader, idle: asyncio.Event) -> None:
        status, body = await _read_response(reader)
        turn.acked = time.monotonic()
        if status not in (200, 202):
            raise RuntimeError(f"bench: the send answered {status}: {body[:300]!r}")
        turn.message_seq = json.loads(body)["data"][0]["seq"]
        if turn.idle_after_send():  # the idle arrived before the acknowledgement was read
            idle.set()

    await asyncio.gather(*(acknowledged(t, r, i) for t, (r, _), i in zip(turns, connections, idles, strict=True)))

    async def report() -> None:
        while True:
            await asyncio.sleep(1.0)
            done = sum(i.is_set() for i in idles)
            print(f"    {done}/{len(turns)} idle", flush=True)

    reporter = asyncio.ensure_future(report()) if progress else None
    try:
        await asyncio.wait_for(asyncio.gather(*(i.wait() for i in idles)), 120)
    except TimeoutError:
        print(f"  timed out: {sum(not i.is_set() for i in idles)} sessions never went idle", flush=True)
    finally:
        if reporter is not None:
            reporter.cancel()
        for transport in transports:
            transport.close()
        for _, writer in connections:
            writer.close()
    for turn in turns:
        turn.idle_at = turn.idle_after_send()
    return turns


# -- set-up and measurement ---------------------------------------------------------------


def new_sessions(base: str, count: int) -> list[str]:
    with httpx.Client(base_url=base, headers={"x-api-key": BENCH_KEY}, timeout=60) as http:
        agent = http.post("/v1/agents", json={"name": "bench", "model": "claude-sonnet-4-6"})
        env = http.post("/v1/environments", json={"name": "bench"})
        agent.raise_for_status()
        env.raise_for_status()
        ids = []
        for _ in range(count):
            created = http.post("/v1/sessions", json={"agent": agent.json()["id"], "environment_id": env.json()["id"]})
            created.raise_for_status()
            ids.append(created.json()["id"])
        return ids


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))] if ordered else float("nan")


def measure(database_url: str, count: int, fake: subprocess.Popen[str], nominal: float) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as data_dir, agentry_server(database_url, Path(data_dir)) as base:
        # The first burst of N turns also pays for the process's cold start (turn threads
        # spawned, their database connections, the SDK client): measured apart, not counted.
        cold = asyncio.run(run_turns(base, new_sessions(base, count), progress=False))
        cold_row = summarise(count, cold, provider_timings(fake), nominal)
        print(
            f"  warm-up (cold start): {cold_row['ratio']:.2f} of ideal, added p50 {cold_row['added_p50']:.0f} ms "
            f"p99 {cold_row['added_p99']:.0f} ms",
            flush=True,
        )
        session_ids = new_sessions(base, count)
        print(f"  {count} sessions created; streams open, sending …", flush=True)
        turns = asyncio.run(run_turns(base, session_ids))
    return summarise(count, turns, provider_timings(fake), nominal)


def summarise(
    count: int, turns: list[Turn], timings: list[tuple[str, float, float, list[str]]], nominal: float
) -> dict[str, float]:
    provider = {marker: answered - received for marker, received, answered, _ in timings}
    # time.monotonic() is one clock for every process on Linux: the added time splits into
    # before the provider (send → request read) and after it (last byte → idle arrived).
    spans = {marker: (received, answered) for marker, received, answered, _ in timings}
    violations = sum(len(v) for *_, v in timings)
    done = [t for t in turns if t.idle_at and t.session_id in provider]
    added = [(t.idle_at - t.sent) - provider[t.session_id] for t in done]
    # The same from the 202 on: what the runtime adds once the message is recorded, without
    # the wait for the append itself (50 messages at once queue for the event store).
    after_ack = [(t.idle_at - t.acked) - provider[t.session_id] for t in done]
    span_view = [t.span_seconds() for t in done]
    elapsed = max(t.idle_at for t in done) - min(t.sent for t in turns) if done else float("nan")
    rate = len(done) / elapsed
    return {
        "count": count,
        "done": len(done),
        "rate": rate,
        "ideal": count / nominal,
        "ratio": rate / (count / nominal),
        "added_p50": statistics.median(added) * 1000 if added else float("nan"),
        "added_p99": percentile(added, 0.99) * 1000,
        "runtime_p50": statistics.median(after_ack) * 1000 if after_ack else float("nan"),
        "runtime_p99": percentile(after_ack, 0.99) * 1000,
        "turn_p50": statistics.median([t.idle_at - t.sent for t in done]) * 1000 if done else float("nan"),
        "provider_p50": statistics.median(provider[t.session_id] for t in done) * 1000 if done else float("nan"),
        "around_span_p50": statistics.median(
            [(t.idle_at - t.sent - s) * 1000 for t, s in zip(done, span_view, strict=True)]
        ) if done else float("nan"),
        "ack_p50": statistics.median([t.acked - t.sent for t in done]) * 1000 if done else float("nan"),
        "before_p50": statistics.median([spans[t.session_id][0] - t.sent for t in done]) * 1000 if done else float("nan"),
        "after_p50": statistics.median([t.idle_at - spans[t.session_id][1] for t in done]) * 1000 if done else float("nan"),
        "errors": sum(t.errors for t in turns),
        "requests": len(timings),
        "violations": violations,
    }


def main() -> None:
    if len(sys.argv) == 5 and sys.argv[1] == "--fake":
        _serve_fake(float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]))
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", default="10,50,200")
    parser.add_argument("--rounds", type=int, default=1, help="measure each N this many times")
    parser.add_argument("--latency", type=float, default=0.55, help="seconds before the first byte")
    parser.add_argument("--token-delay", type=float, default=0.05, help="seconds between the 10 tokens")
    parser.add_argument("--postgres", action="store_true", help="a scratch PostgreSQL database, not embedded SQLite")
    args = parser.parse_args()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    tokens = 10
    nominal = args.latency + (tokens - 1) * args.token_delay
    counts = [int(n) for n in args.sessions.split(",")]
    os.environ.setdefault("AGENTRY_RUNTIME_WORKERS", str(max(256, max(counts) + 16)))
    os.environ.setdefault("AGENTRY_MAX_CONNECTIONS", str(2 * max(counts) + 100))
    rows = []
    with contextlib.ExitStack() as stack:
        url, fake = stack.enter_context(fake_provider_child(__file__, str(args.latency), str(args.token_delay), str(tokens)))
        os.environ["AGENTRY_ANTHROPIC_API_KEY"] = "fake-provider-key-0123456789abcdef"
        os.environ["AGENTRY_ANTHROPIC_BASE_URL"] = url
        database_url = stack.enter_context(scratch_database()) if args.postgres else ""
        shape = "PostgreSQL" if args.postgres else "embedded SQLite"
        print(
            f"fake provider: {args.latency:.2f} s to the first byte + {tokens} tokens {args.token_delay:.2f} s apart "
            f"= {nominal:.2f} s per request; {shape}; AGENTRY_RUNTIME_WORKERS={os.environ['AGENTRY_RUNTIME_WORKERS']}",
            flush=True,
        )
        for _ in range(args.rounds):
            for count in counts:
                print(f"{count} concurrent sessions, one turn each …", flush=True)
                row = measure(database_url, count, fake, nominal)
                rows.append(row)
                print(
                    f"  {row['rate']:.1f} turns/s ÷ ideal {row['ideal']:.1f} = {row['ratio']:.2f}; added p50 "
                    f"{row['added_p50']:.0f} ms p99 {row['added_p99']:.0f} ms (turn p50 {row['turn_p50']:.0f} ms, "
                    f"provider p50 {row['provider_p50']:.0f} ms, outside the span p50 {row['around_span_p50']:.0f} ms; "
                    f"send→202 p50 {row['ack_p50']:.0f} ms, send→provider p50 {row['before_p50']:.0f} ms, "
                    f"provider done→idle p50 {row['after_p50']:.0f} ms; "
                    f"{row['done']}/{count} done, {row['requests']} model requests, {row['errors']} session.error, "
                    f"{row['violations']} invalid requests)",
                    flush=True,
                )
    print()
    print("added: from the POST's first byte; after 202: from its acknowledgment (the message recorded)")
    print(
        f"{'N':>5} {'turns/s':>8} {'ideal':>7} {'ratio':>6} {'added p50':>10} {'added p99':>10}"
        f" {'after 202 p50':>14} {'after 202 p99':>14}"
    )
    for row in rows:
        print(
            f"{row['count']:>5} {row['rate']:>8.1f} {row['ideal']:>7.1f} {row['ratio']:>6.2f} "
            f"{row['added_p50']:>7.0f} ms {row['added_p99']:>7.0f} ms"
            f" {row['runtime_p50']:>11.0f} ms {row['runtime_p99']:>11.0f} ms"
        )


if __name__ == "__main__":
    main()
