"""Files: bytes a tenant uploaded (or a session produced) and the metadata the API shows.

The bytes never enter the event log: they sit in the blob store under the SHA-256 of their
content, and the events hold that key. Storing the same bytes twice stores them once, so a
deleted file's bytes may still belong to another live file; the application decides when the
blob can go (``FileDeleted`` only says this record no longer names it)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.ids import stream_id

# ``expires_in_seconds`` as the API accepts it: one hour to ninety days.
MIN_EXPIRY_SECONDS = 3600
MAX_EXPIRY_SECONDS = 7_776_000


class File(Aggregate):
    @staticmethod
    def create_id(file_id: str, **_: Any) -> UUID:
        return stream_id(file_id)

    class Uploaded(Aggregate.Created):
        """A file's record: what the API shows of it and the key of its bytes (``sha256``).
        ``scope`` is ``{"type": "session", "id": …}`` for a session's output, else None."""

        file_id: str
        tenant_id: str
        filename: str
        mime_type: str
        size_bytes: int
        sha256: str
        downloadable: bool
        expires_at: datetime | None
        scope: dict[str, str] | None

    class Deleted(Aggregate.Event):
        """The file is gone; its bytes go too unless another live file names the same key."""

    @event(Uploaded)
    def __init__(
        self,
        file_id: str,
        tenant_id: str,
        filename: str,
        mime_type: str,
        size_bytes: int,
        sha256: str,
        downloadable: bool,
        expires_at: datetime | None,
        scope: dict[str, str] | None,
    ) -> None:
        self.file_id = file_id
        self.tenant_id = tenant_id
        self.filename = filename
        self.mime_type = mime_type
        self.size_bytes = size_bytes
        self.sha256 = sha256
        self.downloadable = downloadable
        self.expires_at = expires_at
        self.scope = dict(scope) if scope else None
        self.deleted = False

    def expired(self, now: datetime) -> bool:
        return self.expires_at is not None and now >= self.expires_at

    def delete(self) -> bool:
        if self.deleted:
            return False
        self._record_deletion()
        return True

    @event(Deleted)
    def _record_deletion(self) -> None:
        self.deleted = True


def expiry(uploaded_at: datetime, expires_in_seconds: int | None) -> datetime | None:
    return None if expires_in_seconds is None else uploaded_at + timedelta(seconds=expires_in_seconds)
