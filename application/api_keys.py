"""Use cases of API keys: issue (the plaintext is shown once) and authenticate.

A key is recorded only as its HMAC-SHA256 under a server secret. Keys carry 256 bits of
randomness, so a fast hash suffices and a lookup costs one stream load; the secret makes a
copy of the event store alone useless for testing guessed keys (and for matching a key
seen elsewhere). The secret is given by the composition root; nothing here reads files.

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
from typing import Protocol

from application.commands import load_as
from application.errors import Conflict, Unauthorized
from application.ids import new_id
from application.ports import EventStore
from application.tenancy import Principal
from application.verified_keys import RecentlyVerified
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


class ApiKeyService:
    def __init__(self, store: EventStore, hash_key: KeyHash) -> None:
        self._store = store
        self._hash = hash_key
        self._verified: RecentlyVerified[Principal] = RecentlyVerified()

    def issue(
        self,
        plaintext: str,
        name: str,
        tenant_id: str = DEFAULT_TENANT,
        role: str = "admin",
    ) -> Principal:
        """Records a key; idempotent for a key that already exists."""
        key_hash = self._hash(plaintext)
        existing = self._find_or_migrate(plaintext, key_hash)
        if existing is not None:
            return Principal(existing.tenant_id, existing.key_id, existing.role)
        key = ApiKey(
            key_hash=key_hash,
            key_id=new_id("apikey"),
            tenant_id=tenant_id,
            name=name,
            role=role,
            hint=plaintext[-4:],
        )
        try:
            self._store.save(key)
        except Conflict:
            raced = self._find(key_hash)  # a concurrent start issued the same key
            if raced is None:
                raise
            key = raced
        return Principal(key.tenant_id, key.key_id, key.role)

    def authenticate(self, plaintext: str | None) -> Principal:
        if not plaintext:
            raise Unauthorized("missing x-api-key header")
        key_hash = self._hash(plaintext)
        cached = self._verified.get(key_hash)
        if cached is not None:
            return cached
        key = self._find_or_migrate(plaintext, key_hash)
        if key is None or not key.active:
            raise Unauthorized("invalid x-api-key")
        principal = Principal(key.tenant_id, key.key_id, key.role)
        self._verified.keep(key_hash, principal)
        return principal

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
            self.issue(bootstrap_key, name="bootstrap")
        elif key_file is not None and not key_file.exists():
            key = generate_key()
            self.issue(key, name="embedded-admin")
            key_file.write(key + "\n")
            log.info("created an admin API key; read it from %s", key_file.location)
        elif key_file is not None:
            log.info("admin API key is in %s", key_file.location)
