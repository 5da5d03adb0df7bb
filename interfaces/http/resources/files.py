"""/v1/files, as ``client.beta.files`` calls it: a multipart upload, metadata, the raw bytes,
delete, and the list (``limit``, ``page``, ``scope_id``, ``ids[]``). No beta header is needed.

The upload reads the ``file`` part in chunks and stops at the size cap with a 413, so a client
cannot make the server hold more than the cap; the bytes then go to the blob store whole
(the port takes bytes)."""

from __future__ import annotations

from dataclasses import replace

import falcon
import falcon.asgi

from application.files import FileService
from interfaces.http.common import ReadYourWrites, limit_param, list_params, principal, run
from interfaces.http.limits import describe
from interfaces.http.multipart import part_headers
from interfaces.http.worker_access import WorkerAccess
from projections.files import FileReadModels
from projections.queries import ListQuery

CHUNK_BYTES = 1024 * 1024
# Room for the multipart framing, part headers and the small ``expires_in_seconds`` part.
FRAMING_ALLOWANCE_BYTES = 64 * 1024
MOST_IDS = 100


class FilesResource:
    """Routes: ``/v1/files`` and, by suffix, ``/{file_id}`` (item), ``/content``."""

    def __init__(
        self, files: FileService, lists: FileReadModels, written: ReadYourWrites, max_bytes: int, access: WorkerAccess
    ) -> None:
        self._files = files
        self._access = access
        self._lists = lists
        self._written = written
        self._max_bytes = max_bytes

    def _too_large(self) -> falcon.HTTPContentTooLarge:
        return falcon.HTTPContentTooLarge(
            description=f"the file is larger than {describe(self._max_bytes)}, the most one upload may hold"
        )

    async def on_post(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        media_type = (req.content_type or "").split(";", 1)[0].strip().lower()
        if media_type != "multipart/form-data":
            raise falcon.HTTPUnsupportedMediaType(description="upload a file as multipart/form-data with a part named file")
        if req.content_length and req.content_length > self._max_bytes + FRAMING_ALLOWANCE_BYTES:
            raise self._too_large()
        form = await req.get_media()
        data: bytearray | None = None
        filename: str | None = None
        content_type: str | None = None
        expires: str | None = None
        async for part in form:
            name, part_filename, part_type = part_headers(part)
            if name == "file" and data is None:
                filename, content_type = part_filename, part_type
                data = await self._read_capped(part)
            elif name == "expires_in_seconds":
                expires = (await part.get_text() or "").strip()
            else:
                # Unknown parts are read past, not kept.
                await part.stream.exhaust()
        if data is None:
            raise falcon.HTTPBadRequest(description="the multipart body has no part named file")
        seconds = _expiry(expires)
        written = await run(self._files.upload, principal(req), data, filename, content_type, seconds)
        await self._written.answer(resp, written)

    async def _read_capped(self, part: falcon.asgi.multipart.BodyPart) -> bytearray:
        # One growing buffer, handed on as is: no second copy of a large upload.
        data = bytearray()
        while True:
            chunk = await part.stream.read(CHUNK_BYTES)
            if not chunk:
                return data
            if len(data) + len(chunk) > self._max_bytes:
                raise self._too_large()
            data += chunk

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        ids = list_params(req, "ids")
        if len(ids) > MOST_IDS:
            raise falcon.HTTPBadRequest(description=f"ids may name at most {MOST_IDS} files")
        query = ListQuery(limit=limit_param(req), page=req.get_param("page") or None)
        if ids:
            query = replace(query, page=None)
        scope_id = req.get_param("scope_id") or None
        page = await run(self._lists.files, principal(req).tenant_id, query, scope_id, ids or None)
        resp.media = page.envelope()

    async def on_get_item(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, file_id: str) -> None:
        # A work token too, for a file attached to its session (a worker mounts it).
        resp.media = await run(self._files.retrieve, await self._access.file(req, file_id), file_id)

    async def on_delete_item(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, file_id: str) -> None:
        await self._written.answer(resp, await run(self._files.delete, principal(req), file_id))

    async def on_get_content(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, file_id: str) -> None:
        download = await run(self._files.download, await self._access.file(req, file_id), file_id)
        resp.data = download.data
        resp.content_type = download.mime_type
        resp.downloadable_as = download.filename


def _expiry(raw: str | None) -> int | None:
    if raw is None or raw == "":
        return None
    try:
        return int(raw)
    except ValueError:
        raise falcon.HTTPBadRequest(description="expires_in_seconds must be an integer") from None


