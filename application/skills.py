"""Use cases of skills and their versions (``client.beta.skills`` and
``client.beta.skills.versions``), and the single-markdown import and export.

File bytes go to the blob store before anything is recorded, and only once the upload passed
every check (paths, sizes, front matter, a name free or the skill's own); the events name
each file by its blob key. A blob written for an upload that then loses a race stays behind
unnamed: blobs are content-addressed and may be shared by several versions, so nothing here
deletes one (the store keeps no reference counts)."""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass, replace
from typing import Any

from application.commands import Alongside, Commands, Kind, Written, load_as
from application.errors import NotFound
from application.ids import new_id
from application.ports import BlobStore, EventStore
from application.retry import retry_on_race
from application.tenancy import Principal
from application.views import iso
from domain.skills import (
    SKILL_FILE,
    BadUpload,
    Skill,
    SkillName,
    UnknownVersion,
    Version,
    check_display_name,
    check_paths,
    check_sizes,
    name_stream_id,
    parse_front_matter,
    skill_name,
)

SKILLS: Kind[Skill] = Kind(Skill, "skill", "skill", gone=lambda skill: skill.deleted)
# Archive entries get a fixed time, so one version always downloads as the same bytes.
ZIP_TIME = (1980, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class Upload:
    """One file as sent: its path inside the upload (``my-skill/SKILL.md``) and its bytes."""

    path: str
    data: bytes


@dataclass(frozen=True)
class Download:
    filename: str
    media_type: str
    data: bytes


@dataclass(frozen=True)
class _Checked:
    name: str
    description: str
    directory: str
    files: list[dict[str, Any]]


def skill_view(skill: Skill) -> dict[str, Any]:
    return {
        "type": "skill",
        "id": skill.skill_id,
        "display_name": skill.display_name,
        "latest_version_id": skill.latest_version_id,
        "source": {"type": skill.source},
        "created_at": iso(skill.created_on),
        "updated_at": iso(skill.updated_at),
    }


def version_view(skill_id: str, version: Version) -> dict[str, Any]:
    return {
        "type": "skill_version",
        "id": version.version_id,
        "skill_id": skill_id,
        "name": version.name,
        "description": version.description,
        "created_at": iso(version.created_at),
    }


class SkillService:
    def __init__(self, store: EventStore, blobs: BlobStore) -> None:
        self._store = store
        self._blobs = blobs
        self._commands = Commands(store, SKILLS, skill_view)

    # -- skills ------------------------------------------------------------------------

    def create(self, who: Principal, uploads: list[Upload], display_name: str | None = None) -> Written:
        checked = self._check(uploads)
        label = check_display_name(display_name) if display_name is not None else checked.name
        skill_id = new_id("skill")
        held = load_as(self._store, name_stream_id(who.tenant_id, checked.name), SkillName)
        if held is not None:
            held.claim(skill_id)  # a taken name fails before any bytes are stored (the save checks again)
        checked = self._stored(checked, uploads)

        def attempt() -> Written:
            claim = load_as(self._store, name_stream_id(who.tenant_id, checked.name), SkillName)
            if claim is None:
                claim = SkillName(tenant_id=who.tenant_id, name=checked.name, skill_id=skill_id)
            else:
                claim.claim(skill_id)
            skill = Skill(skill_id=skill_id, tenant_id=who.tenant_id, display_name=label, name=checked.name, source="custom")
            skill.add_version(new_id("skillver"), checked.name, checked.description, checked.directory, checked.files)
            return self._commands.create(skill, claim)

        return retry_on_race(attempt, key=str(name_stream_id(who.tenant_id, checked.name)))

    def retrieve(self, who: Principal, skill_id: str) -> dict[str, Any]:
        return self._commands.view(who, skill_id)

    def delete(self, who: Principal, skill_id: str) -> Written:
        def command(skill: Skill) -> Alongside:
            skill.delete()
            claim = load_as(self._store, name_stream_id(skill.tenant_id, skill.name), SkillName)
            released = claim is not None and claim.release(skill.skill_id)
            return Alongside((claim,) if released and claim is not None else ())

        return self._commands.change(who, skill_id, command, render=lambda skill: {"id": skill.skill_id, "type": "skill_deleted"})

    def import_markdown(self, who: Principal, text: str, display_name: str | None = None) -> Written:
        """One markdown document (a SKILL.md with front matter) as a new skill whose one
        file is ``<name>/SKILL.md``; the folder is the front matter's ``name``."""
        front = parse_front_matter(text)
        if front.name is None:
            raise BadUpload(f"{SKILL_FILE}: an imported document's front matter needs a name (it names the skill's folder)")
        name = skill_name(front, front.name)
        return self.create(who, [Upload(f"{name}/{SKILL_FILE}", text.encode())], display_name)

    # -- versions ----------------------------------------------------------------------

    def create_version(self, who: Principal, skill_id: str, uploads: list[Upload]) -> Written:
        skill = self._commands.load(who, skill_id)  # an unknown skill is a 404 before any bytes are stored
        checked = self._check(uploads)
        skill.check_name(checked.name)
        checked = self._stored(checked, uploads)
        version_id = new_id("skillver")

        def command(skill: Skill) -> None:
            skill.add_version(version_id, checked.name, checked.description, checked.directory, checked.files)

        return self._commands.change(
            who, skill_id, command, render=lambda skill: version_view(skill.skill_id, skill.versions[version_id])
        )

    def retrieve_version(self, who: Principal, skill_id: str, version: str) -> dict[str, Any]:
        skill = self._commands.load(who, skill_id)
        return version_view(skill.skill_id, self._version(skill, version))

    def delete_version(self, who: Principal, skill_id: str, version: str) -> Written:
        deleted: list[str] = []

        def command(skill: Skill) -> None:
            self._version(skill, version)
            deleted[:] = [skill.delete_version(version)]

        return self._commands.change(
            who, skill_id, command, render=lambda skill: {"id": deleted[0], "type": "skill_version_deleted"}
        )

    def download(self, who: Principal, skill_id: str, version: str) -> Download:
        """The version's files as a zip archive, paths as uploaded (``<name>/SKILL.md``)."""
        found = self._version(self._commands.load(who, skill_id), version)
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for entry in found.files:
                info = zipfile.ZipInfo(entry["path"], date_time=ZIP_TIME)
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = 0o644 << 16
                archive.writestr(info, self._blobs.get(entry["blob"]))
        return Download(f"{found.name}.zip", "application/zip", buffer.getvalue())

    def export_markdown(self, who: Principal, skill_id: str, version: str) -> Download:
        """The version's ``SKILL.md`` as one markdown document (what ``import`` takes back).
        Other files of the version are in its zip archive only."""
        found = self._version(self._commands.load(who, skill_id), version)
        path = f"{found.directory}/{SKILL_FILE}"
        entry = next(entry for entry in found.files if entry["path"] == path)
        return Download(f"{found.name}.md", "text/markdown; charset=utf-8", self._blobs.get(entry["blob"]))

    def resolve_reference(self, who: Principal, skill_id: str, version: str | None) -> str:
        """What an agent's ``custom`` skill reference pins: the named version (checked), or
        the latest version's id when none is named. An unknown skill or version is a 404."""
        skill = self._commands.load(who, skill_id)
        if version is None:
            return str(skill.latest_version_id)
        self._version(skill, version)
        return version

    # -- helpers -----------------------------------------------------------------------

    @staticmethod
    def _version(skill: Skill, version: str) -> Version:
        try:
            return skill.find_version(version)
        except UnknownVersion as missing:
            raise NotFound(str(missing)) from None

    def _stored(self, checked: _Checked, uploads: list[Upload]) -> _Checked:
        """The upload's bytes into the blob store: the manifest to record."""
        files = [{"path": upload.path, "blob": self._blobs.put(upload.data), "size": len(upload.data)} for upload in uploads]
        return replace(checked, files=files)

    @staticmethod
    def _check(uploads: list[Upload]) -> _Checked:
        """The upload's rules; the manifest still without blob keys."""
        directory = check_paths([upload.path for upload in uploads])
        check_sizes({upload.path: len(upload.data) for upload in uploads})
        skill_md = next(upload for upload in uploads if upload.path == f"{directory}/{SKILL_FILE}")
        try:
            text = skill_md.data.decode("utf-8")
        except UnicodeDecodeError:
            raise BadUpload(f"{directory}/{SKILL_FILE} is not UTF-8 text") from None
        if "\x00" in text:
            raise BadUpload(f"{directory}/{SKILL_FILE} may not contain a NUL character")
        front = parse_front_matter(text)
        name = skill_name(front, directory)
        return _Checked(name, front.description, directory, [])
