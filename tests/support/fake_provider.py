"""A fake model provider: a real local HTTP server speaking the Anthropic Messages SSE protocol
(``POST /v1/messages``) and the OpenAI Chat Completions streaming protocol
(``POST /v1/chat/completions``), as spec/runtime.md §F describes them.

It is the one fake the test rules allow, so it must be strict where the real providers are:
every request is validated (Anthropic: roles alternate, first is user, each ``tool_use`` is
answered exactly once in the very next user message, no empty text or system; OpenAI: every
``tool_calls`` id is answered by ``tool`` messages directly after). A bad request is answered
with the provider's real 400 error and recorded; the ``fake_provider`` fixture fails the test at
teardown when any request was invalid, so a transcript bug cannot hide behind a lenient fake.

Usage in a test::

    def test_x(fake_provider):
        fake_provider.script(Reply([Text("Hello there", tokens=3)]))
        fake_provider.script(Reply([ToolUse("get_weather", {"city": "Paris"})]))
        fake_provider.script(rate_limited(retry_after=1))
        ... point a client at fake_provider.anthropic_base_url / openai_base_url ...
        assert fake_provider.requests[0].body["messages"][0]["role"] == "user"

The server runs in the test process (uvicorn in a thread); other processes (a worker) reach it
by URL. With an empty script it answers ``default`` (a short text reply), which a benchmark can
replace (``fake.default = Reply(..., latency=1.0)``).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import uvicorn

from application.ports import ProviderTarget
from tests.support.postgres import free_port

API_KEY = "fake-provider-key-0123456789abcdef"

# -- what a test scripts --------------------------------------------------------------------


@dataclass
class Text:
    """A text block, streamed as ``tokens`` deltas (the text split into that many pieces)."""

    text: str
    tokens: int = 1


@dataclass
class Thinking:
    """A thinking block with its signature (OpenAI has none: it is left out there)."""

    text: str
    signature: str = "sig-fake-0001"
    tokens: int = 1


@dataclass
class ToolUse:
    """A tool call; ``id`` defaults to ``toolu_fake_<n>`` (Anthropic) / ``call_fake_<n>`` (OpenAI)."""

    name: str
    input: dict[str, Any]
    id: str | None = None


Part = Text | Thinking | ToolUse


@dataclass
class HttpError:
    """Answer with this status before any byte of a stream, in the provider's error shape."""

    status: int
    type: str
    message: str
    retry_after: float | None = None


@dataclass
class StreamError:
    """Send ``after`` content deltas, then an error frame (``event: error`` / ``data: {"error"}``)."""

    type: str = "overloaded_error"
    message: str = "Overloaded"
    after: int = 1


@dataclass
class Stall:
    """Send ``after`` content deltas, then send nothing more until the client goes away (or
    ``FakeProvider.release_stalls`` / the server stops). ``after=0`` stalls before the response
    headers, as a provider that accepted the connection but never answers."""

    after: int = 1


Failure = HttpError | StreamError | Stall


@dataclass
class Reply:
    """One scripted answer. ``usage`` keys: input_tokens, output_tokens (Anthropic names; the
    OpenAI path reports them as prompt/completion tokens), cache_read_input_tokens,
    cache_creation_input_tokens. ``stop_reason`` defaults to ``tool_use`` when a tool is called,
    else ``end_turn``. ``latency`` is slept before the first byte, ``token_delay`` between deltas."""

    parts: list[Part] = field(default_factory=lambda: [Text("Hello from the fake provider.", tokens=3)])
    usage: dict[str, int] | None = None
    stop_reason: str | None = None
    latency: float = 0.0
    token_delay: float = 0.0
    failure: Failure | None = None
    # Send this many content deltas, then wait for ``FakeProvider.release_stalls`` and go on to
    # the end: a test sees the reply half streamed for as long as it needs (``wait_for_stall``).
    hold_after: int | None = None


def rate_limited(
    retry_after: float = 1.0, message: str = "Number of request tokens has exceeded your per-minute rate limit"
) -> Reply:
    return Reply(failure=HttpError(429, "rate_limit_error", message, retry_after=retry_after))


