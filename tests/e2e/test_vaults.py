"""Vaults and credentials through the anthropic SDK on a real server (SQLite and PostgreSQL):
the lifecycle of every credential kind, the vault's invariants (one active credential per
MCP server URL, 20 at most, immutable identity, a fixed type), tenant isolation, write-only
secrets that delete shreds, the MCP probe, and sessions naming vaults."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

import anthropic
import httpx
import httpx2
import pytest

from application.api_keys import generate_key as generate_api_key
from application.ports import SecretUnavailable
from domain.ids import stream_id
from interfaces.bootstrap import build_cipher
from tests.e2e.test_model_cards import _stored_bytes
from tests.support.server import RunningServer

MCP_URL = "https://mcp.example.test/mcp"
BEARER = "static-bearer-secret-11111111"
ACCESS = "oauth-access-secret-22222222"
REFRESH = "oauth-refresh-secret-33333333"
CLIENT_SECRET = "oauth-client-secret-44444444"
ENV_VALUE = "env-variable-secret-55555555"
ROTATED = "rotated-bearer-secret-66666666"
FUTURE = (datetime.now(UTC) + timedelta(days=30)).replace(microsecond=0)


def static_bearer(url: str = MCP_URL, token: str = BEARER) -> dict[str, Any]:
    return {"type": "static_bearer", "mcp_server_url": url, "token": token}


def mcp_oauth(url: str = "https://oauth.example.test/mcp", token_endpoint: str = "https://auth.example.test/token") -> dict[str, Any]:
    return {
        "type": "mcp_oauth",
        "mcp_server_url": url,
        "access_token": ACCESS,
        "expires_at": FUTURE.isoformat(),
        "refresh": {
            "client_id": "agentry-client",
            "refresh_token": REFRESH,
            "token_endpoint": token_endpoint,
            "token_endpoint_auth": {"type": "client_secret_basic", "client_secret": CLIENT_SECRET},
            "resource": "https://oauth.example.test/",
            "scope": "read write",
        },
    }


def environment_variable() -> dict[str, Any]:
    return {
        "type": "environment_variable",
        "secret_name": "GITHUB_TOKEN",
        "secret_value": ENV_VALUE,
        "networking": {"type": "limited", "allowed_hosts": ["api.github.com", "*.githubusercontent.com"]},
        "injection_location": {"header": True},
    }


def other_tenant(server: RunningServer) -> anthropic.Anthropic:
    key = generate_api_key()
    server.platform.services.api_keys.issue(key, name="other", tenant_id="other-tenant")
    return anthropic.Anthropic(base_url=server.base_url, api_key=key, max_retries=0, timeout=20)


def test_the_lifecycle_of_a_vault_and_each_kind_of_credential(client: anthropic.Anthropic) -> None:
    vaults = client.beta.vaults
    vault = vaults.create(display_name="Alice's tools", metadata={"team": "red", "owner": "alice"})
    assert vault.id.startswith("vlt_") and vault.type == "vault" and vault.archived_at is None
    assert vault.metadata == {"team": "red", "owner": "alice"}
    updated = vaults.update(vault.id, display_name="Alice", metadata={"team": None, "tier": "gold"})
    assert updated.display_name == "Alice" and updated.metadata == {"owner": "alice", "tier": "gold"}
    assert vaults.retrieve(vault.id) == updated

    bearer = vaults.credentials.create(vault_id=vault.id, auth=static_bearer(), display_name="linear")  # type: ignore[arg-type]
    oauth = vaults.credentials.create(vault_id=vault.id, auth=mcp_oauth(), metadata={"k": "v"})  # type: ignore[arg-type]
    env = vaults.credentials.create(vault_id=vault.id, auth=environment_variable())  # type: ignore[arg-type]
    assert bearer.id.startswith("vcrd_") and bearer.vault_id == vault.id and bearer.type == "vault_credential"
    assert bearer.auth.model_dump() == {"type": "static_bearer", "mcp_server_url": MCP_URL}
    assert oauth.auth.type == "mcp_oauth" and oauth.auth.expires_at == FUTURE
    assert oauth.auth.refresh is not None and oauth.auth.refresh.model_dump() == {
        "client_id": "agentry-client",
        "token_endpoint": "https://auth.example.test/token",
        "token_endpoint_auth": {"type": "client_secret_basic"},
        "resource": "https://oauth.example.test/",
        "scope": "read write",
    }
    assert env.auth.model_dump() == {
        "type": "environment_variable",
        "secret_name": "GITHUB_TOKEN",
        "networking": {"type": "limited", "allowed_hosts": ["api.github.com", "*.githubusercontent.com"]},
        "injection_location": {"header": True, "body": True},
    }
    listed = vaults.credentials.list(vault_id=vault.id)
    assert [c.id for c in listed.data] == [env.id, oauth.id, bearer.id]

    # Updates: a rotation keeps the identity, scope "" clears, refresh null drops the settings.
    rotated = vaults.credentials.update(bearer.id, vault_id=vault.id, auth={"type": "static_bearer", "token": ROTATED})
    assert rotated.auth.model_dump() == bearer.auth.model_dump() and rotated.updated_at > bearer.updated_at
    rescoped = vaults.credentials.update(
        oauth.id, vault_id=vault.id, auth={"type": "mcp_oauth", "refresh": {"scope": ""}}, display_name="oauth"
    )
    assert rescoped.auth.refresh is not None and rescoped.auth.refresh.scope is None and rescoped.display_name == "oauth"
    dropped = vaults.credentials.update(oauth.id, vault_id=vault.id, auth={"type": "mcp_oauth", "refresh": None})
    assert dropped.auth.refresh is None and dropped.auth.expires_at == FUTURE
    moved = vaults.credentials.update(
        env.id,
        vault_id=vault.id,
        auth={"type": "environment_variable", "networking": {"type": "unrestricted"}, "injection_location": {"body": False}},
    )
    assert moved.auth.networking.type == "unrestricted"
    assert moved.auth.injection_location.model_dump() == {"header": True, "body": False}
    assert vaults.credentials.retrieve(env.id, vault_id=vault.id) == moved

    archived = vaults.credentials.archive(bearer.id, vault_id=vault.id)
    assert archived.archived_at is not None
    assert [c.id for c in vaults.credentials.list(vault_id=vault.id).data] == [env.id, oauth.id]
    assert len(vaults.credentials.list(vault_id=vault.id, include_archived=True).data) == 3
    deleted = vaults.credentials.delete(oauth.id, vault_id=vault.id)
    assert deleted.model_dump() == {"id": oauth.id, "type": "vault_credential_deleted"}
    with pytest.raises(anthropic.NotFoundError):
        vaults.credentials.retrieve(oauth.id, vault_id=vault.id)

    # Archiving the vault archives what is left in it, and it takes no more changes.
    archived_vault = vaults.archive(vault.id)
    assert archived_vault.archived_at is not None
    assert vaults.credentials.retrieve(env.id, vault_id=vault.id).archived_at == archived_vault.archived_at
    assert vaults.credentials.list(vault_id=vault.id).data == []
    assert vault.id not in [v.id for v in vaults.list().data]
    assert vault.id in [v.id for v in vaults.list(include_archived=True).data]
    with pytest.raises(anthropic.BadRequestError):
        vaults.credentials.create(vault_id=vault.id, auth=static_bearer("https://late.example.test"))  # type: ignore[arg-type]
    with pytest.raises(anthropic.BadRequestError):
        vaults.update(vault.id, display_name="again")

    assert vaults.delete(vault.id).model_dump() == {"id": vault.id, "type": "vault_deleted"}
    with pytest.raises(anthropic.NotFoundError):
        vaults.retrieve(vault.id)
    with pytest.raises(anthropic.NotFoundError):
        vaults.credentials.list(vault_id=vault.id)
    assert vault.id not in [v.id for v in vaults.list(include_archived=True).data]


def test_one_active_credential_per_url_and_twenty_per_vault(client: anthropic.Anthropic) -> None:
    credentials = client.beta.vaults.credentials
    vault = client.beta.vaults.create(display_name="limits")
    first = credentials.create(vault_id=vault.id, auth=static_bearer())  # type: ignore[arg-type]
    with pytest.raises(anthropic.ConflictError) as conflict:
        credentials.create(vault_id=vault.id, auth=mcp_oauth(url=MCP_URL))  # type: ignore[arg-type]
    assert first.id in conflict.value.message
    credentials.archive(first.id, vault_id=vault.id)
    second = credentials.create(vault_id=vault.id, auth=static_bearer())  # type: ignore[arg-type]
    # The same URL in another vault is another matter.
    elsewhere = client.beta.vaults.create(display_name="elsewhere")
    credentials.create(vault_id=elsewhere.id, auth=static_bearer())  # type: ignore[arg-type]
    for n in range(18):
        credentials.create(vault_id=vault.id, auth=static_bearer(f"https://mcp{n}.example.test/mcp"))  # type: ignore[arg-type]
    with pytest.raises(anthropic.BadRequestError) as too_many:
        credentials.create(vault_id=vault.id, auth=environment_variable())  # type: ignore[arg-type]
    assert "20" in too_many.value.message
    credentials.delete(second.id, vault_id=vault.id)
    credentials.create(vault_id=vault.id, auth=environment_variable())  # type: ignore[arg-type]
    assert len(credentials.list(vault_id=vault.id, include_archived=True, limit=100).data) == 20


def test_racing_creates_for_one_url_leave_one_active_credential(server: RunningServer, client: anthropic.Anthropic) -> None:
    vault = client.beta.vaults.create(display_name="race")
    outcomes: list[int] = []

    def create() -> None:
        with httpx.Client(base_url=server.base_url, headers={"x-api-key": server.api_key}, timeout=30) as http:
            outcomes.append(http.post(f"/v1/vaults/{vault.id}/credentials", json={"auth": static_bearer()}).status_code)

    threads = [threading.Thread(target=create) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == [200, 409, 409, 409, 409, 409]
    assert len(client.beta.vaults.credentials.list(vault_id=vault.id).data) == 1


@pytest.mark.parametrize(
    ("auth", "change"),
    [
        (static_bearer(), {"type": "static_bearer", "mcp_server_url": "https://other.example.test/mcp"}),
        (environment_variable(), {"type": "environment_variable", "secret_name": "OTHER"}),
        (mcp_oauth(), {"type": "mcp_oauth", "refresh": {"token_endpoint": "https://evil.example.test/token"}}),
        (mcp_oauth(), {"type": "mcp_oauth", "refresh": {"client_id": "someone-else"}}),
        (mcp_oauth(), {"type": "mcp_oauth", "refresh": {"resource": "https://evil.example.test/"}}),
        (static_bearer(), {"type": "mcp_oauth", "access_token": "a-new-token-of-another-type"}),
        (environment_variable(), {"type": "environment_variable", "injection_location": {"header": False, "body": False}}),
    ],
)
def test_identity_fields_and_the_type_cannot_change(
    client: anthropic.Anthropic, auth: dict[str, Any], change: dict[str, Any]
) -> None:
    vault = client.beta.vaults.create(display_name="immutable")
    made = client.beta.vaults.credentials.create(vault_id=vault.id, auth=auth)  # type: ignore[arg-type]
    with pytest.raises(anthropic.BadRequestError):
        client.beta.vaults.credentials.update(made.id, vault_id=vault.id, auth=change)  # type: ignore[arg-type]
    assert client.beta.vaults.credentials.retrieve(made.id, vault_id=vault.id) == made


def test_another_tenant_sees_nothing(server: RunningServer, client: anthropic.Anthropic) -> None:
    vault = client.beta.vaults.create(display_name="mine")
    made = client.beta.vaults.credentials.create(vault_id=vault.id, auth=static_bearer())  # type: ignore[arg-type]
    with other_tenant(server) as stranger:
        assert stranger.beta.vaults.list(include_archived=True).data == []
        calls = [
            lambda: stranger.beta.vaults.retrieve(vault.id),
            lambda: stranger.beta.vaults.update(vault.id, display_name="theirs"),
            lambda: stranger.beta.vaults.archive(vault.id),
            lambda: stranger.beta.vaults.delete(vault.id),
            lambda: stranger.beta.vaults.credentials.list(vault_id=vault.id),
            lambda: stranger.beta.vaults.credentials.create(vault_id=vault.id, auth=static_bearer("https://x.test")),  # type: ignore[arg-type]
            lambda: stranger.beta.vaults.credentials.retrieve(made.id, vault_id=vault.id),
            lambda: stranger.beta.vaults.credentials.update(made.id, vault_id=vault.id, display_name="x"),
            lambda: stranger.beta.vaults.credentials.archive(made.id, vault_id=vault.id),
            lambda: stranger.beta.vaults.credentials.delete(made.id, vault_id=vault.id),
            lambda: stranger.beta.vaults.credentials.mcp_oauth_validate(made.id, vault_id=vault.id),
        ]
        for call in calls:
            with pytest.raises(anthropic.NotFoundError):
                call()
        # Their own vault does not hold our credential either.
        theirs = stranger.beta.vaults.create(display_name="theirs")
        with pytest.raises(anthropic.NotFoundError):
            stranger.beta.vaults.credentials.retrieve(made.id, vault_id=theirs.id)
    assert client.beta.vaults.retrieve(vault.id).model_dump() == vault.model_dump(), "changed by a stranger"
    assert client.beta.vaults.credentials.retrieve(made.id, vault_id=vault.id) == made


def test_secrets_are_write_only_and_deleting_shreds_them(
    server: RunningServer, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level("DEBUG")
    bodies: list[str] = []

    def keep(response: httpx2.Response) -> None:
        response.read()
        bodies.append(response.text)

    http_client = httpx2.Client(event_hooks={"response": [keep]})
    client = anthropic.Anthropic(base_url=server.base_url, api_key=server.api_key, max_retries=0, http_client=http_client)
    vault = client.beta.vaults.create(display_name="secrets")
    kept = client.beta.vaults.credentials.create(vault_id=vault.id, auth=mcp_oauth())  # type: ignore[arg-type]
    client.beta.vaults.credentials.update(
        kept.id, vault_id=vault.id, auth={"type": "mcp_oauth", "access_token": ROTATED}
    )
    doomed = client.beta.vaults.credentials.create(vault_id=vault.id, auth=environment_variable())  # type: ignore[arg-type]
    other = client.beta.vaults.create(display_name="to delete")
    gone = client.beta.vaults.credentials.create(vault_id=other.id, auth=static_bearer())  # type: ignore[arg-type]
    client.beta.vaults.credentials.list(vault_id=vault.id)
    client.beta.vaults.credentials.retrieve(kept.id, vault_id=vault.id)

    stored_vault = server.platform.store.load(stream_id(vault.id))
    sealed_env = stored_vault.credentials[doomed.id].sealed["secret_value"]
    sealed_kept = stored_vault.credentials[kept.id].sealed
    sealed_gone = server.platform.store.load(stream_id(other.id)).credentials[gone.id].sealed["token"]
    cipher = build_cipher(server.settings)
    try:
        assert cipher.open(doomed.id, sealed_env) == ENV_VALUE
        assert cipher.open(gone.id, sealed_gone) == BEARER
        # The rotation replaced the access token and kept the secrets it did not name.
        assert cipher.open(kept.id, sealed_kept["access_token"]) == ROTATED
        assert cipher.open(kept.id, sealed_kept["refresh_token"]) == REFRESH
        assert cipher.open(kept.id, sealed_kept["client_secret"]) == CLIENT_SECRET
        client.beta.vaults.credentials.delete(doomed.id, vault_id=vault.id)
        client.beta.vaults.delete(other.id)
        with pytest.raises(SecretUnavailable):
            cipher.open(doomed.id, sealed_env)
        with pytest.raises(SecretUnavailable):
            cipher.open(gone.id, sealed_gone)
        assert cipher.open(kept.id, sealed_kept["access_token"]) == ROTATED
    finally:
        cipher.close()
        client.close()

    stored = _stored_bytes(server)
    # The SDK in this process logs its own request bodies at DEBUG: only the server's logs count.
    client_loggers = ("anthropic", "httpx", "httpcore")
    server_records = [record for record in caplog.records if not record.name.startswith(client_loggers)]
    logs = "\n".join(record.getMessage() for record in server_records) + "".join(capfd.readouterr())
    assert vault.id.encode() in stored and kept.id.encode() in stored
    for secret in (BEARER, ACCESS, REFRESH, CLIENT_SECRET, ENV_VALUE, ROTATED):
        assert not any(secret in body for body in bodies), f"{secret[:6]}… in a response"
        assert (secret.encode() in stored) is False, f"{secret[:6]}… stored in clear"
        assert (secret in logs) is False, f"{secret[:6]}… in the logs"


# -- the MCP probe ---------------------------------------------------------------------------


class McpStandIn:
    """An MCP server's front door and its OAuth token endpoint, on localhost: ``initialize``
    answers 200 to the bearer it currently accepts and 401 to anything else; the token
    endpoint swaps a known refresh token (sent with the right client auth) for a new pair."""

    def __init__(self) -> None:
        self.accepted = "fresh-access-token-77777777"
        self.refresh_tokens = {REFRESH}
        self.seen: list[tuple[str, dict[str, str], str]] = []
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("content-length") or 0)).decode()
                stand_in.seen.append((self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                if self.path.startswith("/mcp"):
                    message = json.loads(body)
                    if message.get("method") != "initialize":
                        return self._answer(400, {"error": "expected initialize"})
                    if self.headers.get("authorization") != f"Bearer {stand_in.accepted}":
                        return self._answer(401, {"error": "invalid_token", "echo": self.headers.get("authorization")})
                    return self._answer(200, {"jsonrpc": "2.0", "id": message["id"], "result": {"protocolVersion": "2025-06-18"}})
                form = {key: values[0] for key, values in parse_qs(body).items()}
                if form.get("refresh_token") not in stand_in.refresh_tokens:
                    return self._answer(400, {"error": "invalid_grant", "refresh_token": form.get("refresh_token")})
                stand_in.refresh_tokens = {"second-refresh-token-88888888"}
                return self._answer(200, {"access_token": stand_in.accepted, "refresh_token": "second-refresh-token-88888888", "expires_in": 3600})

            def _answer(self, status: int, document: dict[str, Any]) -> None:
                raw = json.dumps(document).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def mcp_stand_in() -> Iterator[McpStandIn]:
    stand_in = McpStandIn()
    yield stand_in
    stand_in.server.shutdown()
    stand_in.server.server_close()


def test_validate_probes_the_server_and_refreshes_on_a_401(
    server: RunningServer, client: anthropic.Anthropic, mcp_stand_in: McpStandIn
) -> None:
    credentials = client.beta.vaults.credentials
    vault = client.beta.vaults.create(display_name="probe")
    good = credentials.create(vault_id=vault.id, auth=static_bearer(f"{mcp_stand_in.base}/mcp", mcp_stand_in.accepted))  # type: ignore[arg-type]
    valid = credentials.mcp_oauth_validate(good.id, vault_id=vault.id)
    assert (valid.status, valid.mcp_probe, valid.refresh, valid.has_refresh_token) == ("valid", None, None, False)
    path, headers, body = mcp_stand_in.seen[-1]
    assert headers["authorization"] == f"Bearer {mcp_stand_in.accepted}" and json.loads(body)["method"] == "initialize"

    # A stale access token with refresh settings: 401, then a refresh that succeeds and is kept.
    auth = mcp_oauth(url=f"{mcp_stand_in.base}/mcp/oauth", token_endpoint=f"{mcp_stand_in.base}/token")
    stale = credentials.create(vault_id=vault.id, auth=auth)  # type: ignore[arg-type]
    refreshed = credentials.mcp_oauth_validate(stale.id, vault_id=vault.id)
    assert refreshed.status == "unknown" and refreshed.has_refresh_token is True
    assert refreshed.refresh is not None and refreshed.refresh.status == "succeeded"
    assert refreshed.mcp_probe is not None and refreshed.mcp_probe.http_response is not None
    assert refreshed.mcp_probe.http_response.status_code == 401
    assert ACCESS not in refreshed.mcp_probe.http_response.body  # the server echoed it: scrubbed
    _, token_headers, _ = mcp_stand_in.seen[-1]
    assert token_headers["authorization"].startswith("Basic ")
    # The new tokens were kept (sealed): the next probe passes.
    assert credentials.mcp_oauth_validate(stale.id, vault_id=vault.id).status == "valid"

    # A refresh the endpoint refuses: invalid, with its answer scrubbed.
    mcp_stand_in.accepted = "yet-another-token-99999999"
    mcp_stand_in.refresh_tokens = set()
    refused = credentials.mcp_oauth_validate(stale.id, vault_id=vault.id)
    assert refused.status == "invalid" and refused.refresh is not None and refused.refresh.status == "failed"
    assert refused.refresh.http_response is not None and "second-refresh-token" not in refused.refresh.http_response.body

    # No answer at all: unknown.
    credentials.archive(good.id, vault_id=vault.id)
    nowhere = credentials.create(vault_id=vault.id, auth=static_bearer("http://127.0.0.1:9/mcp"))  # type: ignore[arg-type]
    unreachable = credentials.mcp_oauth_validate(nowhere.id, vault_id=vault.id)
    assert unreachable.status == "unknown" and unreachable.mcp_probe is not None
    assert unreachable.mcp_probe.http_response is None

    env = credentials.create(vault_id=vault.id, auth=environment_variable())  # type: ignore[arg-type]
    with pytest.raises(anthropic.BadRequestError):
        credentials.mcp_oauth_validate(env.id, vault_id=vault.id)


# -- sessions name vaults -----------------------------------------------------------------------


def test_sessions_take_only_their_tenants_live_vaults_in_order(server: RunningServer, client: anthropic.Anthropic) -> None:
    agent = client.beta.agents.create(name="a", model="claude-opus-4-7")
    environment = client.beta.environments.create(name="e")
    first = client.beta.vaults.create(display_name="first")
    second = client.beta.vaults.create(display_name="second")
    session = client.beta.sessions.create(agent=agent.id, environment_id=environment.id, vault_ids=[second.id, first.id])
    assert session.vault_ids == [second.id, first.id]

    def create(vault_ids: list[str]) -> Any:
        return client.beta.sessions.create(agent=agent.id, environment_id=environment.id, vault_ids=vault_ids)

    with pytest.raises(anthropic.NotFoundError):
        create([first.id, "vlt_011CZkZDLs7fYzm1hXNPeRjv"])
    with other_tenant(server) as stranger:
        theirs = stranger.beta.vaults.create(display_name="theirs")
    with pytest.raises(anthropic.NotFoundError):
        create([theirs.id])
    with pytest.raises(anthropic.BadRequestError):
        create([first.id, first.id])
    client.beta.vaults.archive(first.id)
    with pytest.raises(anthropic.BadRequestError):
        create([second.id, first.id])
    client.beta.vaults.delete(second.id)
    with pytest.raises(anthropic.NotFoundError):
        create([second.id])
    assert len(client.beta.sessions.list().data) == 1
