"""The provider adapters, through the official SDKs, against the fake provider's real HTTP
streams: deltas, final responses, usage, error kinds, headers, cancellation and the probe."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from application.ports import (
    ModelRequest,
    ProviderCancelled,
    ProviderDelta,
    ProviderError,
    ProviderTarget,
    TextDelta,
    ThinkingStarted,
)
from infra.providers import SdkModelProvider
from infra.providers.probe import HttpProviderProbe
from tests.support.fake_provider import (
    API_KEY,
    FakeProvider,
    HttpError,
    Reply,
    Text,
    Thinking,
    ToolUse,
    bad_key,
    error_mid_stream,
    overloaded,
    rate_limited,
    server_error,
    stalled,
)
from tests.support.postgres import free_port

BOTH = ["ant", "oai"]


class Cancel:
    """A ``Cancellation`` as the runtime's interrupt sets it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._callbacks: list[Callable[[], None]] = []
        self.cancelled = False

    def on_cancel(self, callback: Callable[[], None]) -> None:
        with self._lock:
            if not self.cancelled:
                self._callbacks.append(callback)
                return
        callback()

    def fire(self) -> None:
        with self._lock:
            self.cancelled = True
            callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            callback()


def ask(text: str = "hi", **kw) -> ModelRequest:
    return ModelRequest(
        system=kw.pop("system", "You are terse."),
        messages=[{"role": "user", "content": [{"type": "text", "text": text}]}],
        tools=kw.pop("tools", []),
        **kw,
    )


def run(fake: FakeProvider, provider: str, request: ModelRequest | None = None, **target):
    deltas: list[tuple[float, ProviderDelta]] = []
    response = SdkModelProvider().stream(
        fake.target(provider, **target), request or ask(), lambda d: deltas.append((time.monotonic(), d)), Cancel()
    )
    return response, deltas


@pytest.mark.parametrize("provider", BOTH)
def test_text_streams_in_order_before_the_final_response(fake_provider: FakeProvider, provider: str) -> None:
    fake_provider.script(
        Reply([Text("The quick brown fox", tokens=4)], token_delay=0.05, usage={"input_tokens": 21, "output_tokens": 7})
    )
    response, deltas = run(fake_provider, provider)
    returned = time.monotonic()
    texts = [d for _, d in deltas if isinstance(d, TextDelta)]
    assert [d.text for d in texts] == ["The q", "uick ", "brown", " fox"]
    assert {d.index for d in texts} == {0}
    # They arrived as the server sent them (three 50 ms gaps), not all at the end.
    assert returned - deltas[0][0] >= 0.12
    assert response.content == [{"type": "text", "text": "The quick brown fox"}]
    assert response.stop_reason == "end_turn"
    assert (response.usage.input_tokens, response.usage.output_tokens) == (21, 7)


def test_anthropic_keeps_thinking_with_its_signature_and_numbers_text_blocks(fake_provider: FakeProvider) -> None:
    fake_provider.script(
        Reply(
            [
                Thinking("ponder", signature="sig-xyz"),
                Text("first"),
                ToolUse("lookup", {"q": "x"}, id="toolu_9"),
                Text("second", tokens=2),
            ],
            usage={
                "input_tokens": 3,
                "output_tokens": 40,
                "cache_read_input_tokens": 2,
                "cache_creation_input_tokens": 1,
            },
        )
    )
    response, deltas = run(fake_provider, "ant")
    assert isinstance(deltas[0][1], ThinkingStarted)
    assert [(d.index, d.text) for _, d in deltas if isinstance(d, TextDelta)] == [(0, "first"), (1, "sec"), (1, "ond")]
    assert response.content == [
        {"type": "thinking", "thinking": "ponder", "signature": "sig-xyz"},
        {"type": "text", "text": "first"},
        {"type": "tool_use", "id": "toolu_9", "name": "lookup", "input": {"q": "x"}},
        {"type": "text", "text": "second"},
    ]
    assert response.stop_reason == "tool_use"
    assert response.usage.as_dict() == {
        "input_tokens": 3,
        "output_tokens": 40,
        "cache_read_input_tokens": 2,
        "cache_creation_input_tokens": 1,
    }


