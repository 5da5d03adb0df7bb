"""Requests and responses of knowledge bases, their documents and search (Exo's and Helix's
names: a knowledge base, its documents; Agentry's envelope and ids)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator

from interfaces.http.responses import Described, Paged
from interfaces.http.schemas import Strict, check_metadata

Name = Annotated[str, Field(min_length=1, max_length=255)]
DocumentStatus = Literal["pending", "indexing", "ready", "failed"]
MediaType = Literal["text/plain", "text/markdown", "application/pdf"]
MAX_TEXT = 4 * 1024 * 1024
MAX_BASE64 = 6 * 1024 * 1024


class KnowledgeBaseCreate(Strict):
    name: Name
    description: Annotated[str, Field(max_length=10_000)] | None = None
    metadata: dict[str, str] | None = None

    _metadata = field_validator("metadata")(lambda cls, v: check_metadata(v))


class DocumentCreate(Strict):
    """A document as JSON: its text (`text/plain`, `text/markdown`), or any supported file as
    base64 (`data`). The same endpoint takes `multipart/form-data` with a `file` part."""

    text: Annotated[str, Field(min_length=1, max_length=MAX_TEXT)] | None = None
    data: Annotated[str, Field(min_length=1, max_length=MAX_BASE64)] | None = Field(
        default=None, description="the file's bytes, base64 (for a PDF)"
    )
    media_type: MediaType | None = Field(default=None, description="default: from `filename`, else `text/plain`")
    filename: Annotated[str, Field(min_length=1, max_length=255)] | None = None
    title: Annotated[str, Field(min_length=1, max_length=256)] | None = None


class KnowledgeSearchRequest(Strict):
    query: Annotated[str, Field(min_length=1, max_length=2000)]
    limit: Annotated[int, Field(ge=1, le=50)] = 5
    mode: Literal["hybrid", "semantic", "keyword"] = Field(
        default="hybrid", description="`hybrid` blends meaning and keywords (reciprocal rank fusion)"
    )


class KnowledgeBase(Described):
    type: Literal["knowledge_base"]
    id: str
    name: str
    description: str | None
    metadata: dict[str, str]
    created_at: str


class KnowledgeBasePage(Paged):
    data: list[KnowledgeBase]


class KnowledgeBaseDeleted(Described):
    type: Literal["knowledge_base_deleted"]
    id: str


class KnowledgeDocument(Described):
    type: Literal["knowledge_document"]
    id: str
    knowledge_base_id: str
    filename: str | None
    title: str
    media_type: MediaType
    size_bytes: int
    status: DocumentStatus = Field(
        description="`pending` (accepted, not yet indexed) → `indexing` (keyword index has it, embedding) → `ready`; "
        "`failed` with `status_reason`"
    )
    status_reason: str | None
    chunk_count: int
    characters: int
    page_count: int | None
    created_at: str


class KnowledgeDocumentPage(Paged):
    data: list[KnowledgeDocument]


class KnowledgeDocumentDeleted(Described):
    type: Literal["knowledge_document_deleted"]
    id: str


class KnowledgeSearchResult(Described):
    type: Literal["knowledge_search_result"]
    document_id: str
    title: str
    filename: str | None
    chunk_index: int
    start: int = Field(description="offset of the chunk's first character in the document's extracted text")
    end: int = Field(description="offset just past its last character")
    page: int | None = Field(description="PDF: the page the chunk starts on (1-based)")
    heading: str | None = Field(description="markdown: the heading the chunk sits under")
    snippet: str
    score: float
    keyword_rank: int | None
    semantic_rank: int | None


class KnowledgeSearchResults(Described):
    type: Literal["knowledge_search_results"]
    mode: Literal["hybrid", "semantic", "keyword"]
    data: list[KnowledgeSearchResult]
