"""The model behind the agents of the work queue's tests (``real_objects.tool_model``).

A work item exists only once a session's agent calls a built-in tool, so those agents need a
model that calls one. It is the one fake the test rules allow (tests/support/fake_provider.py),
reached through a model card of its own: the other resources' sessions keep the server's
default provider (none here), as before. The card's model calls ``bash`` for a user's
message and answers in text once the call has a result (in this run, the error the server
records when no worker ran it), so each session's turn ends.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from tests.support.fake_provider import API_KEY, FakeProvider, Reply, Text, ToolUse

CALL = Reply([ToolUse("bash", {"command": "true"})])
DONE = Reply([Text("The command ran.")])


class ToolCallingProvider(FakeProvider):
    """Answers by the request, not in a scripted order: many sessions ask it at once."""

    def reply_for(self, body: Any) -> Reply:
        messages = body.get("messages") if isinstance(body, dict) else None
        last = messages[-1].get("content") if isinstance(messages, list) and messages else None
        answered = isinstance(last, list) and any(
            isinstance(block, dict) and block.get("type") == "tool_result" for block in last
        )
        return DONE if answered else CALL


@contextmanager
def tool_model(http: httpx.Client) -> Iterator[str]:
    """A running ToolCallingProvider and a model card aimed at it; yields the card's model id
    (what an agent names as its ``model``). Fails when the fake received an invalid request."""
    with ToolCallingProvider() as fake:
        model_id = f"conformance-tools-{uuid.uuid4().hex[:8]}"  # unique: a server may outlive a run
        body = {
            "model_id": model_id,
            "provider": "ant",
            "model": "claude-opus-4-7",
            "api_key": API_KEY,
            "base_url": fake.anthropic_base_url,
            "probe": False,
        }
        response = http.post("/v1/model_cards", json=body)
        if response.status_code >= 300:
            raise RuntimeError(f"conformance setup: POST /v1/model_cards → {response.status_code} {response.text[:300]}")
        try:
            yield model_id
        finally:
            http.delete(f"/v1/model_cards/{response.json()['id']}")
        if fake.violations:
            raise AssertionError("the tool-calling model received invalid requests:\n" + "\n".join(fake.violations))
