"""Driving sessions through the official SDK in e2e tests: send a message, wait for the log."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import anthropic

from tests.support.server import RunningServer

# What one turn with a plain text reply records after its user.message.
PLAIN_TURN = [
    "session.status_running",
    "span.model_request_start",
    "agent.message",
    "span.model_request_end",
    "session.usage",
    "session.status_idle",
]


def sdk_client(server: RunningServer) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=server.base_url, api_key=server.api_key, max_retries=0, timeout=20)


def say(client: anthropic.Anthropic, session_id: str, text: str) -> None:
    client.beta.sessions.events.send(
        session_id, events=[{"type": "user.message", "content": [{"type": "text", "text": text}]}]
    )


def wait_for(
    client: anthropic.Anthropic, session_id: str, done: Callable[[list[Any]], bool], timeout: float = 20
) -> list[Any]:
    """The session's whole log, once ``done(log)`` holds."""
    deadline = time.monotonic() + timeout
    while True:
        events = list(client.beta.sessions.events.list(session_id, limit=1000))
        if done(events):
            return events
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out; log: {[e.type for e in events]}")
        time.sleep(0.05)


def idles(count: int) -> Callable[[list[Any]], bool]:
    """The log holds at least ``count`` session.status_idle events."""
    return lambda events: sum(e.type == "session.status_idle" for e in events) >= count


def wait_idle(client: anthropic.Anthropic, session_id: str, count: int = 1, timeout: float = 15) -> list[Any]:
    return wait_for(client, session_id, idles(count), timeout)


def eventually(probe: Callable[[], Any], timeout: float = 30.0) -> Any:
    """``probe()``'s first truthy answer within ``timeout`` seconds, else its last answer
    (the caller's assertion then says what was missing)."""
    deadline = time.monotonic() + timeout
    while True:
        found = probe()
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.25)


def tool_result_text(result: Any) -> str:
    """The text blocks of a tool result's content, joined."""
    return "".join(block.text for block in result.content or [] if block.type == "text")
