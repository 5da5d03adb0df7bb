"""Use cases of vaults and their credentials (``client.beta.vaults`` and
``client.beta.vaults.credentials``), and the check sessions make of the vaults they name.

Secrets are write-only. Every secret of a credential (``token``, ``access_token``,
``refresh_token``, ``client_secret``, ``secret_value``) is sealed here with the
``SecretCipher`` under the credential's own data key (owner = the credential id) before
anything is recorded; the aggregate and its events get only the public part of ``auth`` and
the sealed values. Deleting a credential shreds its data key; deleting a vault shreds the
keys of every credential it ever held, so every stored copy of their ciphertext (events,
Kafka, backups) becomes unreadable. An update that omits a secret keeps the stored one
(rotation is an update with a new one)."""

from __future__ import annotations

import re
from base64 import b64encode
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import orjson

from application.commands import Commands, Kind, Written
from application.errors import Invalid, NotFound
from application.ids import new_id
from application.ports import EventStore, HttpPoster, HttpReply, HttpUnreachable, SecretCipher
from application.tenancy import Principal
from application.views import iso, vault_credential_view, vault_view
from domain.vaults import SECRET_FIELDS, Credential, Vault

MAX_VAULTS_PER_SESSION = 50
PROBE_TIMEOUT_SECONDS = 5.0
MAX_REPORTED_BODY = 2048
# Secrets shorter than this are scrubbed only where they stand as a whole JSON value.
SCRUB_MIN_LENGTH = 4
MCP_PROTOCOL_VERSION = "2025-06-18"
# Who stores a refresh the runtime made (a key id no API key has).
RUNTIME_KEY_ID = "agentry-runtime"
# A token endpoint's ``expires_in`` beyond this (ten years) is nonsense; treated as "no expiry".
MAX_TOKEN_LIFETIME_SECONDS = 10 * 365 * 24 * 3600
_TOKEN_FIELDS = re.compile(r'("(?:access_token|refresh_token|id_token|client_secret|token)"\s*:\s*)"[^"]*"')


def render(vault: Vault) -> dict[str, Any]:
    return vault_view(
        vault.vault_id, vault.display_name, vault.metadata, vault.created_on, vault.updated_at, vault.archived_at
    )


def render_credential(vault: Vault, credential: Credential) -> dict[str, Any]:
    return vault_credential_view(
        credential.credential_id,
        vault.vault_id,
        credential.display_name,
        credential.metadata,
        credential.auth,
        credential.created_at,
        credential.updated_at,
        credential.archived_at,
    )


VAULTS: Kind[Vault] = Kind(Vault, "vlt", "vault", gone=lambda vault: vault.deleted)


def usable_vaults(store: EventStore, who: Principal, vault_ids: list[str]) -> list[str]:
    """The vault ids a session may name, in the order given (the order is the match
    priority): each the caller's and live — a missing or foreign one is a 404, an archived
    one a 400. At most 50, no repeats."""
    if len(vault_ids) > MAX_VAULTS_PER_SESSION:
        raise Invalid(f"vault_ids may name at most {MAX_VAULTS_PER_SESSION} vaults")
    if len(set(vault_ids)) != len(vault_ids):
        raise Invalid("vault_ids must not repeat a vault")
    vaults = Commands(store, VAULTS, render)
    for vault_id in vault_ids:
        if vaults.load(who, vault_id).archived_at is not None:
            raise Invalid(f"vault {vault_id} is archived: a session cannot use it")
    return list(vault_ids)


