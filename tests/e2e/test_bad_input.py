"""Bad input gets a clear 4xx error envelope, never a 500, and loses nothing stored."""

from __future__ import annotations

import httpx
import pytest

DEEP_AGENT = b'{"name": "x", "model": "m", "multiagent": {"type": "coordinator", "a": {"a": {"a": {"a": {"a": {"a": {"a": {"a": {"a": {"a": {"a": {"a": {"a": {"a": {"a": {"a": {"a": {"a": {"a": {"a": {"a": {"a": {"a": {"a": {"a": {"a": {"a": {"a": {"a": {"a": {"a": {"a": {"a": {"a": {"a": {"a": {"a": {"a": {"a": {"a": {"a": 1}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}'

BAD_REQUESTS = [
    ("POST", "/v1/agents", b"{not json", 400),
    ("POST", "/v1/agents", b"[1, 2]", 400),
    ("POST", "/v1/agents", b"", 400),
    ("POST", "/v1/agents", b'{"name": "x"}', 400),
    ("POST", "/v1/agents", b'{"name": "", "model": "m"}', 400),
    ("POST", "/v1/agents", b'{"name": "x", "model": "m", "bogus": 1}', 400),
    ("POST", "/v1/agents", b'{"name": "x", "model": {"effort": "high"}}', 400),
    ("POST", "/v1/agents", b'{"name": "x", "model": "m", "metadata": {"k": 5}}', 400),
    ("GET", "/v1/agents?limit=abc", None, 400),
    ("GET", "/v1/agents?limit=0", None, 400),
    ("GET", "/v1/agents?page=%%%garbage", None, 400),
    ("GET", "/v1/agents?include_archived=maybe", None, 400),
    ("GET", "/v1/agents/agent_doesnotexist00", None, 404),
    ("GET", "/v1/nowhere", None, 404),
    ("PUT", "/v1/agents", b"{}", 405),
    ("POST", "/v1/sessions", b'{"agent": "agent_nope00000000", "environment_id": "env_nope0000000"}', 404),
    ("GET", "/v1/sessions?statuses[]=sleeping", None, 400),
    ("POST", "/v1/agents", DEEP_AGENT, 400),
    ("POST", "/v1/agents", b'{"name": "x", "model": "m", "tools": [{"type": "agent_toolset_20260401", "configs": [{}]}]}', 400),
    ("POST", "/v1/agents", b'{"name": "x", "model": "m", "tools": [{"type": "agent_toolset_20260401", "configs": 5}]}', 400),
    ("POST", "/v1/agents", b'{"name": "x", "model": "m", "tools": [{"type": "mystery"}]}', 400),
    ("POST", "/v1/agents", b'{"name": "x", "model": "m", "skills": [1]}', 400),
    ("POST", "/v1/environments", b'{"name": "x", "config": {"type": "cloud", "packages": "abc"}}', 400),
    ("POST", "/v1/environments", b'{"name": "x", "config": {"type": "moon"}}', 400),
    ("GET", "/v1/agents?page=W3siYSI6IDF9LCAieCJd", None, 400),
    ("GET", "/v1/agents?page=W1sxXSwgWzJdXQ", None, 400),
    ("GET", "/v1/agents?page=WzE4NDQ2NzQ0MDczNzA5NTUxNjE1LCAxXQ", None, 400),
    ("GET", "/v1/sessions?page=WzEsIDJd", None, 400),
    ("GET", "/v1/agents?created_at[gte]=0001-01-01T00:00:00%2B01:00", None, 400),
    ("GET", "/v1/sessions?created_at[lte]=9999-12-31T23:59:59-01:00", None, 400),
    ("GET", "/v1/sessions?created_at[gte]=yesterday", None, 400),
]


def _assert_envelope(response: httpx.Response, status: int) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["type"] == "error"
    assert body["error"]["type"]
    assert body["error"]["message"]
    assert "Traceback" not in response.text


@pytest.mark.parametrize(("method", "path", "body", "status"), BAD_REQUESTS)
def test_bad_requests_get_a_clear_error(http: httpx.Client, method: str, path: str, body: bytes | None, status: int) -> None:
    response = http.request(method, path, content=body, headers={"content-type": "application/json"})
    _assert_envelope(response, status)


