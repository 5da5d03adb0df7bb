"""/v1/skills and /v1/skills/{skill_id}/versions, as ``client.beta.skills`` and
``client.beta.skills.versions`` call them (multipart uploads of ``files[]``, a zip download),
plus the single-markdown import (``POST /v1/skills/import``) and export
(``GET …/versions/{version}/export``).

Uploads are read with a multipart parser of their own: its caps are a skill's (file count,
bytes per file), not the app-wide form defaults, and a part over them is a 400 or 413 that
says which cap, never a 500."""

from __future__ import annotations

import falcon
import falcon.asgi
from falcon.media.multipart import MultipartFormHandler, MultipartParseOptions

from application.skills import Download, SkillService, Upload
from domain.skills import MAX_FILE_BYTES, MAX_FILES, MAX_TOTAL_BYTES
from interfaces.http.common import ReadYourWrites, list_query, optional_choice_param, principal, run
from interfaces.http.limits import MiB
from interfaces.http.multipart import part_headers
from interfaces.http.worker_access import WorkerAccess
from projections.skills import SkillReadModels

FILE_PARTS = ("files[]", "files")
# Mission Control's import names its one part ``file``; the SDK's uploads name theirs ``files[]``.
IMPORT_PARTS = ("file", "files[]", "files")
SOURCES = ("custom", "anthropic")
# The form's other bytes (boundaries, part headers, display_name) on top of the files'.
FORM_ALLOWANCE = 1 * MiB
_OPTIONS = MultipartParseOptions()
_OPTIONS.max_body_part_count = MAX_FILES + 2
_OPTIONS.max_body_part_buffer_size = MAX_FILE_BYTES
_FORMS = MultipartFormHandler(_OPTIONS)


async def read_uploads(
    req: falcon.asgi.Request, extra_fields: tuple[str, ...] = (), file_parts: tuple[str, ...] = FILE_PARTS
) -> tuple[list[Upload], dict[str, str]]:
    """The file parts (filename = path) and the named text fields of a multipart body."""
    media_type = (req.content_type or "").split(";", 1)[0].strip().lower()
    if media_type != "multipart/form-data":
        raise falcon.HTTPUnsupportedMediaType(
            description="send the skill as multipart/form-data with one files[] part per file"
        )
    if req.content_length and req.content_length > MAX_TOTAL_BYTES + FORM_ALLOWANCE:
        raise falcon.HTTPContentTooLarge(description=f"a skill upload is at most {MAX_TOTAL_BYTES // MiB} MiB of files")
    form = await _FORMS.deserialize_async(req.stream, req.content_type, req.content_length)
    uploads: list[Upload] = []
    fields: dict[str, str] = {}
    total = 0
    async for part in form:
        part_name, filename, _ = part_headers(part)
        name = part_name or ""
        if name in file_parts:
            data = await part.get_data()
            total += len(data)
            if total > MAX_TOTAL_BYTES:
                raise falcon.HTTPContentTooLarge(description=f"a skill upload is at most {MAX_TOTAL_BYTES // MiB} MiB of files")
            uploads.append(Upload(filename or "", data))
        elif name in extra_fields:
            try:
                fields[name] = (await part.get_data()).decode("utf-8")
            except UnicodeDecodeError:
                raise falcon.HTTPBadRequest(description=f"form field {name} is not UTF-8 text") from None
        else:
            allowed = ", ".join((file_parts[0], *extra_fields))
            raise falcon.HTTPBadRequest(description=f"unexpected form field {name[:64]!r}: this endpoint takes {allowed}")
    return uploads, fields


def _send(resp: falcon.asgi.Response, download: Download) -> None:
    resp.content_type = download.media_type
    resp.data = download.data
    resp.downloadable_as = download.filename


