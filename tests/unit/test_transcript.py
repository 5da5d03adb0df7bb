"""The session log as a provider request: pairing, merging, flushing, incremental feeding."""

from __future__ import annotations

from typing import Any

from application.runtime.transcript import UNANSWERED, Transcript
from domain.sessions import Session


def text(value: str) -> list[dict[str, Any]]:
    return [{"type": "text", "text": value}]


def new_session() -> Session:
    return Session(session_id="sesn_transcript1", tenant_id="t1", agent={}, environment_id="env_x", details={})


def test_a_tool_round_trip_pairs_each_call_with_its_result_first_in_the_next_user_turn() -> None:
    session = new_session()
    session.accept_user_event("user.message", "sevt_u1", {"content": text("weather?")})
    session.start_turn("sevt_run")
    session.begin_request("sevt_s1")
    session.finish_request(
        "sevt_s1",
        [
            ("agent.thinking", "sevt_t", {}),
            ("agent.message", "sevt_m", {"content": text("Let me look.")}),
            ("agent.custom_tool_use", "sevt_c1", {"name": "weather", "input": {"city": "Paris"}}),
        ],
        "sevt_e1", {"model_usage": {}},
        {"sevt_t": {"type": "thinking", "thinking": "hmm", "signature": "sig"}}, 0, True,
    )
    session.go_idle("sevt_i", {"type": "requires_action", "event_ids": ["sevt_c1"]})
    session.accept_user_event(
        "user.custom_tool_result", "sevt_r", {"custom_tool_use_id": "sevt_c1", "content": text("sunny")}
    )
    session.accept_user_event("user.message", "sevt_u2", {"content": text("and tomorrow?")})
    transcript = Transcript()
    transcript.feed(session.collect_events())

    request = transcript.request("be brief", [])
    assert request.system == "be brief"
    assert request.messages == [
        {"role": "user", "content": text("weather?")},
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "hmm", "signature": "sig"},
                {"type": "text", "text": "Let me look."},
                {"type": "tool_use", "id": "sevt_c1", "name": "weather", "input": {"city": "Paris"}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "sevt_c1", "content": text("sunny"), "is_error": False},
                {"type": "text", "text": "and tomorrow?"},
            ],
        },
    ]


def test_an_unanswered_call_gets_a_synthetic_error_and_flushed_input_is_never_sent() -> None:
    session = new_session()
    session.accept_user_event("user.message", "sevt_u1", {"content": text("go")})
    session.begin_request("sevt_s1")
    session.finish_request(
        "sevt_s1", [("agent.custom_tool_use", "sevt_c1", {"name": "t", "input": {}})], "sevt_e1",
        {"model_usage": {}}, {}, 0, True,
    )
    session.go_idle("sevt_i", {"type": "requires_action", "event_ids": ["sevt_c1"]})
    session.accept_user_event("user.message", "sevt_u2", {"content": text("never mind")})
    session.start_turn("sevt_run")
    session.begin_request("sevt_s2")
    session.accept_user_event("user.message", "sevt_u3", {"content": text("queued, then flushed")})
    session.accept_user_event("user.interrupt", "sevt_x", {})
    session.close_request("sevt_e2", is_error=False)
    session.handle_interrupt()
    session.go_idle("sevt_i2", {"type": "end_turn"})
    session.accept_user_event("user.message", "sevt_u4", {"content": text("hello again")})

    transcript = Transcript()
    events = session.collect_events()
    transcript.feed(events[:5])  # fed in two parts, as turns read what is new
    transcript.feed(events[5:])
    messages = transcript.request(None, []).messages
    assert [message["role"] for message in messages] == ["user", "assistant", "user"]
    answer = messages[2]["content"]
    assert answer[0] == {"type": "tool_result", "tool_use_id": "sevt_c1", "content": text(UNANSWERED), "is_error": True}
    assert [block["text"] for block in answer[1:]] == ["never mind", "hello again"]
    assert transcript.version == events[-1].originator_version


def test_empty_text_is_dropped_and_the_request_ends_on_a_user_turn() -> None:
    session = new_session()
    session.accept_user_event("user.message", "sevt_u1", {"content": text("") + text("hi")})
    session.begin_request("sevt_s1")
    session.finish_request(
        "sevt_s1", [("agent.message", "sevt_m", {"content": text("hello")})], "sevt_e1", {"model_usage": {}}, {}, 0, True
    )
    transcript = Transcript()
    transcript.feed(session.collect_events())
    messages = transcript.request("", []).messages
    assert messages[0] == {"role": "user", "content": text("hi")}
    assert messages[-1]["role"] == "user"
    assert transcript.request("", []).system is None
