"""Skills: a tenant's folders of instructions (a ``SKILL.md`` plus any files beside it) that
agents mount and read on demand.

A Skill is one aggregate and its versions live inside it, so "the name every upload must
resolve to", "``latest`` is the newest live version" and "a skill keeps at least one version"
are checks on one stream. Versions are immutable: a new upload is a new version.

Events carry each version's manifest (relative path → blob key and size), never the bytes:
the application stores the bytes in the blob store first. The rules an upload must meet
(relative paths under one top-level folder, ``SKILL.md`` at its root with front matter naming
the skill) are stated here once, on paths and text only, so they hold for every way in
(a multipart upload, a single-markdown import)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.errors import DomainError, InvalidState, Taken
from domain.ids import stream_id

SKILL_FILE = "SKILL.md"
MAX_FILES = 200
MAX_FILE_BYTES = 8 * 1024 * 1024
MAX_TOTAL_BYTES = 8 * 1024 * 1024
MAX_PATH_LENGTH = 512
MAX_NAME_LENGTH = 64
MAX_DESCRIPTION_LENGTH = 1024
MAX_DISPLAY_NAME_LENGTH = 255
SLUG = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
# A path segment: printable, no separators or characters no filesystem agrees on.
_BAD_LABEL_CHARS = re.compile(r"[\x00-\x1f\x7f]")
_BAD_SEGMENT_CHARS = re.compile(r'[\x00-\x1f\x7f\\:*?"<>|]')


class BadUpload(DomainError):
    """The files sent do not make a skill (the message names the file and the rule)."""


class SkillNameTaken(Taken):
    """Another live skill of the tenant already has this name (its mount folder)."""

    error_code = "skill_name_taken"


class UnknownVersion(DomainError):
    """The skill has no live version with that id (the application answers 404)."""


@dataclass(frozen=True)
class FrontMatter:
    name: str | None
    description: str


def check_display_name(display_name: str) -> str:
    text = display_name.strip()
    if not text:
        raise BadUpload("display_name must not be empty")
    if len(text) > MAX_DISPLAY_NAME_LENGTH or _BAD_LABEL_CHARS.search(text):
        raise BadUpload(f"display_name must be a single line of at most {MAX_DISPLAY_NAME_LENGTH} characters, without control characters")
    return text


def check_paths(paths: list[str]) -> str:
    """The one top-level folder all ``paths`` sit under, with ``SKILL.md`` at its root;
    ``BadUpload`` naming the first path that breaks a rule."""
    if not paths:
        raise BadUpload(f"files[] is required: send the skill's files, with {SKILL_FILE} at the root of one folder")
    if len(paths) > MAX_FILES:
        raise BadUpload(f"a skill holds at most {MAX_FILES} files; {len(paths)} were sent")
    tops: set[str] = set()
    seen: set[str] = set()
    for path in paths:
        if not path:
            raise BadUpload("a file in files[] has no filename: each part's filename is its path, e.g. my-skill/SKILL.md")
        if len(path) > MAX_PATH_LENGTH:
            raise BadUpload(f"file {path[:64]!r}…: a path is at most {MAX_PATH_LENGTH} characters")
        if path.startswith("/") or re.match(r"^[A-Za-z]:", path):
            raise BadUpload(f"file {path!r}: paths must be relative (e.g. my-skill/SKILL.md)")
        segments = path.split("/")
        if any(segment in ("", ".", "..") for segment in segments):
            raise BadUpload(f"file {path!r}: a path may not contain '..', '.' or empty segments")
        if any(_BAD_SEGMENT_CHARS.search(segment) for segment in segments):
            raise BadUpload(f"file {path!r}: a path may not contain control characters or any of \\ : * ? \" < > |")
        if len(segments) < 2:
            raise BadUpload(f"file {path!r}: every file must sit inside the skill's top-level folder (e.g. my-skill/{path})")
        if path in seen:
            raise BadUpload(f"file {path!r} is sent twice")
        seen.add(path)
        tops.add(segments[0])
    if len(tops) > 1:
        raise BadUpload(f"all files must be in one top-level folder; found {', '.join(sorted(tops))}")
    top = tops.pop()
    if f"{top}/{SKILL_FILE}" not in seen:
        raise BadUpload(f"{top}/{SKILL_FILE} is missing: a skill needs {SKILL_FILE} at the root of its folder")
    return top


def check_sizes(sizes: dict[str, int]) -> None:
    for path, size in sizes.items():
        if size > MAX_FILE_BYTES:
            raise BadUpload(f"file {path!r} is {size} bytes; a file is at most {MAX_FILE_BYTES} bytes")
    total = sum(sizes.values())
    if total > MAX_TOTAL_BYTES:
        raise BadUpload(f"the files total {total} bytes; a skill version is at most {MAX_TOTAL_BYTES} bytes")


def parse_front_matter(text: str) -> FrontMatter:
    """``name`` and ``description`` of the YAML front matter opening ``SKILL.md`` (flat
    ``key: value`` lines; quoted values and ``>`` / ``|`` blocks are understood)."""
    lines = text.lstrip("\ufeff").splitlines()
    if not lines or lines[0].strip() != "---":
        raise BadUpload(f"{SKILL_FILE} must open with YAML front matter (---, name: …, description: …, ---)")
    try:
        end = next(index for index in range(1, len(lines)) if lines[index].strip() == "---")
    except StopIteration:
        raise BadUpload(f"{SKILL_FILE}: the front matter is not closed with a --- line") from None
    fields: dict[str, str] = {}
    index = 1
    while index < end:
        line = lines[index]
        index += 1
        if not line.strip() or line.lstrip().startswith("#") or line[0] in " \t":
            continue
        key, colon, value = line.partition(":")
        if not colon:
            raise BadUpload(f"{SKILL_FILE}: front matter line {index} is not 'key: value'")
        value = value.strip()
        if value in (">", "|", ">-", "|-", ">+", "|+"):
            block: list[str] = []
            while index < end and (not lines[index].strip() or lines[index][0] in " \t"):
                block.append(lines[index].strip())
                index += 1
            value = (" " if value.startswith(">") else "\n").join(part for part in block if part)
        elif len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        fields[key.strip()] = value
    name = fields.get("name") or None
    description = (fields.get("description") or "").strip()
    if not description:
        raise BadUpload(f"{SKILL_FILE}: the front matter needs a description")
    if len(description) > MAX_DESCRIPTION_LENGTH:
        raise BadUpload(f"{SKILL_FILE}: description is at most {MAX_DESCRIPTION_LENGTH} characters")
    return FrontMatter(name=name, description=description)


def skill_name(front: FrontMatter, folder: str) -> str:
    """The skill's kebab-case slug: the front matter's ``name``, else its folder's name."""
    name = front.name if front.name is not None else folder
    if len(name) > MAX_NAME_LENGTH or not SLUG.fullmatch(name):
        where = "the front matter's name" if front.name is not None else f"the folder name {folder!r} (no name in front matter)"
        raise BadUpload(
            f"{SKILL_FILE}: {where} must be kebab-case (lowercase letters, digits, single hyphens), "
            f"at most {MAX_NAME_LENGTH} characters; got {name[:80]!r}"
        )
    return name