def test_openai_tool_calls_become_tool_use_blocks(fake_provider: FakeProvider) -> None:
    fake_provider.script(
        Reply(
            [
                Thinking("not sent"),
                Text("Checking."),
                ToolUse("get_weather", {"city": "Paris"}, id="call_1"),
                ToolUse("get_time", {}),
            ],
            usage={"input_tokens": 100, "output_tokens": 9, "cache_read_input_tokens": 60},
        )
    )
    response, deltas = run(fake_provider, "oai")
    assert not any(isinstance(d, ThinkingStarted) for _, d in deltas)
    assert response.content[0] == {"type": "text", "text": "Checking."}
    assert response.content[1] == {
        "type": "tool_use",
        "id": "call_1",
        "name": "get_weather",
        "input": {"city": "Paris"},
    }
    assert response.content[2]["name"] == "get_time" and response.content[2]["input"] == {}
    assert response.stop_reason == "tool_use"
    # prompt_tokens counts the cached part; the port's input_tokens does not
    assert response.usage.as_dict() == {
        "input_tokens": 40,
        "output_tokens": 9,
        "cache_read_input_tokens": 60,
        "cache_creation_input_tokens": 0,
    }
    body = fake_provider.requests[0].body
    assert (
        body["stream"] is True
        and body["stream_options"] == {"include_usage": True}
        and body["max_completion_tokens"] == 8192
    )


@pytest.mark.parametrize(("stop", "expected"), [("max_tokens", "max_tokens"), ("refusal", "refusal")])
def test_openai_finish_reasons_map_to_stop_reasons(fake_provider: FakeProvider, stop: str, expected: str) -> None:
    fake_provider.script(Reply([Text("cut")], stop_reason=stop))  # the fake says length / content_filter
    response, _ = run(fake_provider, "oai")
    assert response.stop_reason == expected


def test_a_transcript_with_tools_notes_and_thinking_reaches_openai_in_its_shape(fake_provider: FakeProvider) -> None:
    request = ModelRequest(
        system="Be brief.",
        messages=[
            {"role": "user", "content": [{"type": "text", "text": "weather?"}]},
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "t", "signature": "s"},
                    {"type": "text", "text": "Looking."},
                    {"type": "tool_use", "id": "call_a", "name": "get_weather", "input": {"city": "Oslo"}},
                    {"type": "tool_use", "id": "call_b", "name": "get_time", "input": {}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "call_a", "content": [{"type": "text", "text": "rain"}]},
                    {"type": "tool_result", "tool_use_id": "call_b", "content": "denied", "is_error": True},
                    {"type": "text", "text": "and now?"},
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"}},
                ],
            },
        ],
        tools=[
            {
                "name": "get_weather",
                "description": "Weather",
                "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
            }
        ],
        system_notes=[(2, "The user is on mobile.")],
    )
    run(fake_provider, "oai-compatible", request)
    body = fake_provider.requests[0].body
    assert [m["role"] for m in body["messages"]] == ["system", "user", "assistant", "tool", "tool", "system", "user"]
    assistant = body["messages"][2]
    assert assistant["content"] == "Looking." and [c["id"] for c in assistant["tool_calls"]] == ["call_a", "call_b"]
    assert assistant["tool_calls"][0]["function"] == {"name": "get_weather", "arguments": '{"city": "Oslo"}'}
    assert body["messages"][3] == {"role": "tool", "tool_call_id": "call_a", "content": "rain"}
    assert body["messages"][4]["content"].startswith("Error: denied")
    assert body["messages"][5] == {"role": "system", "content": "The user is on mobile."}
    assert body["messages"][6]["content"][1] == {
        "type": "image_url",
        "image_url": {"url": "data:image/png;base64,AAAA"},
    }
    assert body["tools"][0]["function"]["parameters"]["properties"]["city"] == {"type": "string"}
    assert body["max_tokens"] == 8192 and "max_completion_tokens" not in body  # compatible gateways know max_tokens


def test_anthropic_request_folds_system_notes_and_omits_empty_system(fake_provider: FakeProvider) -> None:
    run(fake_provider, "ant", ask(system=None))
    run(
        fake_provider,
        "ant",
        ModelRequest(system="Base.", messages=ask().messages, tools=[], system_notes=[(0, "Note.")]),
    )
    first, second = (r.body for r in fake_provider.requests)
    assert "system" not in first
    assert second["system"] == "Base.\n\nNote." and second["model"] == "fake-model"


@pytest.mark.parametrize("provider", BOTH)
def test_one_connection_serves_request_after_request(fake_provider: FakeProvider, provider: str) -> None:
    """A new connection per model request would be a new TLS handshake per request."""
    provider_client = SdkModelProvider()
    for _ in range(3):
        provider_client.stream(fake_provider.target(provider), ask(), lambda delta: None, Cancel())
    peers = {request.peer for request in fake_provider.requests}
    assert len(fake_provider.requests) == 3 and len(peers) == 1, peers


@pytest.mark.parametrize("provider", ["ant", "ant-compatible", "oai"])
def test_custom_headers_and_base_url_are_honoured(fake_provider: FakeProvider, provider: str) -> None:
    run(fake_provider, provider, custom_headers={"X-Team": "blue"})
    recorded = fake_provider.requests[0]
    assert recorded.headers["x-team"] == "blue"
    assert recorded.path == ("/v1/messages" if provider.startswith("ant") else "/v1/chat/completions")
    assert recorded.headers["authorization"] == f"Bearer {API_KEY}"
    assert ("x-api-key" in recorded.headers) == (provider == "ant-compatible")


