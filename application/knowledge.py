"""Use cases of knowledge bases and their documents.

An upload is one command: its bytes go to the blob store (the events name the blob's key),
its text is extracted and chunked, and the document with its chunks is recorded in one
atomic append. Text the server cannot read from a PDF is not a refused request: the document
is recorded as ``failed`` with the reason, so the tenant sees what happened to it. Bytes that
are not what they claim to be (a "PDF" without the PDF header, text that is not UTF-8, an
empty file) are refused (400) and nothing is stored.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from application.commands import Commands, Kind, Written
from application.errors import Invalid, NotFound
from application.ids import new_id
from application.ports import BlobStore, EventStore
from application.tenancy import Principal
from application.views import iso
from domain.knowledge import MEDIA_TYPES, Document, KnowledgeBase, NothingToIndex

MAX_DOCUMENT_BYTES = 8 * 1024 * 1024
MAX_TITLE = 256
MAX_FILENAME = 255
# How much of an unreadable PDF's error the failure reason keeps.
MAX_REASON = 300


class Unreadable(Exception):
    """The bytes are of the claimed type but no text could be had from them (the reason
    is shown to the tenant)."""


@dataclass(frozen=True)
class ExtractedText:
    """A document's text; ``page_starts`` are the offsets where each page begins (PDF)."""

    text: str
    page_starts: tuple[int, ...] = ()


class PdfText(Protocol):
    def extract(self, data: bytes) -> ExtractedText:
        """Raises ``Unreadable`` when the PDF cannot be parsed."""
        ...


def render_base(base: KnowledgeBase) -> dict[str, Any]:
    return knowledge_base_view(
        base.knowledge_base_id, base.name, base.description, base.metadata, base.created_on
    )


def knowledge_base_view(
    knowledge_base_id: str, name: str, description: str | None, metadata: dict[str, str], created_at: datetime
) -> dict[str, Any]:
    return {
        "type": "knowledge_base",
        "id": knowledge_base_id,
        "name": name,
        "description": description,
        "metadata": metadata,
        "created_at": iso(created_at),
    }


def render_document(document: Document) -> dict[str, Any]:
    return {
        "type": "knowledge_document",
        "id": document.document_id,
        "knowledge_base_id": document.knowledge_base_id,
        "filename": document.filename,
        "title": document.title,
        "media_type": document.media_type,
        "size_bytes": document.size_bytes,
        # Only the reads know whether the indexes have caught up: a write says pending.
        "status": "failed" if document.status == "failed" else "pending",
        "status_reason": document.failure,
        "chunk_count": document.chunk_count,
        "characters": document.characters,
        "page_count": document.page_count,
        "created_at": iso(document.created_on),
    }


BASES: Kind[KnowledgeBase] = Kind(KnowledgeBase, "kb", "knowledge base", gone=lambda base: base.deleted)
DOCUMENTS: Kind[Document] = Kind(Document, "kdoc", "document", gone=lambda document: document.deleted)


def media_type_of(declared: str | None, filename: str | None) -> str:
    """The document's media type: the one declared, else guessed from the file's name."""
    media_type = (declared or "").split(";", 1)[0].strip().lower()
    if media_type in ("", "application/octet-stream") and filename:
        suffix = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
        media_type = {"md": "text/markdown", "markdown": "text/markdown", "pdf": "application/pdf"}.get(
            suffix, "text/plain" if suffix in ("txt", "text") else media_type
        )
    if media_type == "text/x-markdown":
        media_type = "text/markdown"
    if media_type not in MEDIA_TYPES:
        raise Invalid(f"a document must be one of {', '.join(MEDIA_TYPES)} (got {media_type or 'none'!r})")
    return media_type


def _clean(text: str) -> str:
    # PostgreSQL text cannot hold a NUL; it carries no meaning in a document's text.
    return text.replace("\x00", "")


def _label(value: str | None, most: int) -> str | None:
    """A file name or title as sent (a form field or query parameter, unchecked by JSON
    parsing): storable (no NUL, no lone surrogate) and bounded."""
    if value is None:
        return None
    value = _clean(value).encode("utf-8", "replace").decode("utf-8").strip()[:most]
    return value or None