def overloaded(message: str = "Overloaded") -> Reply:
    return Reply(failure=HttpError(529, "overloaded_error", message))


def server_error(message: str = "Internal server error") -> Reply:
    return Reply(failure=HttpError(500, "api_error", message))


def bad_key() -> Reply:
    """A 401 even though the key is accepted (e.g. a key revoked between two requests)."""
    return Reply(failure=HttpError(401, "authentication_error", "invalid x-api-key"))


def error_mid_stream(type: str = "overloaded_error", message: str = "Overloaded", after: int = 1) -> Reply:
    return Reply([Text("partial answer that never finishes", tokens=4)], failure=StreamError(type, message, after))


def stalled(after: int = 1) -> Reply:
    return Reply([Text("this stream stalls after its first tokens", tokens=5)], failure=Stall(after))


# -- what the fake records ------------------------------------------------------------------


@dataclass
class RecordedRequest:
    protocol: str  # "anthropic" | "openai"
    method: str
    path: str
    headers: dict[str, str]  # lower-cased names
    body: Any  # parsed JSON (None when the body was not JSON)
    violations: list[str]
    # When the request was read and when its answer was last written (time.monotonic(), the
    # machine-wide clock): a benchmark subtracts the provider's own time from a turn's.
    received_at: float = 0.0
    answered_at: float = 0.0
    # The client's end of the connection ("host:port"): a test of connection reuse reads it.
    peer: str = ""

    @property
    def stream(self) -> bool:
        return isinstance(self.body, dict) and bool(self.body.get("stream"))


# -- request validation ---------------------------------------------------------------------


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(b.get("text", "") for b in content if isinstance(b, dict) and b.get("type") == "text")
    return ""


def anthropic_violations(body: Any) -> list[str]:
    """What the Messages API would reject (the rules spec §B.2 says Agentry must enforce)."""
    if not isinstance(body, dict):
        return ["body is not a JSON object"]
    problems: list[str] = []
    if not body.get("model"):
        problems.append("model is missing")
    if not isinstance(body.get("max_tokens"), int) or body["max_tokens"] < 1:
        problems.append("max_tokens is missing or not a positive integer")
    if "system" in body:
        system = body["system"]
        if isinstance(system, str) and not system.strip():
            problems.append("system is empty (omit it instead)")
        elif isinstance(system, list):
            if not system:
                problems.append("system is an empty list")
            for i, block in enumerate(system):
                if not isinstance(block, dict) or block.get("type") != "text" or not str(block.get("text", "")).strip():
                    problems.append(f"system.{i}: not a non-empty text block")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return [*problems, "messages is missing or empty"]
    seen_tool_ids: set[str] = set()
    for i, message in enumerate(messages):
        role = message.get("role") if isinstance(message, dict) else None
        if role not in ("user", "assistant"):
            problems.append(f"messages.{i}: role {role!r} is not user or assistant")
            continue
        expected = "user" if i % 2 == 0 else "assistant"
        if role != expected:
            problems.append(
                f"messages.{i}: roles must alternate starting with user; got {role} where {expected} was due"
            )
        content = message.get("content")
        if isinstance(content, str):
            if not content.strip():
                problems.append(f"messages.{i}: content is an empty string")
            continue
        if not isinstance(content, list) or not content:
            problems.append(f"messages.{i}: content is empty")
            continue
        for j, block in enumerate(content):
            kind = block.get("type") if isinstance(block, dict) else None
            where = f"messages.{i}.content.{j}"
            if kind == "text" and not str(block.get("text", "")).strip():
                problems.append(f"{where}: text content blocks must contain non-whitespace text")
            elif kind == "tool_use":
                if role != "assistant":
                    problems.append(f"{where}: tool_use in a user message")
                if block.get("id") in seen_tool_ids:
                    problems.append(f"{where}: tool_use id {block.get('id')} is not unique")
                seen_tool_ids.add(block.get("id"))
                if not isinstance(block.get("input"), dict):
                    problems.append(f"{where}: tool_use input is not an object")
            elif kind == "tool_result" and role != "user":
                problems.append(f"{where}: tool_result in an assistant message")
            elif kind in ("thinking", "redacted_thinking") and role != "assistant":
                problems.append(f"{where}: {kind} in a user message")
            elif kind == "thinking" and not block.get("signature"):
                problems.append(f"{where}: thinking block without its signature")
            elif kind is None:
                problems.append(f"{where}: block has no type")
    # Pairing: each assistant tool_use answered exactly once in the very next user message,
    # tool_result blocks first there, and no tool_result without its tool_use just before.
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("content"), list):
            continue
        if message.get("role") == "assistant":
            uses = [b.get("id") for b in message["content"] if isinstance(b, dict) and b.get("type") == "tool_use"]
            if not uses:
                continue
            following = messages[i + 1] if i + 1 < len(messages) else None
            blocks = (
                following.get("content") if isinstance(following, dict) and following.get("role") == "user" else None
            )
            results = [
                b.get("tool_use_id") for b in blocks or [] if isinstance(b, dict) and b.get("type") == "tool_result"
            ]
            for tool_id in uses:
                count = results.count(tool_id)
                if count != 1:
                    problems.append(
                        f"messages.{i}: tool_use {tool_id} has {count} tool_result blocks in the next user message (needs exactly 1)"
                    )
        elif message.get("role") == "user":
            blocks = message["content"]
            kinds = [b.get("type") if isinstance(b, dict) else None for b in blocks]
            if "tool_result" in kinds and any(
                k != "tool_result" for k in kinds[: len(kinds) - kinds[::-1].index("tool_result")]
            ):
                problems.append(f"messages.{i}: tool_result blocks must come first in the content")
            previous = messages[i - 1] if i > 0 else None
            offered = {
                b.get("id")
                for b in (
                    previous.get("content")
                    if isinstance(previous, dict) and isinstance(previous.get("content"), list)
                    else []
                )
                if isinstance(b, dict) and b.get("type") == "tool_use"
            }
            for b in blocks:
                if isinstance(b, dict) and b.get("type") == "tool_result" and b.get("tool_use_id") not in offered:
                    problems.append(
                        f"messages.{i}: tool_result for {b.get('tool_use_id')} has no tool_use in the previous message"
                    )
    return problems