class SkillsResource:
    """Routes: ``/v1/skills``, ``/{skill_id}`` (item), ``/import``."""

    def __init__(self, skills: SkillService, lists: SkillReadModels, written: ReadYourWrites) -> None:
        self._skills = skills
        self._lists = lists
        self._written = written

    async def on_post(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        uploads, fields = await read_uploads(req, ("display_name",))
        written = await run(self._skills.create, principal(req), uploads, fields.get("display_name") or None)
        await self._written.answer(resp, written)

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        query = list_query(req)
        source = optional_choice_param(req, "source", SOURCES)
        page = await run(self._lists.skills, principal(req).tenant_id, query, source)
        resp.media = page.envelope()

    async def on_get_item(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, skill_id: str) -> None:
        resp.media = await run(self._skills.retrieve, principal(req), skill_id)

    async def on_delete_item(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, skill_id: str) -> None:
        await self._written.answer(resp, await run(self._skills.delete, principal(req), skill_id))

    async def on_post_import(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        uploads, fields = await read_uploads(req, ("display_name",), IMPORT_PARTS)
        if len(uploads) != 1:
            raise falcon.HTTPBadRequest(description="send exactly one markdown document, as the form's file part")
        try:
            text = uploads[0].data.decode("utf-8")
        except UnicodeDecodeError:
            raise falcon.HTTPBadRequest(description="the markdown document is not UTF-8 text") from None
        if "\x00" in text:
            raise falcon.HTTPBadRequest(description="the markdown document may not contain a NUL character")
        written = await run(self._skills.import_markdown, principal(req), text, fields.get("display_name") or None)
        await self._written.answer(resp, written)


class SkillVersionsResource:
    """Routes: ``/v1/skills/{skill_id}/versions``, ``/{version}`` (item), ``/content``,
    ``/export``."""

    def __init__(self, skills: SkillService, lists: SkillReadModels, written: ReadYourWrites, access: WorkerAccess) -> None:
        self._skills = skills
        self._lists = lists
        self._written = written
        self._access = access

    async def on_post(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, skill_id: str) -> None:
        uploads, _ = await read_uploads(req)
        await self._written.answer(resp, await run(self._skills.create_version, principal(req), skill_id, uploads))

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, skill_id: str) -> None:
        who = principal(req)
        query = list_query(req)
        await run(self._skills.retrieve, who, skill_id)
        resp.media = (await run(self._lists.skill_versions, who.tenant_id, skill_id, query)).envelope()

    async def on_get_item(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, skill_id: str, version: str) -> None:
        # A work token too, for a skill its session's agent names: the SDK's worker downloads it.
        resp.media = await run(self._skills.retrieve_version, await self._access.skill(req, skill_id), skill_id, version)

    async def on_delete_item(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, skill_id: str, version: str) -> None:
        await self._written.answer(resp, await run(self._skills.delete_version, principal(req), skill_id, version))

    async def on_get_content(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, skill_id: str, version: str) -> None:
        _send(resp, await run(self._skills.download, await self._access.skill(req, skill_id), skill_id, version))

    async def on_get_export(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, skill_id: str, version: str) -> None:
        _send(resp, await run(self._skills.export_markdown, principal(req), skill_id, version))


def add_skill_routes(
    app: falcon.asgi.App, skills: SkillService, lists: SkillReadModels, written: ReadYourWrites, access: WorkerAccess
) -> None:
    resource = SkillsResource(skills, lists, written)
    app.add_route("/v1/skills", resource)
    app.add_route("/v1/skills/import", resource, suffix="import")
    app.add_route("/v1/skills/{skill_id}", resource, suffix="item")
    versions = SkillVersionsResource(skills, lists, written, access)
    app.add_route("/v1/skills/{skill_id}/versions", versions)
    app.add_route("/v1/skills/{skill_id}/versions/{version}", versions, suffix="item")
    for action in ("content", "export"):
        app.add_route(f"/v1/skills/{{skill_id}}/versions/{{version}}/{action}", versions, suffix=action)
