"""The fake provider speaks both wire protocols well enough for the official SDKs, and refuses
(and records) the transcripts the real providers refuse."""

from __future__ import annotations

import threading
import time

import anthropic
import openai
import pytest

from tests.support.fake_provider import (
    API_KEY,
    FakeProvider,
    Reply,
    Text,
    Thinking,
    ToolUse,
    error_mid_stream,
    overloaded,
    rate_limited,
    stalled,
)


def _ant(fake: FakeProvider, key: str = API_KEY) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=fake.anthropic_base_url, api_key=key, max_retries=0, timeout=10)


def _oai(fake: FakeProvider, key: str = API_KEY) -> openai.OpenAI:
    return openai.OpenAI(base_url=fake.openai_base_url, api_key=key, max_retries=0, timeout=10)


HELLO = [{"role": "user", "content": "hi"}]


def test_anthropic_stream_parses_in_the_sdk(fake_provider: FakeProvider) -> None:
    fake_provider.script(
        Reply(
            [
                Thinking("let me think", signature="sig-123", tokens=2),
                Text("Hello there", tokens=3),
                ToolUse("get_weather", {"city": "Paris"}),
            ],
            usage={"input_tokens": 12, "output_tokens": 42, "cache_read_input_tokens": 5},
        )
    )
    texts: list[str] = []
    with _ant(fake_provider).messages.stream(model="claude-x", max_tokens=100, messages=HELLO) as stream:
        for event in stream:
            if event.type == "text":
                texts.append(event.text)
        final = stream.get_final_message()
    assert texts == ["Hell", "o th", "ere"]
    assert [b.type for b in final.content] == ["thinking", "text", "tool_use"]
    assert final.content[0].thinking == "let me think" and final.content[0].signature == "sig-123"
    assert final.content[2].input == {"city": "Paris"} and final.content[2].name == "get_weather"
    assert final.stop_reason == "tool_use"
    # message_delta's output_tokens is the total, so the SDK's final usage is exactly it
    assert (final.usage.input_tokens, final.usage.output_tokens, final.usage.cache_read_input_tokens) == (12, 42, 5)
    assert final.model == "claude-x"
    recorded = fake_provider.requests[0]
    assert recorded.path == "/v1/messages" and recorded.stream and recorded.body["messages"] == HELLO


def test_anthropic_non_stream_and_default_reply(fake_provider: FakeProvider) -> None:
    message = _ant(fake_provider).messages.create(model="m", max_tokens=1, messages=HELLO)
    assert message.content[0].type == "text" and message.content[0].text
    assert message.stop_reason == "end_turn" and message.usage.output_tokens > 0


def test_openai_stream_parses_in_the_sdk(fake_provider: FakeProvider) -> None:
    fake_provider.script(
        Reply(
            [Thinking("dropped"), Text("Hello", tokens=2), ToolUse("get_weather", {"city": "Paris"})],
            usage={"input_tokens": 10, "output_tokens": 5},
        )
    )
    with _oai(fake_provider).chat.completions.stream(
        model="gpt-x", messages=HELLO, stream_options={"include_usage": True}
    ) as stream:
        pieces = [e.delta for e in stream if e.type == "content.delta" and e.delta]
        final = stream.get_final_completion()
    assert pieces == ["Hel", "lo"]
    choice = final.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content == "Hello"
    call = choice.message.tool_calls[0]
    assert call.function.name == "get_weather" and call.function.arguments == '{"city": "Paris"}'
    assert final.usage is not None and (final.usage.prompt_tokens, final.usage.completion_tokens) == (10, 5)


def test_openai_stream_without_include_usage_has_no_usage_chunk(fake_provider: FakeProvider) -> None:
    chunks = list(_oai(fake_provider).chat.completions.create(model="m", messages=HELLO, stream=True))
    assert all(c.usage is None for c in chunks) and chunks[-1].choices[0].finish_reason == "stop"


