"""The agent runtime end to end: a real server, the official anthropic SDK as the client, and
a fake provider speaking the real Anthropic / OpenAI streaming protocols (the only fake)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import pytest
from anthropic.lib.tools import beta_async_tool

from tests.support.fake_provider import (
    API_KEY as PROVIDER_KEY,
)
from tests.support.fake_provider import (
    FakeProvider,
    Reply,
    Text,
    Thinking,
    ToolUse,
    bad_key,
    overloaded,
    rate_limited,
    stalled,
)
from tests.support.postgres import database_of
from tests.support.sdk_sessions import idles, say, sdk_client, wait_for
from tests.support.server import RunningServer, running_server

PRICED_MODEL = "claude-sonnet-4-6"


def _server(tmp_path: Path, fake: FakeProvider, database_url: str = "", protocol: str = "anthropic", **overrides: Any):  # noqa: ANN202
    provider_settings: dict[str, Any] = (
        {"anthropic_api_key": PROVIDER_KEY, "anthropic_base_url": fake.anthropic_base_url}
        if protocol == "anthropic"
        else {"openai_api_key": PROVIDER_KEY, "openai_base_url": fake.openai_base_url}
    )
    settings = {
        "runtime_retries": 2,
        "runtime_retry_base_seconds": 0.05,
        # No environment worker polls in these tests: a built-in call gives up on it soon.
        "worker_timeout_seconds": 2.0,
        **provider_settings,
        **overrides,
    }
    return running_server(tmp_path / "data", database_url, **settings)


@pytest.fixture(params=["sqlite", "postgres"])
def served(request: pytest.FixtureRequest, tmp_path: Path, fake_provider: FakeProvider) -> Iterator[RunningServer]:
    database_url = database_of(request)
    with _server(tmp_path, fake_provider, database_url) as running:
        yield running


def _session(client: anthropic.Anthropic, tools: list[dict[str, Any]] | None = None, **fields: Any) -> str:
    agent = client.beta.agents.create(name="runner", model=PRICED_MODEL, system="Be brief.", tools=tools or [])
    env = client.beta.environments.create(name="env")
    return client.beta.sessions.create(agent=agent.id, environment_id=env.id, **fields).id


def _types(events: list[Any]) -> list[str]:
    return [event.type for event in events]


CUSTOM_TOOL = {
    "type": "custom",
    "name": "get_weather",
    "description": "The weather in a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


def test_a_turn_streams_from_the_provider_and_records_spans_usage_and_the_reply(
    served: RunningServer, fake_provider: FakeProvider
) -> None:
    client = sdk_client(served)
    session_id = _session(client)
    fake_provider.script(
        Reply([Thinking("let me think"), Text("Hello there, traveller.", tokens=4)], usage={"input_tokens": 1200, "output_tokens": 30})
    )
    say(client, session_id, "hi")
    events = wait_for(client, session_id, idles(1))
    assert _types(events) == [
        "user.message",
        "session.status_running",
        "span.model_request_start",
        "agent.thinking",
        "agent.message",
        "span.model_request_end",
        "session.usage",
        "session.status_idle",
    ]
    assert [e.seq for e in events] == list(range(1, 9))
    assert events[4].content[0].text == "Hello there, traveller."
    end = events[5]
    assert end.model_request_start_id == events[2].id
    assert end.model_usage.input_tokens == 1200 and end.model_usage.output_tokens == 30
    assert events[7].stop_reason.type == "end_turn"
    # the stored agent.thinking carries no thinking text
    assert "let me think" not in events[3].model_dump_json()

    request = fake_provider.requests[0].body
    assert request["model"] == PRICED_MODEL and request["system"] == "Be brief."
    assert request["messages"] == [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]

    # the thinking text and signature go back to the provider on the next request
    say(client, session_id, "again")
    wait_for(client, session_id, idles(2))
    replayed = fake_provider.requests[1].body["messages"][1]["content"]
    assert replayed[0] == {"type": "thinking", "thinking": "let me think", "signature": "sig-fake-0001"}

    session = client.beta.sessions.retrieve(session_id)
    assert session.status == "idle"
    assert session.usage.input_tokens >= 1200 and session.usage.output_tokens >= 30
    # claude-sonnet-4-6 at $3 / MTok in: 1200 tokens ≥ 0.36 cents
    assert session.usage.list_cost is not None and session.usage.list_cost.currency == "USD"


def test_previews_stream_the_message_before_it_is_stored_and_only_when_asked(
    served: RunningServer, fake_provider: FakeProvider
) -> None:
    client = sdk_client(served)
    session_id = _session(client)
    fake_provider.script(Reply([Text("one two three four five", tokens=5)], token_delay=0.05))
    with_deltas: list[Any] = []
    without: list[Any] = []

    def follow(into: list[Any], **params: Any) -> None:
        with client.beta.sessions.events.stream(session_id, **params) as stream:
            for event in stream:
                into.append(event)
                if event.type == "session.status_idle":
                    return

    readers = [
        threading.Thread(target=follow, args=(with_deltas,), kwargs={"event_deltas": ["agent.message"]}),
        threading.Thread(target=follow, args=(without,)),
    ]
    for reader in readers:
        reader.start()
    time.sleep(0.3)
    say(client, session_id, "count")
    for reader in readers:
        reader.join(20)

    kinds = _types(with_deltas)
    assert "event_start" in kinds and "event_delta" in kinds
    start = with_deltas[kinds.index("event_start")]
    final = next(e for e in with_deltas if e.type == "agent.message")
    assert start.event.id == final.id and start.event.type == "agent.message"
    assert kinds.index("event_start") < kinds.index("agent.message")
    deltas = [e for e in with_deltas if e.type == "event_delta"]
    assert all(d.event_id == final.id for d in deltas)
    assert "".join(d.delta.content.text for d in deltas) == final.content[0].text
    assert not {"event_start", "event_delta"} & set(_types(without))
    # previews are never stored
    assert not {"event_start", "event_delta"} & set(_types(list(client.beta.sessions.events.list(session_id))))


def test_event_deltas_take_only_previewable_types(served: RunningServer) -> None:
    client = sdk_client(served)
    session_id = _session(client)
    with pytest.raises(anthropic.BadRequestError):
        with client.beta.sessions.events.stream(session_id, event_deltas=["agent.tool_use"]):  # type: ignore[list-item]
            pass


def test_a_custom_tool_round_trip_resumes_the_turn_without_a_new_message(
    served: RunningServer, fake_provider: FakeProvider
) -> None:
    client = sdk_client(served)
    session_id = _session(client, tools=[CUSTOM_TOOL])
    fake_provider.script(
        Reply([Text("Checking."), ToolUse("get_weather", {"city": "Paris"})]),
        Reply([Text("It is sunny in Paris.")]),
    )
    say(client, session_id, "weather in Paris?")
    events = wait_for(client, session_id, idles(1))
    use = next(e for e in events if e.type == "agent.custom_tool_use")
    assert use.name == "get_weather" and use.input == {"city": "Paris"}
    idle = events[-1]
    assert idle.stop_reason.type == "requires_action" and idle.stop_reason.event_ids == [use.id]
    offered = fake_provider.requests[0].body["tools"]
    assert [tool["name"] for tool in offered] == ["get_weather"]

    # an answer to a call nobody made is refused, and nothing is stored
    with pytest.raises(anthropic.BadRequestError):
        client.beta.sessions.events.send(
            session_id, events=[{"type": "user.custom_tool_result", "custom_tool_use_id": "sevt_nope"}]
        )
    client.beta.sessions.events.send(
        session_id,
        events=[{"type": "user.custom_tool_result", "custom_tool_use_id": use.id, "content": [{"type": "text", "text": "sunny, 24°C"}]}],
    )
    events = wait_for(client, session_id, idles(2))
    assert events[-1].stop_reason.type == "end_turn"
    assert next(e for e in reversed(events) if e.type == "agent.message").content[0].text == "It is sunny in Paris."
    second = fake_provider.requests[1].body["messages"]
    assert second[-1] == {
        "role": "user",
        "content": [{"type": "tool_result", "tool_use_id": use.id, "content": [{"type": "text", "text": "sunny, 24°C"}], "is_error": False}],
    }
    assert sum(e.type == "user.message" for e in events) == 1


def test_the_sdk_session_tool_runner_answers_custom_tools(served: RunningServer, fake_provider: FakeProvider) -> None:
    client = sdk_client(served)
    session_id = _session(client, tools=[CUSTOM_TOOL])
    fake_provider.script(Reply([ToolUse("get_weather", {"city": "Oslo"})]), Reply([Text("Cold in Oslo.")]))

    @beta_async_tool
    async def get_weather(city: str) -> str:
        """The weather in a city"""
        return f"{city}: -3°C"

    async def run() -> list[Any]:
        async_client = anthropic.AsyncAnthropic(base_url=served.base_url, api_key=served.api_key, max_retries=0)
        calls = []

        async def say_once_attached() -> None:
            # The runner arms its idle countdown on an end_turn it sees live: send after it attached.
            await asyncio.sleep(1.0)
            await asyncio.to_thread(say, client, session_id, "weather in Oslo?")

        sender = asyncio.create_task(say_once_attached())
        async for call in async_client.beta.sessions.events.tool_runner(session_id, tools=[get_weather], max_idle=1.0):
            calls.append(call)
        await sender
        return calls

    calls = asyncio.run(asyncio.wait_for(run(), 30))
    assert [call.name for call in calls] == ["get_weather"]
    events = wait_for(client, session_id, idles(2))
    assert events[-1].stop_reason.type == "end_turn"
    result = next(e for e in events if e.type == "user.custom_tool_result")
    assert result.content[0].text == "Oslo: -3°C"


ASKING_TOOLSET = {
    "type": "agent_toolset_20260401",
    "default_config": {"permission_policy": {"type": "always_ask"}},
}


@pytest.mark.parametrize("answer", ["allow", "deny"])
def test_always_ask_waits_for_a_confirmation(served: RunningServer, fake_provider: FakeProvider, answer: str) -> None:
    client = sdk_client(served)
    session_id = _session(client, tools=[ASKING_TOOLSET])
    fake_provider.script(Reply([ToolUse("bash", {"command": "ls"})]), Reply([Text("Done.")]))
    say(client, session_id, "list files")
    events = wait_for(client, session_id, idles(1))
    use = next(e for e in events if e.type == "agent.tool_use")
    assert use.evaluated_permission == "ask" and use.evaluation.type == "always_ask"
    assert events[-1].stop_reason.event_ids == [use.id]
    confirmation: dict[str, Any] = {"type": "user.tool_confirmation", "tool_use_id": use.id, "result": answer}
    if answer == "deny":
        confirmation["deny_message"] = "not on this machine"
    client.beta.sessions.events.send(session_id, events=[confirmation])
    events = wait_for(client, session_id, idles(2))
    result = next(e for e in events if e.type == "agent.tool_result")
    assert result.tool_use_id == use.id and result.is_error
    text = result.content[0].text
    if answer == "deny":
        assert text == "Denied: not on this machine"
    else:
        # Allowed, the call waited for the environment's worker; none polls here.
        assert "no worker of this session's environment held its work for 2 s" in text
    answered = fake_provider.requests[1].body["messages"][-1]["content"][0]
    assert answered["tool_use_id"] == use.id and answered["is_error"] is True
    assert events[-1].stop_reason.type == "end_turn"


def test_interrupt_aborts_the_stream_flushes_queued_input_and_leaves_the_session_usable(
    served: RunningServer, fake_provider: FakeProvider
) -> None:
    client = sdk_client(served)
    session_id = _session(client)
    fake_provider.script(stalled(after=2))
    say(client, session_id, "tell me a long story")
    fake_provider.wait_for_stall()
    say(client, session_id, "queued while the model streams")
    started = time.monotonic()
    client.beta.sessions.events.send(session_id, events=[{"type": "user.interrupt"}])
    events = wait_for(client, session_id, idles(1))
    assert time.monotonic() - started < 5
    assert "agent.message" not in _types(events)
    end = next(e for e in events if e.type == "span.model_request_end")
    assert end.is_error is False
    assert events[-1].stop_reason.type == "end_turn"

    fake_provider.script(Reply([Text("Short story.")]))
    say(client, session_id, "a short one then")
    events = wait_for(client, session_id, idles(2))
    assert events[-1].stop_reason.type == "end_turn"
    sent = fake_provider.requests[-1].body["messages"]
    texts = [block["text"] for message in sent for block in message["content"] if block.get("type") == "text"]
    assert texts == ["tell me a long story", "a short one then"]  # the queued message was flushed


def test_overloaded_provider_is_retried_then_exhausted(served: RunningServer, fake_provider: FakeProvider) -> None:
    client = sdk_client(served)
    session_id = _session(client)
    fake_provider.script(overloaded(), overloaded(), overloaded())
    say(client, session_id, "hi")
    events = wait_for(client, session_id, idles(1))
    errors = [e for e in events if e.type == "session.error"]
    assert [e.error.type for e in errors] == ["model_overloaded_error"] * 3
    assert [e.error.retry_status.type for e in errors] == ["retrying", "retrying", "exhausted"]
    assert _types(events).count("session.status_rescheduled") == 2
    assert events[-1].stop_reason.type == "retries_exhausted"
    assert len(fake_provider.requests) == 3
    # every span opened was closed, as an error
    starts = [e.id for e in events if e.type == "span.model_request_start"]
    ends = [e for e in events if e.type == "span.model_request_end"]
    assert [e.model_request_start_id for e in ends] == starts and all(e.is_error for e in ends)


def test_a_rate_limit_is_retried_and_the_turn_completes(served: RunningServer, fake_provider: FakeProvider) -> None:
    client = sdk_client(served)
    session_id = _session(client)
    fake_provider.script(rate_limited(retry_after=0.1), Reply([Text("made it")]))
    say(client, session_id, "hi")
    events = wait_for(client, session_id, idles(1))
    assert [e.error.type for e in events if e.type == "session.error"] == ["model_rate_limited_error"]
    assert events[-1].stop_reason.type == "end_turn"
    assert next(e for e in events if e.type == "agent.message").content[0].text == "made it"


def test_an_authentication_error_terminates_the_session(served: RunningServer, fake_provider: FakeProvider) -> None:
    client = sdk_client(served)
    session_id = _session(client)
    fake_provider.script(bad_key())
    say(client, session_id, "hi")
    events = wait_for(client, session_id, lambda events: "session.status_terminated" in _types(events))
    error = next(e for e in events if e.type == "session.error")
    assert error.error.retry_status.type == "terminal"
    assert PROVIDER_KEY not in error.error.message
    assert client.beta.sessions.retrieve(session_id).status == "terminated"


def test_a_budget_stops_new_requests_and_raising_it_resumes(served: RunningServer, fake_provider: FakeProvider) -> None:
    client = sdk_client(served)
    session_id = _session(client, budget={"type": "limit", "max_list_cost": {"amount": "1", "currency": "USD"}})
    # 10k input tokens at $3 / MTok = 3 cents: the first request finishes, the next may not start
    fake_provider.script(Reply([Text("expensive")], usage={"input_tokens": 10_000, "output_tokens": 10}))
    say(client, session_id, "hi")
    wait_for(client, session_id, idles(1))
    say(client, session_id, "more")
    events = wait_for(client, session_id, idles(2))
    assert events[-1].stop_reason.type == "budget_reached"
    assert len(fake_provider.requests) == 1
    assert client.beta.sessions.retrieve(session_id).usage.list_cost.amount == "3"

    fake_provider.script(Reply([Text("resumed")]))
    client.beta.sessions.update(session_id, budget={"type": "limit", "max_list_cost": {"amount": "500", "currency": "USD"}})
    events = wait_for(client, session_id, idles(3))
    assert events[-1].stop_reason.type == "end_turn"
    assert next(e for e in reversed(events) if e.type == "agent.message").content[0].text == "resumed"


@pytest.mark.parametrize("database", ["sqlite", "postgres"])
def test_the_openai_protocol_drives_the_same_loop(
    request: pytest.FixtureRequest, tmp_path: Path, fake_provider: FakeProvider, database: str
) -> None:
    database_url = request.getfixturevalue("postgres_url") if database == "postgres" else ""
    with _server(tmp_path, fake_provider, database_url, protocol="openai") as server:
        client = sdk_client(server)
        session_id = _session(client, tools=[CUSTOM_TOOL])
        fake_provider.script(Reply([ToolUse("get_weather", {"city": "Rome"})]), Reply([Text("Warm in Rome.")]))
        say(client, session_id, "weather in Rome?")
        events = wait_for(client, session_id, idles(1))
        use = next(e for e in events if e.type == "agent.custom_tool_use")
        assert use.input == {"city": "Rome"}
        client.beta.sessions.events.send(
            session_id,
            events=[{"type": "user.custom_tool_result", "custom_tool_use_id": use.id, "content": [{"type": "text", "text": "28°C"}]}],
        )
        events = wait_for(client, session_id, idles(2))
        assert next(e for e in reversed(events) if e.type == "agent.message").content[0].text == "Warm in Rome."
        assert all(request.path == "/v1/chat/completions" for request in fake_provider.requests)
        second = fake_provider.requests[1].body["messages"]
        assert second[-1] == {"role": "tool", "tool_call_id": use.id, "content": "28°C"}


def test_without_a_provider_the_turn_says_what_to_configure_and_the_session_stays_usable(tmp_path: Path) -> None:
    with running_server(tmp_path / "data") as server:
        client = sdk_client(server)
        session_id = _session(client)
        say(client, session_id, "hi")
        events = wait_for(client, session_id, idles(1))
        error = next(e for e in events if e.type == "session.error")
        assert "AGENTRY_ANTHROPIC_API_KEY" in error.error.message and "model_cards" in error.error.message
        assert events[-1].stop_reason.type == "retries_exhausted"
        assert client.beta.sessions.retrieve(session_id).status == "idle"
        say(client, session_id, "still there?")
        assert wait_for(client, session_id, idles(2))[-1].type == "session.status_idle"


def _define_outcome(client: anthropic.Anthropic, session_id: str, max_iterations: int) -> str:
    sent = client.beta.sessions.events.send(
        session_id,
        events=[
            {
                "type": "user.define_outcome",
                "description": "Write a haiku about the sea",
                "rubric": {"type": "text", "content": "Three lines, 5-7-5 syllables, mentions waves"},
                "max_iterations": max_iterations,
            }
        ],
    )
    return sent.data[0].outcome_id


def _verdict(result: str, explanation: str) -> Reply:
    return Reply([Text(f'{{"result": "{result}", "explanation": "{explanation}"}}')])


def test_an_outcome_is_graded_and_revised_until_satisfied(served: RunningServer, fake_provider: FakeProvider) -> None:
    client = sdk_client(served)
    session_id = _session(client)
    fake_provider.script(
        Reply([Text("The sea is big.")]),
        _verdict("needs_revision", "not a haiku"),
        Reply([Text("Waves fold into foam / salt wind carries gull voices / the tide breathes for us")]),
        _verdict("satisfied", "a 5-7-5 haiku about waves"),
    )
    outcome_id = _define_outcome(client, session_id, 3)
    events = wait_for(client, session_id, idles(1))
    assert [t for t in _types(events) if t.startswith(("span.outcome", "agent.message", "session.status_idle"))] == [
        "agent.message",
        "span.outcome_evaluation_start",
        "span.outcome_evaluation_end",
        "agent.message",
        "span.outcome_evaluation_start",
        "span.outcome_evaluation_end",
        "session.status_idle",
    ]
    starts = [e for e in events if e.type == "span.outcome_evaluation_start"]
    ends = [e for e in events if e.type == "span.outcome_evaluation_end"]
    assert [(e.outcome_id, e.iteration) for e in starts] == [(outcome_id, 0), (outcome_id, 1)]
    assert [e.result for e in ends] == ["needs_revision", "satisfied"]
    assert [e.outcome_evaluation_start_id for e in ends] == [e.id for e in starts]
    assert events[-1].stop_reason.type == "end_turn"
    # the grader sees the rubric and the work, not the description; the revision sees the feedback
    grader = fake_provider.requests[1].body
    graded = grader["messages"][0]["content"][0]["text"]
    assert "5-7-5" in graded and "The sea is big." in graded and "Write a haiku" not in graded
    revision = fake_provider.requests[2].body["messages"]
    assert "not a haiku" in revision[-1]["content"][-1]["text"]
    evaluations = client.beta.sessions.retrieve(session_id).outcome_evaluations
    assert [(e.outcome_id, e.iteration, e.result) for e in evaluations] == [
        (outcome_id, 0, "needs_revision"),
        (outcome_id, 1, "satisfied"),
    ]


def test_an_outcome_out_of_iterations_gets_one_final_acknowledgment(served: RunningServer, fake_provider: FakeProvider) -> None:
    client = sdk_client(served)
    session_id = _session(client)
    fake_provider.script(
        Reply([Text("The sea.")]),
        _verdict("needs_revision", "too short"),
        Reply([Text("Understood: the haiku is not finished.")]),
    )
    _define_outcome(client, session_id, 1)
    events = wait_for(client, session_id, idles(1))
    ends = [e for e in events if e.type == "span.outcome_evaluation_end"]
    assert [e.result for e in ends] == ["max_iterations_reached"]
    messages = [e.content[0].text for e in events if e.type == "agent.message"]
    assert messages == ["The sea.", "Understood: the haiku is not finished."]
    assert len(fake_provider.requests) == 3
    assert events[-1].stop_reason.type == "end_turn"


@pytest.mark.parametrize("database", ["sqlite", "postgres"])
def test_a_model_card_drives_the_turn_and_a_session_left_without_one_recovers(
    request: pytest.FixtureRequest, tmp_path: Path, fake_provider: FakeProvider, database: str
) -> None:
    """No default provider: the agent's model names a card. Before the card exists the turn
    says what to configure; once it exists, the same session answers. A rotated key is used
    from the next request on; a deleted card leaves the turn without a provider again."""
    database_url = request.getfixturevalue("postgres_url") if database == "postgres" else ""
    with running_server(tmp_path / "data", database_url) as server:
        client = sdk_client(server)
        agent = client.beta.agents.create(name="carded", model="house-model")
        env = client.beta.environments.create(name="env")
        session_id = client.beta.sessions.create(agent=agent.id, environment_id=env.id).id
        say(client, session_id, "hi")
        events = wait_for(client, session_id, idles(1))
        assert events[-1].stop_reason.type == "retries_exhausted"

        http = client._client  # the SDK's own httpx client carries the key
        card = {
            "model_id": "house-model", "provider": "oai-compatible", "model": "gpt-4o-mini",
            "api_key": PROVIDER_KEY, "base_url": fake_provider.openai_base_url,
        }
        created = http.post(f"{server.base_url}/v1/model_cards", json=card, headers={"x-api-key": server.api_key})
        assert created.status_code == 200, created.text
        fake_provider.script(Reply([Text("Answered through the card.")]))
        say(client, session_id, "and now?")
        events = wait_for(client, session_id, idles(2))
        assert events[-1].stop_reason.type == "end_turn"
        assert next(e for e in reversed(events) if e.type == "agent.message").content[0].text == "Answered through the card."
        request = fake_provider.requests[-1]
        assert request.path == "/v1/chat/completions" and request.body["model"] == "gpt-4o-mini"
        assert request.headers["authorization"] == f"Bearer {PROVIDER_KEY}"

        rotated_key = "fake-provider-rotated-key-0123456789"
        fake_provider.api_keys.add(rotated_key)
        card_url = f"{server.base_url}/v1/model_cards/{created.json()['id']}"
        rotated = http.post(card_url, json={"api_key": rotated_key}, headers={"x-api-key": server.api_key})
        assert rotated.status_code == 200 and rotated.json()["api_key_preview"] == rotated_key[-4:]
        say(client, session_id, "with the new key?")
        wait_for(client, session_id, idles(3))
        assert fake_provider.requests[-1].headers["authorization"] == f"Bearer {rotated_key}"

        deleted = http.delete(card_url, headers={"x-api-key": server.api_key})
        assert deleted.status_code == 200
        say(client, session_id, "still there?")
        events = wait_for(client, session_id, idles(4))
        assert events[-1].stop_reason.type == "retries_exhausted"


def test_a_message_sent_while_the_work_is_graded_is_answered(served: RunningServer, fake_provider: FakeProvider) -> None:
    client = sdk_client(served)
    session_id = _session(client)
    slow_verdict = _verdict("satisfied", "fine")
    slow_verdict.latency = 1.5
    fake_provider.script(Reply([Text("A haiku.")]), slow_verdict, Reply([Text("Answering the later message.")]))
    _define_outcome(client, session_id, 3)
    fake_provider.wait_for_requests(2)  # the grader is at work
    say(client, session_id, "one more thing")
    events = wait_for(client, session_id, idles(1))
    assert [e.content[0].text for e in events if e.type == "agent.message"] == ["A haiku.", "Answering the later message."]
    assert events[-1].stop_reason.type == "end_turn" and len(fake_provider.requests) == 3


def test_an_interrupt_during_a_retry_backoff_ends_the_turn_without_a_new_request(
    tmp_path: Path, fake_provider: FakeProvider
) -> None:
    with _server(tmp_path, fake_provider, runtime_retry_base_seconds=3.0) as server:
        client = sdk_client(server)
        session_id = _session(client)
        fake_provider.script(overloaded(), Reply([Text("never asked")]))
        say(client, session_id, "hi")
        wait_for(client, session_id, lambda events: "session.status_rescheduled" in _types(events))
        client.beta.sessions.events.send(session_id, events=[{"type": "user.interrupt"}])
        events = wait_for(client, session_id, idles(1), timeout=2.5)  # well before the backoff ends
        after = _types(events)[_types(events).index("user.interrupt"):]
        assert "span.model_request_start" not in after and "session.status_running" not in after
        assert events[-1].stop_reason.type == "end_turn"
        time.sleep(3.5)
        assert len(fake_provider.requests) == 1


@pytest.mark.parametrize(
    "events",
    [
        [{"type": "user.message", "content": [{"type": "image", "source": "abc"}]}],
        [{"type": "user.message", "content": [{"type": "document", "source": {"type": "base64"}}]}],
        [{"type": "user.message", "content": [{"type": "search_result", "source": "s", "title": "t", "content": "x"}]}],
        [{"type": "user.custom_tool_result", "custom_tool_use_id": "sevt_x", "content": 5}],
        [{"type": "user.tool_confirmation", "tool_use_id": "", "result": "allow"}],
    ],
)
def test_malformed_blocks_are_refused_before_anything_is_stored(
    served: RunningServer, events: list[dict[str, Any]]
) -> None:
    client = sdk_client(served)
    session_id = _session(client)
    with pytest.raises(anthropic.BadRequestError):
        client.beta.sessions.events.send(session_id, events=events)  # type: ignore[arg-type]
    assert list(client.beta.sessions.events.list(session_id)) == []
    assert client.beta.sessions.retrieve(session_id).status == "idle"
