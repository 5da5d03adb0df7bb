"""The ApiKey aggregate. Only the key's hash is ever recorded.

The stream id is derived from the hash, so authenticating a request is a direct load of one
small stream, with no read model in the way.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.ids import stream_id


def key_stream_id(key_hash: str) -> UUID:
    return stream_id("apikeyhash_" + key_hash)


class ApiKey(Aggregate):
    @staticmethod
    def create_id(key_hash: str, **_: Any) -> UUID:
        return key_stream_id(key_hash)

    @event("Issued")
    def __init__(
        self, key_hash: str, key_id: str, tenant_id: str, name: str, role: str, hint: str
    ) -> None:
        self.key_hash = key_hash
        self.key_id = key_id
        self.tenant_id = tenant_id
        self.name = name
        self.role = role
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

    @event("Revoked")
    def _record_revocation(self) -> None:
        self.revoked_at = self.modified_on