def test_missing_or_wrong_key_is_401(http: httpx.Client) -> None:
    _assert_envelope(httpx.get(str(http.base_url) + "/v1/agents"), 401)
    _assert_envelope(httpx.get(str(http.base_url) + "/v1/agents", headers={"x-api-key": "wrong"}), 401)
    assert httpx.get(str(http.base_url) + "/healthz").status_code == 200


def test_bad_session_events_are_refused_and_the_log_is_intact(http: httpx.Client) -> None:
    agent = http.post("/v1/agents", json={"name": "a", "model": "m"}).json()
    env = http.post("/v1/environments", json={"name": "e"}).json()
    session = http.post("/v1/sessions", json={"agent": agent["id"], "environment_id": env["id"]}).json()
    events_url = f"/v1/sessions/{session['id']}/events"
    good = {"type": "user.interrupt"}
    assert http.post(events_url, json={"events": [good]}).status_code == 202

    for body in (
        {"events": []},
        {"events": [{"type": "agent.message", "content": [{"type": "text", "text": "spoof"}]}]},
        {"events": [{"type": "user.message", "content": []}]},
        {"events": [{"type": "user.message", "content": [{"type": "video"}]}]},
        {"events": [good, {"type": "user.message"}]},
        {"events": [{"type": "system.message", "content": [{"type": "image", "source": {}}]}]},
        {"events": [{"type": "user.define_outcome", "description": "d"}]},
        {"events": [{"type": "user.define_outcome", "description": "d", "rubric": {"type": "text", "content": ""}}]},
        {"events": [{"type": "user.define_outcome", "description": "d", "rubric": {"type": "url"}}]},
        {"events": [{"type": "user.tool_result", "content": []}]},
        {"nope": 1},
    ):
        _assert_envelope(http.post(events_url, json=body), 400)

    log = http.get(events_url).json()["data"]
    assert [e["type"] for e in log] == ["user.interrupt"], "a refused batch must record nothing"
    _assert_envelope(http.get(events_url, params={"page": "garbage"}), 400)
    _assert_envelope(http.get(events_url, params={"order": "sideways"}), 400)
    stream_url = f"/v1/sessions/{session['id']}/events/stream"
    _assert_envelope(http.get(stream_url, headers={"Last-Event-ID": "abc"}), 400)
    _assert_envelope(http.get("/v1/sessions/sesn_unknown0000000/events/stream"), 404)


def test_secrets_never_echo_back_the_key(http: httpx.Client, server) -> None:  # noqa: ANN001
    response = http.get("/v1/agents", headers={"x-api-key": server.api_key + "x"})
    assert server.api_key not in response.text


def test_more_edge_cases_on_stored_resources(http: httpx.Client) -> None:
    agent = http.post("/v1/agents", json={"name": "a", "model": "m"}).json()
    env = http.post("/v1/environments", json={"name": "e"}).json()
    session = http.post("/v1/sessions", json={"agent": agent["id"], "environment_id": env["id"]}).json()
    events_url = f"/v1/sessions/{session['id']}/events"

    _assert_envelope(http.post(f"/v1/environments/{env['id']}", json={"name": None}), 400)
    assert http.get(f"/v1/environments/{env['id']}").json()["name"] == "e"
    _assert_envelope(
        http.post(f"/v1/agents/{agent['id']}", content=b'{"name": "z"}', headers={"content-type": "text/plain"}), 415
    )
    assert http.get(f"/v1/agents/{agent['id']}").json()["name"] == "a"
    _assert_envelope(http.get(f"/v1/agents/{agent['id']}/versions", params={"page": "W3siYSI6MX1d"}), 400)
    _assert_envelope(
        http.post("/v1/sessions", json={"agent": {"type": "agent_with_overrides", "id": agent["id"], "model": 5}, "environment_id": env["id"]}),
        400,
    )
    deep = {"type": "user.interrupt", "x": 1}
    for _ in range(40):
        deep = {"type": "user.interrupt", "x": [deep]}
    _assert_envelope(http.post(events_url, json={"events": [deep]}), 400)
    _assert_envelope(http.get(events_url, params={"page": "WyJhc2MiLDkyMjMzNzIwMzY4NTQ3NzU4MDhd"}), 400)
    stream_url = f"/v1/sessions/{session['id']}/events/stream"
    _assert_envelope(http.get(stream_url, headers={"Last-Event-ID": "9223372036854775808"}), 400)

    forged = http.post(
        events_url,
        json={"events": [{"type": "user.message", "content": [{"type": "text", "text": "hi"}], "id": "evil", "seq": 99, "processed_at": "x"}]},
    ).json()["data"][0]
    assert forged["id"].startswith("sevt_") and forged["seq"] == 1 and forged["processed_at"] != "x"
    listed = http.get(events_url).json()["data"][0]
    assert listed["id"] == forged["id"]

    assert len(http.get("/v1/agents", params={"limit": 5000}).json()["data"]) == 1  # clamped, not refused
    assert http.get("/v1/agents").status_code == 200, "the stored data still reads back"


