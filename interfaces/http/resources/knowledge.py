"""/v1/knowledge_bases: knowledge bases, their documents, and search over them."""

from __future__ import annotations

import base64
import binascii
import re
from email.message import Message
from email.parser import BytesParser
from email.policy import HTTP

import falcon
import falcon.asgi

from application.knowledge import KnowledgeService
from interfaces.http.common import ReadYourWrites, list_query, parse, principal, run
from interfaces.http.knowledge_schemas import DocumentCreate, KnowledgeBaseCreate, KnowledgeSearchRequest
from interfaces.http.limits import MAX_BODY_BYTES
from projections.knowledge_search import KnowledgeSearch

RAW_TYPES = ("text/plain", "text/markdown", "text/x-markdown", "application/pdf")

BOUNDARY = re.compile(r'boundary="?([^";]+)"?', re.IGNORECASE)
MAX_PARTS = 8


class Upload:
    """A document as sent, whichever way it came."""

    def __init__(self, data: bytes, media_type: str | None, filename: str | None, title: str | None) -> None:
        self.data = data
        self.media_type = media_type
        self.filename = filename
        self.title = title


async def _raw_body(req: falcon.asgi.Request) -> bytes:
    if req.content_length and req.content_length > MAX_BODY_BYTES:
        raise falcon.HTTPContentTooLarge(description="request body is larger than 8 MiB")
    raw = await req.stream.read(MAX_BODY_BYTES + 1)
    if len(raw) > MAX_BODY_BYTES:
        raise falcon.HTTPContentTooLarge(description="request body is larger than 8 MiB")
    return raw


def _check_part_count(content_type: str, raw: bytes) -> None:
    """An upload is a ``file`` part and perhaps a ``title``: a body of thousands of tiny parts
    is refused before the parser spends seconds on it."""
    found = BOUNDARY.search(content_type)
    if found is None:
        raise falcon.HTTPBadRequest(description="a multipart/form-data content type needs a boundary")
    if raw.count(b"--" + found.group(1).encode("latin-1")) > MAX_PARTS + 1:
        raise falcon.HTTPBadRequest(description=f"a document upload has at most {MAX_PARTS} form parts")


def _multipart(content_type: str, raw: bytes) -> Upload:
    """The ``file`` part (and a ``title`` part) of a multipart/form-data body."""
    message = BytesParser(policy=HTTP).parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode() + raw)
    if not message.is_multipart():
        raise falcon.HTTPBadRequest(description="the multipart body could not be parsed (is the boundary right?)")
    upload: Upload | None = None
    title = None
    for part in message.iter_parts():
        assert isinstance(part, Message)
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
        if name == "file":
            filename = part.get_filename()
            declared = part.get_content_type() if part.get("content-type") else None
            upload = Upload(data, declared, filename, None)
        elif name == "title":
            title = data.decode("utf-8", "replace").strip()[:256] or None
    if upload is None:
        raise falcon.HTTPBadRequest(description="a multipart upload needs a part named file")
    upload.title = title
    return upload


async def read_upload(req: falcon.asgi.Request) -> Upload:
    media_type = (req.content_type or "").split(";", 1)[0].strip().lower()
    if media_type == "multipart/form-data":
        raw = await _raw_body(req)
        _check_part_count(req.content_type or "", raw)
        # Parsing is CPU work on up to 8 MiB: off the event loop, as every blocking call is.
        return await run(_multipart, req.content_type or "", raw)
    if media_type in RAW_TYPES:
        return Upload(await _raw_body(req), media_type, req.get_param("filename"), req.get_param("title"))
    body = await parse(req, DocumentCreate)
    if (body.text is None) == (body.data is None):
        raise falcon.HTTPBadRequest(description="send exactly one of text and data")
    if body.text is not None:
        data = body.text.encode()
    else:
        try:
            data = base64.b64decode(body.data or "", validate=True)
        except (binascii.Error, ValueError):
            raise falcon.HTTPBadRequest(description="data must be base64") from None
    media = body.media_type or (None if body.filename else "text/plain")
    return Upload(data, media, body.filename, body.title)


class KnowledgeBasesResource:
    """Routes: ``/v1/knowledge_bases`` and, by suffix, ``/{id}`` (item), ``/documents``,
    ``/documents/{document_id}`` (document), ``/search``."""

    def __init__(self, knowledge: KnowledgeService, search: KnowledgeSearch, written: ReadYourWrites) -> None:
        self._knowledge = knowledge
        self._search = search
        self._reads = search.reads
        self._written = written

    async def on_post(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        body = await parse(req, KnowledgeBaseCreate)
        written = await run(self._knowledge.create, principal(req), body.name, body.description, body.metadata or {})
        await self._written.answer(resp, written)

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        page = await run(self._reads.bases, principal(req).tenant_id, list_query(req))
        resp.media = page.envelope()

    async def on_get_item(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, knowledge_base_id: str) -> None:
        resp.media = await run(self._knowledge.retrieve, principal(req), knowledge_base_id)

    async def on_delete_item(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, knowledge_base_id: str) -> None:
        await self._written.answer(resp, await run(self._knowledge.delete, principal(req), knowledge_base_id))

    async def on_post_documents(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, knowledge_base_id: str) -> None:
        upload = await read_upload(req)
        written = await run(
            self._knowledge.add_document,
            principal(req),
            knowledge_base_id,
            upload.data,
            upload.media_type,
            upload.filename,
            upload.title,
        )
        await self._written.answer(resp, written)

    async def on_get_documents(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, knowledge_base_id: str) -> None:
        who = principal(req)
        query = list_query(req)
        await run(self._knowledge.check, who, knowledge_base_id)
        page = await run(self._reads.documents, who.tenant_id, knowledge_base_id, query)
        resp.media = page.envelope()

    async def on_get_document(
        self, req: falcon.asgi.Request, resp: falcon.asgi.Response, knowledge_base_id: str, document_id: str
    ) -> None:
        written = await run(self._knowledge.retrieve_document, principal(req), knowledge_base_id, document_id)
        projected = await run(self._reads.document, document_id)
        # Before the read model has it, the log's own view says pending (or failed).
        resp.media = projected or written

    async def on_delete_document(
        self, req: falcon.asgi.Request, resp: falcon.asgi.Response, knowledge_base_id: str, document_id: str
    ) -> None:
        written = await run(self._knowledge.delete_document, principal(req), knowledge_base_id, document_id)
        await self._written.answer(resp, written)

    async def on_post_search(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, knowledge_base_id: str) -> None:
        body = await parse(req, KnowledgeSearchRequest)
        who = principal(req)
        await run(self._knowledge.check, who, knowledge_base_id)
        mode = self._search.effective(body.mode)
        if mode is None:
            raise falcon.HTTPBadRequest(description="this server has no vector index: use mode keyword or hybrid")
        results = await run(self._search.search, who.tenant_id, knowledge_base_id, body.query, body.limit, mode)
        resp.media = {"type": "knowledge_search_results", "mode": mode, "data": results}
