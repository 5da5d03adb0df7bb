"""Use cases of API keys: issue (the plaintext is shown once), authenticate, revoke.

Only a SHA-256 hash of a key is recorded; keys carry 256 bits of randomness, so a fast hash
is enough and a lookup costs one stream load.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time

from domain.api_keys import ApiKey, key_stream_id

from application.errors import Conflict, NotFound, Unauthorized
from application.ids import new_id
from application.ports import EventStore
from application.tenancy import Principal

KEY_PREFIX = "agentry-"
DEFAULT_TENANT = "default"
CACHE_SECONDS = 5.0


def hash_key(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode()).hexdigest()


def generate_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


class ApiKeyService:
    def __init__(self, store: EventStore) -> None:
        self._store = store
        self._cache: dict[str, tuple[float, Principal]] = {}
        self._cache_lock = threading.Lock()

    def issue(
        self,
        plaintext: str,
        name: str,
        tenant_id: str = DEFAULT_TENANT,
        role: str = "admin",
    ) -> Principal:
        """Records a key; idempotent for a key that already exists."""
        key_hash = hash_key(plaintext)
        existing = self._find(key_hash)
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
            key = self._find(key_hash)  # a concurrent start issued the same key
        return Principal(key.tenant_id, key.key_id, key.role)

    def authenticate(self, plaintext: str | None) -> Principal:
        if not plaintext:
            raise Unauthorized("missing x-api-key header")
        key_hash = hash_key(plaintext)
        now = time.monotonic()
        with self._cache_lock:
            cached = self._cache.get(key_hash)
        if cached is not None and cached[0] > now:
            return cached[1]
        key = self._find(key_hash)
        if key is None or not key.active:
            raise Unauthorized("invalid x-api-key")
        principal = Principal(key.tenant_id, key.key_id, key.role)
        with self._cache_lock:
            self._cache[key_hash] = (now + CACHE_SECONDS, principal)
        return principal

    def _find(self, key_hash: str) -> ApiKey | None:
        try:
            key = self._store.load(key_stream_id(key_hash))
        except NotFound:
            return None
        return key if isinstance(key, ApiKey) else None
