"""Use cases of environment keys: issue (the plaintext is shown once), list, revoke, and
authenticate a worker.

A key is ``agentry_<key id>_<43 url-safe characters of 256 random bits>``. Carrying the public
id lets authentication load the key's own stream directly (no read model, no index); the
random part is what makes it a secret. Only the key's HMAC-SHA256 under the server secret is
recorded (the same keyed hash API keys use, for the same reasons: see application.api_keys),
and it is compared in constant time.

These keys are never API keys: ``ApiKeyService`` looks keys up by their hash in API-key
streams only, so an environment key presented as ``x-api-key`` is simply unknown there.
"""

from __future__ import annotations

import hmac
import secrets
from typing import Any, NamedTuple

from application.api_keys import KeyHash
from application.commands import Commands, Kind, Written, load_as
from application.environments import EnvironmentService
from application.errors import NotFound, Unauthorized
from application.ids import new_id
from application.ports import EventStore
from application.tenancy import Principal
from application.verified_keys import RecentlyVerified
from application.views import environment_key_view
from domain.environment_keys import EnvironmentKey
from domain.errors import Archived
from domain.ids import looks_like, stream_id

KEY_PREFIX = "agentry_"
ID_PREFIX = "envkey"
_ID_LENGTH = len(ID_PREFIX) + 1 + 24  # application.ids.new_id: prefix, "_", 24 characters


def render(key: EnvironmentKey) -> dict[str, Any]:
    return environment_key_view(key.key_id, key.environment_id, key.name, key.hint, key.created_on, key.revoked_at)


ENVIRONMENT_KEYS: Kind[EnvironmentKey] = Kind(
    EnvironmentKey, ID_PREFIX, "environment key", gone=lambda key: not key.active
)


class EnvironmentCredential(NamedTuple):
    """Who presented a valid environment key: ``(tenant_id, environment_id, key_id)``."""

    tenant_id: str
    environment_id: str
    key_id: str


def generate_key(key_id: str) -> str:
    return f"{KEY_PREFIX}{key_id}_{secrets.token_urlsafe(32)}"


def key_id_of(plaintext: str) -> str | None:
    """The public id a well-formed key carries, else None."""
    if not plaintext.startswith(KEY_PREFIX):
        return None
    rest = plaintext[len(KEY_PREFIX):]
    key_id, separator, secret = rest[:_ID_LENGTH], rest[_ID_LENGTH:_ID_LENGTH + 1], rest[_ID_LENGTH + 1:]
    if separator != "_" or len(secret) < 32 or not looks_like(ID_PREFIX, key_id):
        return None
    return key_id


class EnvironmentKeyService:
    def __init__(self, store: EventStore, environments: EnvironmentService, hash_key: KeyHash) -> None:
        self._store = store
        self._environments = environments
        self._hash = hash_key
        self._commands = Commands(store, ENVIRONMENT_KEYS, render)
        # A revoke made by another process takes effect within its seconds; ours, at once.
        self._verified: RecentlyVerified[EnvironmentCredential] = RecentlyVerified()

    def create(self, who: Principal, environment_id: str, name: str | None = None) -> tuple[Written, str]:
        """Issues a key for the caller's environment: the written view and the plaintext,
        which exists nowhere else once this returns."""
        environment = self._environments.load(who, environment_id)
        if environment.archived_at is not None:
            raise Archived(f"environment {environment_id} is archived: it takes no new keys")
        key_id = new_id(ID_PREFIX)
        plaintext = generate_key(key_id)
        key = EnvironmentKey(
            key_id=key_id,
            environment_id=environment.environment_id,
            tenant_id=who.tenant_id,
            name=name,
            key_hash=self._hash(plaintext),
            hint=plaintext[-4:],
        )
        return self._commands.create(key), plaintext

    def check_environment(self, who: Principal, environment_id: str) -> None:
        """404 unless the environment is the caller's (lists of another tenant's keys too)."""
        self._environments.load(who, environment_id)

    def revoke(self, who: Principal, environment_id: str, key_id: str) -> Written:
        self.check_environment(who, environment_id)

        def revoke(key: EnvironmentKey) -> bool:
            if key.environment_id != environment_id:
                raise NotFound(f"environment key {key_id!r} not found")
            return key.revoke()

        written = self._commands.change(
            who, key_id, revoke, render=lambda key: {"id": key.key_id, "type": "environment_key_deleted"}
        )
        self._verified.forget(lambda credential: credential.key_id == key_id)
        return written

    def authenticate(self, plaintext: str | None) -> EnvironmentCredential:
        """The environment a live key belongs to; Unauthorized for anything else."""
        refused = Unauthorized("invalid environment key")
        if not plaintext:
            raise Unauthorized("missing environment key")
        key_hash = self._hash(plaintext)
        cached = self._verified.get(key_hash)
        if cached is not None:
            return cached
        key_id = key_id_of(plaintext)
        if key_id is None:
            raise refused
        key = load_as(self._store, stream_id(key_id), EnvironmentKey)
        if key is None or not key.active:
            raise refused
        if not hmac.compare_digest(key.key_hash, key_hash):
            raise refused
        credential = EnvironmentCredential(key.tenant_id, key.environment_id, key.key_id)
        self._verified.keep(key_hash, credential)
        return credential
