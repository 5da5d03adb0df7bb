"""A completion's reply assembled from its session's events (application.chat_replies), and
the ``param`` a refused body names."""

from __future__ import annotations

from typing import Any

import pydantic
import pytest

from application.chat_replies import ChatReply
from interfaces.http.chat_schemas import ChatCompletionCreate
from interfaces.http.errors import first_location


def delta(message_id: str, text: str) -> dict[str, Any]:
    return {"type": "event_delta", "event_id": message_id, "delta": {"type": "content_delta", "content": {"type": "text", "text": text}}}


def message(message_id: str, text: str) -> dict[str, Any]:
    return {"type": "agent.message", "id": message_id, "content": [{"type": "text", "text": text}]}


def start(message_id: str) -> dict[str, Any]:
    return {"type": "event_start", "event": {"type": "agent.message", "id": message_id}}


def idle(stop: str) -> dict[str, Any]:
    return {"type": "session.status_idle", "stop_reason": {"type": stop}}


def contents(chunks: list[dict[str, Any]]) -> str:
    return "".join(chunk["choices"][0]["delta"].get("content", "") for chunk in chunks if chunk["choices"])


def feed(reply: ChatReply, *events: dict[str, Any]) -> list[dict[str, Any]]:
    return [chunk for event in events for chunk in reply.take(event)]


def test_previews_stream_first_and_the_stored_message_adds_only_what_they_missed() -> None:
    reply = ChatReply("m")
    chunks = feed(reply, start("e1"), delta("e1", "Hel"), delta("e1", "lo"), message("e1", "Hello world"), idle("end_turn"))
    assert contents(chunks) == "Hello world"
    assert reply.done and reply.finish_reason == "stop"
    assert chunks[-1]["choices"][0] == {"index": 0, "delta": {}, "finish_reason": "stop", "logprobs": None}
    assert reply.completion()["choices"][0]["message"] == {"role": "assistant", "content": "Hello world"}


def test_messages_of_one_turn_are_joined_by_a_blank_line_in_the_stream_and_the_completion() -> None:
    reply = ChatReply("m")
    chunks = feed(reply, message("e1", "First."), start("e2"), delta("e2", "Sec"), message("e2", "Second."), idle("end_turn"))
    assert contents(chunks) == "First.\n\nSecond."
    assert reply.completion()["choices"][0]["message"]["content"] == "First.\n\nSecond."


def test_tool_calls_are_indexed_and_usage_sums_every_request() -> None:
    reply = ChatReply("m")
    end = {"type": "span.model_request_end", "model_usage": {"input_tokens": 10, "cache_read_input_tokens": 5, "output_tokens": 2}}
    chunks = feed(
        reply,
        end,
        {"type": "agent.custom_tool_use", "id": "sevt_a", "name": "f", "input": {"x": 1}},
        {"type": "agent.custom_tool_use", "id": "sevt_b", "name": "g", "input": {}},
        end,
        idle("requires_action"),
    )
    calls = [chunk["choices"][0]["delta"]["tool_calls"][0] for chunk in chunks if "tool_calls" in chunk["choices"][0]["delta"]]
    assert [(call["index"], call["id"], call["function"]["arguments"]) for call in calls] == [(0, "sevt_a", '{"x":1}'), (1, "sevt_b", "{}")]
    assert reply.finish_reason == "tool_calls"
    completion = reply.completion()
    assert completion["choices"][0]["message"]["content"] is None
    assert completion["usage"] == {"prompt_tokens": 30, "completion_tokens": 4, "total_tokens": 34}
    assert reply.usage_chunk()["choices"] == []


def test_a_failed_turn_is_the_last_final_error_and_retries_do_not_count() -> None:
    reply = ChatReply("m")
    retrying = {"type": "session.error", "error": {"type": "model_overloaded_error", "message": "busy", "retry_status": {"type": "retrying"}}}
    exhausted = {"type": "session.error", "error": {"type": "model_rate_limited_error", "message": "slow down", "retry_status": {"type": "exhausted"}}}
    feed(reply, retrying, exhausted, idle("retries_exhausted"))
    assert reply.error == {"type": "model_rate_limited_error", "message": "slow down"} and reply.error_status == 429
    assert feed(reply, message("e9", "late")) == []  # nothing after the end


def test_a_preview_heard_mid_way_is_dropped_for_its_stored_message() -> None:
    """Its first deltas went out before anyone listened: streaming the rest would cut the text."""
    reply = ChatReply("m")
    chunks = feed(reply, delta("e1", "rld"), message("e1", "Hello world"), idle("end_turn"))
    assert contents(chunks) == "Hello world"


def test_without_previews_only_stored_messages_count() -> None:
    reply = ChatReply("m", previews=False)
    chunks = feed(reply, start("e1"), delta("e1", "partial tha"), message("e2", "Good answer."), idle("end_turn"))
    assert contents(chunks) == "Good answer." and reply.completion()["choices"][0]["message"]["content"] == "Good answer."


def test_other_endings_map_to_openai_finish_reasons_or_errors() -> None:
    for stop, finish in (("budget_reached", "length"), ("refusal", "content_filter"), ("end_turn", "stop")):
        reply = ChatReply("m")
        feed(reply, idle(stop))
        assert reply.finish_reason == finish
    reply = ChatReply("m", "sesn_1")
    feed(reply, {"type": "session.status_idle", "stop_reason": {"type": "requires_action", "event_ids": ["sevt_c"]}})
    assert reply.error is not None and reply.error["type"] == "requires_action" and reply.error_status == 409
    assert "sevt_c" in reply.error["message"] and "/v1/sessions/sesn_1/events" in reply.error["message"]
    reply = ChatReply("m")
    feed(reply, {"type": "session.status_terminated"})
    assert reply.error is not None and reply.error_status == 409
    reply = ChatReply("m")
    feed(reply, {"type": "session.error", "error": {"type": "unknown_error", "message": "boom", "retry_status": {"type": "terminal"}}})
    feed(reply, {"type": "session.status_terminated"})
    assert reply.error == {"type": "unknown_error", "message": "boom"} and reply.error_status == 502


def test_a_bad_field_is_named_as_openai_spells_param() -> None:
    cases = [
        ({"messages": [{"role": "user", "content": 5}]}, "messages[0].content"),
        ({"messages": [{"role": "tool", "content": "x"}]}, "messages[0].tool_call_id"),
        ({"messages": [{"role": "user", "content": "x"}], "temperature": 9}, "temperature"),
        ({"messages": [{"role": "user", "content": "x"}], "tools": [{"type": "function", "function": {"name": "a b"}}]}, "tools[0].function.name"),
    ]
    for body, param in cases:
        with pytest.raises(pydantic.ValidationError) as refused:
            ChatCompletionCreate.model_validate({"model": "m", **body})
        assert first_location(refused.value) == param
