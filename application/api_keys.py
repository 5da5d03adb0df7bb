"""Use cases of API keys: issue (the plaintext is shown once) and authenticate.

A key is recorded only as its HMAC-SHA256 under a server secret. Keys carry 256 bits of
randomness, so a fast hash suffices and a lookup costs one stream load; the secret makes a
copy of the event store alone useless for testing guessed keys (and for matching a key
seen elsewhere). The secret is given by the composition root; nothing here reads files.

A key is bound to a workspace and a role there; ``create``, ``retrieve``, ``update`` serve
``/v1/organizations/api_keys``. An organization admin's key is made inactive or archived
only by another organization admin, who stays one, so the organization cannot lose its last
admin that way (the key asking it of itself gets a 409, ``LastAdmin``). There is no cache of
verified keys: every request loads the key's stream (and, outside the default workspace, the
workspace's), so a key made inactive or archived — or whose workspace was archived — is
refused on the very next request, in every API process, with no signal to miss.

Keys recorded before the secret existed were plain SHA-256. Such a key still
authenticates: the first time it is used it is recorded again under the keyed hash (same key
id, tenant, role) and its old record is revoked, in one atomic save.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from collections.abc import Callable
from typing import Any, Protocol
from uuid import UUID

from application.commands import Written, load_as
from application.errors import Conflict, Forbidden, NotFound, Unauthorized
from application.ids import new_id
from application.people import LastAdmin
from application.ports import EventStore
from application.retry import retry_on_race
from application.tenancy import ORGANIZATION_ADMIN, Principal
from application.views import api_key_view
from application.workspaces import WorkspaceService, reaches
from domain.api_keys import ApiKey, key_stream_id

log = logging.getLogger("agentry")

KEY_PREFIX = "agentry-"
DEFAULT_TENANT = "default"

KeyHash = Callable[[str], str]
"""Plaintext key → the hex digest its record is found by."""


def keyed_hash(secret: str) -> KeyHash:
    key = secret.encode()

    def hash_key(plaintext: str) -> str:
        return hmac.new(key, plaintext.encode(), hashlib.sha256).hexdigest()

    return hash_key


def legacy_hash(plaintext: str) -> str:
    """How keys were recorded before they were keyed; read only to migrate them."""
    return hashlib.sha256(plaintext.encode()).hexdigest()


def generate_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


class PrivateFile(Protocol):
    """A file only the server's user can read (the embedded admin key)."""

    location: str

    def exists(self) -> bool: ...

    def write(self, text: str) -> None: ...


def render(key: ApiKey) -> dict[str, Any]:
    return api_key_view(
        key.key_id, key.name, key.tenant_id, key.role, key.status, key.hint, key.created_on, key.created_by
    )


def principal_of(key: ApiKey) -> Principal:
    admin = key.organization_role == ORGANIZATION_ADMIN
    return Principal(
        key.tenant_id,
        key.key_id,
        key.role,
        organization_role=key.organization_role,
        workspaces=None if admin else frozenset({key.tenant_id}),
    )


KeyLocator = Callable[[str], UUID | None]
"""A key id → its stream (the read model's lookup: the stream id derives from the hash)."""


