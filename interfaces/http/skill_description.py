"""The skill endpoints in the API description (``api_description.OPERATIONS`` takes them in
one line): ``client.beta.skills`` and ``.versions``, and the single-markdown import/export."""

from __future__ import annotations

from typing import Any

from domain.skills import MAX_FILES
from interfaces.http import skill_schemas as skills
from interfaces.http.api_description import BODY, LIST_QUERY, WRITE, Operation, Param, path_id

SKILL = path_id("skill_id", "skill")
VERSION = Param(
    "version", "path", {"type": "string", "minLength": 1}, "a version id (`skillver_…`) or `latest`", required=True
)
SOURCE = Param("source", "query", {"type": "string", "enum": ["custom", "anthropic"]}, "only skills of this source")
_FILES = {"type": "array", "items": {"type": "string", "contentMediaType": "application/octet-stream"}, "maxItems": MAX_FILES}
_UPLOAD_RULES = (
    "Each `files[]` part's filename is its path: all under one top-level folder with `SKILL.md` at its root "
    "(`my-skill/SKILL.md`, `my-skill/scripts/x.py`); relative, no `..`. `SKILL.md` opens with YAML front matter "
    "holding `description` and, optionally, `name` (kebab-case; else the folder's name). "
    f"At most {MAX_FILES} files and 8 MiB in all. A bad upload is a 400 that names the file and the rule."
)


def _form(properties: dict[str, Any], required: list[str]) -> dict[str, dict[str, Any]]:
    return {
        "multipart/form-data": {
            "schema": {"type": "object", "properties": properties, "required": required},
            "encoding": {name: {"contentType": "application/octet-stream"} for name in properties if name != "display_name"},
        }
    }


UPLOAD = _form({"files[]": _FILES}, ["files[]"])
CREATE = _form({"files[]": _FILES, "display_name": {"type": "string", "maxLength": 255}}, ["files[]"])
IMPORT = _form(
    {"file": {"type": "string", "contentMediaType": "text/markdown"}, "display_name": {"type": "string", "maxLength": 255}},
    ["file"],
)
ZIP = {"application/zip": {"type": "string", "contentMediaType": "application/zip"}}
MARKDOWN = {"text/markdown": {"type": "string"}}
# What an environment worker downloads into ``{workdir}/skills/<name>`` with a work item's token.
WORKER_DOWNLOAD = (
    "Also takes the `sessions_token` of a work item whose session's agent names the skill "
    "(another skill: 404); an environment key is refused (403)."
)

SKILL_OPERATIONS: tuple[Operation, ...] = (
    Operation(
        "post", "/v1/skills", "createSkill", "Create a skill from its files (its first version)", "skills",
        skills.Skill, request_content=CREATE, errors=WRITE,
        description=_UPLOAD_RULES + " A name another live skill of the workspace holds: 409 `skill_name_taken`.",
    ),
    Operation(
        "get", "/v1/skills", "listSkills", "List skills, newest first", "skills", skills.SkillPage,
        params=(*LIST_QUERY, SOURCE), errors=(400,),
    ),
    Operation(
        "post", "/v1/skills/import", "importSkill", "Import one markdown document as a skill (its SKILL.md)", "skills",
        skills.Skill, request_content=IMPORT, errors=WRITE,
        description=(
            "Mission Control's import: the form's one `file` part is a SKILL.md whose front matter names the skill "
            "(`name`, kebab-case) and describes it (`description`); it becomes `<name>/SKILL.md` of a new skill."
        ),
    ),
    Operation(
        "get", "/v1/skills/{skill_id}", "getSkill", "Retrieve a skill", "skills", skills.Skill, params=(SKILL,),
        errors=(404,),
    ),
    Operation(
        "delete", "/v1/skills/{skill_id}", "deleteSkill", "Delete a skill and all its versions", "skills",
        skills.SkillDeleted, params=(SKILL,), errors=(400, 404),
    ),
    Operation(
        "post", "/v1/skills/{skill_id}/versions", "createSkillVersion", "Upload a new version of a skill", "skills",
        skills.SkillVersion, request_content=UPLOAD, params=(SKILL,), errors=(*BODY, 404),
        description=_UPLOAD_RULES + " The front matter must name the skill as its first upload did.",
    ),
    Operation(
        "get", "/v1/skills/{skill_id}/versions", "listSkillVersions", "A skill's versions, newest first", "skills",
        skills.SkillVersionPage, params=(SKILL, *LIST_QUERY), errors=(400, 404),
    ),
    Operation(
        "get", "/v1/skills/{skill_id}/versions/{version}", "getSkillVersion", "Retrieve a skill version", "skills",
        skills.SkillVersion, params=(SKILL, VERSION), errors=(403, 404), description=WORKER_DOWNLOAD,
    ),
    Operation(
        "delete", "/v1/skills/{skill_id}/versions/{version}", "deleteSkillVersion", "Delete a skill version",
        "skills", skills.SkillVersionDeleted, params=(SKILL, VERSION), errors=(400, 404),
        description="A skill keeps at least one version: deleting its only one is a 400 (delete the skill instead).",
    ),
    Operation(
        "get", "/v1/skills/{skill_id}/versions/{version}/content", "downloadSkillVersion",
        "Download a skill version's files as a zip archive", "skills", None, params=(SKILL, VERSION), errors=(403, 404),
        content=ZIP, description=WORKER_DOWNLOAD,
    ),
    Operation(
        "get", "/v1/skills/{skill_id}/versions/{version}/export", "exportSkillVersion",
        "Export a skill version as one markdown document (its SKILL.md)", "skills", None, params=(SKILL, VERSION),
        errors=(404,), content=MARKDOWN,
        description="What `POST /v1/skills/import` takes back; the version's other files are in its zip archive only.",
    ),
)  # fmt: skip