def openai_violations(body: Any) -> list[str]:
    """What Chat Completions would reject: tool messages must directly follow the assistant
    message whose ``tool_calls`` they answer, one per call id."""
    if not isinstance(body, dict):
        return ["body is not a JSON object"]
    problems: list[str] = []
    if not body.get("model"):
        problems.append("model is missing")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return [*problems, "messages is missing or empty"]
    pending: list[str] = []  # call ids still owed a tool message
    for i, message in enumerate(messages):
        role = message.get("role") if isinstance(message, dict) else None
        if role not in ("system", "developer", "user", "assistant", "tool"):
            problems.append(f"messages[{i}]: unknown role {role!r}")
            continue
        if role == "tool":
            call_id = message.get("tool_call_id")
            if call_id not in pending:
                problems.append(
                    f"messages[{i}]: tool message for {call_id!r} does not answer a preceding tool_calls id"
                )
            else:
                pending.remove(call_id)
            if not isinstance(message.get("content"), str | list):
                problems.append(f"messages[{i}]: tool message content must be a string or parts")
            continue
        if pending:
            problems.append(
                f"messages[{i}]: an assistant message with 'tool_calls' must be followed by tool messages responding to each "
                f"'tool_call_id'; missing: {', '.join(pending)}"
            )
            pending = []
        if role == "assistant":
            calls = message.get("tool_calls") or []
            for call in calls:
                function = call.get("function") if isinstance(call, dict) else None
                if (
                    not isinstance(function, dict)
                    or not function.get("name")
                    or not isinstance(function.get("arguments"), str)
                ):
                    problems.append(
                        f"messages[{i}]: tool call {call!r} needs function.name and a string function.arguments"
                    )
                    continue
                try:
                    json.loads(function["arguments"])
                except ValueError:
                    problems.append(f"messages[{i}]: tool call {call.get('id')} arguments are not JSON")
            pending = [c.get("id") for c in calls if isinstance(c, dict)]
            if not calls and not _text_of(message.get("content")).strip():
                problems.append(f"messages[{i}]: assistant message with neither content nor tool_calls")
        elif role in ("system", "developer", "user"):
            content = message.get("content")
            if content is None or (isinstance(content, str | list) and not content):
                problems.append(f"messages[{i}]: {role} message has empty content")
    if pending:
        problems.append(f"messages end with unanswered tool_calls: {', '.join(pending)}")
    return problems