def test_an_anthropic_base_url_ending_in_v1_is_the_same_root(fake_provider: FakeProvider) -> None:
    run(fake_provider, "ant-compatible", base_url=fake_provider.url + "/v1/")
    assert fake_provider.requests[0].path == "/v1/messages"


@pytest.mark.parametrize("provider", BOTH)
@pytest.mark.parametrize(
    ("reply", "kind", "status"),
    [
        (rate_limited(retry_after=3), "rate_limited", 429),
        (overloaded(), "overloaded", 529),
        (server_error(), "request_failed", 500),
        (bad_key(), "authentication", 401),
        (Reply(failure=HttpError(403, "permission_error", "no access")), "authentication", 403),
        (Reply(failure=HttpError(402, "billing_error", "pay up")), "billing", 402),
        (Reply(failure=HttpError(404, "not_found_error", "model: nope")), "configuration", 404),
        (Reply(failure=HttpError(400, "invalid_request_error", "max_tokens too large")), "invalid_request", 400),
        (error_mid_stream("api_error", "stream broke"), "request_failed", None),
        (error_mid_stream("overloaded_error", "Overloaded"), "overloaded", None),
    ],
    ids=["429", "529", "500", "401", "403", "402", "404", "400", "frame", "frame-overloaded"],
)
def test_errors_are_classified(
    fake_provider: FakeProvider, provider: str, reply: Reply, kind: str, status: int | None
) -> None:
    fake_provider.script(reply)
    with pytest.raises(ProviderError) as caught:
        run(fake_provider, provider)
    error = caught.value
    assert (error.kind, error.status) == (kind, status)
    assert error.message and API_KEY not in error.message
    if kind == "rate_limited":
        assert error.retry_after == 3.0 and error.retryable
    assert len(fake_provider.requests) == 1  # SDK retries are off: the runtime retries itself


@pytest.mark.parametrize("provider", BOTH)
def test_a_wrong_key_is_an_authentication_error_that_never_shows_the_key(
    fake_provider: FakeProvider, provider: str
) -> None:
    key = "sk-this-key-is-not-accepted-0987654321"
    with pytest.raises(ProviderError) as caught:
        run(fake_provider, provider, api_key=key)
    assert caught.value.kind == "authentication" and not caught.value.retryable
    assert key not in caught.value.message and key[4:] not in caught.value.message


def test_a_provider_quoting_the_key_has_it_cut_from_the_message(fake_provider: FakeProvider) -> None:
    fake_provider.script(Reply(failure=HttpError(400, "invalid_request_error", f"bad request from key {API_KEY}")))
    with pytest.raises(ProviderError) as caught:
        run(fake_provider, "oai")
    assert API_KEY not in caught.value.message and "[redacted]" in caught.value.message


@pytest.mark.parametrize("provider", BOTH)
def test_a_gateway_quoting_a_custom_header_has_its_value_cut_from_the_message(
    fake_provider: FakeProvider, provider: str
) -> None:
    header_value = "gateway-credential-7d41c0ffee"
    fake_provider.script(Reply(failure=HttpError(401, "authentication_error", f"invalid cf-aig-authorization: Bearer {header_value}")))
    with pytest.raises(ProviderError) as caught:
        run(fake_provider, provider, custom_headers={"cf-aig-authorization": f"Bearer {header_value}"})
    assert header_value not in caught.value.message and "[redacted]" in caught.value.message


@pytest.mark.parametrize("provider", BOTH)
def test_no_connection_is_a_retryable_failure(provider: str) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}" + ("" if provider == "ant" else "/v1")
    target = ProviderTarget(provider=provider, model="m", api_key=API_KEY, base_url=base)
    with pytest.raises(ProviderError) as caught:
        SdkModelProvider().stream(target, ask(), lambda d: None, Cancel())
    assert caught.value.kind == "request_failed" and f"127.0.0.1:{port}" in caught.value.message


