"""Files (``/v1/files``): upload, metadata, download, delete, and the check that a session
names only files its caller has.

Bytes go to the blob store before the upload's event is saved, so a recorded file always has
its bytes. The store is content-addressed: two files with the same bytes share one blob, and
a delete removes the blob only when no other live file still names its key (the file list's
read model answers that, ``BlobUsers``)."""

from __future__ import annotations

import mimetypes
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from application.commands import Commands, Kind, View, Written
from application.errors import Invalid, NotFound
from application.ids import new_id
from application.ports import BlobMissing, BlobStore, EventStore
from application.retry import retry_on_race
from application.tenancy import Principal
from application.views import iso
from domain.files import MAX_EXPIRY_SECONDS, MIN_EXPIRY_SECONDS, File, expiry

PREFIX = "file"
FILES = Kind(File, PREFIX, "file", gone=lambda file: file.deleted)
MAX_FILENAME_CHARS = 255
DEFAULT_MIME_TYPE = "application/octet-stream"
SETTLE_SECONDS = 5.0
_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
MEDIA_TYPE = re.compile(rf"{_TOKEN}/{_TOKEN}(\s*;\s*{_TOKEN}=(?:{_TOKEN}|\"[^\"\\\x00-\x1f\x7f]*\"))*", re.ASCII)


class FileExpired(NotFound):
    """The file's expiry passed: its bytes are no longer available."""

    error_code = "file_expired"
    details: dict[str, object] = {}


class FileNotDownloadable(Invalid):
    """The file's bytes are not offered for download."""

    error_code = "file_not_downloadable"
    details: dict[str, object] = {}


class BlobUsers(Protocol):
    def named_elsewhere(self, sha256: str, file_id: str) -> bool:
        """Whether a live file other than ``file_id`` names the blob ``sha256``."""
        ...


@dataclass(frozen=True)
class Download:
    data: bytes
    mime_type: str
    filename: str


def render(file: File) -> View:
    view: View = {
        "id": file.file_id,
        "type": "file",
        "filename": file.filename,
        "mime_type": file.mime_type,
        "size_bytes": file.size_bytes,
        "created_at": iso(file.created_on),
        "downloadable": file.downloadable,
        "expires_at": iso(file.expires_at),
    }
    if file.scope:
        view["scope"] = dict(file.scope)
    return view


def stored_filename(sent: str | None, mime_type: str) -> str:
    """Only the last path component is kept; an absent or empty name becomes ``unnamed``
    plus the extension of the file's type, when one is known."""
    # Control characters would break the download's Content-Disposition header.
    cleaned = "".join(c for c in (sent or "") if c >= " " and c != "\x7f")
    name = cleaned.replace("\\", "/").rsplit("/", 1)[-1].strip()
    if name in ("", ".", ".."):
        extension = mimetypes.guess_extension(mime_type.split(";", 1)[0].strip()) or ""
        return "unnamed" + extension
    if len(name) > MAX_FILENAME_CHARS:
        raise Invalid(f"the file's name is longer than {MAX_FILENAME_CHARS} characters")
    return name


def stored_mime_type(sent: str | None, filename: str | None) -> str:
    """The part's own type; when it says nothing (or only ``application/octet-stream``),
    the type its name suggests."""
    declared = (sent or "").strip()
    # Only a well-formed type: it goes back out as the download's Content-Type header.
    if MEDIA_TYPE.fullmatch(declared) and declared.split(";", 1)[0].strip().lower() != DEFAULT_MIME_TYPE:
        return declared
    guessed = mimetypes.guess_type(filename or "")[0]
    return guessed or DEFAULT_MIME_TYPE


class FileService:
    def __init__(
        self,
        store: EventStore,
        blobs: BlobStore,
        users: BlobUsers,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        settle: Callable[[int | None, float], bool] = lambda position, timeout: True,
    ) -> None:
        """``settle(position, timeout)`` waits until ``users`` (a read model) has seen the log
        up to ``position``: a delete asks about a blob's other files only then, so every upload
        saved before it is counted."""
        self._store = store
        self._blobs = blobs
        self._users = users
        self._now = now
        self._settle = settle
        self._commands = Commands(store, FILES, render)

    def upload(
        self,
        who: Principal,
        data: bytes,
        filename: str | None,
        content_type: str | None,
        expires_in_seconds: int | None = None,
        scope: dict[str, str] | None = None,
    ) -> Written:
        if expires_in_seconds is not None and not MIN_EXPIRY_SECONDS <= expires_in_seconds <= MAX_EXPIRY_SECONDS:
            raise Invalid(f"expires_in_seconds must be between {MIN_EXPIRY_SECONDS} and {MAX_EXPIRY_SECONDS}")
        mime_type = stored_mime_type(content_type, filename)
        name = stored_filename(filename, mime_type)
        key = self._blobs.put(data)
        file = File(
            file_id=new_id(PREFIX),
            tenant_id=who.tenant_id,
            filename=name,
            mime_type=mime_type,
            size_bytes=len(data),
            sha256=key,
            downloadable=True,
            expires_at=expiry(self._now(), expires_in_seconds),
            scope=scope,
        )
        written = self._commands.create(file)
        # A delete of another file with these bytes may have removed the blob between the put
        # and the save (its check could not see this file yet): put it back.
        if not self._blobs.exists(key):
            self._blobs.put(data)
        return written

    def retrieve(self, who: Principal, file_id: str) -> View:
        return self._commands.view(who, file_id)

    def download(self, who: Principal, file_id: str) -> Download:
        file = self._commands.load(who, file_id)
        if not file.downloadable:
            raise FileNotDownloadable(f"file {file_id} is not downloadable")
        if file.expired(self._now()):
            raise FileExpired(f"file {file_id} has expired")
        try:
            data = self._blobs.get(file.sha256)
        except BlobMissing:
            raise NotFound(f"the content of file {file_id} is no longer stored") from None
        return Download(data, file.mime_type, file.filename)

    def delete(self, who: Principal, file_id: str) -> Written:
        def attempt() -> tuple[Written, str]:
            file = self._commands.load(who, file_id)
            file.delete()
            return Written({"id": file_id, "type": "file_deleted"}, self._store.save(file)), file.sha256

        written, key = retry_on_race(attempt, key=file_id)
        # Only a file list known to hold every upload saved before this delete may say the
        # bytes are no one else's; otherwise they stay (kept bytes cost space, lost ones data).
        if self._settle(written.position, SETTLE_SECONDS) is True and not self._users.named_elsewhere(key, file_id):
            self._blobs.delete(key)
        return written

    def check_usable(self, who: Principal, file_id: str) -> None:
        """That a session may mount this file: the caller's, not deleted, not expired."""
        file = self._commands.load(who, file_id)
        if file.expired(self._now()):
            raise FileExpired(f"file {file_id} has expired: a session cannot mount it")


def check_file_resources(files: FileService | None, who: Principal, resources: list[Any] | None) -> None:
    """Every ``{"type": "file"}`` resource names a file the caller may mount (404 otherwise)."""
    if files is None:
        return
    for resource in resources or []:
        if isinstance(resource, dict) and resource.get("type") == "file" and isinstance(resource.get("file_id"), str):
            files.check_usable(who, resource["file_id"])
