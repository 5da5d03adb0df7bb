"""The knowledge-base endpoints in the API description (``api_description.OPERATIONS`` takes
them in one line)."""

from __future__ import annotations

from typing import Any

from interfaces.http import knowledge_schemas as kb
from interfaces.http.api_description import BODY, LIST_QUERY, WRITE, Operation, Param, path_id

BASE = path_id("knowledge_base_id", "kb")
DOCUMENT = path_id("document_id", "kdoc")
TAG = "knowledge"
TEXT = {"type": "string", "minLength": 1}
BINARY = {"type": "string", "format": "binary"}
UPLOADS: dict[str, dict[str, Any]] = {
    "multipart/form-data": {
        "type": "object",
        "properties": {"file": BINARY, "title": {"type": "string", "maxLength": 256}},
        "required": ["file"],
    },
    "text/plain": TEXT,
    "text/markdown": TEXT,
    "application/pdf": BINARY,
}
RAW_NAMES = (
    Param("filename", "query", {"type": "string", "maxLength": 255}, "a raw upload's file name"),
    Param("title", "query", {"type": "string", "maxLength": 256}, "a raw upload's title (default: its file name)"),
)

KNOWLEDGE_OPERATIONS: tuple[Operation, ...] = (
    Operation(
        "post", "/v1/knowledge_bases", "createKnowledgeBase", "Create a knowledge base", TAG, kb.KnowledgeBase,
        request=kb.KnowledgeBaseCreate, errors=WRITE,
    ),
    Operation(
        "get", "/v1/knowledge_bases", "listKnowledgeBases", "List knowledge bases, newest first", TAG,
        kb.KnowledgeBasePage, params=LIST_QUERY, errors=(400,),
    ),
    Operation(
        "get", "/v1/knowledge_bases/{knowledge_base_id}", "getKnowledgeBase", "Retrieve a knowledge base", TAG,
        kb.KnowledgeBase, params=(BASE,), errors=(404,),
    ),
    Operation(
        "delete", "/v1/knowledge_bases/{knowledge_base_id}", "deleteKnowledgeBase",
        "Delete a knowledge base and its documents (their history stays in the log)", TAG,
        kb.KnowledgeBaseDeleted, params=(BASE,), errors=(404,),
    ),
    Operation(
        "post", "/v1/knowledge_bases/{knowledge_base_id}/documents", "createKnowledgeDocument",
        "Upload a document (text, markdown or PDF)", TAG, kb.KnowledgeDocument, request=kb.DocumentCreate,
        request_content={media: {"schema": schema} for media, schema in UPLOADS.items()}, params=(BASE, *RAW_NAMES), errors=(*BODY, 404),
        description=(
            "JSON with `text`, or `data` (base64, e.g. a PDF); or `multipart/form-data` with a `file` part "
            "(and optional `title`); or the file itself as the body (`text/plain`, `text/markdown`, "
            "`application/pdf`; `filename` and `title` in the query). At most 8 MiB. An empty document, bytes that are not the declared type "
            "(a PDF without `%PDF-`, text that is not UTF-8) or an unsupported type: 400/415, nothing stored. "
            "A PDF whose text cannot be read is stored with status `failed` and a `status_reason`."
        ),
    ),
    Operation(
        "get", "/v1/knowledge_bases/{knowledge_base_id}/documents", "listKnowledgeDocuments",
        "List a knowledge base's documents, newest first", TAG, kb.KnowledgeDocumentPage,
        params=(BASE, *LIST_QUERY), errors=(400, 404),
    ),
    Operation(
        "get", "/v1/knowledge_bases/{knowledge_base_id}/documents/{document_id}", "getKnowledgeDocument",
        "Retrieve a document and its indexing status", TAG, kb.KnowledgeDocument, params=(BASE, DOCUMENT),
        errors=(404,),
    ),
    Operation(
        "delete", "/v1/knowledge_bases/{knowledge_base_id}/documents/{document_id}", "deleteKnowledgeDocument",
        "Delete a document (it leaves search results)", TAG, kb.KnowledgeDocumentDeleted,
        params=(BASE, DOCUMENT), errors=(404,),
    ),
    Operation(
        "post", "/v1/knowledge_bases/{knowledge_base_id}/search", "searchKnowledgeBase",
        "Search a knowledge base by meaning and keywords", TAG, kb.KnowledgeSearchResults,
        request=kb.KnowledgeSearchRequest, params=(BASE,), errors=(*BODY, 404),
        description=(
            "Each result cites its document (id, title, filename) and where in it the passage is (chunk "
            "index, character offsets, page for a PDF, heading for markdown). `hybrid` fuses the semantic "
            "and keyword rankings by reciprocal rank. Without a vector index `hybrid` is keywords alone (the answer's `mode` says so) and `semantic` is a 400."
        ),
    ),
)
