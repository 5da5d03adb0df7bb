"""Model cards on a real server (SQLite and PostgreSQL), probed against the fake provider:
the key is write-only (a 4-character preview comes back), a key or URL the provider refuses
stores nothing, a handle is unique per tenant, and deleting a card shreds its key."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from application.api_keys import DEFAULT_TENANT
from application.ports import SecretUnavailable
from domain.ids import stream_id
from interfaces.bootstrap import build_cipher
from tests.support.fake_provider import API_KEY, FakeProvider, RecordedRequest
from tests.support.postgres import free_port
from tests.support.server import RunningServer

OTHER_KEY = "fake-provider-second-key-9876543210"
REFUSED_KEY = "refused-key-abcdefghijklmnop-7777"


def card(fake: FakeProvider, **fields: Any) -> dict[str, Any]:
    base_url = fake.anthropic_base_url if fields.get("provider", "ant").startswith("ant") else fake.openai_base_url
    return {"model_id": "fast", "provider": "ant", "model": "fake-model", "api_key": API_KEY, "base_url": base_url, **fields}


def sent_key(request: RecordedRequest) -> str:
    """The key a request carried (the anthropic SDK sends it as a Bearer token, gateways as x-api-key)."""
    bearer = request.headers.get("authorization", "")
    return request.headers.get("x-api-key") or bearer.removeprefix("Bearer ")


def created(http: httpx.Client, body: dict[str, Any]) -> dict[str, Any]:
    response = http.post("/v1/model_cards", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def test_a_card_is_probed_then_listed_and_retrieved_with_only_a_key_preview(
    http: httpx.Client, fake_provider: FakeProvider
) -> None:
    made = created(http, card(fake_provider, custom_headers={"X-Gateway-Token": "gateway-secret-42"}))
    assert made["type"] == "model_card" and made["id"].startswith("mcard_")
    assert (made["model_id"], made["provider"], made["model"]) == ("fast", "ant", "fake-model")
    assert made["base_url"] == fake_provider.anthropic_base_url
    assert made["api_key_preview"] == API_KEY[-4:] and "api_key" not in made
    assert made["custom_headers"] == {"X-Gateway-Token": "[redacted]"}
    assert made["probe"] == {"ok": True}
    (probe,) = fake_provider.requests
    assert sent_key(probe) == API_KEY and probe.headers["x-gateway-token"] == "gateway-secret-42"
    listed = http.get("/v1/model_cards")
    assert listed.json()["data"] == [made]
    retrieved = http.get(f"/v1/model_cards/{made['id']}")
    assert retrieved.json() == made
    for response in (listed, retrieved):
        assert API_KEY not in response.text and "gateway-secret-42" not in response.text


def test_the_wire_model_defaults_to_the_handle_and_a_card_speaks_openai_too(
    http: httpx.Client, fake_provider: FakeProvider
) -> None:
    body = card(fake_provider, provider="oai-compatible", model_id="fake-model")
    del body["model"]
    made = created(http, body)
    assert made["model"] == "fake-model" and made["provider"] == "oai-compatible"
    (probe,) = fake_provider.requests
    assert probe.protocol == "openai" and probe.body["model"] == "fake-model"
    assert sent_key(probe) == API_KEY


def test_rotating_the_key_probes_again_and_the_runtime_gets_the_new_key(
    server: RunningServer, http: httpx.Client, fake_provider: FakeProvider
) -> None:
    fake_provider.api_keys.add(OTHER_KEY)
    made = created(http, card(fake_provider))
    rotated = http.post(f"/v1/model_cards/{made['id']}", json={"api_key": OTHER_KEY})
    assert rotated.status_code == 200, rotated.text
    assert rotated.json()["api_key_preview"] == OTHER_KEY[-4:] and rotated.json()["probe"] == {"ok": True}
    assert [sent_key(request) for request in fake_provider.requests] == [API_KEY, OTHER_KEY]
    assert http.get("/v1/model_cards").json()["data"][0]["api_key_preview"] == OTHER_KEY[-4:]
    target = server.platform.services.model_cards.target_for(DEFAULT_TENANT, "fast")
    assert target is not None
    assert (target.provider, target.model, target.api_key) == ("ant", "fake-model", OTHER_KEY)
    assert target.base_url == fake_provider.anthropic_base_url
    assert server.platform.services.model_cards.target_for(DEFAULT_TENANT, "no-such-handle") is None
    assert server.platform.services.model_cards.target_for("another-tenant", "fast") is None


def test_an_update_that_changes_nothing_the_provider_sees_is_not_probed(
    http: httpx.Client, fake_provider: FakeProvider
) -> None:
    made = created(http, card(fake_provider))
    moved = http.post(f"/v1/model_cards/{made['id']}", json={"model_id": "renamed"}).json()
    assert moved["model_id"] == "renamed" and len(fake_provider.requests) == 1
    cleared = http.post(f"/v1/model_cards/{made['id']}", json={"base_url": None, "probe": False}).json()
    assert cleared["base_url"] is None and cleared["probe"] == {"ok": None, "reason": "skipped"}
    assert len(fake_provider.requests) == 1


@pytest.mark.parametrize("provider", ["ant", "oai"])
def test_a_key_the_provider_refuses_is_a_400_with_its_reason_and_nothing_is_stored(
    http: httpx.Client, fake_provider: FakeProvider, provider: str
) -> None:
    response = http.post("/v1/model_cards", json=card(fake_provider, provider=provider, api_key=REFUSED_KEY))
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    reason = "invalid x-api-key" if provider == "ant" else "Incorrect API key provided"
    assert reason in error["message"] and "401" in error["message"]
    assert REFUSED_KEY not in response.text
    assert http.get("/v1/model_cards").json()["data"] == []
    # The handle was never taken: the right key makes the card.
    assert created(http, card(fake_provider, provider=provider))["model_id"] == "fast"
    fake_provider.take_violations()


def test_an_unreachable_url_is_refused_and_a_refused_rotation_changes_nothing(
    http: httpx.Client, fake_provider: FakeProvider
) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"
    response = http.post("/v1/model_cards", json=card(fake_provider, provider="ant-compatible", base_url=nowhere))
    assert response.status_code == 400 and response.json()["error"]["type"] == "invalid_request_error"
    made = created(http, card(fake_provider))
    refused = http.post(f"/v1/model_cards/{made['id']}", json={"api_key": REFUSED_KEY})
    assert refused.status_code == 400 and "invalid x-api-key" in refused.json()["error"]["message"]
    assert http.get(f"/v1/model_cards/{made['id']}").json() == made


def test_probe_false_stores_the_card_without_calling_the_provider(
    http: httpx.Client, fake_provider: FakeProvider
) -> None:
    made = created(http, card(fake_provider, api_key=REFUSED_KEY, probe=False))
    assert made["probe"] == {"ok": None, "reason": "skipped"}
    assert made["api_key_preview"] == REFUSED_KEY[-4:]
    assert fake_provider.requests == []


def test_a_model_id_is_unique_per_tenant_until_its_card_is_deleted(http: httpx.Client) -> None:
    body = {"model_id": "fast", "provider": "ant", "api_key": "offline-key-0001", "probe": False}
    first = created(http, body)
    duplicate = http.post("/v1/model_cards", json=body)
    assert duplicate.status_code == 409 and duplicate.json()["error"]["type"] == "conflict_error"
    assert duplicate.headers["x-should-retry"] == "false"
    other = created(http, body | {"model_id": "slow"})
    moved = http.post(f"/v1/model_cards/{other['id']}", json={"model_id": "fast"})
    assert moved.status_code == 409
    gone = http.delete(f"/v1/model_cards/{first['id']}")
    assert gone.status_code == 200 and gone.json() == {"id": first["id"], "type": "model_card_deleted"}
    assert http.get(f"/v1/model_cards/{first['id']}").status_code == 404
    assert http.delete(f"/v1/model_cards/{first['id']}").status_code == 404
    # Freed by the deletion; "slow" is freed by the move.
    assert http.post(f"/v1/model_cards/{other['id']}", json={"model_id": "fast"}).status_code == 200
    assert created(http, body | {"model_id": "slow"})["model_id"] == "slow"
    assert [item["model_id"] for item in http.get("/v1/model_cards").json()["data"]] == ["slow", "fast"]


@pytest.mark.parametrize(
    "fields",
    [
        {"provider": "anthropic"},
        {"provider": "ant-compatible"},  # no base_url: nowhere to send requests
        {"api_key": "short"},
        {"base_url": "ftp://example.com"},
        {"custom_headers": {"X-Bad": "line\r\nbreak"}},
        {"surprise": 1},
    ],
)
def test_malformed_cards_are_400s_that_do_not_echo_the_key(http: httpx.Client, fields: dict[str, Any]) -> None:
    body = {"model_id": "m", "provider": "ant", "api_key": "offline-key-0002", "probe": False} | fields
    response = http.post("/v1/model_cards", json=body)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert "offline-key-0002" not in response.text


def test_the_list_filters_by_provider(http: httpx.Client) -> None:
    body = {"provider": "ant", "api_key": "offline-key-0003", "probe": False}
    ant = created(http, body | {"model_id": "a"})
    oai = created(http, body | {"model_id": "o", "provider": "oai"})
    assert [item["id"] for item in http.get("/v1/model_cards", params={"provider": "oai"}).json()["data"]] == [oai["id"]]
    assert [item["id"] for item in http.get("/v1/model_cards", params={"provider": "ant"}).json()["data"]] == [ant["id"]]
    assert http.get("/v1/model_cards", params={"provider": "bedrock"}).status_code == 400


def test_deleting_a_card_shreds_its_key(server: RunningServer, http: httpx.Client) -> None:
    key = "offline-key-to-shred-0004"
    made = created(http, {"model_id": "doomed", "provider": "ant", "api_key": key, "probe": False})
    sealed = server.platform.store.load(stream_id(made["id"])).sealed_api_key
    # Another cipher over the same key table and root, as another process would have.
    cipher = build_cipher(server.settings)
    try:
        assert cipher.open(made["id"], sealed) == key
        assert http.delete(f"/v1/model_cards/{made['id']}").status_code == 200
        with pytest.raises(SecretUnavailable):
            cipher.open(made["id"], sealed)
    finally:
        cipher.close()
    assert server.platform.services.model_cards.target_for(DEFAULT_TENANT, "doomed") is None
    assert http.get("/v1/model_cards").json()["data"] == []


def _stored_bytes(server: RunningServer) -> bytes:
    """Everything the server keeps: every file of its data folder (event store, read models,
    key table, their WAL files) and, on PostgreSQL, every row of every table, raw."""
    if not server.settings.uses_postgres:
        return b"\n".join(path.read_bytes() for path in server.settings.data_dir.rglob("*") if path.is_file())
    import psycopg

    chunks: list[bytes] = []
    with psycopg.connect(server.settings.postgres.conninfo) as conn:
        tables = conn.execute(
            "SELECT table_schema, table_name FROM information_schema.tables "
            "WHERE table_schema NOT IN ('pg_catalog', 'information_schema') AND table_type = 'BASE TABLE'"
        ).fetchall()
        assert len(tables) > 3
        for schema, table in tables:
            for row in conn.execute(f'SELECT * FROM "{schema}"."{table}"'):
                for value in row:
                    chunks.append(bytes(value) if isinstance(value, bytes | memoryview) else str(value).encode())
    return b"\n".join(chunks)


def test_no_cleartext_secret_reaches_a_response_the_stores_or_the_logs(
    server: RunningServer,
    fake_provider: FakeProvider,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    header_secret = "gateway-header-secret-31415926"
    offline_key = "offline-key-never-stored-in-clear-27182818"
    secrets = [API_KEY, OTHER_KEY, REFUSED_KEY, header_secret, offline_key]
    fake_provider.api_keys.add(OTHER_KEY)
    bodies: list[str] = []

    def keep(response: httpx.Response) -> None:
        response.read()
        bodies.append(response.text)

    caplog.set_level("DEBUG")
    with httpx.Client(
        base_url=server.base_url, headers={"x-api-key": server.api_key}, timeout=20, event_hooks={"response": [keep]}
    ) as http:
        made = created(http, card(fake_provider, custom_headers={"X-Gateway-Token": header_secret}))
        assert http.post(f"/v1/model_cards/{made['id']}", json={"api_key": OTHER_KEY}).status_code == 200
        assert http.post(f"/v1/model_cards/{made['id']}", json={"api_key": REFUSED_KEY}).status_code == 400
        oai = http.post("/v1/model_cards", json=card(fake_provider, provider="oai", model_id="o", api_key=REFUSED_KEY))
        assert oai.status_code == 400
        offline = created(http, {"model_id": "offline", "provider": "ant", "api_key": offline_key, "probe": False})
        http.get("/v1/model_cards")
        http.get(f"/v1/model_cards/{made['id']}")
        http.get(f"/v1/model_cards/{offline['id']}")
        assert http.delete(f"/v1/model_cards/{offline['id']}").status_code == 200
    fake_provider.take_violations()
    stored = _stored_bytes(server)
    logs = caplog.text + "".join(capfd.readouterr())
    # The searches look where the cards are: their ids are in every place searched.
    assert made["id"].encode() in stored and any(made["id"] in body for body in bodies[1:])
    for secret in secrets:
        # Booleans, so a failure names the secret's start without dumping the haystack.
        assert not any(secret in body for body in bodies), f"{secret[:6]}… in a response"
        assert (secret.encode() in stored) is False, f"{secret[:6]}… stored in clear"
        assert (secret in logs) is False, f"{secret[:6]}… in the logs"


def test_custom_headers_are_replaced_whole_and_reach_the_runtime_opened(
    server: RunningServer, http: httpx.Client
) -> None:
    made = created(
        http, {"model_id": "h", "provider": "ant", "api_key": "offline-key-0005", "custom_headers": {"X-A": "1"}, "probe": False}
    )
    path = f"/v1/model_cards/{made['id']}"
    replaced = http.post(path, json={"custom_headers": {"X-B": "two"}, "probe": False}).json()
    assert replaced["custom_headers"] == {"X-B": "[redacted]"}
    target = server.platform.services.model_cards.target_for(DEFAULT_TENANT, "h")
    assert target is not None and target.custom_headers == {"X-B": "two"} and target.api_key == "offline-key-0005"
    assert http.post(path, json={"custom_headers": None, "probe": False}).json()["custom_headers"] == {}
    assert http.get("/v1/model_cards").json()["data"][0]["custom_headers"] == {}
