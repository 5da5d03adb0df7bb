"""Environment keys on a real server (SQLite and PostgreSQL): a key is shown once, listed
never, revoked for good, scoped to its tenant, refused by archived environments, stored only
hashed, and never accepted as an API key."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from application.api_keys import generate_key as generate_api_key
from application.environment_keys import EnvironmentCredential
from application.errors import Unauthorized
from interfaces.cli import main as cli
from tests.e2e.test_model_cards import _stored_bytes
from tests.support.server import RunningServer

KEY_FIELDS = {"type", "id", "environment_id", "name", "key_preview", "created_at", "revoked_at"}


def environment(http: httpx.Client, name: str = "workers") -> str:
    response = http.post("/v1/environments", json={"name": name, "config": {"type": "self_hosted"}})
    assert response.status_code == 200, response.text
    return str(response.json()["id"])


def issue(http: httpx.Client, environment_id: str, **body: Any) -> dict[str, Any]:
    response = http.post(f"/v1/environments/{environment_id}/keys", json=body)
    assert response.status_code == 200, response.text
    return dict(response.json())


def other_tenant(server: RunningServer) -> httpx.Client:
    key = generate_api_key()
    server.platform.services.api_keys.issue(key, name="other", tenant_id="other-tenant")
    return httpx.Client(base_url=server.base_url, headers={"x-api-key": key}, timeout=20)


def test_a_key_is_shown_once_listed_without_it_and_revoked(server: RunningServer, http: httpx.Client) -> None:
    env = environment(http)
    made = issue(http, env, name="laptop")
    key = made.pop("key")
    assert set(made) == KEY_FIELDS
    assert made["type"] == "environment_key" and made["environment_id"] == env and made["name"] == "laptop"
    assert made["id"].startswith("envkey_") and made["revoked_at"] is None
    assert key.startswith("agentry_envkey_") and len(key) >= 32 + len("agentry_envkey_") and key.endswith(made["key_preview"])
    unnamed = issue(http, env)  # the body is optional
    assert unnamed["name"] is None and unnamed["key"] != key

    listed = http.get(f"/v1/environments/{env}/keys")
    assert listed.status_code == 200
    page = listed.json()
    assert [row["id"] for row in page["data"]] == [unnamed["id"], made["id"]]
    assert page["data"][1] == made and page["next_page"] is None
    assert key not in listed.text and unnamed["key"] not in listed.text

    keys = server.platform.services.environment_keys
    assert keys.authenticate(key) == EnvironmentCredential("default", env, made["id"])
    gone = http.delete(f"/v1/environments/{env}/keys/{made['id']}")
    assert gone.status_code == 200 and gone.json() == {"id": made["id"], "type": "environment_key_deleted"}
    with pytest.raises(Unauthorized):
        keys.authenticate(key)
    assert http.delete(f"/v1/environments/{env}/keys/{made['id']}").status_code == 404
    assert [row["id"] for row in http.get(f"/v1/environments/{env}/keys").json()["data"]] == [unnamed["id"]]
    archived = http.get(f"/v1/environments/{env}/keys", params={"include_archived": "true"}).json()["data"]
    assert archived[1]["id"] == made["id"] and archived[1]["revoked_at"] is not None
    assert keys.authenticate(unnamed["key"]).key_id == unnamed["id"]


def test_keys_belong_to_their_tenant_and_environment(server: RunningServer, http: httpx.Client) -> None:
    env, elsewhere = environment(http), environment(http, "elsewhere")
    made = issue(http, env)
    with other_tenant(server) as stranger:
        assert stranger.get(f"/v1/environments/{env}/keys").status_code == 404
        assert stranger.post(f"/v1/environments/{env}/keys", json={}).status_code == 404
        assert stranger.delete(f"/v1/environments/{env}/keys/{made['id']}").status_code == 404
    # The key is not revocable through another environment's path either.
    assert http.delete(f"/v1/environments/{elsewhere}/keys/{made['id']}").status_code == 404
    assert http.get(f"/v1/environments/{elsewhere}/keys").json()["data"] == []
    assert server.platform.services.environment_keys.authenticate(made["key"]).environment_id == env


def test_an_archived_environment_takes_no_new_keys(http: httpx.Client) -> None:
    env = environment(http)
    assert http.post(f"/v1/environments/{env}/archive").status_code == 200
    refused = http.post(f"/v1/environments/{env}/keys", json={"name": "late"})
    assert refused.status_code == 400 and "archived" in refused.json()["error"]["message"]
    assert http.get(f"/v1/environments/{env}/keys", params={"include_archived": "true"}).json()["data"] == []


def test_bad_bodies_and_unknown_ids(http: httpx.Client) -> None:
    env = environment(http)
    for body in ({"name": ""}, {"name": 7}, {"name": "x" * 257}, {"key": "mine"}, [], "x"):
        response = http.post(f"/v1/environments/{env}/keys", json=body)
        assert response.status_code == 400, (body, response.text)
    assert http.post(f"/v1/environments/{env}/keys", content=b"{", headers={"content-type": "application/json"}).status_code == 400
    assert http.get(f"/v1/environments/{env}/keys", params={"limit": "0"}).status_code == 400
    assert http.get(f"/v1/environments/{env}/keys", params={"page": "nonsense"}).status_code == 400
    for unknown in ("env_000000000000000000000000", "nope"):
        assert http.post(f"/v1/environments/{unknown}/keys", json={}).status_code == 404
        assert http.get(f"/v1/environments/{unknown}/keys").status_code == 404
    for key_id in ("envkey_000000000000000000000000", "nope", env):
        assert http.delete(f"/v1/environments/{env}/keys/{key_id}").status_code == 404


def test_an_environment_key_is_not_an_api_key(server: RunningServer, http: httpx.Client) -> None:
    """It is known (not a 401) but good only on its environment's work queue: a 403 elsewhere."""
    env = environment(http)
    key = issue(http, env)["key"]
    for headers in ({"x-api-key": key}, {"authorization": f"Bearer {key}"}):
        with httpx.Client(base_url=server.base_url, headers=headers, timeout=20) as worker:
            for path in ("/v1/environments", f"/v1/environments/{env}", f"/v1/environments/{env}/keys", "/v1/agents"):
                response = worker.get(path)
                assert response.status_code == 403, (headers, path, response.status_code)
                assert response.json()["error"]["type"] == "permission_error"
            assert worker.get(f"/v1/environments/{env}/work").status_code == 200


