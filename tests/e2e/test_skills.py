"""Skills through the official anthropic SDK on a real server (SQLite and PostgreSQL): create
with ``files[]`` tuples, list, retrieve, versions (create, list, ``latest``, delete), the zip
download, refused uploads, the single-markdown import and export, and delete."""

from __future__ import annotations

import io
import zipfile

import anthropic
import httpx
import pytest

from tests.support.server import RunningServer

SKILL_MD = b"""---
name: pdf-tools
description: Fill and merge PDF forms.
---

# PDF tools

Run `scripts/fill.py` to fill a form.
"""


def skill_md(name: str = "pdf-tools", description: str = "Fill and merge PDF forms.") -> bytes:
    return SKILL_MD.replace(b"pdf-tools", name.encode()).replace(b"Fill and merge PDF forms.", description.encode())


def files(folder: str = "pdf-tools", body: bytes | None = None) -> list[tuple[str, bytes, str]]:
    return [
        (f"{folder}/SKILL.md", body if body is not None else skill_md(folder), "text/markdown"),
        (f"{folder}/scripts/fill.py", b"print('filled')\n", "text/x-python"),
    ]


def refusal(call) -> anthropic.APIStatusError:  # noqa: ANN001
    with pytest.raises(anthropic.APIStatusError) as caught:
        call()
    return caught.value


def test_skill_lifecycle(client: anthropic.Anthropic) -> None:
    skill = client.beta.skills.create(files=files())
    assert skill.type == "skill" and skill.id.startswith("skill_")
    assert skill.display_name == "pdf-tools"  # from the front matter's name
    assert skill.source.type == "custom"
    first = skill.latest_version_id

    assert client.beta.skills.retrieve(skill.id).model_dump() == skill.model_dump()
    listed = client.beta.skills.list()
    assert [item.id for item in listed.data] == [skill.id]
    assert client.beta.skills.list(source="custom").data[0].id == skill.id
    assert client.beta.skills.list(source="anthropic").data == []

    version = client.beta.skills.versions.retrieve("latest", skill_id=skill.id)
    assert (version.id, version.name, version.skill_id) == (first, "pdf-tools", skill.id)
    assert version.description == "Fill and merge PDF forms."

    second = client.beta.skills.versions.create(skill.id, files=files(body=skill_md(description="Second version.")))
    assert second.type == "skill_version" and second.description == "Second version."
    assert client.beta.skills.retrieve(skill.id).latest_version_id == second.id
    assert client.beta.skills.versions.retrieve("latest", skill_id=skill.id).id == second.id
    assert client.beta.skills.versions.retrieve(first, skill_id=skill.id).id == first
    assert [item.id for item in client.beta.skills.versions.list(skill.id).data] == [second.id, first]
    page = client.beta.skills.versions.list(skill.id, limit=1)
    assert [item.id for item in page.data] == [second.id] and page.has_next_page()

    archive = client.beta.skills.versions.download(first, skill_id=skill.id)
    with zipfile.ZipFile(io.BytesIO(archive.read())) as opened:
        assert sorted(opened.namelist()) == ["pdf-tools/SKILL.md", "pdf-tools/scripts/fill.py"]
        assert opened.read("pdf-tools/SKILL.md") == skill_md()

    deleted = client.beta.skills.versions.delete("latest", skill_id=skill.id)
    assert (deleted.id, deleted.type) == (second.id, "skill_version_deleted")
    assert client.beta.skills.retrieve(skill.id).latest_version_id == first
    assert [item.id for item in client.beta.skills.versions.list(skill.id).data] == [first]
    assert refusal(lambda: client.beta.skills.versions.retrieve(second.id, skill_id=skill.id)).status_code == 404
    # The only version left cannot go: a skill always has one.
    assert refusal(lambda: client.beta.skills.versions.delete(first, skill_id=skill.id)).status_code == 400

    gone = client.beta.skills.delete(skill.id)
    assert (gone.id, gone.type) == (skill.id, "skill_deleted")
    assert refusal(lambda: client.beta.skills.retrieve(skill.id)).status_code == 404
    assert client.beta.skills.list().data == []
    # Its name is free again.
    assert client.beta.skills.create(files=files(), display_name="PDF tools").display_name == "PDF tools"


def _blobs(server: RunningServer) -> set[str]:
    root = server.settings.blob_dir
    return {path.name for path in root.rglob("*") if path.is_file()} if root.exists() else set()


def test_names_are_unique_and_fixed(client: anthropic.Anthropic, server: RunningServer) -> None:
    skill = client.beta.skills.create(files=files("notes"))
    stored = _blobs(server)
    assert len(stored) == 2  # SKILL.md and the script, by content
    different = [("notes/SKILL.md", skill_md("notes", "Other."), "text/markdown"), ("notes/x.txt", b"new", "text/plain")]
    taken = refusal(lambda: client.beta.skills.create(files=different))
    assert taken.status_code == 409
    assert isinstance(taken.body, dict) and taken.body["error"]["error_code"] == "skill_name_taken"
    # Every later upload must resolve to the skill's first name.
    renamed = refusal(lambda: client.beta.skills.versions.create(skill.id, files=files("other")))
    assert renamed.status_code == 400 and "'notes'" in renamed.message
    # Refused uploads stored no bytes.
    assert _blobs(server) == stored


