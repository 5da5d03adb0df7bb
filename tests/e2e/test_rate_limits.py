"""Rate limits on a real server (SQLite and PostgreSQL): every metered response says where the
caller stands; past the limit a 429 carries ``retry-after``, which the official SDKs wait out
and retry; the configured limits read (and a workspace's own set) through the SDK."""

from __future__ import annotations

import time
from collections.abc import Iterator

import anthropic
import httpx
import openai
import pytest

from application.api_keys import generate_key
from application.rate_limit_config import CALLER_ENTRY, WORKSPACE_ENTRY
from application.tenancy import Principal
from tests.support.postgres import database_of
from tests.support.server import RunningServer, running_server

CALLER_RPM = 30  # one request back every 2 s


@pytest.fixture(params=["sqlite", "postgres"])
def limited(request: pytest.FixtureRequest, tmp_path) -> Iterator[RunningServer]:  # noqa: ANN001
    with running_server(
        tmp_path / "data", database_of(request), rate_limit_caller_rpm=CALLER_RPM, rate_limit_workspace_rpm=600
    ) as server:
        yield server


def drain(base_url: str, api_key: str) -> httpx.Response:
    """Spends the caller's bucket: requests until one is refused (that 429 is returned)."""
    with httpx.Client(base_url=base_url, headers={"x-api-key": api_key}, timeout=20) as http:
        for _ in range(CALLER_RPM * 3):
            response = http.get("/v1/agents", params={"limit": 1})
            if response.status_code == 429:
                return response
            assert response.status_code == 200, response.text
    raise AssertionError("no request was refused")


def test_headers_then_a_429_the_sdks_wait_out(limited: RunningServer) -> None:
    with httpx.Client(base_url=limited.base_url, headers={"x-api-key": limited.api_key}, timeout=20) as http:
        first = http.get("/v1/agents")
    assert first.status_code == 200
    assert first.headers["anthropic-ratelimit-requests-limit"] == str(CALLER_RPM)
    assert first.headers["anthropic-ratelimit-requests-remaining"] == str(CALLER_RPM - 1)
    assert first.headers["anthropic-ratelimit-requests-reset"].endswith("Z")
    assert first.headers["x-ratelimit-remaining-requests"] == str(CALLER_RPM - 1)
    assert first.headers["x-ratelimit-reset-requests"].endswith("s")

    refused = drain(limited.base_url, limited.api_key)
    assert refused.headers["anthropic-ratelimit-requests-remaining"] == "0"
    assert refused.headers["retry-after"] in ("1", "2")
    assert 0 < int(refused.headers["retry-after-ms"]) <= 2000
    body = refused.json()
    assert body["type"] == "error" and body["error"]["type"] == "rate_limit_error"
    assert f"{CALLER_RPM} requests per minute" in body["error"]["message"]

    sdk = anthropic.Anthropic(base_url=limited.base_url, api_key=limited.api_key, max_retries=0, timeout=20)
    drain(limited.base_url, limited.api_key)
    with pytest.raises(anthropic.RateLimitError):
        sdk.beta.agents.list()
    retrying = sdk.with_options(max_retries=3)
    drain(limited.base_url, limited.api_key)
    started = time.monotonic()
    raw = retrying.beta.agents.with_raw_response.list()
    assert raw.retries_taken >= 1 and raw.parse().data is not None
    assert time.monotonic() - started >= 0.3  # it waited for the bucket, as retry-after said

    oai = openai.OpenAI(base_url=limited.base_url + "/v1", api_key=limited.api_key, max_retries=3, timeout=20)
    drain(limited.base_url, limited.api_key)
    models = oai.models.with_raw_response.list()
    assert models.retries_taken >= 1 and models.http_response.status_code == 200