def test_openai_non_stream(fake_provider: FakeProvider) -> None:
    fake_provider.script(Reply([ToolUse("lookup", {"q": 1}, id="call_abc")]))
    completion = _oai(fake_provider).chat.completions.create(model="m", messages=HELLO, max_completion_tokens=1)
    message = completion.choices[0].message
    assert message.content is None and message.tool_calls[0].id == "call_abc"
    assert completion.choices[0].finish_reason == "tool_calls" and completion.usage is not None


@pytest.mark.parametrize("protocol", ["anthropic", "openai"])
def test_wrong_key_is_a_401_in_the_providers_shape(fake_provider: FakeProvider, protocol: str) -> None:
    if protocol == "anthropic":
        with pytest.raises(anthropic.AuthenticationError) as caught:
            _ant(fake_provider, key="nope").messages.create(model="m", max_tokens=1, messages=HELLO)
        assert caught.value.body["error"]["type"] == "authentication_error"
    else:
        with pytest.raises(openai.AuthenticationError) as err:
            _oai(fake_provider, key="sk-wrong-key-1234").chat.completions.create(model="m", messages=HELLO)
        assert err.value.code == "invalid_api_key" and "sk-wrong-key-1234" not in str(err.value)


def test_injected_failures_reach_the_sdks(fake_provider: FakeProvider) -> None:
    fake_provider.script(
        rate_limited(retry_after=7), overloaded(), error_mid_stream("overloaded_error", "busy", after=2)
    )
    client = _ant(fake_provider)
    with pytest.raises(anthropic.RateLimitError) as limited:
        client.messages.create(model="m", max_tokens=5, messages=HELLO)
    assert limited.value.response.headers["retry-after"] == "7"
    with pytest.raises(anthropic.APIStatusError) as busy:
        client.messages.create(model="m", max_tokens=5, messages=HELLO)
    assert busy.value.status_code == 529 and busy.value.body["error"]["type"] == "overloaded_error"
    seen: list[str] = []
    with pytest.raises(anthropic.APIStatusError) as mid:
        with client.messages.stream(model="m", max_tokens=5, messages=HELLO) as stream:
            seen.extend(e.text for e in stream if e.type == "text")
    assert len(seen) == 2 and "busy" in str(mid.value)


def test_openai_mid_stream_error_frame_raises(fake_provider: FakeProvider) -> None:
    fake_provider.script(error_mid_stream("server_error", "boom", after=1))
    with pytest.raises(openai.APIError, match="boom"):
        list(_oai(fake_provider).chat.completions.create(model="m", messages=HELLO, stream=True))


def test_latency_and_token_delay_are_honoured(fake_provider: FakeProvider) -> None:
    fake_provider.script(Reply([Text("abcd", tokens=4)], latency=0.3, token_delay=0.05))
    started = time.monotonic()
    with _ant(fake_provider).messages.stream(model="m", max_tokens=5, messages=HELLO) as stream:
        arrivals = [time.monotonic() - started for e in stream if e.type == "text"]
    # Lower bounds from the start only: a loaded client may read two tokens in one go, so
    # the gaps it sees between them can shrink, but nothing can arrive before it was sent.
    assert arrivals[0] >= 0.3 and arrivals[-1] >= 0.3 + 3 * 0.05


def test_a_stall_holds_until_the_client_leaves(fake_provider: FakeProvider) -> None:
    fake_provider.script(stalled(after=1))
    client = anthropic.Anthropic(base_url=fake_provider.anthropic_base_url, api_key=API_KEY, max_retries=0, timeout=0.5)
    # The read timeout fires (raised by the SDK's HTTP library): no byte came after the first delta.
    with pytest.raises(Exception, match="timed out"):
        with client.messages.stream(model="m", max_tokens=5, messages=HELLO) as stream:
            for _ in stream:
                pass
    fake_provider.wait_for_stall()