@pytest.mark.parametrize(
    ("uploads", "says"),
    [
        ([("a/README.md", b"x", "text/plain")], "a/SKILL.md is missing"),
        ([("a/SKILL.md", SKILL_MD, "text/markdown"), ("b/x.txt", b"x", "text/plain")], "one top-level folder"),
        ([("a/../SKILL.md", SKILL_MD, "text/markdown")], "'..'"),
        ([("/a/SKILL.md", SKILL_MD, "text/markdown")], "relative"),
        ([("SKILL.md", SKILL_MD, "text/markdown")], "top-level folder"),
        ([("a/SKILL.md", b"# no front matter", "text/markdown")], "front matter"),
        ([("a/SKILL.md", b"---\nname: a\n---\n", "text/markdown")], "description"),
        ([("a/SKILL.md", b"---\nname: Not A Slug\ndescription: d\n---\n", "text/markdown")], "kebab-case"),
        ([("a/SKILL.md", b"\xff\xfe", "text/markdown")], "UTF-8"),
        ([b"Example data"], "has no filename"),
    ],
)
def test_bad_uploads_are_400s(client: anthropic.Anthropic, uploads: list, says: str) -> None:  # type: ignore[type-arg]
    error = refusal(lambda: client.beta.skills.create(files=uploads))
    assert error.status_code == 400, error.message
    assert says in error.message
    assert client.beta.skills.list().data == []


def test_form_refusals(http: httpx.Client) -> None:
    assert http.post("/v1/skills", json={"files": []}).status_code == 415
    assert http.post("/v1/skills", files={"display_name": (None, "x")}).status_code == 400
    odd = http.post("/v1/skills", files=[("what", ("a/SKILL.md", SKILL_MD))])
    assert odd.status_code == 400 and "unexpected form field" in odd.json()["error"]["message"]
    big = http.post("/v1/skills", files=[("files[]", ("a/SKILL.md", SKILL_MD)), ("files[]", ("a/big.bin", b"x" * (8 * 1024 * 1024 + 1)))])
    assert big.status_code in (400, 413), big.text
    assert http.get("/v1/skills", params={"source": "plugin"}).status_code == 400
    no_boundary = http.post("/v1/skills", content=b"--x\r\n", headers={"content-type": "multipart/form-data"})
    assert no_boundary.status_code == 400, no_boundary.text
    named = [("files[]", ("a/SKILL.md", skill_md("a"))), ("display_name", (None, "bad\x00name"))]
    assert http.post("/v1/skills", files=named).status_code == 400

    assert http.get("/v1/skills/skill_nope/versions").status_code == 404
    assert http.get("/v1/skills", params={"limit": 0}).status_code == 400


def test_markdown_import_and_export(client: anthropic.Anthropic, http: httpx.Client) -> None:
    document = skill_md("brand-voice", "Tone and vocabulary rules.")
    imported = http.post("/v1/skills/import", files={"file": ("brand-voice.md", document, "text/markdown")})
    assert imported.status_code == 200, imported.text
    skill = client.beta.skills.retrieve(imported.json()["id"])
    assert skill.display_name == "brand-voice"
    version = client.beta.skills.versions.retrieve("latest", skill_id=skill.id)
    assert (version.name, version.description) == ("brand-voice", "Tone and vocabulary rules.")

    exported = http.get(f"/v1/skills/{skill.id}/versions/latest/export")
    assert exported.status_code == 200
    assert exported.headers["content-type"].startswith("text/markdown")
    assert "brand-voice.md" in exported.headers["content-disposition"]
    assert exported.content == document

    # Round trip: the export, imported again after the first is deleted, is the same skill.
    client.beta.skills.delete(skill.id)
    again = http.post("/v1/skills/import", files={"file": ("x.md", exported.content)}, data={"display_name": "Brand"})
    assert again.status_code == 200 and again.json()["display_name"] == "Brand"
    with zipfile.ZipFile(io.BytesIO(client.beta.skills.versions.download("latest", skill_id=again.json()["id"]).read())) as opened:
        assert opened.namelist() == ["brand-voice/SKILL.md"] and opened.read("brand-voice/SKILL.md") == document

    nameless = http.post("/v1/skills/import", files={"file": ("x.md", b"---\ndescription: d\n---\n")})
    assert nameless.status_code == 400 and "needs a name" in nameless.json()["error"]["message"]
    two = http.post("/v1/skills/import", files=[("file", ("a.md", document)), ("file", ("b.md", document))])
    assert two.status_code == 400


def test_agents_pin_custom_skills(client: anthropic.Anthropic) -> None:
    skill = client.beta.skills.create(files=files("agent-skill"))
    agent = client.beta.agents.create(
        name="skilled", model="claude-opus-4-7", skills=[{"type": "custom", "skill_id": skill.id}]
    )
    assert agent.skills[0].skill_id == skill.id and agent.skills[0].version == skill.latest_version_id
    named = client.beta.agents.update(
        agent.id, version=agent.version, skills=[{"type": "custom", "skill_id": skill.id, "version": "latest"}]
    )
    assert named.skills[0].version == "latest"
    unknown = refusal(
        lambda: client.beta.agents.create(
            name="x", model="claude-opus-4-7", skills=[{"type": "custom", "skill_id": "skill_000000000000000000000000"}]
        )
    )
    assert unknown.status_code == 404 and "skill" in unknown.message
    bad_version = refusal(
        lambda: client.beta.agents.create(
            name="x", model="claude-opus-4-7", skills=[{"type": "custom", "skill_id": skill.id, "version": "skillver_nope1234"}]
        )
    )
    assert bad_version.status_code == 404
    # Anthropic's skills are not Agentry's to check.
    anthropic_skill = client.beta.agents.create(
        name="y", model="claude-opus-4-7", skills=[{"type": "anthropic", "skill_id": "xlsx"}]
    )
    assert anthropic_skill.skills[0].version == "latest"
