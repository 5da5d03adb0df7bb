"""The bearer an MCP server gets: from the session's vaults by URL, refreshed near expiry
and on a 401 (``mcp_oauth`` with refresh settings), the new tokens stored sealed.

A token is opened with the cipher right before use and lives only in a ``Bearer``
(``repr=False``) and the HTTP client's headers: never in an event in clear, a log line or
anything the model sees."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import urlsplit, urlunsplit

from application.commands import load_as
from application.ports import (
    CredentialLocks,
    CredentialLockTimeout,
    EventStore,
    HttpPoster,
    HttpUnreachable,
    SecretCipher,
    SecretUnavailable,
)
from application.vaults import VaultService, refresh_request, tokens_of
from domain.ids import stream_id
from domain.vaults import Credential, Vault

log = logging.getLogger("agentry.runtime.mcp")

_DEFAULT_PORTS = {"http": 80, "https": 443}


def normalized_url(url: str) -> str:
    """``url`` as credentials are matched by: scheme and host lower-cased, a default port
    dropped, the fragment and a trailing ``/`` removed; path and query kept exactly."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    netloc = host if port is None or _DEFAULT_PORTS.get(scheme) == port else f"{host}:{port}"
    return urlunsplit((scheme, netloc, parts.path.rstrip("/"), parts.query, ""))


@dataclass(frozen=True)
class Bearer:
    vault_id: str
    credential_id: str
    kind: str  # mcp_oauth or static_bearer
    token: str = field(repr=False)
    expires_at: datetime | None
    refreshable: bool
    # The ciphertext the token was opened from: a different one in the vault means someone
    # refreshed meanwhile.
    sealed_token: str = field(repr=False)
    secrets: tuple[str, ...] = field(repr=False, default=())  # every secret of the credential, to scrub results


class CredentialUnusable(Exception):
    """The matching credential's secrets cannot be opened (its data key was shredded)."""

    def __init__(self, vault_id: str, credential_id: str) -> None:
        super().__init__(f"the credential {credential_id} of vault {vault_id} can no longer be read")
        self.vault_id = vault_id
        self.credential_id = credential_id


class McpCredentials:
    def __init__(
        self,
        store: EventStore,
        cipher: SecretCipher,
        http: HttpPoster,
        vaults: VaultService,
        locks: CredentialLocks,
        refresh_margin: float = 60.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._store = store
        self._cipher = cipher
        self._http = http
        self._vaults = vaults
        self._margin = refresh_margin
        self._clock = clock
        self._locks = locks

    def bearer_for(self, tenant_id: str, vault_ids: list[str], url: str) -> Bearer | None:
        """The first live MCP credential, in ``vault_ids`` order (the priority), whose
        ``mcp_server_url`` is ``url`` (normalized); None when none matches."""
        wanted = normalized_url(url)
        for vault_id in vault_ids:
            vault = self._vault(tenant_id, vault_id)
            if vault is None:
                continue
            for credential in vault.credentials.values():
                if credential.archived_at is not None or credential.kind not in ("mcp_oauth", "static_bearer"):
                    continue
                if credential.mcp_server_url and normalized_url(credential.mcp_server_url) == wanted:
                    return self._opened(vault_id, credential)
        return None

    def expiring(self, bearer: Bearer) -> bool:
        """An ``mcp_oauth`` token that expires within the margin (and can be refreshed)."""
        if not bearer.refreshable or bearer.expires_at is None:
            return False
        return (bearer.expires_at - self._clock()).total_seconds() < self._margin

    def renewed(self, tenant_id: str, bearer: Bearer) -> Bearer | None:
        """A fresh bearer for ``bearer``'s credential: the one another driver stored meanwhile,
        or one from the token endpoint (stored sealed before it is returned). None when the
        refresh failed. One refresh per credential at a time, across processes (refresh tokens
        rotate: two refreshes with one token would spoil the second)."""
        if not bearer.refreshable:
            return None
        try:
            with self._locks.holding(bearer.credential_id):
                return self._renewed(tenant_id, bearer)
        except CredentialLockTimeout:
            log.warning("refreshing credential %s: another refresh held it too long", bearer.credential_id)
            return None
        except CredentialUnusable:
            return None
        except Exception as error:  # noqa: BLE001 - a failed refresh is an auth failure, never a failed turn
            log.warning("refreshing credential %s failed (%s)", bearer.credential_id, type(error).__name__)
            return None

    def _renewed(self, tenant_id: str, bearer: Bearer) -> Bearer | None:
        vault = self._vault(tenant_id, bearer.vault_id)
        credential = vault.credentials.get(bearer.credential_id) if vault is not None else None
        if credential is None or credential.archived_at is not None:
            return None
        if credential.sealed.get("access_token") != bearer.sealed_token:
            return self._opened(bearer.vault_id, credential)  # refreshed by someone else
        settings = credential.auth.get("refresh")
        try:
            secrets = {name: self._cipher.open(credential.credential_id, sealed) for name, sealed in credential.sealed.items()}
        except SecretUnavailable:
            return None
        if not settings or "refresh_token" not in secrets:
            return None
        try:
            reply = refresh_request(self._http, settings, secrets)
        except HttpUnreachable:
            log.warning("refreshing credential %s: the token endpoint did not answer", bearer.credential_id)
            return None
        tokens = tokens_of(reply)
        if tokens is None:
            log.warning("refreshing credential %s: the token endpoint answered HTTP %s", bearer.credential_id, reply.status_code)
            return None
        self._vaults.keep_refreshed(tenant_id, bearer.vault_id, bearer.credential_id, tokens)
        log.info("credential %s of vault %s refreshed", bearer.credential_id, bearer.vault_id)
        vault = self._vault(tenant_id, bearer.vault_id)
        stored = vault.credentials.get(bearer.credential_id) if vault is not None else None
        return self._opened(bearer.vault_id, stored) if stored is not None else None

    def _opened(self, vault_id: str, credential: Credential) -> Bearer:
        try:
            secrets = {name: self._cipher.open(credential.credential_id, sealed) for name, sealed in credential.sealed.items()}
        except SecretUnavailable:
            raise CredentialUnusable(vault_id, credential.credential_id) from None
        name = "access_token" if credential.kind == "mcp_oauth" else "token"
        expires = credential.auth.get("expires_at")
        refresh = credential.auth.get("refresh")
        return Bearer(
            vault_id=vault_id,
            credential_id=credential.credential_id,
            kind=credential.kind,
            token=secrets.get(name, ""),
            expires_at=datetime.fromisoformat(expires.replace("Z", "+00:00")) if isinstance(expires, str) else None,
            refreshable=credential.kind == "mcp_oauth" and bool(refresh) and "refresh_token" in secrets,
            sealed_token=credential.sealed.get(name, ""),
            secrets=tuple(secrets.values()),
        )

    def _vault(self, tenant_id: str, vault_id: str) -> Vault | None:
        vault = load_as(self._store, stream_id(vault_id), Vault)
        if vault is None or vault.tenant_id != tenant_id or vault.deleted or vault.archived_at is not None:
            return None
        return vault