def test_anthropic_validation_catches_a_bad_transcript(fake_provider: FakeProvider) -> None:
    bad = [
        {"role": "user", "content": [{"type": "text", "text": "hi"}]},
        {
            "role": "assistant",
            "content": [{"type": "text", "text": ""}, {"type": "tool_use", "id": "toolu_1", "name": "t", "input": {}}],
        },
        {"role": "user", "content": [{"type": "text", "text": "no result for the tool"}]},
        {"role": "user", "content": "two user turns in a row"},
    ]
    with pytest.raises(anthropic.BadRequestError):
        _ant(fake_provider).messages.create(model="m", max_tokens=5, system="", messages=bad)
    problems = fake_provider.take_violations()
    joined = "\n".join(problems)
    assert "system is empty" in joined
    assert "messages.1.content.0: text content blocks must contain non-whitespace text" in joined
    assert "tool_use toolu_1 has 0 tool_result blocks" in joined
    assert "messages.3: roles must alternate" in joined
    assert fake_provider.violations == []  # taken: the fixture will not fail this test


def test_anthropic_validation_accepts_a_paired_transcript(fake_provider: FakeProvider) -> None:
    good = [
        {"role": "user", "content": "hi"},
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "t", "signature": "s"},
                {"type": "tool_use", "id": "toolu_1", "name": "t", "input": {}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "42"},
                {"type": "text", "text": "and then?"},
            ],
        },
    ]
    _ant(fake_provider).messages.create(model="m", max_tokens=5, system="be brief", messages=good)
    assert fake_provider.violations == []


def test_anthropic_validation_wants_tool_results_first_and_once(fake_provider: FakeProvider) -> None:
    use = {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "t", "input": {}}]}
    result = {"type": "tool_result", "tool_use_id": "toolu_1", "content": "ok"}
    for answer in ([{"type": "text", "text": "x"}, result], [result, result]):
        with pytest.raises(anthropic.BadRequestError):
            _ant(fake_provider).messages.create(
                model="m", max_tokens=5, messages=[HELLO[0], use, {"role": "user", "content": answer}]
            )
    problems = "\n".join(fake_provider.take_violations())
    assert "tool_result blocks must come first" in problems and "has 2 tool_result blocks" in problems


def test_openai_validation_catches_unanswered_tool_calls(fake_provider: FakeProvider) -> None:
    call = {"id": "call_1", "type": "function", "function": {"name": "t", "arguments": "{}"}}
    bad = [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "user", "content": "where is the tool message?"},
        {"role": "tool", "tool_call_id": "call_1", "content": "too late"},
    ]
    with pytest.raises(openai.BadRequestError):
        _oai(fake_provider).chat.completions.create(model="m", messages=bad)
    problems = "\n".join(fake_provider.take_violations())
    assert "missing: call_1" in problems and "does not answer a preceding tool_calls id" in problems
    good = [
        bad[0],
        bad[1],
        {"role": "tool", "tool_call_id": "call_1", "content": "42"},
        {"role": "user", "content": "thanks"},
    ]
    _oai(fake_provider).chat.completions.create(model="m", messages=good)
    assert fake_provider.violations == []


def test_a_server_outside_the_fixture_records_violations_too() -> None:
    with FakeProvider() as fake:
        with pytest.raises(anthropic.BadRequestError):
            _ant(fake).messages.create(model="m", max_tokens=5, messages=[{"role": "assistant", "content": "first"}])
        assert fake.violations and "roles must alternate" in fake.violations[0]


def test_requests_from_many_threads_each_get_one_scripted_reply(fake_provider: FakeProvider) -> None:
    fake_provider.script(*[Reply([Text(f"reply {i}")]) for i in range(8)])
    fake_provider.default = Reply([Text("default")], latency=0.05)
    answers: list[str] = []

    def ask() -> None:
        message = _ant(fake_provider).messages.create(model="m", max_tokens=5, messages=HELLO)
        answers.append(message.content[0].text)

    threads = [threading.Thread(target=ask) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(answers) == sorted([f"reply {i}" for i in range(8)] + ["default", "default"])
    assert len(fake_provider.requests) == 10 and fake_provider.pending == 0