def split_auth(auth: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """``auth`` as sent → (its public part as stored and shown, its secrets in clear)."""
    kind = auth["type"]
    secrets: dict[str, str] = {}
    if kind == "static_bearer":
        secrets["token"] = auth["token"]
        return {"type": kind, "mcp_server_url": auth["mcp_server_url"]}, secrets
    if kind == "mcp_oauth":
        secrets["access_token"] = auth["access_token"]
        public: dict[str, Any] = {
            "type": kind,
            "mcp_server_url": auth["mcp_server_url"],
            "expires_at": _future(auth.get("expires_at")),
            "refresh": None,
        }
        refresh = auth.get("refresh")
        if refresh is not None:
            secrets["refresh_token"] = refresh["refresh_token"]
            endpoint_auth = refresh["token_endpoint_auth"]
            if endpoint_auth["type"] != "none":
                secrets["client_secret"] = endpoint_auth["client_secret"]
            public["refresh"] = {
                "client_id": refresh["client_id"],
                "token_endpoint": refresh["token_endpoint"],
                "token_endpoint_auth": {"type": endpoint_auth["type"]},
                "resource": refresh.get("resource"),
                "scope": refresh.get("scope") or None,
            }
        return public, secrets
    secrets["secret_value"] = auth["secret_value"]
    location = auth.get("injection_location") or {}
    return {
        "type": kind,
        "secret_name": auth["secret_name"],
        "networking": auth["networking"],
        "injection_location": {
            "header": True if location.get("header") is None else location["header"],
            "body": True if location.get("body") is None else location["body"],
        },
    }, secrets


def merge_auth(
    current: dict[str, Any], sealed: dict[str, str], changes: dict[str, Any], new_sealed: dict[str, str]
) -> tuple[dict[str, Any], dict[str, str]]:
    """The credential's public auth and sealed secrets after an update's ``auth``: omitted
    fields (secrets too) are kept, ``refresh: null`` drops the refresh settings and their
    secrets. Identity fields are copied over as sent, for the aggregate to refuse a change."""
    auth = {**current, **{key: value for key, value in changes.items() if key not in SECRET_FIELDS}}
    secrets = {**sealed, **{key: value for key, value in new_sealed.items() if key in ("token", "access_token", "secret_value")}}
    kind = current["type"]
    if kind == "mcp_oauth":
        if "expires_at" in changes:
            auth["expires_at"] = _future(changes["expires_at"])
        if "refresh" in changes:
            auth["refresh"], secrets = _merged_refresh(current.get("refresh"), changes["refresh"], secrets, new_sealed)
    if kind == "environment_variable":
        if changes.get("networking") is None:
            auth["networking"] = current["networking"]
        sent = {key: value for key, value in (changes.get("injection_location") or {}).items() if value is not None}
        auth["injection_location"] = {**current["injection_location"], **sent}
    return auth, secrets


def _merged_refresh(
    current: dict[str, Any] | None, changes: dict[str, Any] | None, secrets: dict[str, str], new_sealed: dict[str, str]
) -> tuple[dict[str, Any] | None, dict[str, str]]:
    if changes is None:
        return None, {key: value for key, value in secrets.items() if key not in ("refresh_token", "client_secret")}
    if current is None:
        # The aggregate refuses a refresh config an update would add (it has no endpoint).
        return {key: value for key, value in changes.items() if key not in SECRET_FIELDS}, secrets
    refresh = {**current, **{key: value for key, value in changes.items() if key not in ("refresh_token", "token_endpoint_auth", "scope")}}
    secrets = dict(secrets)
    if "refresh_token" in new_sealed:
        secrets["refresh_token"] = new_sealed["refresh_token"]
    if "scope" in changes and changes["scope"] is not None:
        refresh["scope"] = changes["scope"] or None  # "" clears it
    endpoint_auth = changes.get("token_endpoint_auth")
    if endpoint_auth is not None:
        kind = endpoint_auth["type"]
        refresh["token_endpoint_auth"] = {"type": kind}
        if kind == "none":
            secrets.pop("client_secret", None)
        elif "client_secret" in new_sealed:
            secrets["client_secret"] = new_sealed["client_secret"]
        elif current["token_endpoint_auth"]["type"] == "none":
            raise Invalid(f"auth.refresh.token_endpoint_auth: {kind} needs a client_secret")
    return refresh, secrets


def _future(moment: Any) -> str | None:
    if moment is None:
        return None
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    if moment <= datetime.now(UTC):
        raise Invalid("auth.expires_at must be in the future")
    return iso(moment)


def _secrets_sent(auth: dict[str, Any]) -> dict[str, str]:
    """The clear secrets an update's ``auth`` carries, by name (null means none sent)."""
    found: dict[str, str] = {}
    for name in ("token", "access_token", "secret_value"):
        if auth.get(name) is not None:
            found[name] = auth[name]
    refresh = auth.get("refresh") or {}
    if refresh.get("refresh_token") is not None:
        found["refresh_token"] = refresh["refresh_token"]
    endpoint_auth = refresh.get("token_endpoint_auth") or {}
    if endpoint_auth.get("client_secret") is not None:
        found["client_secret"] = endpoint_auth["client_secret"]
    return found


def scrubbed(reply: HttpReply, secrets: list[str]) -> dict[str, Any]:
    """A reply as a validation reports it: token fields blanked, the credential's own
    secrets replaced wherever they appear, at most ``MAX_REPORTED_BODY`` characters."""
    body = _TOKEN_FIELDS.sub(r'\1"[redacted]"', reply.body)
    for secret in sorted(secrets, key=len, reverse=True):
        if len(secret) >= SCRUB_MIN_LENGTH:
            body = body.replace(secret, "[redacted]")
    return {
        "status_code": reply.status_code,
        "content_type": reply.content_type,
        "body": body[:MAX_REPORTED_BODY],
        "body_truncated": len(body) > MAX_REPORTED_BODY,
    }


class VaultService:
    def __init__(self, store: EventStore, cipher: SecretCipher, http: HttpPoster) -> None:
        self._store = store
        self._cipher = cipher
        self._http = http
        self._commands = Commands(store, VAULTS, render)

    # -- vaults ------------------------------------------------------------------------

    def create(self, who: Principal, fields: dict[str, Any]) -> Written:
        vault = Vault(
            vault_id=new_id("vlt"),
            tenant_id=who.tenant_id,
            display_name=fields["display_name"],
            metadata=fields.get("metadata") or {},
        )
        return self._commands.create(vault)

    def retrieve(self, who: Principal, vault_id: str) -> dict[str, Any]:
        return self._commands.view(who, vault_id)

    def update(self, who: Principal, vault_id: str, changes: dict[str, Any]) -> Written:
        def command(vault: Vault) -> bool:
            return vault.update(changes.get("display_name") or vault.display_name, changes.get("metadata"))

        return self._commands.change(who, vault_id, command)

    def archive(self, who: Principal, vault_id: str) -> Written:
        return self._commands.change(who, vault_id, Vault.archive)

    def delete(self, who: Principal, vault_id: str) -> Written:
        """Records the deletion, then shreds the data key of every credential the vault
        ever held: their secrets are unreadable from then on, in every copy."""
        shred: list[str] = []

        def command(vault: Vault) -> bool:
            shred[:] = vault.credential_ids_ever
            return vault.delete()

        written = self._commands.change(who, vault_id, command, render=lambda vault: {"id": vault.vault_id, "type": "vault_deleted"})
        for credential_id in shred:
            self._cipher.shred(credential_id)
        return written

    # -- credentials -------------------------------------------------------------------

    def create_credential(self, who: Principal, vault_id: str, fields: dict[str, Any]) -> Written:
        # Loaded first: nothing is sealed for a vault that is not the caller's.
        self._commands.load(who, vault_id)
        public, secrets = split_auth(fields["auth"])
        credential_id = new_id("vcrd")
        try:
            sealed = {name: self._cipher.seal(credential_id, value) for name, value in secrets.items()}

            def command(vault: Vault) -> None:
                vault.add_credential(
                    credential_id, fields.get("display_name"), fields.get("metadata") or {}, public, sealed
                )

            return self._commands.change(who, vault_id, command, render=self._credential_renderer(credential_id))
        except BaseException:
            # Nothing was stored: the data key made for this credential must not outlive it.
            self._cipher.shred(credential_id)
            raise

    def retrieve_credential(self, who: Principal, vault_id: str, credential_id: str) -> dict[str, Any]:
        vault = self._commands.load(who, vault_id)
        return render_credential(vault, self._credential(vault, credential_id))

    def update_credential(self, who: Principal, vault_id: str, credential_id: str, changes: dict[str, Any]) -> Written:
        vault = self._commands.load(who, vault_id)
        self._credential(vault, credential_id)
        auth_changes: dict[str, Any] = changes.get("auth") or {}
        new_sealed = {name: self._cipher.seal(credential_id, value) for name, value in _secrets_sent(auth_changes).items()}

        def command(vault: Vault) -> bool:
            credential = self._credential(vault, credential_id)
            auth, sealed = credential.auth, credential.sealed
            if auth_changes:
                auth, sealed = merge_auth(credential.auth, credential.sealed, auth_changes, new_sealed)
            name = changes["display_name"] if "display_name" in changes else credential.display_name
            return vault.update_credential(credential_id, name, changes.get("metadata"), auth, sealed)

        return self._commands.change(who, vault_id, command, render=self._credential_renderer(credential_id))

    def archive_credential(self, who: Principal, vault_id: str, credential_id: str) -> Written:
        def command(vault: Vault) -> bool:
            self._credential(vault, credential_id)
            return vault.archive_credential(credential_id)

        return self._commands.change(who, vault_id, command, render=self._credential_renderer(credential_id))

    def delete_credential(self, who: Principal, vault_id: str, credential_id: str) -> Written:
        def command(vault: Vault) -> bool:
            self._credential(vault, credential_id)
            return vault.delete_credential(credential_id)

        deleted = {"id": credential_id, "type": "vault_credential_deleted"}
        written = self._commands.change(who, vault_id, command, render=lambda vault: deleted)
        self._cipher.shred(credential_id)
        return written

    def check_vault(self, who: Principal, vault_id: str) -> None:
        """404 unless the vault is the caller's (a list of another tenant's credentials too)."""
        self._commands.load(who, vault_id)

    # -- validation --------------------------------------------------------------------

    def validate(self, who: Principal, vault_id: str, credential_id: str) -> dict[str, Any]:
        """Probes the credential's MCP server with an ``initialize`` request carrying its
        bearer; on a 401 with refresh settings, tries the refresh (and keeps the new tokens,
        sealed). Reports ``BetaManagedAgentsCredentialValidation``; nothing secret in it."""
        vault = self._commands.load(who, vault_id)
        credential = self._credential(vault, credential_id)
        if credential.kind == "environment_variable":
            raise Invalid("only MCP credentials (mcp_oauth, static_bearer) can be validated against a server")
        secrets = {name: self._cipher.open(credential_id, sealed) for name, sealed in credential.sealed.items()}
        bearer = secrets.get("access_token") or secrets.get("token") or ""
        refresh_settings = credential.auth.get("refresh")
        report: dict[str, Any] = {
            "type": "vault_credential_validation",
            "credential_id": credential_id,
            "vault_id": vault_id,
            "has_refresh_token": "refresh_token" in secrets,
            "mcp_probe": None,
            "refresh": None,
        }
        hidden = list(secrets.values())
        try:
            reply = self._initialize(credential.auth["mcp_server_url"], bearer)
        except HttpUnreachable:
            return report | self._stamp("unknown") | {"mcp_probe": {"method": "initialize", "http_response": None}}
        if 200 <= reply.status_code < 300:
            return report | self._stamp("valid")
        report["mcp_probe"] = {"method": "initialize", "http_response": scrubbed(reply, hidden)}
        if reply.status_code not in (401, 403):
            return report | self._stamp("unknown")
        if reply.status_code == 403 or refresh_settings is None:
            return report | self._stamp("invalid")
        if "refresh_token" not in secrets:
            return report | self._stamp("invalid") | {"refresh": {"status": "no_refresh_token", "http_response": None}}
        try:
            answer = refresh_request(self._http, refresh_settings, secrets)
        except HttpUnreachable:
            return report | self._stamp("unknown") | {"refresh": {"status": "connect_error", "http_response": None}}
        tokens = tokens_of(answer)
        if tokens is None:
            failed = {"status": "failed", "http_response": scrubbed(answer, hidden)}
            return report | self._stamp("invalid") | {"refresh": failed}
        self._keep_refreshed(who, vault_id, credential_id, tokens)
        # The new token was not tried against the server: "unknown", as the SDK documents.
        return report | self._stamp("unknown") | {"refresh": {"status": "succeeded", "http_response": None}}

    def _initialize(self, url: str, bearer: str) -> HttpReply:
        request = {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": MCP_PROTOCOL_VERSION,
                "capabilities": {},
                "clientInfo": {"name": "agentry-credential-check", "version": "1"},
            },
        }
        headers = {
            "authorization": f"Bearer {bearer}",
            "content-type": "application/json",
            "accept": "application/json, text/event-stream",
        }
        return self._http.post(url, headers, orjson.dumps(request), PROBE_TIMEOUT_SECONDS)

    def keep_refreshed(self, tenant_id: str, vault_id: str, credential_id: str, tokens: dict[str, Any]) -> None:
        """Stores what a token endpoint answered (sealed, as every update): the new access
        token, its expiry from ``expires_in`` (or none), the rotated refresh token if sent.
        The runtime calls it as itself, for the session's tenant."""
        self._keep_refreshed(Principal(tenant_id, key_id=RUNTIME_KEY_ID), vault_id, credential_id, tokens)

    def _keep_refreshed(self, who: Principal, vault_id: str, credential_id: str, tokens: dict[str, Any]) -> None:
        changes: dict[str, Any] = {"type": "mcp_oauth", "access_token": tokens["access_token"]}
        expires_in = tokens.get("expires_in")
        if isinstance(expires_in, int | float) and 0 < expires_in <= MAX_TOKEN_LIFETIME_SECONDS:
            changes["expires_at"] = datetime.fromtimestamp(datetime.now(UTC).timestamp() + expires_in, UTC)
        else:
            changes["expires_at"] = None
        if isinstance(tokens.get("refresh_token"), str):
            changes["refresh"] = {"refresh_token": tokens["refresh_token"]}
        self.update_credential(who, vault_id, credential_id, {"auth": changes})

    @staticmethod
    def _stamp(status: str) -> dict[str, Any]:
        return {"status": status, "validated_at": iso(datetime.now(UTC))}

    def _credential_renderer(self, credential_id: str) -> Any:
        return lambda vault: render_credential(vault, vault.credentials[credential_id])

    @staticmethod
    def _credential(vault: Vault, credential_id: str) -> Credential:
        credential = vault.credentials.get(credential_id)
        if credential is None:
            raise NotFound(f"credential {credential_id!r} not found in vault {vault.vault_id}")
        return credential


