"""The EnvironmentKey aggregate: one credential a worker of one environment presents.

Each key is an aggregate of its own (as each API key is) rather than a list inside the
Environment: issuing or revoking a key never contends with edits of the environment, a
key's events never enter the environment's stream (which is published to Kafka), and
authenticating loads one small stream. The stream id comes from the key's public id, which the
plaintext carries, so both a revoke by id and an authentication by plaintext are direct
loads; only the key's keyed hash is recorded, never the key.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.ids import stream_id
from domain.stamps import Stamped


class EnvironmentKey(Aggregate):
    @staticmethod
    def create_id(key_id: str, **_: Any) -> UUID:
        return stream_id(key_id)

    class Issued(Aggregate.Created):
        key_id: str
        environment_id: str
        tenant_id: str
        name: str | None
        key_hash: str
        hint: str

    class Revoked(Stamped):
        stamp = "revoked_at"

    @event(Issued)
    def __init__(
        self, key_id: str, environment_id: str, tenant_id: str, name: str | None, key_hash: str, hint: str
    ) -> None:
        self.key_id = key_id
        self.environment_id = environment_id
        self.tenant_id = tenant_id
        self.name = name
        self.key_hash = key_hash
        self.hint = hint
        self.revoked_at: datetime | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def revoke(self) -> bool:
        if self.revoked_at is not None:
            return False
        self._record_revocation()
        return True

    @event(Revoked)
    def _record_revocation(self) -> None:
        pass  # Revoked stamps revoked_at
