"""Webhooks on a real server (SQLite and PostgreSQL): endpoints managed through the official
SDK's ``client.beta.organization.webhooks``, and deliveries to a local receiver (a real HTTP
server) that verifies and parses every one with the SDK's ``client.beta.webhooks.unwrap`` —
the objects' kinds and ids, order per object, retries with backoff, a receiver that was down,
redelivery, a slow receiver, and the signing secret shown once and stored only sealed."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import anthropic
import httpx
import pytest

from tests.e2e.test_model_cards import _stored_bytes
from tests.support.fake_provider import FakeProvider, Reply, Text, ToolUse
from tests.support.sdk_sessions import idles, say, wait_for
from tests.support.server import RunningServer, provider_settings, running_server
from tests.support.webhook_receiver import WebhookReceiver

# Retries within tenths of a second, so tests see several attempts quickly.
FAST_RETRIES: dict[str, Any] = {
    "webhook_retry_base_seconds": 0.05,
    "webhook_retry_max_seconds": 0.3,
    "webhook_timeout_seconds": 5.0,
}
pytestmark = pytest.mark.server_settings(**FAST_RETRIES)
ORGANIZATION = "org_default"
CUSTOM_TOOL = {
    "type": "custom",
    "name": "get_weather",
    "description": "The weather in a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    made = WebhookReceiver()
    with made.running():
        yield made
    assert not made.rejected, f"deliveries the SDK refused: {made.rejected}"


def _endpoint(client: anthropic.Anthropic, receiver: WebhookReceiver, kinds: list[str], **fields: Any) -> Any:
    endpoint = client.beta.organization.webhooks.create(enabled_events=kinds, url=receiver.url, **fields)  # type: ignore[arg-type]
    receiver.key = endpoint.signing_secret
    return endpoint


def _deliveries(http: httpx.Client, endpoint_id: str, **params: Any) -> list[dict[str, Any]]:
    response = http.get(f"/v1/organizations/webhooks/{endpoint_id}/deliveries", params={"limit": 100, **params})
    assert response.status_code == 200, response.text
    return response.json()["data"]


def _wait_log(http: httpx.Client, endpoint_id: str, done: Any, timeout: float = 20) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        log = _deliveries(http, endpoint_id)
        if done(log):
            return log
        if time.monotonic() > deadline:
            raise AssertionError(f"delivery log: {[(d['event_type'], d['status'], d['attempts']) for d in log]}")
        time.sleep(0.05)


def _post(http: httpx.Client, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    response = http.post(path, json=body if body is not None else {})
    assert response.status_code == 200, response.text
    return response.json()


# -- endpoints through the SDK ----------------------------------------------------------------


def test_endpoints_are_created_read_updated_listed_and_deleted_through_the_sdk(
    client: anthropic.Anthropic, http: httpx.Client
) -> None:
    hooks = client.beta.organization.webhooks
    created = hooks.create(
        enabled_events=["agent.created", "session.status_idled"],  # type: ignore[list-item]
        url="https://receiver.example.test/hooks",
        name="ops",
        description="paging",
    )
    assert created.signing_secret.startswith("whsec_")
    assert len(base64.b64decode(created.signing_secret.removeprefix("whsec_"))) == 32
    assert (created.name, created.description, created.state, created.disabled_reason) == ("ops", "paging", "enabled", "")
    assert created.enabled_events == ["agent.created", "session.status_idled"]

    read = hooks.retrieve(created.id)
    assert read.url == "https://receiver.example.test/hooks" and read.created_at == created.created_at
    assert "signing_secret" not in http.get(f"/v1/organizations/webhooks/{created.id}").json()

    changed = hooks.update(created.id, name="ops-2", enabled_events=["agent.updated"], state="disabled")  # type: ignore[list-item]
    assert (changed.name, changed.enabled_events, changed.state, changed.description) == (
        "ops-2", ["agent.updated"], "disabled", "paging",
    )
    # An empty list leaves the kinds as they are (as the SDK documents).
    assert hooks.update(created.id, enabled_events=[], state="enabled").enabled_events == ["agent.updated"]

    secret = hooks.regenerate_signing_secret(created.id).signing_secret
    assert secret.startswith("whsec_") and secret != created.signing_secret

    others = [hooks.create(enabled_events=["agent.created"], url=f"http://127.0.0.1:9/{n}") for n in range(3)]  # type: ignore[list-item]
    newest_first = [endpoint.id for endpoint in hooks.list()]
    assert newest_first[:4] == [others[2].id, others[1].id, others[0].id, created.id]
    page = hooks.list(limit=2)
    assert [e.id for e in page.data] == newest_first[:2] and page.has_more is True
    assert [e.id for e in hooks.list(limit=2, after_id=page.last_id).data] == newest_first[2:4]
    assert [e.id for e in hooks.list(limit=10, order="asc").data] == list(reversed(newest_first))
    # before_id: the first `limit` endpoints before it in list order (as the SDK documents).
    assert [e.id for e in hooks.list(limit=1, before_id=created.id).data] == newest_first[:1]
    assert [e.id for e in hooks.list(limit=100)] == newest_first  # the SDK pages through

    deleted = hooks.delete(created.id)
    assert (deleted.id, deleted.type) == (created.id, "webhook_endpoint_deleted")
    with pytest.raises(anthropic.NotFoundError):
        hooks.retrieve(created.id)
    with pytest.raises(anthropic.NotFoundError):
        hooks.regenerate_signing_secret(created.id)
    assert created.id not in [endpoint.id for endpoint in hooks.list()]


def test_only_organization_admins_manage_webhook_endpoints(server: RunningServer, http: httpx.Client) -> None:
    workspace = _post(http, "/v1/organizations/workspaces", {"name": "team"})["id"]
    endpoint = _post(http, "/v1/organizations/webhooks", {"enabled_events": ["agent.created"], "url": "http://127.0.0.1:9/"})
    for role in ("admin", "member"):
        key = _post(http, "/v1/organizations/api_keys", {"name": role, "workspace_id": workspace, "role": role})["key"]
        sdk = anthropic.Anthropic(base_url=server.base_url, api_key=key, max_retries=0)
        with pytest.raises(anthropic.PermissionDeniedError):
            sdk.beta.organization.webhooks.create(enabled_events=["agent.created"], url="http://127.0.0.1:9/")  # type: ignore[list-item]
        with pytest.raises(anthropic.PermissionDeniedError):
            sdk.beta.organization.webhooks.list()
        with pytest.raises(anthropic.PermissionDeniedError):
            sdk.beta.organization.webhooks.retrieve(endpoint["id"])
        with pytest.raises(anthropic.PermissionDeniedError):
            sdk.beta.organization.webhooks.delete(endpoint["id"])


@pytest.mark.parametrize(
    "body",
    [
        {"enabled_events": ["agent.created"], "url": "ftp://example.test/hooks"},
        {"enabled_events": ["agent.created"], "url": "file:///etc/passwd"},
        {"enabled_events": ["agent.created"], "url": "javascript:alert(1)"},
        {"enabled_events": ["agent.created"], "url": "http:///no-host"},
        {"enabled_events": ["agent.created"], "url": "x"},
        {"enabled_events": ["agent.created"], "url": "http://example.test/a b"},
        {"enabled_events": ["agent.created"], "url": "http://example.test:port/"},
        {"enabled_events": ["no.such_kind"], "url": "https://example.test/"},
        {"enabled_events": [], "url": "https://example.test/"},
        {"url": "https://example.test/"},
    ],
)
def test_an_endpoint_that_cannot_be_delivered_to_is_refused(http: httpx.Client, body: dict[str, Any]) -> None:
    response = http.post("/v1/organizations/webhooks", json=body)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert http.get("/v1/organizations/webhooks").json()["data"] == []


def test_updates_are_checked_like_creates(http: httpx.Client) -> None:
    endpoint = _post(http, "/v1/organizations/webhooks", {"enabled_events": ["agent.created"], "url": "http://127.0.0.1:9/"})
    path = f"/v1/organizations/webhooks/{endpoint['id']}"
    for change in ({"url": "gopher://example.test/"}, {"enabled_events": ["agent.exploded"]}, {"state": "paused"}):
        assert http.post(path, json=change).status_code == 400, change
    assert http.get(path).json()["url"] == "http://127.0.0.1:9/"
    assert http.get("/v1/organizations/webhooks/whep_000000000000000000000000").status_code == 404
    assert http.get(f"{path}/deliveries/whdlv_000000000000000000000000").status_code == 404


# -- deliveries ---------------------------------------------------------------------------------

EVERYTHING = [
    "agent.created", "agent.updated", "agent.archived",
    "environment.created", "environment.updated", "environment.archived",
    "session.created", "session.updated", "session.status_run_started", "session.status_idled",
    "session.requires_action", "session.deleted",
    "vault.created", "vault.archived", "vault.deleted",
    "vault_credential.created", "vault_credential.archived", "vault_credential.deleted",
    "memory_store.created", "memory_store.archived", "memory_store.deleted",
]  # fmt: skip


def test_every_delivery_verifies_with_the_sdk_and_names_its_object_in_order(
    client: anthropic.Anthropic, http: httpx.Client, receiver: WebhookReceiver, fake_provider: FakeProvider
) -> None:
    endpoint = _endpoint(client, receiver, EVERYTHING)
    agent = client.beta.agents.create(name="hooked", model="claude-sonnet-4-6", tools=[CUSTOM_TOOL])  # type: ignore[list-item]
    client.beta.agents.update(agent.id, version=1, description="v2")
    environment = client.beta.environments.create(name="env")
    client.beta.environments.update(environment.id, description="changed")
    session = client.beta.sessions.create(agent=agent.id, environment_id=environment.id)
    client.beta.sessions.update(session.id, title="renamed")
    fake_provider.script(Reply([Text("Checking."), ToolUse("get_weather", {"city": "Oslo"})]))
    say(client, session.id, "weather?")
    wait_for(client, session.id, idles(1))
    client.beta.sessions.delete(session.id)
    client.beta.agents.archive(agent.id)
    client.beta.environments.archive(environment.id)
    vault = client.beta.vaults.create(display_name="v")
    auth = {"type": "static_bearer", "mcp_server_url": "https://mcp.example.test/mcp", "token": "bearer-0001"}
    credential = client.beta.vaults.credentials.create(vault.id, auth=auth)  # type: ignore[arg-type]
    client.beta.vaults.credentials.archive(credential.id, vault_id=vault.id)
    client.beta.vaults.credentials.delete(credential.id, vault_id=vault.id)
    client.beta.vaults.archive(vault.id)
    client.beta.vaults.delete(vault.id)
    store = client.beta.memory_stores.create(name="hooked")
    client.beta.memory_stores.archive(store.id)
    client.beta.memory_stores.delete(store.id)

    expected = {
        agent.id: ["agent.created", "agent.updated", "agent.archived"],
        environment.id: ["environment.created", "environment.updated", "environment.archived"],
        session.id: [
            "session.created", "session.updated", "session.status_run_started", "session.status_idled",
            "session.requires_action", "session.deleted",
        ],
        vault.id: ["vault.created", "vault.archived", "vault.deleted"],
        credential.id: ["vault_credential.created", "vault_credential.archived", "vault_credential.deleted"],
        store.id: ["memory_store.created", "memory_store.archived", "memory_store.deleted"],
    }  # fmt: skip
    total = sum(len(kinds) for kinds in expected.values())
    receiver.wait_for(lambda r: len(r.accepted) >= total)
    time.sleep(0.3)  # nothing more may come
    accepted = receiver.accepted
    assert len(accepted) == total, receiver.types()
    by_object: dict[str, list[str]] = {}
    for seen in accepted:
        event = seen.event
        assert event.type == "event" and seen.headers["webhook-id"] == event.id
        assert seen.headers["webhook-signature"].startswith("v1,")
        assert (event.data.organization_id, event.data.workspace_id) == (ORGANIZATION, "default")
        assert type(event.data).__name__.startswith("BetaWebhook"), type(event.data)  # the SDK's own type
        by_object.setdefault(event.data.id, []).append(event.data.type)
        if event.data.type.startswith("vault_credential."):
            assert event.data.vault_id == vault.id
    assert by_object == expected
    assert len({seen.event.id for seen in accepted}) == total, "an event id is one delivery's"

    log = _deliveries(http, endpoint.id)
    assert len(log) == total and {entry["status"] for entry in log} == {"succeeded"}
    assert {entry["event_id"] for entry in log} == {seen.event.id for seen in accepted}
    first = log[-1]  # newest first
    assert (first["event_type"], first["attempts"], first["response_status_code"]) == ("agent.created", 1, 200)
    assert http.get(f"/v1/organizations/webhooks/{endpoint.id}/deliveries/{first['id']}").json() == first


def test_only_subscribed_kinds_of_every_workspace_are_delivered_and_none_while_disabled(
    client: anthropic.Anthropic, http: httpx.Client, receiver: WebhookReceiver
) -> None:
    endpoint = _endpoint(client, receiver, ["agent.created"])
    client.beta.environments.create(name="not subscribed")
    first = client.beta.agents.create(name="one", model="m")
    workspace = _post(http, "/v1/organizations/workspaces", {"name": "team"})["id"]
    team_key = _post(http, "/v1/organizations/api_keys", {"name": "team", "workspace_id": workspace, "role": "admin"})["key"]
    with httpx.Client(base_url=str(http.base_url), headers={"x-api-key": team_key}) as team:
        theirs = _post(team, "/v1/agents", {"name": "theirs", "model": "m"})["id"]
    receiver.wait_for(lambda r: len(r.accepted) == 2)
    client.beta.organization.webhooks.update(endpoint.id, state="disabled")
    unseen = client.beta.agents.create(name="while disabled", model="m")
    client.beta.organization.webhooks.update(endpoint.id, state="enabled")
    last = client.beta.agents.create(name="after", model="m")
    receiver.wait_for(lambda r: len(r.accepted) == 3)

    delivered = [(seen.event.data.id, seen.event.data.workspace_id) for seen in receiver.accepted]
    assert delivered == [(first.id, "default"), (theirs, workspace), (last.id, "default")]
    assert unseen.id not in {entry["event"]["data"]["id"] for entry in _deliveries(http, endpoint.id)}
    assert len(_deliveries(http, endpoint.id)) == 3


def test_a_receiver_that_was_down_gets_what_it_missed_once_it_is_back(
    client: anthropic.Anthropic, http: httpx.Client
) -> None:
    receiver = WebhookReceiver()  # not started: connections are refused
    endpoint = _endpoint(client, receiver, ["agent.created", "agent.updated", "environment.created"])
    agent = client.beta.agents.create(name="a", model="m")
    client.beta.agents.update(agent.id, version=1, description="later")
    environment = client.beta.environments.create(name="e")
    def probed(log: list[dict[str, Any]]) -> bool:
        return len(log) == 3 and any(d["event_type"] == "agent.created" and d["attempts"] >= 3 for d in log)

    log = _wait_log(http, endpoint.id, probed)
    assert {d["status"] for d in log} == {"pending"}
    assert all("no answer" in d["error"] for d in log if d["attempts"])
    updated = next(d for d in log if d["event_type"] == "agent.updated")
    assert updated["attempts"] == 0, "an object's later event waits behind its first"

    with receiver.running():
        receiver.wait_for(lambda r: len(r.accepted) == 3)
    assert not receiver.rejected
    order = [(seen.event.data.type, seen.event.data.id) for seen in receiver.accepted]
    assert order.index(("agent.created", agent.id)) < order.index(("agent.updated", agent.id))
    assert ("environment.created", environment.id) in order
    log = _wait_log(http, endpoint.id, lambda log: {d["status"] for d in log} == {"succeeded"})
    assert all(d["response_status_code"] == 200 and d["delivered_at"] for d in log)


def test_failures_are_retried_with_growing_backoff_and_keep_their_order(
    client: anthropic.Anthropic, http: httpx.Client, receiver: WebhookReceiver
) -> None:
    endpoint = _endpoint(client, receiver, ["agent.created", "agent.updated"])
    receiver.answers = [500, 503, 302]
    agent = client.beta.agents.create(name="a", model="m")
    client.beta.agents.update(agent.id, version=1, description="later")
    receiver.wait_for(lambda r: len(r.accepted) == 2)

    attempts = [(seen.event.data.type, seen.status, seen.at) for seen in receiver.attempts]
    assert [(kind, status) for kind, status, _ in attempts] == [
        ("agent.created", 500), ("agent.created", 503), ("agent.created", 302), ("agent.created", 200),
        ("agent.updated", 200),
    ]  # fmt: skip
    assert len({seen.event.id for seen in receiver.attempts[:4]}) == 1, "a retry is the same event"
    gaps = [later[2] - earlier[2] for earlier, later in zip(attempts[:3], attempts[1:4], strict=True)]
    # base 0.05 s doubling (±20 %): ≥ 0.04, ≥ 0.08, ≥ 0.16
    assert gaps[0] >= 0.04 and gaps[1] >= 0.08 and gaps[2] >= 0.16, gaps
    created = next(d for d in _deliveries(http, endpoint.id) if d["event_type"] == "agent.created")
    assert (created["status"], created["attempts"], created["response_status_code"]) == ("succeeded", 4, 200)


@pytest.mark.server_settings(**FAST_RETRIES, webhook_max_attempts=2)
def test_a_delivery_out_of_retries_fails_lets_the_next_go_and_can_be_redelivered(
    client: anthropic.Anthropic, http: httpx.Client, receiver: WebhookReceiver
) -> None:
    endpoint = _endpoint(client, receiver, ["agent.created", "agent.updated"])
    receiver.answers = [500, 500]
    agent = client.beta.agents.create(name="a", model="m")
    log = _wait_log(http, endpoint.id, lambda log: log and log[0]["status"] == "failed")
    failed = log[0]
    assert (failed["attempts"], failed["response_status_code"], failed["next_attempt_at"]) == (2, 500, None)
    assert http.get(f"/v1/organizations/webhooks/{endpoint.id}/deliveries", params={"status": "failed"}).json()["data"] == [failed]

    client.beta.agents.update(agent.id, version=1, description="later")
    receiver.wait_for(lambda r: r.types() == ["agent.updated"])

    redelivered = _post(http, f"/v1/organizations/webhooks/{endpoint.id}/deliveries/{failed['id']}/redeliver")
    assert redelivered["status"] == "pending" and redelivered["event_id"] == failed["event_id"]
    receiver.wait_for(lambda r: r.types() == ["agent.updated", "agent.created"])
    assert receiver.accepted[-1].event.id == failed["event_id"]
    done = _wait_log(http, endpoint.id, lambda log: {d["status"] for d in log} == {"succeeded"})
    assert next(d for d in done if d["id"] == failed["id"])["attempts"] == 3
    missing = http.post(f"/v1/organizations/webhooks/{endpoint.id}/deliveries/whdlv_000000000000000000000000/redeliver")
    assert missing.status_code == 404


def test_a_slow_receiver_holds_up_neither_the_api_nor_another_endpoint(
    client: anthropic.Anthropic, receiver: WebhookReceiver
) -> None:
    slow = WebhookReceiver()
    slow.delay = 3.0  # each answer (the timeout is 5 s): a write waiting for one would show
    with slow.running():
        _endpoint(client, slow, ["agent.created"])
        _endpoint(client, receiver, ["agent.created"])
        for n in range(3):
            before = time.monotonic()
            client.beta.agents.create(name=f"a{n}", model="m")
            assert time.monotonic() - before < slow.delay, "a write waited for a delivery"
        receiver.wait_for(lambda r: len(r.accepted) == 3, timeout=2 * slow.delay)
        assert len(slow.accepted) < 3, "the other endpoint did not wait for the slow one"
        slow.wait_for(lambda r: len(r.accepted) == 3, timeout=6 * slow.delay)
    assert not slow.rejected


def test_a_regenerated_secret_signs_every_later_delivery(client: anthropic.Anthropic, receiver: WebhookReceiver) -> None:
    endpoint = _endpoint(client, receiver, ["agent.created"])
    client.beta.agents.create(name="before", model="m")
    receiver.wait_for(lambda r: len(r.accepted) == 1)
    old = receiver.key
    receiver.key = client.beta.organization.webhooks.regenerate_signing_secret(endpoint.id).signing_secret
    client.beta.agents.create(name="after", model="m")
    receiver.wait_for(lambda r: len(r.accepted) == 2)
    later = receiver.accepted[-1]
    with pytest.raises(Exception, match="signature"):
        client.beta.webhooks.unwrap(later.body, headers=later.headers, key=old)


def test_the_signing_secret_is_shown_once_and_stored_only_sealed(
    server: RunningServer, receiver: WebhookReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    from application.ports import SecretUnavailable
    from application.webhooks import secret_owner
    from domain.webhooks import WebhookEndpoint

    caplog.set_level("DEBUG")
    bodies: list[str] = []

    def keep(response: httpx.Response) -> None:
        response.read()
        bodies.append(response.text)

    with httpx.Client(base_url=server.base_url, headers={"x-api-key": server.api_key}, event_hooks={"response": [keep]}) as http:
        endpoint = _post(http, "/v1/organizations/webhooks", {"enabled_events": ["agent.created"], "url": receiver.url})
        receiver.key = endpoint["signing_secret"]
        _post(http, "/v1/agents", {"name": "a", "model": "m"})
        receiver.wait_for(lambda r: len(r.accepted) == 1)
        regenerated = _post(http, f"/v1/organizations/webhooks/{endpoint['id']}/regenerate_signing_secret")["signing_secret"]
        http.get(f"/v1/organizations/webhooks/{endpoint['id']}")
        http.get("/v1/organizations/webhooks")
        http.get(f"/v1/organizations/webhooks/{endpoint['id']}/deliveries")
        _post(http, f"/v1/organizations/webhooks/{endpoint['id']}", {"name": "renamed"})
        secrets = [endpoint["signing_secret"], regenerated]
        assert sum(secret in body for body in bodies for secret in secrets) == 2, "each once, in its own response"
        stored = _stored_bytes(server)
        assert endpoint["id"].encode() in stored
        for secret in secrets:
            assert secret.removeprefix("whsec_").encode() not in stored, "a secret stored in clear"
            assert secret.removeprefix("whsec_") not in caplog.text
        assert http.delete(f"/v1/organizations/webhooks/{endpoint['id']}").status_code == 200

    # Regenerating shredded the first secret's data key, deleting the second's: every stored
    # ciphertext of either is unreadable now.
    store, cipher = server.platform.store, server.platform.resources[0]
    sealed = [
        (event.originator_version, event.ciphertext)
        for notification in store.notifications(0, 10_000)
        if isinstance(event := store.decode(notification), WebhookEndpoint.Created | WebhookEndpoint.SigningSecretRegenerated)
    ]
    assert len(sealed) == 2
    for generation, ciphertext in enumerate((ciphertext for _, ciphertext in sealed), start=1):
        with pytest.raises(SecretUnavailable):
            cipher.open(secret_owner(endpoint["id"], generation), ciphertext)


# -- several API processes on PostgreSQL ------------------------------------------------------


def test_several_api_processes_deliver_each_event_once_and_one_takes_over_from_another(
    postgres_url: str, tmp_path: Path, fake_provider: FakeProvider, receiver: WebhookReceiver
) -> None:
    settings = {**provider_settings(fake_provider), **FAST_RETRIES}
    stacks = [ExitStack(), ExitStack()]
    try:
        servers = [stack.enter_context(running_server(tmp_path / f"api{n}", postgres_url, **settings)) for n, stack in enumerate(stacks)]
        clients = [anthropic.Anthropic(base_url=s.base_url, api_key=s.api_key, max_retries=0) for s in servers]
        _endpoint(clients[0], receiver, ["agent.created"])
        made = [clients[n % 2].beta.agents.create(name=f"a{n}", model="m").id for n in range(10)]
        receiver.wait_for(lambda r: len(r.accepted) >= 10)
        time.sleep(0.5)
        assert sorted(seen.event.data.id for seen in receiver.accepted) == sorted(made), "each event once"
        active = [n for n, s in enumerate(servers) if s.platform.webhooks._lease.held()]
        assert len(active) == 1, "one process delivers"

        stacks[active[0]].close()  # the active process stops; the other takes over
        survivor = clients[1 - active[0]]
        more = [survivor.beta.agents.create(name=f"b{n}", model="m").id for n in range(3)]
        receiver.wait_for(lambda r: len(r.accepted) >= 13, timeout=20)
        assert [seen.event.data.id for seen in receiver.accepted][10:] == more
    finally:
        for stack in stacks:
            stack.close()