@pytest.mark.parametrize("provider", BOTH)
def test_cancel_aborts_a_stalled_stream_quickly(fake_provider: FakeProvider, provider: str) -> None:
    fake_provider.script(stalled(after=2))
    cancel = Cancel()
    deltas: list[ProviderDelta] = []
    outcome: list[BaseException] = []

    def call() -> None:
        try:
            SdkModelProvider().stream(fake_provider.target(provider), ask(), deltas.append, cancel)
        except BaseException as exc:  # noqa: BLE001
            outcome.append(exc)

    thread = threading.Thread(target=call)
    thread.start()
    fake_provider.wait_for_stall()
    time.sleep(0.05)  # the client is now blocked reading
    fired = time.monotonic()
    cancel.fire()
    thread.join(timeout=5)
    assert time.monotonic() - fired < 1.0
    assert len(outcome) == 1 and isinstance(outcome[0], ProviderCancelled)
    assert len([d for d in deltas if isinstance(d, TextDelta)]) == 2
    # The socket was really shut: the fake saw the client hang up (nobody released the stall).
    deadline = time.monotonic() + 2
    while fake_provider.abandoned_stalls == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert fake_provider.abandoned_stalls == 1


@pytest.mark.parametrize("provider", BOTH)
def test_cancel_before_the_response_headers_returns_at_once(fake_provider: FakeProvider, provider: str) -> None:
    fake_provider.script(Reply([Text("late")], latency=3))
    cancel = Cancel()
    threading.Timer(0.2, cancel.fire).start()
    started = time.monotonic()
    with pytest.raises(ProviderCancelled):
        SdkModelProvider().stream(fake_provider.target(provider), ask(), lambda d: None, cancel)
    assert time.monotonic() - started < 1.0


def test_an_already_cancelled_turn_sends_nothing(fake_provider: FakeProvider) -> None:
    cancel = Cancel()
    cancel.fire()
    with pytest.raises(ProviderCancelled):
        SdkModelProvider().stream(fake_provider.target("ant"), ask(), lambda d: None, cancel)
    assert fake_provider.requests == []


# -- the probe ------------------------------------------------------------------------------


@pytest.mark.parametrize("provider", ["ant", "ant-compatible", "oai", "oai-compatible"])
def test_probe_accepts_a_good_key_with_a_one_token_request(fake_provider: FakeProvider, provider: str) -> None:
    result = HttpProviderProbe().probe(fake_provider.target(provider, custom_headers={"X-Org": "o1"}))
    assert result.ok and result.status == 200
    recorded = fake_provider.requests[0]
    assert not recorded.stream and recorded.headers["x-org"] == "o1"
    limit = recorded.body.get("max_tokens", recorded.body.get("max_completion_tokens"))
    assert limit == 1


@pytest.mark.parametrize("provider", BOTH)
def test_probe_refuses_a_bad_key_with_the_providers_reason(fake_provider: FakeProvider, provider: str) -> None:
    key = "sk-refused-key-000000000000"
    result = HttpProviderProbe().probe(fake_provider.target(provider, api_key=key))
    assert not result.ok and result.status == 401
    assert result.message.startswith("Provider returned HTTP 401: ")
    assert ("invalid x-api-key" if provider == "ant" else "Incorrect API key provided") in result.message
    assert key not in result.message and len(result.message) <= len("Provider returned HTTP 401: ") + 240


def test_probe_refuses_an_unknown_model_and_keeps_a_busy_provider(fake_provider: FakeProvider) -> None:
    fake_provider.script(
        Reply(failure=HttpError(404, "not_found_error", "model: claude-nope" + "x" * 400)), rate_limited()
    )
    refused = HttpProviderProbe().probe(fake_provider.target("ant"))
    assert (
        not refused.ok and refused.status == 404 and len(refused.message) == len("Provider returned HTTP 404: ") + 240
    )
    busy = HttpProviderProbe().probe(fake_provider.target("ant"))
    assert busy.ok and busy.status == 429  # a rate-limited key is a valid key


@pytest.mark.parametrize("provider", BOTH)
def test_probe_refuses_an_address_where_nothing_listens(provider: str) -> None:
    port = free_port()
    target = ProviderTarget(provider=provider, model="m", api_key=API_KEY, base_url=f"http://127.0.0.1:{port}/v1")
    result = HttpProviderProbe().probe(target)
    assert not result.ok and result.message.startswith(f"could not connect to 127.0.0.1:{port}: ")


def test_probe_gives_up_on_a_silent_provider_within_its_bound(fake_provider: FakeProvider) -> None:
    fake_provider.script(Reply(failure=None, latency=5))
    started = time.monotonic()
    result = HttpProviderProbe(timeout=0.5).probe(fake_provider.target("oai"))
    assert not result.ok and "could not connect" in result.message
    assert time.monotonic() - started < 1.5


def test_a_request_the_sdk_refuses_is_not_retried(fake_provider: FakeProvider) -> None:
    """Agentry's own mistake (an argument the SDK does not take) fails the turn at once."""
    from infra.providers.errors import classify

    refused = classify(TypeError("stream() got an unexpected keyword argument 'x'"), fake_provider.target("ant"), "h")
    assert refused.kind == "invalid_request" and not refused.retryable and "unexpected keyword" in refused.message
