"""The Agent aggregate: a versioned agent definition.

Every update that changes the definition bumps ``agent_version`` and carries the whole new
definition, so every version can be read back from the stream as it was.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.errors import Archived, InvalidState, VersionMismatch
from domain.ids import stream_id


MAX_METADATA_PAIRS = 16


def merge_definition(current: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """Apply a partial update: given fields replace, ``metadata`` is patched key by key
    (a ``None`` value removes the key), and ``None`` clears an optional field."""
    merged = dict(current)
    for key, value in changes.items():
        if key == "metadata":
            metadata = dict(current.get("metadata") or {})
            for meta_key, meta_value in (value or {}).items():
                if meta_value is None:
                    metadata.pop(meta_key, None)
                else:
                    metadata[meta_key] = meta_value
            merged["metadata"] = metadata if value is not None else {}
            if len(merged["metadata"]) > MAX_METADATA_PAIRS:
                # Checked on the merged result: patches could otherwise add up without bound.
                raise InvalidState(
                    f"metadata may hold at most {MAX_METADATA_PAIRS} pairs; "
                    f"this update would leave {len(merged['metadata'])}"
                )
        else:
            merged[key] = value
    return merged


class Agent(Aggregate):
    @staticmethod
    def create_id(agent_id: str, **_: Any) -> UUID:
        return stream_id(agent_id)

    @event("Created")
    def __init__(self, agent_id: str, tenant_id: str, definition: dict[str, Any]) -> None:
        self.agent_id = agent_id
        self.tenant_id = tenant_id
        self.definition = definition
        self.agent_version = 1
        self.archived_at: datetime | None = None

    def update(self, changes: dict[str, Any], expected_version: int | None = None) -> bool:
        """Change the definition; returns False (and records nothing) when nothing changed."""
        if self.archived_at is not None:
            raise Archived(f"agent {self.agent_id} is archived")
        if expected_version is not None and expected_version != self.agent_version:
            raise VersionMismatch(expected_version, self.agent_version)
        definition = merge_definition(self.definition, changes)
        if definition == self.definition:
            return False
        self._record_update(definition=definition, agent_version=self.agent_version + 1)
        return True

    @event("Updated")
    def _record_update(self, definition: dict[str, Any], agent_version: int) -> None:
        self.definition = definition
        self.agent_version = agent_version

    def archive(self) -> bool:
        if self.archived_at is not None:
            return False
        self._record_archive()
        return True

    @event("Archived")
    def _record_archive(self) -> None:
        self.archived_at = self.modified_on