class ApiKeyService:
    def __init__(
        self,
        store: EventStore,
        hash_key: KeyHash,
        workspaces: WorkspaceService | None = None,
        locate: KeyLocator = lambda key_id: None,
    ) -> None:
        self._store = store
        self._hash = hash_key
        self._workspaces = workspaces or WorkspaceService(store)
        self._locate = locate

    def issue(
        self,
        plaintext: str,
        name: str,
        tenant_id: str = DEFAULT_TENANT,
        role: str = "admin",
        organization_role: str | None = None,
    ) -> Principal:
        """Records a key; idempotent for a key that already exists."""
        key_hash = self._hash(plaintext)
        existing = self._find_or_migrate(plaintext, key_hash)
        if existing is not None:
            if organization_role is not None and existing.organization_role != organization_role:
                existing.grant_organization_role(organization_role)
                self._store.save(existing)
            return principal_of(existing)
        key = ApiKey(
            key_hash=key_hash,
            key_id=new_id("apikey"),
            tenant_id=tenant_id,
            name=name,
            role=role,
            hint=plaintext[-4:],
            organization_role=organization_role,
        )
        try:
            self._store.save(key)
        except Conflict:
            raced = self._find(key_hash)  # a concurrent start issued the same key
            if raced is None:
                raise
            key = raced
        return principal_of(key)

    def authenticate(self, plaintext: str | None) -> Principal:
        if not plaintext:
            raise Unauthorized("missing x-api-key header")
        key = self._find_or_migrate(plaintext, self._hash(plaintext))
        if key is None or not key.active or not self._workspaces.is_live(key.tenant_id):
            raise Unauthorized("invalid x-api-key")
        return principal_of(key)

    # -- /v1/organizations/api_keys ----------------------------------------------------

    def create(self, who: Principal, fields: dict[str, Any]) -> Written:
        """A new key in the workspace named (or the caller's), shown once as ``key``."""
        workspace_id = fields.get("workspace_id") or who.tenant_id
        # The caller's own workspace was checked when the request was let in (a tenant from
        # before workspaces included); another must be one it reaches and may select.
        elsewhere = workspace_id != who.tenant_id
        if elsewhere and (not reaches(who, workspace_id) or not self._workspaces.selectable(workspace_id)):
            raise NotFound(f"workspace {workspace_id[:64]!r} not found")
        self._check_may_manage(who, workspace_id)
        plaintext = generate_key()
        key = ApiKey(
            key_hash=self._hash(plaintext),
            key_id=new_id("apikey"),
            tenant_id=workspace_id,
            name=fields["name"],
            role=fields.get("role") or "member",
            hint=plaintext[-4:],
            created_by=who.user_id,
        )
        position = self._store.save(key)
        return Written(render(key) | {"key": plaintext}, position)

    def retrieve(self, who: Principal, key_id: str) -> dict[str, Any]:
        return render(self._load(who, key_id))

    def update(self, who: Principal, key_id: str, fields: dict[str, Any]) -> Written:
        def attempt() -> Written:
            key = self._load(who, key_id)
            self._check_may_manage(who, key.tenant_id)
            if key.organization_role and not who.organization_admin:
                # Else a workspace admin of ``default`` could archive the organization's own key.
                raise Forbidden("only an organization admin may change an organization admin's key")
            if fields.get("name") is not None:
                key.rename(fields["name"])
            if fields.get("status") is not None:
                if fields["status"] != "active" and key.organization_role and key.key_id == who.key_id:
                    # Any other caller allowed here is an organization admin who stays one.
                    raise LastAdmin(
                        "an organization admin key cannot make itself inactive or archived: the organization "
                        "could be left without an admin; do it with another organization admin's key or login"
                    )
                key.change_status(fields["status"])
            if fields.get("role") is not None:
                key.change_role(fields["role"])
            return Written(render(key), self._store.save(key))

        return retry_on_race(attempt, key=key_id)

    def _load(self, who: Principal, key_id: str) -> ApiKey:
        missing = NotFound(f"API key {key_id[:64]!r} not found")
        where = self._locate(key_id) if len(key_id) <= 64 else None
        key = None if where is None else load_as(self._store, where, ApiKey)
        if key is None or key.key_id != key_id or not reaches(who, key.tenant_id):
            raise missing
        return key

    @staticmethod
    def _check_may_manage(who: Principal, workspace_id: str) -> None:
        if who.organization_admin:
            return
        if workspace_id != who.tenant_id or who.role != "admin":
            raise Forbidden("only an admin of the key's workspace or of the organization may manage its keys")

    def _find_or_migrate(self, plaintext: str, key_hash: str) -> ApiKey | None:
        key = self._find(key_hash)
        if key is not None:
            return key
        legacy = self._find(legacy_hash(plaintext))
        if legacy is None or not legacy.active:
            return legacy
        keyed = ApiKey(
            key_hash=key_hash,
            key_id=legacy.key_id,
            tenant_id=legacy.tenant_id,
            name=legacy.name,
            role=legacy.role,
            hint=legacy.hint,
            organization_role=legacy.organization_role,
            created_by=legacy.created_by,
        )
        legacy.revoke()
        try:
            self._store.save(keyed, legacy)
        except Conflict:
            return self._find(key_hash)  # another request migrated it first
        return keyed

    def _find(self, key_hash: str) -> ApiKey | None:
        return load_as(self._store, key_stream_id(key_hash), ApiKey)

    def ensure_admin_key(self, bootstrap_key: str, key_file: PrivateFile | None) -> None:
        """A bootstrap key from the settings is recorded (hashed). Without one, an embedded
        server writes a fresh admin key to a private file on first start, so the plaintext
        never appears in a log line."""
        if bootstrap_key:
            self.issue(bootstrap_key, name="bootstrap", organization_role=ORGANIZATION_ADMIN)
        elif key_file is not None and not key_file.exists():
            key = generate_key()
            self.issue(key, name="embedded-admin", organization_role=ORGANIZATION_ADMIN)
            key_file.write(key + "\n")
            log.info("created an admin API key; read it from %s", key_file.location)
        elif key_file is not None:
            log.info("admin API key is in %s", key_file.location)