def test_a_workspace_limit_binds_every_key_of_it(limited: RunningServer) -> None:
    sdk = anthropic.Anthropic(base_url=limited.base_url, api_key=limited.api_key, max_retries=0, timeout=20)
    listed = sdk.beta.organization.rate_limits.list()
    by_id = {entry.id: entry for entry in listed.data}
    assert set(by_id) == {WORKSPACE_ENTRY, CALLER_ENTRY}
    assert [(v.type, v.value) for v in by_id[CALLER_ENTRY].limits] == [("requests_per_minute", CALLER_RPM)]
    assert [(v.type, v.value) for v in by_id[WORKSPACE_ENTRY].limits] == [("requests_per_minute", 600)]
    assert by_id[WORKSPACE_ENTRY].group.type == "model_group"

    limits = sdk.beta.organization.workspaces.rate_limits
    assert limits.list(workspace_id="default").data == []  # nothing of its own yet
    inherited = limits.list(workspace_id="default", include_inherited=True).data
    assert [(e.rate_limit_id, e.limits[0].source.type, e.limits[0].value) for e in inherited] == [
        (WORKSPACE_ENTRY, "organization", 600),
        (CALLER_ENTRY, "organization", CALLER_RPM),
    ]

    cleared = limits.update(
        WORKSPACE_ENTRY, workspace_id="default", limits=[{"type": "requests_per_minute", "value": 500}]
    )
    assert [(v.value, v.source.type) for v in cleared.limits] == [(500, "workspace")]
    cleared = limits.update(
        WORKSPACE_ENTRY, workspace_id="default", limits=[{"type": "requests_per_minute", "value": None}]
    )
    assert [(v.value, v.source.type) for v in cleared.limits] == [(600, "organization")]

    updated = limits.update(
        WORKSPACE_ENTRY, workspace_id="default", limits=[{"type": "requests_per_minute", "value": 4}]
    )
    assert [(v.value, v.org_limit, v.source.type) for v in updated.limits] == [(4, 600, "workspace")]

    second_key = generate_key()
    limited.platform.services.api_keys.issue(second_key, name="second")
    other = anthropic.Anthropic(base_url=limited.base_url, api_key=second_key, max_retries=0, timeout=20)
    for _ in range(4):
        other.beta.agents.list()
    with pytest.raises(anthropic.RateLimitError) as refused:
        sdk.beta.agents.list()  # the first key's own bucket is full; the workspace's is spent
    assert refused.value.response.headers["anthropic-ratelimit-requests-limit"] == "4"

    # The admin's own requests count too; lift the limit from inside, as an operator could.
    operator = Principal("default", "operator", organization_role="admin")
    limited.platform.services.rate_limits.update(operator, "default", WORKSPACE_ENTRY, [("requests_per_minute", None)])
    assert sdk.beta.agents.list().data is not None  # a raised limit is room at once
    assert limits.list(workspace_id="default").data == []


def test_refusals(limited: RunningServer) -> None:
    with httpx.Client(base_url=limited.base_url, headers={"x-api-key": limited.api_key}, timeout=20) as http:
        base = "/v1/organizations/workspaces/default/rate_limits"
        cases = [
            (f"{base}/{WORKSPACE_ENTRY}", {"limits": [{"type": "tokens_per_minute", "value": 5}]}, 400, "enforces only"),
            (f"{base}/{WORKSPACE_ENTRY}", {"limits": [{"type": "requests_per_minute", "value": -1}]}, 400, "limits"),
            (f"{base}/{WORKSPACE_ENTRY}", {"limits": []}, 400, "limits"),
            (f"{base}/{CALLER_ENTRY}", {"limits": [{"type": "requests_per_minute", "value": 5}]}, 400, "organization's own"),
            (f"{base}/rl_nothing", {"limits": [{"type": "requests_per_minute", "value": 5}]}, 404, "not found"),
            (
                f"/v1/organizations/workspaces/someone-else/rate_limits/{WORKSPACE_ENTRY}",
                {"limits": [{"type": "requests_per_minute", "value": 5}]},
                404,
                "not found",
            ),
        ]
        for path, body, status, words in cases:
            response = http.post(path, json=body)
            assert response.status_code == status, (path, body, response.text)
            assert words in response.json()["error"]["message"], response.text
        workspace_admin = http.post("/v1/organizations/api_keys", json={"name": "ws admin", "role": "admin"}).json()["key"]
        refused = http.post(
            f"{base}/{WORKSPACE_ENTRY}",
            json={"limits": [{"type": "requests_per_minute", "value": 5}]},
            headers={"x-api-key": workspace_admin},
        )
        assert refused.status_code == 403 and "organization admin" in refused.json()["error"]["message"]
        assert http.get("/v1/organizations/rate_limits", params={"model": "no-such-model"}).status_code == 404
        assert http.get("/v1/organizations/rate_limits", params={"group_type": "nope"}).status_code == 400
        assert http.get("/v1/organizations/rate_limits", params={"page": "garbage"}).status_code == 400
        first = http.get("/v1/organizations/rate_limits", params={"limit": 1}).json()
        assert len(first["data"]) == 1 and first["next_page"]
        second = http.get("/v1/organizations/rate_limits", params={"limit": 1, "page": first["next_page"]}).json()
        assert [e["id"] for e in first["data"] + second["data"]] == [WORKSPACE_ENTRY, CALLER_ENTRY]
        assert second["next_page"] is None


def test_sign_in_routes_are_metered_per_address(tmp_path) -> None:  # noqa: ANN001
    with running_server(tmp_path / "data", rate_limit_login_rpm=3) as server:
        with httpx.Client(base_url=server.base_url, timeout=20) as http:
            answers = [http.post("/v1/auth/login", json={"email": "no@example.com", "password": "x"}) for _ in range(4)]
        assert [a.status_code for a in answers[:3]] == [401, 401, 401]
        assert answers[3].status_code == 429 and int(answers[3].headers["retry-after"]) >= 1
        assert "sign-in requests" in answers[3].json()["error"]["message"]