class KnowledgeService:
    def __init__(self, store: EventStore, blobs: BlobStore, pdf: PdfText) -> None:
        self._bases = Commands(store, BASES, render_base)
        self._documents = Commands(store, DOCUMENTS, render_document)
        self._blobs = blobs
        self._pdf = pdf

    # -- knowledge bases -------------------------------------------------------------------

    def create(self, who: Principal, name: str, description: str | None, metadata: dict[str, str]) -> Written:
        base = KnowledgeBase(
            knowledge_base_id=new_id("kb"),
            tenant_id=who.tenant_id,
            name=name,
            description=description,
            metadata=metadata,
        )
        return self._bases.create(base)

    def retrieve(self, who: Principal, knowledge_base_id: str) -> dict[str, Any]:
        return self._bases.view(who, knowledge_base_id)

    def check(self, who: Principal, knowledge_base_id: str) -> None:
        """That the caller has this (live) knowledge base: 404 otherwise."""
        self._bases.load(who, knowledge_base_id)

    def delete(self, who: Principal, knowledge_base_id: str) -> Written:
        written = self._bases.change(who, knowledge_base_id, lambda base: base.delete())
        return Written({"type": "knowledge_base_deleted", "id": knowledge_base_id}, written.position)

    # -- documents -------------------------------------------------------------------------

    def add_document(
        self,
        who: Principal,
        knowledge_base_id: str,
        data: bytes,
        media_type: str | None,
        filename: str | None = None,
        title: str | None = None,
    ) -> Written:
        self._bases.load(who, knowledge_base_id)
        filename, title = _label(filename, MAX_FILENAME), _label(title, MAX_TITLE)
        kind = media_type_of(media_type, filename)
        if not data.strip():
            raise Invalid("the document is empty")
        if len(data) > MAX_DOCUMENT_BYTES:
            raise Invalid(f"a document may be at most {MAX_DOCUMENT_BYTES // (1024 * 1024)} MiB")
        extracted: ExtractedText | None = None
        reason: str | None = None
        if kind == "application/pdf":
            if not data.lstrip()[:5] == b"%PDF-":
                raise Invalid("the document is not a PDF (it does not start with %PDF-)")
            try:
                extracted = self._pdf.extract(data)
            except Unreadable as unreadable:
                reason = f"the PDF could not be read: {str(unreadable)[:MAX_REASON]}"
            else:
                if not extracted.text.strip():
                    reason = "the PDF holds no text (a scan without a text layer?)"
        else:
            try:
                extracted = ExtractedText(data.decode("utf-8-sig"))
            except UnicodeDecodeError:
                raise Invalid(f"a {kind} document must be UTF-8 text") from None
            if not _clean(extracted.text).strip():
                raise Invalid("the document holds no text")
        document = Document(
            document_id=new_id("kdoc"),
            tenant_id=who.tenant_id,
            knowledge_base_id=knowledge_base_id,
            filename=filename,
            title=(title or filename or "Untitled document")[:MAX_TITLE],
            media_type=kind,
            size_bytes=len(data),
            blob_key=self._blobs.put(data),
        )
        if extracted is not None and reason is None:
            try:
                document.index(_clean(extracted.text), extracted.page_starts)
            except NothingToIndex as empty:
                reason = str(empty)
        if reason is not None:
            document.fail(reason)
        return self._documents.create(document)

    def document(self, who: Principal, knowledge_base_id: str, document_id: str) -> Document:
        """The caller's document of this (live) knowledge base: 404 otherwise."""
        self._bases.load(who, knowledge_base_id)
        document = self._documents.load(who, document_id)
        if document.knowledge_base_id != knowledge_base_id:
            raise NotFound(f"document {document_id!r} not found")
        return document

    def retrieve_document(self, who: Principal, knowledge_base_id: str, document_id: str) -> dict[str, Any]:
        return render_document(self.document(who, knowledge_base_id, document_id))

    def content(self, who: Principal, knowledge_base_id: str, document_id: str) -> tuple[bytes, str]:
        document = self.document(who, knowledge_base_id, document_id)
        return self._blobs.get(document.blob_key), document.media_type

    def delete_document(self, who: Principal, knowledge_base_id: str, document_id: str) -> Written:
        self.document(who, knowledge_base_id, document_id)
        written = self._documents.change(who, document_id, lambda document: document.delete())
        return Written({"type": "knowledge_document_deleted", "id": document_id}, written.position)