def test_authenticate_refuses_what_is_not_a_live_key(server: RunningServer, http: httpx.Client) -> None:
    keys = server.platform.services.environment_keys
    env = environment(http)
    made = issue(http, env)
    key = made["key"]
    forged = key[: -len("abcd")] + ("abcd" if not key.endswith("abcd") else "wxyz")
    for wrong in (None, "", forged, server.api_key, "agentry_envkey_short_x", key.replace("agentry_", "", 1)):
        with pytest.raises(Unauthorized):
            keys.authenticate(wrong)
    assert keys.authenticate(key).key_id == made["id"]


def test_the_key_is_never_stored_or_logged_in_clear(
    server: RunningServer, http: httpx.Client, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    env = environment(http)
    made = [issue(http, env, name=f"k{i}") for i in range(2)]
    assert http.delete(f"/v1/environments/{env}/keys/{made[0]['id']}").status_code == 200
    stored = _stored_bytes(server)
    logs = caplog.text + "".join(capfd.readouterr())
    assert made[1]["id"].encode() in stored  # the search looks where the keys are
    for key in (row["key"] for row in made):
        assert (key.encode() in stored) is False, "an environment key is stored in clear"
        assert (key in logs) is False, "an environment key is in the logs"


def test_the_cli_prints_a_key_that_authenticates(
    server: RunningServer, http: httpx.Client, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    env = environment(http)
    monkeypatch.setattr(cli, "load_settings", lambda: server.settings)
    assert cli.main(["environments", "keys", "create", env, "--name", "from-cli"]) == 0
    printed = capsys.readouterr()
    key = printed.out.strip()
    credential = server.platform.services.environment_keys.authenticate(key)
    assert credential.environment_id == env and credential.tenant_id == "default"
    assert key not in printed.err
    # Another process wrote it: the server's lists catch up with the store shortly.
    deadline = time.monotonic() + 10
    while not (listed := http.get(f"/v1/environments/{env}/keys").json()["data"]) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert [(row["id"], row["name"]) for row in listed] == [(credential.key_id, "from-cli")]
    assert cli.main(["environments", "keys", "create", "env_000000000000000000000000"]) == 1