def refresh_request(http: HttpPoster, settings: dict[str, Any], secrets: dict[str, str]) -> HttpReply:
    """POSTs the ``refresh_token`` grant of an ``mcp_oauth`` credential's refresh settings
    (client authentication as configured); ``HttpUnreachable`` when no answer came."""
    form = {"grant_type": "refresh_token", "refresh_token": secrets["refresh_token"]}
    headers = {"content-type": "application/x-www-form-urlencoded", "accept": "application/json"}
    method = settings["token_endpoint_auth"]["type"]
    if method == "client_secret_basic":
        pair = f"{settings['client_id']}:{secrets.get('client_secret', '')}".encode()
        headers["authorization"] = "Basic " + b64encode(pair).decode()
    else:
        form["client_id"] = settings["client_id"]
        if method == "client_secret_post":
            form["client_secret"] = secrets.get("client_secret", "")
    for name in ("scope", "resource"):
        if settings.get(name):
            form[name] = settings[name]
    return http.post(settings["token_endpoint"], headers, urlencode(form).encode(), PROBE_TIMEOUT_SECONDS)


def tokens_of(reply: HttpReply) -> dict[str, Any] | None:
    """A token endpoint's success answer, or None for anything else."""
    if not 200 <= reply.status_code < 300:
        return None
    try:
        tokens = orjson.loads(reply.body)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(tokens, dict) or not isinstance(tokens.get("access_token"), str):
        return None
    return tokens