def name_stream_id(tenant_id: str, name: str) -> UUID:
    # Ids can't collide with a public id's: those have no space.
    return stream_id(f"skillname {tenant_id} {name}")


@dataclass
class Version:
    version_id: str
    name: str
    description: str
    directory: str
    files: list[dict[str, Any]]  # {"path", "blob", "size"}, in upload order
    created_at: Any


class Skill(Aggregate):
    @staticmethod
    def create_id(skill_id: str, **_: Any) -> UUID:
        return stream_id(skill_id)

    class Created(Aggregate.Created):
        skill_id: str
        tenant_id: str
        display_name: str
        name: str
        source: str

    class VersionCreated(Aggregate.Event):
        """A new version; ``files`` is its manifest (path, blob key, size), not its bytes."""

        version_id: str
        name: str
        description: str
        directory: str
        files: list[dict[str, Any]]

    class VersionDeleted(Aggregate.Event):
        version_id: str

    class Deleted(Aggregate.Event):
        """The skill and all its versions are gone."""

    @event(Created)
    def __init__(self, skill_id: str, tenant_id: str, display_name: str, name: str, source: str) -> None:
        self.skill_id = skill_id
        self.tenant_id = tenant_id
        self.display_name = display_name
        self.name = name
        self.source = source
        self.updated_at = self.created_on
        self.versions: dict[str, Version] = {}  # live ones, oldest first
        self.deleted = False

    @property
    def latest_version_id(self) -> str | None:
        return next(reversed(self.versions), None)

    def find_version(self, version: str) -> Version:
        """A live version by id, or the newest for ``latest``."""
        wanted = self.latest_version_id if version == "latest" else version
        found = self.versions.get(wanted or "")
        if found is None:
            raise UnknownVersion(f"skill {self.skill_id} has no version {version!r}")
        return found

    def check_name(self, name: str) -> None:
        if name != self.name:
            raise BadUpload(
                f"{SKILL_FILE}: this upload names the skill {name!r}, but skill {self.skill_id} is {self.name!r} "
                "(a skill's name is fixed by its first upload)"
            )

    def add_version(self, version_id: str, name: str, description: str, directory: str, files: list[dict[str, Any]]) -> None:
        if self.deleted:
            raise InvalidState(f"skill {self.skill_id} is deleted")
        self.check_name(name)
        self._record_version(version_id=version_id, name=name, description=description, directory=directory, files=files)

    @event(VersionCreated)
    def _record_version(self, version_id: str, name: str, description: str, directory: str, files: list[dict[str, Any]]) -> None:
        self.versions[version_id] = Version(version_id, name, description, directory, list(files), self.modified_on)
        self.updated_at = self.modified_on

    def delete_version(self, version: str) -> str:
        found = self.find_version(version)
        if len(self.versions) == 1:
            raise InvalidState(
                f"version {found.version_id} is the only version of skill {self.skill_id}: a skill keeps at least one "
                "version (delete the skill instead)"
            )
        self._record_version_deletion(version_id=found.version_id)
        return found.version_id

    @event(VersionDeleted)
    def _record_version_deletion(self, version_id: str) -> None:
        del self.versions[version_id]
        self.updated_at = self.modified_on

    def delete(self) -> bool:
        if self.deleted:
            return False
        self._record_deletion()
        return True

    @event(Deleted)
    def _record_deletion(self) -> None:
        self.deleted = True