# -- rendering a reply ----------------------------------------------------------------------


def _pieces(text: str, n: int) -> list[str]:
    n = max(1, min(n, len(text))) if text else 1
    size, extra = divmod(len(text), n)
    out, start = [], 0
    for i in range(n):
        end = start + size + (1 if i < extra else 0)
        out.append(text[start:end])
        start = end
    return out


def _sse(event: str | None, data: Any) -> bytes:
    payload = data if isinstance(data, str) else json.dumps(data)
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {payload}\n\n".encode()


class _Plan:
    """A reply resolved for one request: ids assigned, tokens split, usage settled."""

    def __init__(self, reply: Reply, request: dict[str, Any], ids: Iterator[int]) -> None:
        self.reply = reply
        self.model = str(request.get("model") or "fake-model")
        options = request.get("stream_options")
        self.include_usage = isinstance(options, dict) and bool(options.get("include_usage"))
        self.blocks: list[tuple[Part, list[str], str]] = []  # (part, pieces, tool id)
        deltas = 0
        for part in reply.parts:
            n = next(ids)
            if isinstance(part, ToolUse):
                arguments = json.dumps(part.input)
                half = len(arguments) // 2
                self.blocks.append((part, [arguments[:half], arguments[half:]], part.id or f"fake_{n}"))
            else:
                pieces = _pieces(part.text, part.tokens)
                deltas += len(pieces)
                self.blocks.append((part, pieces, ""))
        self.has_tool = any(isinstance(p, ToolUse) for p in reply.parts)
        usage = dict(reply.usage or {})
        usage.setdefault("input_tokens", 10 + len(json.dumps(request.get("messages", []))) // 16)
        usage.setdefault("output_tokens", max(1, deltas + 5 * sum(isinstance(p, ToolUse) for p in reply.parts)))
        usage.setdefault("cache_read_input_tokens", 0)
        usage.setdefault("cache_creation_input_tokens", 0)
        self.usage = usage


class _Exchange:
    """Delays, stalls and disconnect detection for one streamed response."""

    def __init__(self, fake: FakeProvider, receive: Callable[[], Any], reply: Reply) -> None:
        self.fake, self.reply = fake, reply
        self.disconnected = asyncio.Event()
        self.generation = fake._generation
        self.deltas_sent = 0
        self.held = False
        self._watch = asyncio.ensure_future(self._watch_disconnect(receive))

    async def _watch_disconnect(self, receive: Callable[[], Any]) -> None:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                self.disconnected.set()
                return

    def close(self) -> None:
        self._watch.cancel()

    def _ended(self) -> bool:
        """The server is stopping, or the test that scripted this reply is over."""
        return self.fake._stopping.is_set() or self.fake._generation != self.generation

    async def pause(self, seconds: float) -> bool:
        """Sleeps ``seconds``; False if the client left (or the server is stopping) meanwhile."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            if self.disconnected.is_set() or self._ended():
                return False
            try:
                await asyncio.wait_for(self.disconnected.wait(), min(left, 0.02))
            except TimeoutError:
                pass
        return not self.disconnected.is_set()

    async def stall(self) -> None:
        self.fake._stalls_started += 1
        while not (self.disconnected.is_set() or self.fake._release.is_set() or self._ended()):
            try:
                await asyncio.wait_for(self.disconnected.wait(), 0.02)
            except TimeoutError:
                pass
        if self.disconnected.is_set():
            self.fake.abandoned_stalls += 1

    async def before_delta(self) -> bool:
        """Waits out the token delay; False when the stream must stop here (failure or gone)."""
        failure = self.reply.failure
        if isinstance(failure, StreamError | Stall) and self.deltas_sent >= failure.after:
            return False
        if self.reply.hold_after is not None and self.deltas_sent == self.reply.hold_after and not self.held:
            self.held = True
            await self.stall()
            if self.disconnected.is_set() or self._ended():
                return False
        if self.deltas_sent and self.reply.token_delay and not await self.pause(self.reply.token_delay):
            return False
        self.deltas_sent += 1
        return not self.disconnected.is_set()


# -- the server -----------------------------------------------------------------------------


class FakeProvider:
    def __init__(self, api_keys: tuple[str, ...] = (API_KEY,)) -> None:
        self.api_keys = set(api_keys)
        self.default = Reply()
        self.requests: list[RecordedRequest] = []
        self._script: list[Reply] = []
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._release = threading.Event()
        self._stopping = threading.Event()
        self._generation = 0
        self._stalls_started = 0
        self.abandoned_stalls = 0  # stalls that ended because the client hung up (an abort works)
        self.port = 0
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    # -- the test's side ---------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def anthropic_base_url(self) -> str:
        """What ``anthropic.Anthropic(base_url=…)`` wants: the root (the SDK adds /v1/messages)."""
        return self.url

    @property
    def openai_base_url(self) -> str:
        """What ``openai.OpenAI(base_url=…)`` wants: up to /v1 (the SDK adds /chat/completions)."""
        return self.url + "/v1"

    def target(
        self, provider: str = "ant", model: str = "fake-model", api_key: str = API_KEY, **kw: Any
    ) -> ProviderTarget:
        """A ``ProviderTarget`` aimed at this fake for ``provider`` (ant, ant-compatible, oai, …)."""
        kw.setdefault("base_url", self.anthropic_base_url if provider.startswith("ant") else self.openai_base_url)
        return ProviderTarget(provider=provider, model=model, api_key=api_key, **kw)

    def script(self, *replies: Reply) -> None:
        """Queues replies; each request takes the next one, then ``default`` once they run out."""
        with self._lock:
            self._script.extend(replies)

    def reply_for(self, body: Any) -> Reply:
        """The answer to a request nothing was scripted for: ``default``. A fake that serves
        many sessions at once, in no set order, overrides this to answer by the request."""
        return self.default

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._script)

    @property
    def violations(self) -> list[str]:
        with self._lock:
            return [f"request {i} ({r.path}): {v}" for i, r in enumerate(self.requests) for v in r.violations]

    def take_violations(self) -> list[str]:
        """Returns the violations so far and forgets them (for tests that send bad requests on purpose)."""
        with self._lock:
            found = [f"request {i} ({r.path}): {v}" for i, r in enumerate(self.requests) for v in r.violations]
            for r in self.requests:
                r.violations = []
            return found

    def wait_for_requests(self, count: int, timeout: float = 10.0) -> list[RecordedRequest]:
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                if len(self.requests) >= count:
                    return list(self.requests)
            if time.monotonic() > deadline:
                raise AssertionError(f"the fake provider got {len(self.requests)} requests, expected {count}")
            time.sleep(0.01)

    def wait_for_stall(self, timeout: float = 10.0) -> None:
        """Blocks until a scripted stall has begun (the client is now waiting for bytes)."""
        deadline = time.monotonic() + timeout
        while self._stalls_started == 0:
            if time.monotonic() > deadline:
                raise AssertionError("no stream stalled")
            time.sleep(0.005)

    def release_stalls(self) -> None:
        self._release.set()

    def reset(self, api_keys: tuple[str, ...] = (API_KEY,)) -> None:
        """Forgets the script, the recorded requests and the default; ends any pending stall."""
        with self._lock:
            self._generation += 1
            self.api_keys = set(api_keys)
            self._script.clear()
            self.requests.clear()
            self.default = Reply()
            self._stalls_started = 0
            self.abandoned_stalls = 0
            self._release.clear()

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> FakeProvider:
        self.port = free_port()
        config = uvicorn.Config(
            self._app,
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            lifespan="off",
            interface="asgi3",  # a bound method: uvicorn's guess would take it for ASGI 2
            timeout_graceful_shutdown=1,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="fake-provider", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the fake provider did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)

    def __enter__(self) -> FakeProvider:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- the ASGI app ------------------------------------------------------------------------

    async def _app(
        self, scope: dict[str, Any], receive: Callable[[], Any], send: Callable[[dict[str, Any]], Any]
    ) -> None:
        if scope["type"] != "http":
            return
        raw = b""
        while True:
            message = await receive()
            raw += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        path = scope["path"]
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = None
        if scope["method"] == "POST" and path.rstrip("/").endswith("/v1/messages"):
            protocol, validate = "anthropic", anthropic_violations
        elif scope["method"] == "POST" and path.rstrip("/").endswith("/chat/completions"):
            protocol, validate = "openai", openai_violations
        else:
            await self._json(
                send, 404, {"error": {"type": "not_found_error", "message": f"no route {scope['method']} {path}"}}
            )
            return
        client = scope.get("client") or ("", 0)
        record = RecordedRequest(
            protocol, scope["method"], path, headers, body, [], time.monotonic(), peer=f"{client[0]}:{client[1]}"
        )
        with self._lock:
            self.requests.append(record)
        if not self._key_ok(protocol, headers):
            await self._error(
                send, protocol, HttpError(401, "authentication_error", self._bad_key_message(protocol, headers))
            )
            return
        problems = validate(body)
        if problems:
            with self._lock:
                record.violations = problems
            await self._error(send, protocol, HttpError(400, "invalid_request_error", "; ".join(problems)))
            return
        with self._lock:
            reply = self._script.pop(0) if self._script else self.reply_for(body)
        plan = _Plan(reply, body, self._ids)
        exchange = _Exchange(self, receive, reply)
        try:
            if reply.latency and not await exchange.pause(reply.latency):
                return
            if isinstance(reply.failure, HttpError):
                await self._error(send, protocol, reply.failure)
                return
            if not record.stream:
                if isinstance(reply.failure, Stall):
                    await exchange.stall()
                    return
                rendered = self._anthropic_message(plan) if protocol == "anthropic" else self._openai_completion(plan)
                await self._json(send, 200, rendered)
                return
            if isinstance(reply.failure, Stall) and reply.failure.after == 0:
                await exchange.stall()
                return
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [
                        (b"content-type", b"text/event-stream; charset=utf-8"),
                        (b"cache-control", b"no-cache"),
                    ],
                }
            )
            frames = (
                self._anthropic_frames(plan, exchange)
                if protocol == "anthropic"
                else self._openai_frames(plan, exchange)
            )
            async for frame in frames:
                await send({"type": "http.response.body", "body": frame, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            record.answered_at = time.monotonic()
            exchange.close()

    def _key_ok(self, protocol: str, headers: dict[str, str]) -> bool:
        bearer = headers.get("authorization", "")
        key = bearer[7:] if bearer.lower().startswith("bearer ") else ""
        if protocol == "anthropic":
            key = headers.get("x-api-key") or key
        return key in self.api_keys

    @staticmethod
    def _bad_key_message(protocol: str, headers: dict[str, str]) -> str:
        if protocol == "anthropic":
            return "invalid x-api-key"
        # OpenAI names the key it refused, masked: the adapters must cope with provider text
        # that quotes part of a key.
        key = headers.get("authorization", "")[7:]
        masked = (key[:3] + "*" * max(0, len(key) - 7) + key[-4:]) if len(key) > 7 else "****"
        return f"Incorrect API key provided: {masked}. You can find your API key at https://platform.openai.com/account/api-keys."

    @staticmethod
    async def _json(
        send: Callable[[dict[str, Any]], Any], status: int, body: Any, extra: list[tuple[bytes, bytes]] | None = None
    ) -> None:
        data = json.dumps(body).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json"), *(extra or [])],
            }
        )
        await send({"type": "http.response.body", "body": data})

    async def _error(self, send: Callable[[dict[str, Any]], Any], protocol: str, error: HttpError) -> None:
        extra = [(b"retry-after", str(error.retry_after).encode())] if error.retry_after is not None else []
        if protocol == "anthropic":
            body: dict[str, Any] = {
                "type": "error",
                "error": {"type": error.type, "message": error.message},
                "request_id": "req_fake",
            }
        else:
            code = {401: "invalid_api_key", 429: "rate_limit_exceeded"}.get(error.status)
            body = {"error": {"message": error.message, "type": error.type, "param": None, "code": code}}
        await self._json(send, error.status, body, extra)

    # -- Anthropic shapes --------------------------------------------------------------------

    def _stop_reason(self, plan: _Plan) -> str:
        return plan.reply.stop_reason or ("tool_use" if plan.has_tool else "end_turn")

    def _anthropic_message(self, plan: _Plan) -> dict[str, Any]:
        content: list[dict[str, Any]] = []
        for part, _, tool_id in plan.blocks:
            if isinstance(part, Text):
                content.append({"type": "text", "text": part.text})
            elif isinstance(part, Thinking):
                content.append({"type": "thinking", "thinking": part.text, "signature": part.signature})
            else:
                content.append(
                    {"type": "tool_use", "id": part.id or f"toolu_{tool_id}", "name": part.name, "input": part.input}
                )
        return {
            "id": f"msg_fake_{next(self._ids)}",
            "type": "message",
            "role": "assistant",
            "model": plan.model,
            "content": content,
            "stop_reason": self._stop_reason(plan),
            "stop_sequence": None,
            "usage": dict(plan.usage),
        }

    async def _anthropic_frames(self, plan: _Plan, exchange: _Exchange) -> Any:
        usage = plan.usage
        start_usage = {k: usage[k] for k in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")}
        yield _sse(
            "message_start",
            {
                "type": "message_start",
                "message": {
                    "id": f"msg_fake_{next(self._ids)}",
                    "type": "message",
                    "role": "assistant",
                    "model": plan.model,
                    "content": [],
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": {**start_usage, "output_tokens": 1},
                },
            },
        )
        failure = plan.reply.failure
        for index, (part, pieces, tool_id) in enumerate(plan.blocks):
            if isinstance(part, Text):
                start: dict[str, Any] = {"type": "text", "text": ""}
            elif isinstance(part, Thinking):
                start = {"type": "thinking", "thinking": "", "signature": ""}
            else:
                start = {"type": "tool_use", "id": part.id or f"toolu_{tool_id}", "name": part.name, "input": {}}
            yield _sse("content_block_start", {"type": "content_block_start", "index": index, "content_block": start})
            for piece in pieces:
                if not isinstance(part, ToolUse) and not await exchange.before_delta():
                    async for frame in self._anthropic_failure(failure, exchange):
                        yield frame
                    return
                if isinstance(part, Text):
                    delta: dict[str, Any] = {"type": "text_delta", "text": piece}
                elif isinstance(part, Thinking):
                    delta = {"type": "thinking_delta", "thinking": piece}
                else:
                    delta = {"type": "input_json_delta", "partial_json": piece}
                yield _sse("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta})
            if isinstance(part, Thinking):
                yield _sse(
                    "content_block_delta",
                    {
                        "type": "content_block_delta",
                        "index": index,
                        "delta": {"type": "signature_delta", "signature": part.signature},
                    },
                )
            yield _sse("content_block_stop", {"type": "content_block_stop", "index": index})
        if isinstance(failure, StreamError | Stall):  # fewer deltas than ``after``: fail at the end
            async for frame in self._anthropic_failure(failure, exchange):
                yield frame
            return
        # output_tokens in message_delta is cumulative (the SDK overwrites, never adds).
        yield _sse(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": self._stop_reason(plan), "stop_sequence": None},
                "usage": {"output_tokens": usage["output_tokens"]},
            },
        )
        yield _sse("message_stop", {"type": "message_stop"})

    @staticmethod
    async def _anthropic_failure(failure: Failure | None, exchange: _Exchange) -> Any:
        if isinstance(failure, StreamError):
            yield _sse("error", {"type": "error", "error": {"type": failure.type, "message": failure.message}})
        elif isinstance(failure, Stall):
            await exchange.stall()

    # -- OpenAI shapes -----------------------------------------------------------------------

    _FINISH = {
        "end_turn": "stop",
        "tool_use": "tool_calls",
        "max_tokens": "length",
        "refusal": "content_filter",
        "stop_sequence": "stop",
    }

    def _openai_usage(self, plan: _Plan) -> dict[str, Any]:
        prompt, completion = plan.usage["input_tokens"], plan.usage["output_tokens"]
        usage: dict[str, Any] = {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        }
        if plan.usage["cache_read_input_tokens"]:
            usage["prompt_tokens_details"] = {"cached_tokens": plan.usage["cache_read_input_tokens"]}
        return usage

    def _openai_completion(self, plan: _Plan) -> dict[str, Any]:
        text = "".join(p.text for p, _, _ in plan.blocks if isinstance(p, Text))
        calls = [
            {
                "id": p.id or f"call_{tool_id}",
                "type": "function",
                "function": {"name": p.name, "arguments": json.dumps(p.input)},
            }
            for p, _, tool_id in plan.blocks
            if isinstance(p, ToolUse)
        ]
        message: dict[str, Any] = {"role": "assistant", "content": text or None}
        if calls:
            message["tool_calls"] = calls
        return {
            "id": f"chatcmpl-fake{next(self._ids)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": plan.model,
            "choices": [
                {
                    "index": 0,
                    "finish_reason": self._FINISH.get(self._stop_reason(plan), "stop"),
                    "logprobs": None,
                    "message": message,
                }
            ],
            "usage": self._openai_usage(plan),
        }

    async def _openai_frames(self, plan: _Plan, exchange: _Exchange) -> Any:
        ident, created = f"chatcmpl-fake{next(self._ids)}", int(time.time())

        def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
            return _sse(
                None,
                {
                    "id": ident,
                    "object": "chat.completion.chunk",
                    "created": created,
                    "model": plan.model,
                    "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
                },
            )

        yield chunk({"role": "assistant", "content": ""})
        failure = plan.reply.failure
        call_index = 0
        for part, pieces, tool_id in plan.blocks:
            if isinstance(part, Thinking):
                continue  # Chat Completions has no thinking blocks
            if isinstance(part, ToolUse):
                ident_call = part.id or f"call_{tool_id}"
                yield chunk(
                    {
                        "tool_calls": [
                            {
                                "index": call_index,
                                "id": ident_call,
                                "type": "function",
                                "function": {"name": part.name, "arguments": ""},
                            }
                        ]
                    }
                )
                for piece in pieces:
                    yield chunk({"tool_calls": [{"index": call_index, "function": {"arguments": piece}}]})
                call_index += 1
                continue
            for piece in pieces:
                if not await exchange.before_delta():
                    async for frame in self._openai_failure(failure, exchange):
                        yield frame
                    return
                yield chunk({"content": piece})
        if isinstance(failure, StreamError | Stall):
            async for frame in self._openai_failure(failure, exchange):
                yield frame
            return
        yield chunk({}, self._FINISH.get(self._stop_reason(plan), "stop"))
        if plan.include_usage:  # the last chunk: choices [] and the usage
            yield _sse(
                None,
                {
                    "id": ident,
                    "object": "chat.completion.chunk",
                    "created": created,
                    "model": plan.model,
                    "choices": [],
                    "usage": self._openai_usage(plan),
                },
            )
        yield _sse(None, "[DONE]")

    @staticmethod
    async def _openai_failure(failure: Failure | None, exchange: _Exchange) -> Any:
        if isinstance(failure, StreamError):
            yield _sse(None, {"error": {"message": failure.message, "type": failure.type, "param": None, "code": None}})
        elif isinstance(failure, Stall):
            await exchange.stall()


# -- pytest ---------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def fake_provider_server() -> Iterator[FakeProvider]:
    """One server for the whole run (starting one per test would cost ~0.15 s each)."""
    with FakeProvider() as fake:
        yield fake


@pytest.fixture
def fake_provider(fake_provider_server: FakeProvider) -> Iterator[FakeProvider]:
    """The fake provider, reset for this test; the test fails at teardown if any request it got
    was invalid (call ``take_violations()`` in a test that sends bad requests on purpose)."""
    fake = fake_provider_server
    fake.reset()
    yield fake
    problems = fake.violations
    fake.reset()
    if problems:
        pytest.fail("the fake provider received invalid requests:\n" + "\n".join(problems), pytrace=False)