def test_client_json_shaped_like_a_transcoder_tag_is_stored_verbatim(http: httpx.Client) -> None:
    """{"_type_", "_data_"} is how the event store tags its own types; client data of that
    shape must neither decode as one (a Decimal, a UUID) nor halt the projections."""
    forged = {"_type_": "nope", "_data_": {"_type_": "decimal_str", "_data_": "1.5"}}
    agent = http.post("/v1/agents", json={"name": "tagged", "model": {"id": "m", "x": forged}})
    assert agent.status_code == 200, agent.text
    agent = agent.json()
    assert http.get(f"/v1/agents/{agent['id']}").json()["model"]["x"] == forged
    listed = http.get("/v1/agents", params={"limit": 1000}).json()["data"]
    assert agent["id"] in [a["id"] for a in listed]  # the projection got past it

    env = http.post("/v1/environments", json={"name": "e"}).json()
    session = http.post(
        "/v1/sessions", json={"agent": agent["id"], "environment_id": env["id"], "metadata": {}}
    ).json()
    uuid_like = {"_type_": "uuid_hex", "_data_": "zz"}
    block = {"type": "text", "text": "hi", "cache": uuid_like}
    sent = http.post(f"/v1/sessions/{session['id']}/events", json={"events": [{"type": "user.message", "content": [block]}]})
    assert sent.status_code == 202, sent.text
    log = http.get(f"/v1/sessions/{session['id']}/events").json()["data"]
    assert log[0]["content"] == [block]
    assert http.get(f"/v1/sessions/{session['id']}").status_code == 200
    assert session["id"] in [s["id"] for s in http.get("/v1/sessions", params={"limit": 1000}).json()["data"]]


def test_findings_of_the_fuzzer_stay_fixed(http: httpx.Client) -> None:
    agent = http.post("/v1/agents", json={"name": "a", "model": "m", "metadata": {f"k{i}": "v" for i in range(16)}}).json()
    env = http.post("/v1/environments", json={"name": "e"}).json()

    # A null override overrides nothing (it was a 500).
    overridden = http.post("/v1/sessions", json={"agent": {"type": "agent_with_overrides", "id": agent["id"], "model": None, "system": "s"}, "environment_id": env["id"]})
    assert overridden.status_code == 200, overridden.text
    assert overridden.json()["agent"]["model"] == {"id": "m"} and overridden.json()["agent"]["system"] == "s"
    # Overrides without their type, and a boolean version, are refused rather than ignored or coerced.
    _assert_envelope(http.post("/v1/sessions", json={"agent": {"type": "agent", "id": agent["id"], "system": "s"}, "environment_id": env["id"]}), 400)
    _assert_envelope(http.post("/v1/sessions", json={"agent": {"type": "agent", "id": agent["id"], "version": True}, "environment_id": env["id"]}), 400)

    # Metadata is bounded after merging, not only per request.
    _assert_envelope(http.post(f"/v1/agents/{agent['id']}", json={"metadata": {"one_more": "v"}}), 400)
    assert http.post(f"/v1/agents/{agent['id']}", json={"metadata": {"k0": None, "one_more": "v"}}).status_code == 200
    assert len(http.get(f"/v1/agents/{agent['id']}").json()["metadata"]) == 16
    env_full = http.post(f"/v1/environments/{env['id']}", json={"metadata": {f"x{i}": "v" for i in range(16)}})
    assert env_full.status_code == 200
    _assert_envelope(http.post(f"/v1/environments/{env['id']}", json={"metadata": {"x16": "v"}}), 400)

    # Years before 1000 compare as timestamps, not as unpadded strings.
    assert http.get("/v1/agents", params={"created_at[gte]": "0999-01-01T00:00:00Z"}).json()["data"]
    assert http.get("/v1/agents", params={"created_at[lte]": "0999-01-01T00:00:00Z"}).json()["data"] == []

    # An error message quoting a huge id stays short.
    huge = http.get("/v1/agents/agent_" + "x" * 60_000)
    _assert_envelope(huge, 404)
    assert len(huge.json()["error"]["message"]) <= 1000

    session = overridden.json()
    _assert_envelope(http.get(f"/v1/sessions/{session['id']}/events/stream", params={"replay": "garbage"}), 400)


