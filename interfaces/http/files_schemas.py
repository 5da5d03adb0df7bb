"""Responses of ``/v1/files`` as ``client.beta.files`` reads them (``BetaFileMetadata``,
``BetaDeletedFile``); the upload's multipart body is described in ``files_description``."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from interfaces.http.responses import Described, Paged


class FileScope(Described):
    type: Literal["session"]
    id: str = Field(description="the session that produced the file (`sesn_…`)")


class FileMetadata(Described):
    id: str = Field(description="`file_…`")
    type: Literal["file"]
    filename: str = Field(description="the last path component of the uploaded name; `unnamed.<ext>` when none")
    mime_type: str
    size_bytes: int
    created_at: datetime
    downloadable: bool | None = Field(description="whether `GET /v1/files/{file_id}/content` serves its bytes")
    expires_at: datetime | None = Field(description="when its bytes become unavailable; null if never")
    scope: FileScope | None = Field(default=None, description="set on a file a session produced")


class FileDeleted(Described):
    id: str
    type: Literal["file_deleted"]


class FilePage(Paged):
    data: list[FileMetadata]
