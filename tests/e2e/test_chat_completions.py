"""``POST /v1/chat/completions`` end to end: the official ``openai`` SDK against a real server
(SQLite and PostgreSQL), the fake provider behind it, and every completion read back as a
session through the official ``anthropic`` SDK."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest

from tests.support.fake_provider import API_KEY as PROVIDER_KEY
from tests.support.fake_provider import FakeProvider, Reply, Text, ToolUse, bad_key, error_mid_stream, rate_limited
from tests.support.postgres import database_of
from tests.support.sdk_sessions import PLAIN_TURN, sdk_client
from tests.support.server import RunningServer, running_server

SESSION_HEADER = "agentry-session-id"
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


@pytest.fixture(params=["sqlite", "postgres"])
def served(request: pytest.FixtureRequest, tmp_path: Path, fake_provider: FakeProvider) -> Iterator[RunningServer]:
    database_url = database_of(request)
    settings = {
        "anthropic_api_key": PROVIDER_KEY,
        "anthropic_base_url": fake_provider.anthropic_base_url,
        "runtime_retries": 1,
        "runtime_retry_base_seconds": 0.05,
    }
    with running_server(tmp_path / "data", database_url, **settings) as running:
        yield running


def oai(server: RunningServer, api_key: str | None = None) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.base_url}/v1", api_key=api_key or server.api_key, max_retries=0, timeout=30)


def card(server: RunningServer, fake: FakeProvider, model_id: str = "fast-chat") -> dict[str, Any]:
    """An OpenAI-compatible model card aimed at the fake (its probe is answered by default)."""
    response = httpx.post(
        f"{server.base_url}/v1/model_cards",
        headers={"x-api-key": server.api_key},
        json={
            "model_id": model_id,
            "provider": "oai-compatible",
            "model": "fake-model",
            "api_key": PROVIDER_KEY,
            "base_url": fake.openai_base_url,
        },
    )
    assert response.status_code == 200, response.text
    fake.requests.clear()
    return response.json()


def agent(client: anthropic.Anthropic, name: str = "helper", **fields: Any) -> Any:
    return client.beta.agents.create(name=name, model="claude-sonnet-4-6", system="Answer briefly.", **fields)


def log_types(client: anthropic.Anthropic, session_id: str) -> list[str]:
    return [event.type for event in client.beta.sessions.events.list(session_id, limit=1000)]


def test_a_plain_completion_through_a_model_card_is_a_recorded_session(
    served: RunningServer, fake_provider: FakeProvider
) -> None:
    card(served, fake_provider)
    fake_provider.script(Reply([Text("Bonjour!", tokens=2)], usage={"input_tokens": 12, "output_tokens": 3}))
    raw = oai(served).chat.completions.with_raw_response.create(
        model="fast-chat",
        messages=[{"role": "system", "content": "Speak French."}, {"role": "user", "content": "Hello"}],
        temperature=0.2,
        max_completion_tokens=50,
        stop=["END"],
    )
    completion = raw.parse()
    assert completion.object == "chat.completion" and completion.model == "fast-chat"
    (choice,) = completion.choices
    assert choice.message.role == "assistant" and choice.message.content == "Bonjour!"
    assert choice.finish_reason == "stop" and choice.message.tool_calls is None
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens, completion.usage.total_tokens) == (12, 3, 15)

    (sent,) = fake_provider.requests
    assert sent.protocol == "openai" and sent.body["model"] == "fake-model"
    assert sent.body["messages"] == [{"role": "system", "content": "Speak French."}, {"role": "user", "content": "Hello"}]
    assert sent.body["temperature"] == 0.2 and sent.body["stop"] == ["END"] and sent.body["max_tokens"] == 50

    session_id = raw.headers[SESSION_HEADER]
    client = sdk_client(served)
    session = client.beta.sessions.retrieve(session_id)
    assert session.status == "idle" and session.agent.model.id == "fast-chat"
    # The list is a projection, which a completion does not wait for (its answer is the reply).
    deadline = time.monotonic() + 10
    while session_id not in [listed.id for listed in client.beta.sessions.list()]:
        assert time.monotonic() < deadline, "the completion's session never reached the session list"
        time.sleep(0.05)
    events = list(client.beta.sessions.events.list(session_id))
    assert [event.type for event in events] == ["system.message", "user.message", *PLAIN_TURN]
    assert events[1].content[0].text == "Hello" and events[4].content[0].text == "Bonjour!"


def test_an_agent_streams_its_reply_with_usage_and_its_system_prompt_applies(
    served: RunningServer, fake_provider: FakeProvider
) -> None:
    client = sdk_client(served)
    helper = agent(client)
    fake_provider.script(Reply([Text("Hello there, traveller.", tokens=4)], usage={"input_tokens": 9, "output_tokens": 5}))
    with oai(served).chat.completions.with_streaming_response.create(
        model=f"agent:{helper.name}",
        messages=[{"role": "user", "content": "hi"}],
        stream=True,
        stream_options={"include_usage": True},
    ) as response:
        session_id = response.headers[SESSION_HEADER]
        chunks = list(response.parse())
    assert all(chunk.object == "chat.completion.chunk" for chunk in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    assert text == "Hello there, traveller."
    finishes = [chunk.choices[0].finish_reason for chunk in chunks if chunk.choices and chunk.choices[0].finish_reason]
    assert finishes == ["stop"]
    assert chunks[-1].choices == [] and chunks[-1].usage is not None and chunks[-1].usage.total_tokens == 14
    assert len({chunk.id for chunk in chunks}) == 1

    (sent,) = fake_provider.requests
    assert sent.protocol == "anthropic" and sent.body["system"] == "Answer briefly."
    session = client.beta.sessions.retrieve(session_id)
    assert session.agent.id == helper.id and session.status == "idle"
    assert "agent.message" in log_types(client, session_id)


def test_the_openai_stream_helper_reads_the_final_completion_by_agent_id(
    served: RunningServer, fake_provider: FakeProvider
) -> None:
    lookup = {"type": "custom", "name": "lookup", "description": "Look a word up", "input_schema": {"type": "object"}}
    helper = agent(sdk_client(served), tools=[lookup])
    fake_provider.script(Reply([Text("Hello", tokens=2), ToolUse("get_weather", {"city": "Paris"})]))
    with oai(served).chat.completions.stream(
        model=helper.id, messages=[{"role": "user", "content": "weather?"}], tools=[WEATHER],
        stream_options={"include_usage": True},
    ) as stream:
        final = stream.get_final_completion()
    (choice,) = final.choices
    assert choice.finish_reason == "tool_calls" and choice.message.content == "Hello"
    (call,) = choice.message.tool_calls or []
    assert call.function.name == "get_weather" and json.loads(call.function.arguments) == {"city": "Paris"}
    assert final.usage is not None
    # the agent's own tools are offered, then the request's
    assert [tool["name"] for tool in fake_provider.requests[0].body["tools"]] == ["lookup", "get_weather"]
    with pytest.raises(openai.BadRequestError, match="lookup"):
        oai(served).chat.completions.create(
            model=helper.id,
            messages=[{"role": "user", "content": "x"}],
            tools=[{"type": "function", "function": {"name": "lookup"}}],
        )


def test_a_tool_call_round_trip_continues_the_session(served: RunningServer, fake_provider: FakeProvider) -> None:
    card(served, fake_provider)
    client = oai(served)
    fake_provider.script(Reply([ToolUse("get_weather", {"city": "Paris"})]), Reply([Text("Sunny in Paris.")]))
    messages: list[Any] = [{"role": "user", "content": "Weather in Paris?"}]
    raw = client.chat.completions.with_raw_response.create(model="fast-chat", messages=messages, tools=[WEATHER])
    first = raw.parse()
    session_id = raw.headers[SESSION_HEADER]
    (choice,) = first.choices
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    (call,) = choice.message.tool_calls or []
    assert call.type == "function" and call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Paris"}
    offered = fake_provider.requests[0].body["tools"]
    assert [tool["function"]["name"] for tool in offered] == ["get_weather"]

    messages += [choice.message.model_dump(exclude_none=True), {"role": "tool", "tool_call_id": call.id, "content": "22C, sunny"}]
    raw = client.chat.completions.with_raw_response.create(  # no tools: the session keeps its functions
        model="fast-chat", messages=messages, extra_headers={"Agentry-Session-Id": session_id}
    )
    assert raw.headers[SESSION_HEADER] == session_id
    assert raw.parse().choices[0].message.content == "Sunny in Paris."
    assert [tool["function"]["name"] for tool in fake_provider.requests[1].body["tools"]] == ["get_weather"]
    answered = fake_provider.requests[1].body["messages"]
    assert answered[-1] == {"role": "tool", "tool_call_id": answered[-2]["tool_calls"][0]["id"], "content": "22C, sunny"}

    sdk = sdk_client(served)
    events = list(sdk.beta.sessions.events.list(session_id))
    types = [event.type for event in events]
    assert types.count("user.message") == 1 and types.count("session.status_idle") == 2
    use = next(event for event in events if event.type == "agent.custom_tool_use")
    result = next(event for event in events if event.type == "user.custom_tool_result")
    assert use.id == call.id and result.custom_tool_use_id == call.id
    assert use.input == {"city": "Paris"}

    # The same conversation sent without the header is a new session holding all of it.
    fake_provider.script(Reply([Text("Still sunny.")]))
    raw = client.chat.completions.with_raw_response.create(model="fast-chat", messages=messages, tools=[WEATHER])
    assert raw.headers[SESSION_HEADER] != session_id
    assert log_types(sdk, raw.headers[SESSION_HEADER])[:3] == ["user.message", "agent.custom_tool_use", "user.custom_tool_result"]


def test_each_error_is_the_openai_sdks_own_exception(served: RunningServer, fake_provider: FakeProvider) -> None:
    card(served, fake_provider)
    hello = [{"role": "user", "content": "hi"}]
    with pytest.raises(openai.AuthenticationError) as unauthorized:
        oai(served, api_key="not-a-key").chat.completions.create(model="fast-chat", messages=hello)  # type: ignore[arg-type]
    assert unauthorized.value.status_code == 401 and unauthorized.value.code == "invalid_api_key"
    with pytest.raises(openai.NotFoundError) as unknown:
        oai(served).chat.completions.create(model="no-such-model", messages=hello)  # type: ignore[arg-type]
    assert unknown.value.code == "model_not_found" and "no-such-model" in unknown.value.message
    with pytest.raises(openai.BadRequestError) as bad:
        oai(served).chat.completions.create(model="fast-chat", messages=hello, temperature=7)  # type: ignore[arg-type]
    assert bad.value.param == "temperature"
    with pytest.raises(openai.BadRequestError):
        oai(served).chat.completions.create(model="fast-chat", messages=[])
    with pytest.raises(openai.BadRequestError) as orphan:
        oai(served).chat.completions.create(
            model="fast-chat", messages=[*hello, {"role": "tool", "tool_call_id": "call_9", "content": "x"}]  # type: ignore[list-item]
        )
    assert "call_9" in orphan.value.message
    assert fake_provider.requests == []  # nothing reached the provider

    fake_provider.script(bad_key())
    with pytest.raises(openai.APIStatusError) as failed:
        oai(served).chat.completions.create(model="fast-chat", messages=hello)  # type: ignore[arg-type]
    assert failed.value.status_code == 502 and failed.value.code == "model_request_failed_error"
    assert failed.value.response.headers["x-should-retry"] == "false"

    fake_provider.script(rate_limited(retry_after=0.05), rate_limited(retry_after=0.05))
    with pytest.raises(openai.RateLimitError):
        oai(served).chat.completions.create(model="fast-chat", messages=hello)  # type: ignore[arg-type]

    fake_provider.script(error_mid_stream(), error_mid_stream())
    with pytest.raises(openai.APIError, match="Overloaded"):
        for _ in oai(served).chat.completions.create(model="fast-chat", messages=hello, stream=True):  # type: ignore[arg-type]
            pass


def test_an_unknown_session_or_app_is_a_404(served: RunningServer, fake_provider: FakeProvider) -> None:
    card(served, fake_provider)
    hello = [{"role": "user", "content": "hi"}]
    with pytest.raises(openai.NotFoundError):
        oai(served).chat.completions.create(
            model="fast-chat", messages=hello, extra_headers={"Agentry-Session-Id": "sesn_nope"}  # type: ignore[arg-type]
        )
    with pytest.raises(openai.NotFoundError):
        oai(served).chat.completions.create(model="fast-chat", messages=hello, extra_query={"app_id": "agent:nobody"})  # type: ignore[arg-type]


def test_app_id_names_the_agent_whatever_model_says(served: RunningServer, fake_provider: FakeProvider) -> None:
    client = sdk_client(served)
    helper = agent(client, name="helix-style")
    fake_provider.script(Reply([Text("From the app.")]))
    raw = oai(served).chat.completions.with_raw_response.create(
        model="anything", messages=[{"role": "user", "content": "hi"}], max_tokens=77, temperature=0.5, stop="END",
        extra_query={"app_id": "agent:helix-style"},
    )
    assert raw.parse().choices[0].message.content == "From the app."
    assert client.beta.sessions.retrieve(raw.headers[SESSION_HEADER]).agent.id == helper.id
    (sent,) = fake_provider.requests
    assert sent.body["max_tokens"] == 77 and sent.body["system"] == "Answer briefly."
    # The Messages API takes no temperature any more (the SDK dropped it); stop sequences it takes.
    assert "temperature" not in sent.body and sent.body["stop_sequences"] == ["END"]


def test_requests_that_could_never_be_answered_are_refused(served: RunningServer, fake_provider: FakeProvider) -> None:
    card(served, fake_provider)
    client = oai(served)
    hello: list[Any] = [{"role": "user", "content": "hi"}]
    twice = {"role": "assistant", "content": None, "tool_calls": [
        {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}},
        {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}},
    ]}
    with pytest.raises(openai.BadRequestError, match="c1"):
        client.chat.completions.create(model="fast-chat", messages=[*hello, twice, {"role": "tool", "tool_call_id": "c1", "content": "x"}], tools=[WEATHER])
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="fast-chat", messages=hello, tools=[WEATHER], tool_choice="required")
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="fast-chat", messages=hello, response_format={"type": "json_object"})
    html = {"type": "image_url", "image_url": {"url": "data:text/html;base64,PGI+aGk8L2I+"}}
    with pytest.raises(openai.BadRequestError, match="image"):
        client.chat.completions.create(model="fast-chat", messages=[{"role": "user", "content": [html]}])
    toolset = agent(sdk_client(served), name="tooled", tools=[{"type": "agent_toolset_20260401"}])
    with pytest.raises(openai.BadRequestError, match="bash"):
        client.chat.completions.create(
            model=toolset.id, messages=hello, tools=[{"type": "function", "function": {"name": "bash"}}]
        )
    assert fake_provider.requests == []


def test_a_turn_waiting_for_a_confirmation_is_a_409_that_names_it(served: RunningServer, fake_provider: FakeProvider) -> None:
    asking = {"type": "agent_toolset_20260401", "default_config": {"permission_policy": {"type": "always_ask"}}}
    careful = agent(sdk_client(served), name="careful", tools=[asking])
    fake_provider.script(Reply([ToolUse("bash", {"command": "ls"})]))
    with pytest.raises(openai.ConflictError) as waiting:
        oai(served).chat.completions.create(model=careful.id, messages=[{"role": "user", "content": "list"}])
    assert waiting.value.code == "requires_action" and "user.tool_confirmation" in waiting.value.message
    session_id = waiting.value.response.headers[SESSION_HEADER]
    assert sdk_client(served).beta.sessions.retrieve(session_id).status == "idle"


def test_the_chat_environment_is_made_once_and_replaced_when_archived(
    served: RunningServer, fake_provider: FakeProvider
) -> None:
    card(served, fake_provider)
    client, sdk = oai(served), sdk_client(served)
    hello: list[Any] = [{"role": "user", "content": "hi"}]

    def environment_of(raw: Any) -> str:
        return sdk.beta.sessions.retrieve(raw.headers[SESSION_HEADER]).environment_id

    first = environment_of(client.chat.completions.with_raw_response.create(model="fast-chat", messages=hello))
    assert environment_of(client.chat.completions.with_raw_response.create(model="fast-chat", messages=hello)) == first
    assert sdk.beta.environments.retrieve(first).name == "chat-completions"
    sdk.beta.environments.archive(first)
    second = environment_of(client.chat.completions.with_raw_response.create(model="fast-chat", messages=hello))
    assert second != first and sdk.beta.environments.retrieve(second).archived_at is None
    chosen = sdk.beta.environments.create(name="mine").id
    raw = client.chat.completions.with_raw_response.create(
        model="fast-chat", messages=hello, extra_headers={"Agentry-Environment-Id": chosen}
    )
    assert environment_of(raw) == chosen