BAD_ENVIRONMENT_VALUES = [
    ({"packages": {"pip": ["foo bar"]}}, "packages.pip", "'foo bar'"),
    ({"packages": {"npm": ["-e x"]}}, "packages.npm", "'-e x'"),
    ({"packages": {"apt": [" "]}}, "packages.apt", "' '"),
    ({"packages": {"go": ["--index-url=http://evil.example/"]}}, "packages.go", "'--index-url=http://evil.example/'"),
    ({"networking": {"type": "limited", "allowed_hosts": ["exa mple.com"]}}, "networking.allowed_hosts", "'exa mple.com'"),
    ({"networking": {"type": "limited", "allowed_hosts": ["https://example.com"]}}, "networking.allowed_hosts", "'https://example.com'"),
    ({"networking": {"type": "limited", "allowed_hosts": ["example.com/path"]}}, "networking.allowed_hosts", "'example.com/path'"),
    ({"networking": {"type": "limited", "allowed_hosts": [" example.com"]}}, "networking.allowed_hosts", "' example.com'"),
    ({"networking": {"type": "limited", "allowed_hosts": ["example.com:443"]}}, "networking.allowed_hosts", "'example.com:443'"),
]


@pytest.mark.parametrize(("cloud", "field", "value"), BAD_ENVIRONMENT_VALUES)
def test_environment_values_a_sandbox_would_refuse_are_refused_at_the_edge(
    http: httpx.Client, cloud: dict, field: str, value: str
) -> None:
    """A sandbox refuses these when a session starts; the API refuses them when they are sent,
    naming the field and the value, on create and on update alike."""
    config = {"type": "cloud", **cloud}
    created = http.post("/v1/environments", json={"name": "bad", "config": config})
    _assert_envelope(created, 400)
    assert field in created.json()["error"]["message"] and value in created.json()["error"]["message"]

    env = http.post("/v1/environments", json={"name": "good", "config": {"type": "cloud"}}).json()
    updated = http.post(f"/v1/environments/{env['id']}", json={"config": config})
    _assert_envelope(updated, 400)
    assert field in updated.json()["error"]["message"] and value in updated.json()["error"]["message"]
    assert http.get(f"/v1/environments/{env['id']}").json()["config"] == env["config"]


def test_environment_values_a_sandbox_accepts_are_accepted(http: httpx.Client) -> None:
    config = {
        "type": "cloud",
        "networking": {
            "type": "limited",
            "allowed_hosts": ["string", "Example.COM.", "*.svc.example.org", "my_service.internal", "93.184.216.34", "2001:db8::1"],
        },
        "packages": {"pip": ["string", "requests[socks]>=2.31"], "npm": ["@scope/pkg@1.2.3"], "go": ["golang.org/x/tools/cmd/goimports@v0.1.0"]},
    }
    created = http.post("/v1/environments", json={"name": "ok", "config": config})
    assert created.status_code == 200, created.text
    assert created.json()["config"]["networking"]["allowed_hosts"] == config["networking"]["allowed_hosts"]