class SkillName(Aggregate):
    """Which live skill of a tenant holds a name; ``holder`` is None once released."""

    @staticmethod
    def create_id(tenant_id: str, name: str, **_: Any) -> UUID:
        return name_stream_id(tenant_id, name)

    class Claimed(Aggregate.Created):
        tenant_id: str
        name: str
        skill_id: str

    class Reclaimed(Aggregate.Event):
        skill_id: str

    class Released(Aggregate.Event):
        """Its skill was deleted."""

    @event(Claimed)
    def __init__(self, tenant_id: str, name: str, skill_id: str) -> None:
        self.tenant_id = tenant_id
        self.name = name
        self.holder: str | None = skill_id

    def claim(self, skill_id: str) -> None:
        if self.holder is not None and self.holder != skill_id:
            raise SkillNameTaken(f"a skill named {self.name!r} already exists ({self.holder}); add a version to it instead")
        if self.holder != skill_id:
            self._record_reclaim(skill_id=skill_id)

    @event(Reclaimed)
    def _record_reclaim(self, skill_id: str) -> None:
        self.holder = skill_id

    def release(self, skill_id: str) -> bool:
        if self.holder != skill_id:
            return False
        self._record_release()
        return True

    @event(Released)
    def _record_release(self) -> None:
        self.holder = None
