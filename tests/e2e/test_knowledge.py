"""Knowledge bases on a real server (SQLite and PostgreSQL): create, upload text, markdown and
PDF (JSON and multipart), indexing to ready, search that cites document and position, bad
uploads refused with a 4xx, deletes that take documents out of search."""

from __future__ import annotations

import base64
import time
from typing import Any

import httpx
import pytest

from application.api_keys import generate_key as generate_api_key
from tests.support.pdf import tiny_pdf
from tests.support.server import RunningServer

MARKDOWN = (
    "# Backups\n\nThe nightly database backup runs at 02:00 UTC and keeps dumps for 30 days.\n\n"
    "## Restore\n\nTo restore, stop the API and load the dump with pg_restore.\n"
)


def _ok(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    return response.json()


def _ready(http: httpx.Client, base_id: str, document_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 20
    while True:
        document = _ok(http.get(f"/v1/knowledge_bases/{base_id}/documents/{document_id}"))
        if document["status"] in ("ready", "failed") or time.monotonic() > deadline:
            return document
        time.sleep(0.1)


def _search(http: httpx.Client, base_id: str, query: str, **extra: Any) -> dict[str, Any]:
    return _ok(http.post(f"/v1/knowledge_bases/{base_id}/search", json={"query": query, **extra}))


@pytest.fixture
def base(http: httpx.Client) -> dict[str, Any]:
    return _ok(http.post("/v1/knowledge_bases", json={"name": "Runbooks", "description": "ops", "metadata": {"team": "sre"}}))


def test_a_knowledge_base_is_created_listed_retrieved_and_deleted(http: httpx.Client, base: dict[str, Any]) -> None:
    assert base["type"] == "knowledge_base" and base["id"].startswith("kb_")
    assert base["name"] == "Runbooks" and base["metadata"] == {"team": "sre"}
    assert _ok(http.get(f"/v1/knowledge_bases/{base['id']}")) == base
    assert base["id"] in [item["id"] for item in _ok(http.get("/v1/knowledge_bases"))["data"]]
    assert _ok(http.delete(f"/v1/knowledge_bases/{base['id']}")) == {"type": "knowledge_base_deleted", "id": base["id"]}
    assert http.get(f"/v1/knowledge_bases/{base['id']}").status_code == 404
    assert base["id"] not in [item["id"] for item in _ok(http.get("/v1/knowledge_bases"))["data"]]
    assert http.post(f"/v1/knowledge_bases/{base['id']}/documents", json={"text": "x"}).status_code == 404


def test_text_markdown_and_pdf_are_indexed_and_search_cites_document_and_position(
    http: httpx.Client, base: dict[str, Any]
) -> None:
    documents = f"/v1/knowledge_bases/{base['id']}/documents"
    text = _ok(http.post(documents, json={"text": "Deployments roll out through the CI pipeline.", "title": "Deploys"}))
    assert text["type"] == "knowledge_document" and text["status"] == "pending" and text["media_type"] == "text/plain"
    markdown = _ok(http.post(documents, files={"file": ("runbook.md", MARKDOWN.encode(), "text/markdown")}))
    assert markdown["filename"] == "runbook.md" and markdown["title"] == "runbook.md"
    pdf_bytes = tiny_pdf(["Holiday policy overview", "Employees receive 28 vacation days per year"])
    pdf = _ok(http.post(documents, files={"file": ("policy.pdf", pdf_bytes, "application/pdf")}, data={"title": "Policy"}))
    assert pdf["media_type"] == "application/pdf" and pdf["title"] == "Policy"
    raw = _ok(
        http.post(
            documents,
            params={"filename": "raw.md", "title": "Raw notes"},
            content=b"# Raw\n\nSent as the body itself.",
            headers={"content-type": "text/markdown; charset=utf-8"},
        )
    )
    assert raw["media_type"] == "text/markdown" and raw["filename"] == "raw.md" and raw["title"] == "Raw notes"
    as_base64 = _ok(
        http.post(documents, json={"data": base64.b64encode(pdf_bytes).decode(), "filename": "copy.pdf"})
    )
    for document in (text, markdown, pdf, as_base64, raw):
        ready = _ready(http, base["id"], document["id"])
        assert ready["status"] == "ready", ready
        assert ready["chunk_count"] >= 1
    assert _ready(http, base["id"], pdf["id"])["page_count"] == 2
    listed = _ok(http.get(documents))["data"]
    assert {item["id"] for item in listed} == {text["id"], markdown["id"], pdf["id"], as_base64["id"], raw["id"]}
    assert all(item["status"] == "ready" for item in listed)

    found = _search(http, base["id"], "how many vacation days")
    assert found["type"] == "knowledge_search_results" and found["mode"] == "hybrid"
    top = found["data"][0]
    assert top["semantic_rank"] is not None and top["keyword_rank"] is not None
    assert top["document_id"] in (pdf["id"], as_base64["id"]) and top["page"] == 2
    assert "28 vacation days" in top["snippet"] and top["start"] < top["end"] and top["chunk_index"] == 1

    restore = _search(http, base["id"], "pg_restore the dump", mode="keyword")["data"][0]
    assert restore["document_id"] == markdown["id"] and restore["filename"] == "runbook.md"
    assert restore["heading"] == "Restore" and restore["keyword_rank"] == 1
    assert MARKDOWN[restore["start"] : restore["end"]] == restore["snippet"]

    assert _ok(http.delete(f"{documents}/{markdown['id']}")) == {"type": "knowledge_document_deleted", "id": markdown["id"]}
    assert http.get(f"{documents}/{markdown['id']}").status_code == 404
    for mode in ("hybrid", "semantic", "keyword"):
        after = _search(http, base["id"], "pg_restore the dump", mode=mode)["data"]
        # Meaning always finds a nearest passage: the deleted document is not among them.
        assert (mode == "keyword" or after) and markdown["id"] not in {result["document_id"] for result in after}

    _ok(http.delete(f"/v1/knowledge_bases/{base['id']}"))
    assert http.get(documents).status_code == 404
    assert http.post(f"/v1/knowledge_bases/{base['id']}/search", json={"query": "vacation"}).status_code == 404


def test_bad_uploads_are_refused_with_a_clear_4xx(http: httpx.Client, base: dict[str, Any]) -> None:
    documents = f"/v1/knowledge_bases/{base['id']}/documents"

    def refused(status: int, fragment: str, **request: Any) -> None:
        response = http.post(documents, **request)
        assert response.status_code == status, response.text
        error = response.json()["error"]
        assert fragment in error["message"], error

    refused(415, "application/json", content=b"<doc/>", headers={"content-type": "application/xml"})
    refused(400, "empty", content=b"   ", headers={"content-type": "text/plain"})
    refused(400, "exactly one", json={})
    refused(400, "not a PDF", files={"file": ("fake.pdf", b"hello there", "application/pdf")})
    refused(400, "UTF-8", files={"file": ("latin.txt", "café".encode("latin-1"), "text/plain")})
    refused(400, "must be one of", files={"file": ("image.png", b"\x89PNG....", "image/png")})
    refused(400, "file", files={"other": ("a.txt", b"hi", "text/plain")})
    refused(413, "8 MiB", content=b"a" * (8 * 1024 * 1024 + 1), headers={"content-type": "text/plain"})
    refused(400, "NUL", content=b"x", params={"title": "a\u0000b"}, headers={"content-type": "text/plain"})
    refused(400, "base64", json={"data": "!!not base64!!", "media_type": "application/pdf"})
    assert http.post("/v1/knowledge_bases/kb_doesnotexist1234/documents", json={"text": "x"}).status_code == 404
    assert _ok(http.get(documents))["data"] == []
    # A form field is not JSON: a NUL in it is dropped, not stored (PostgreSQL text holds none).
    named = _ok(http.post(documents, files={"file": ("ab.txt", b"hello", "text/plain")}, data={"title": "t\u0000"}))
    assert named["filename"] == "ab.txt" and named["title"] == "t"
    http.delete(f"{documents}/{named['id']}")

    broken = _ok(http.post(documents, files={"file": ("broken.pdf", b"%PDF-1.4\nno objects here", "application/pdf")}))
    assert broken["status"] == "failed" and "PDF" in broken["status_reason"]
    assert _ready(http, base["id"], broken["id"])["status"] == "failed"

    bad_search = http.post(f"/v1/knowledge_bases/{base['id']}/search", json={"query": ""})
    assert bad_search.status_code == 400


def test_another_tenant_finds_nothing(server: RunningServer, http: httpx.Client, base: dict[str, Any]) -> None:
    document = _ok(http.post(f"/v1/knowledge_bases/{base['id']}/documents", json={"text": "secret plans for the launch"}))
    assert _ready(http, base["id"], document["id"])["status"] == "ready"
    key = generate_api_key()
    server.platform.services.api_keys.issue(key, name="other", tenant_id="other-tenant")
    with httpx.Client(base_url=server.base_url, headers={"x-api-key": key}, timeout=20) as stranger:
        assert _ok(stranger.get("/v1/knowledge_bases"))["data"] == []
        for path in ("", "/documents", f"/documents/{document['id']}"):
            assert stranger.get(f"/v1/knowledge_bases/{base['id']}{path}").status_code == 404
        assert stranger.post(f"/v1/knowledge_bases/{base['id']}/search", json={"query": "launch plans"}).status_code == 404
        assert stranger.post(f"/v1/knowledge_bases/{base['id']}/documents", json={"text": "x"}).status_code == 404
        assert stranger.delete(f"/v1/knowledge_bases/{base['id']}").status_code == 404
        own = _ok(stranger.post("/v1/knowledge_bases", json={"name": "mine"}))
        assert _ok(stranger.post(f"/v1/knowledge_bases/{own['id']}/search", json={"query": "launch plans"}))["data"] == []
