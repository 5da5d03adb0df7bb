"""Edges where uploads of different kinds meet (SQLite and PostgreSQL): files, skills and
knowledge documents share the blob store but a file's delete never reaches another kind's
bytes; deleting a knowledge base leaves none of its text in the read models; uploads whose
multipart headers are not text, or that hold thousands of parts, are 400s."""

from __future__ import annotations

import hashlib
import io
import zipfile
from typing import Any

import httpx
import sqlalchemy as sa

from application.api_keys import generate_key as generate_api_key
from projections.knowledge_tables import knowledge_chunks, knowledge_documents, knowledge_terms
from tests.support.server import RunningServer

SKILL_MD = b"---\nname: shared-bytes\ndescription: Bytes another tenant can guess.\n---\nUse it.\n"


def _ok(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    return response.json()


def test_deleting_a_file_never_removes_a_skills_bytes_even_another_tenants(server: RunningServer, http: httpx.Client) -> None:
    skill = _ok(http.post("/v1/skills", files=[("files[]", ("shared-bytes/SKILL.md", SKILL_MD, "text/markdown"))]))
    key = generate_api_key()
    server.platform.services.api_keys.issue(key, name="other", tenant_id="other-tenant")
    with httpx.Client(base_url=server.base_url, headers={"x-api-key": key}, timeout=20) as other:
        uploaded = _ok(other.post("/v1/files", files={"file": ("guess.md", SKILL_MD, "text/markdown")}))
        assert other.delete(f"/v1/files/{uploaded['id']}").status_code == 200
    # The deleted file's bytes are gone from the files' own store …
    assert not server.platform.services.files._blobs.exists(hashlib.sha256(SKILL_MD).hexdigest())
    # … and the skill still downloads whole.
    content = http.get(f"/v1/skills/{skill['id']}/versions/latest/content")
    assert content.status_code == 200
    assert zipfile.ZipFile(io.BytesIO(content.content)).read("shared-bytes/SKILL.md") == SKILL_MD


def test_deleting_a_knowledge_base_leaves_none_of_its_text_in_the_read_models(server: RunningServer, http: httpx.Client) -> None:
    base = _ok(http.post("/v1/knowledge_bases", json={"name": "gone soon"}))
    document = _ok(http.post(f"/v1/knowledge_bases/{base['id']}/documents", json={"text": "Confidential plans for the harvest."}))
    assert http.delete(f"/v1/knowledge_bases/{base['id']}").status_code == 200
    assert server.platform.projections.wait_for(server.platform.store.max_notification_id(), 10)
    with server.platform.projections.engine.connect() as conn:
        for table in (knowledge_chunks, knowledge_terms, knowledge_documents):
            column = table.c.document_id if "document_id" in table.c else table.c.id
            assert conn.execute(sa.select(sa.func.count()).where(column == document["id"])).scalar() == 0, table.name


def test_multipart_headers_that_are_not_text_and_part_floods_are_400s(http: httpx.Client) -> None:
    boundary = "b0undary"
    for name, filename in (("files[]", b"\xff\xfe/SKILL.md"), (b"\xff", b"a/SKILL.md")):
        name_bytes = name if isinstance(name, bytes) else name.encode()
        body = (
            f"--{boundary}\r\n".encode()
            + b'Content-Disposition: form-data; name="' + name_bytes + b'"; filename="' + filename + b'"\r\n\r\n'
            + SKILL_MD + f"\r\n--{boundary}--\r\n".encode()
        )  # fmt: skip
        response = http.post("/v1/skills", content=body, headers={"content-type": f"multipart/form-data; boundary={boundary}"})
        assert response.status_code == 400, response.text
    base = _ok(http.post("/v1/knowledge_bases", json={"name": "flooded"}))
    flood = b"".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="p{n}"\r\n\r\nx\r\n'.encode() for n in range(1000)
    ) + f"--{boundary}--\r\n".encode()
    response = http.post(
        f"/v1/knowledge_bases/{base['id']}/documents", content=flood,
        headers={"content-type": f"multipart/form-data; boundary={boundary}"},
    )  # fmt: skip
    assert response.status_code == 400 and "at most" in response.json()["error"]["message"], response.text


def test_another_workspace_reaches_no_memory_store_or_skill(server: RunningServer, http: httpx.Client) -> None:
    store = _ok(http.post("/v1/memory_stores", json={"name": "mine"}))
    memory = _ok(http.post(f"/v1/memory_stores/{store['id']}/memories", json={"path": "/a.md", "content": "secret plans"}))
    skill = _ok(http.post("/v1/skills", files=[("files[]", ("shared-bytes/SKILL.md", SKILL_MD, "text/markdown"))]))
    key = generate_api_key()
    server.platform.services.api_keys.issue(key, name="other", tenant_id="other-tenant")
    with httpx.Client(base_url=server.base_url, headers={"x-api-key": key}, timeout=20) as other:
        tries = [
            other.get(f"/v1/memory_stores/{store['id']}"),
            other.get(f"/v1/memory_stores/{store['id']}/memories"),
            other.get(f"/v1/memory_stores/{store['id']}/memories/{memory['id']}"),
            other.post(f"/v1/memory_stores/{store['id']}/memories", json={"path": "/b.md", "content": "x"}),
            other.post(f"/v1/memory_stores/{store['id']}/search", json={"query": "plans", "limit": 5}),
            other.get(f"/v1/memory_stores/{store['id']}/memory_versions"),
            other.delete(f"/v1/memory_stores/{store['id']}"),
            other.get(f"/v1/skills/{skill['id']}"),
            other.get(f"/v1/skills/{skill['id']}/versions/latest/content"),
            other.delete(f"/v1/skills/{skill['id']}"),
        ]
        assert [response.status_code for response in tries] == [404] * len(tries), [r.text for r in tries]
        assert _ok(other.get("/v1/memory_stores"))["data"] == [] and _ok(other.get("/v1/skills"))["data"] == []
    assert _ok(http.get(f"/v1/memory_stores/{store['id']}/memories/{memory['id']}"))["content"] == "secret plans"
