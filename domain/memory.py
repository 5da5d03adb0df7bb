"""Memory stores: a tenant's named tree of text documents (memories) that sessions mount, with
every change kept as a memory version.

The MemoryStore is the one aggregate; its memories and their versions live in its stream.
"A path names at most one memory of a store" is then a check on one stream, and the event
store's optimistic concurrency settles two writers racing for a path: the loser re-runs on
fresh state and gets the path conflict, never a duplicate.

Content never reaches this module in clear: the application seals each version's content
under that version's own data key (owner = the version id), so redacting one version shreds
exactly its key and every stored copy of its text (events, Kafka, backups) becomes unreadable.
The events carry the sealed text beside its SHA-256 and size, which stay public (the wire
shows them on every view) until the version is redacted."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.errors import Archived, DomainError, InvalidState, Taken
from domain.ids import stream_id

MAX_PATH_BYTES = 1024
MAX_SEGMENTS = 20
MAX_CONTENT_BYTES = 102_400
# Who made a change, as the wire's ``created_by`` / ``redacted_by`` shows it.
Actor = dict[str, str]


class MemoryPathConflict(Taken):
    """Another memory of the store already has this path."""

    error_type = "memory_path_conflict_error"


class MemoryPreconditionFailed(DomainError):
    """The memory's current content is not what the caller said it expected."""

    error_type = "memory_precondition_failed_error"


class UnknownMemory(DomainError):
    """The store holds no (live) memory or version by that id (the application answers 404)."""


class HeadVersion(InvalidState):
    """The version holds a memory's current content: redacting it would leave the live memory
    with content nobody can read (write new content first, then redact the old version)."""


def mount_slug(name: str) -> str:
    """The store's directory under ``/mnt/memory/``: its name lowercased, each run of
    characters other than ASCII letters and digits one hyphen (sessions created after a
    rename use the new one)."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower())


def path_problem(path: str) -> str | None:
    """Why ``path`` is not a memory path, or None when it is one."""
    if not path.startswith("/"):
        return "must start with /"
    if len(path.encode("utf-8", "surrogatepass")) > MAX_PATH_BYTES:
        return f"must be at most {MAX_PATH_BYTES} bytes"
    segments = path[1:].split("/")
    if len(segments) > MAX_SEGMENTS:
        return f"must have at most {MAX_SEGMENTS} segments"
    if any(segment in ("", ".", "..") for segment in segments):
        return "must not have empty, . or .. segments"
    for char in path:
        if unicodedata.category(char) in ("Cc", "Cf", "Cs", "Co", "Cn") or char in "\u2028\u2029":
            return "must not hold control, format or separator characters"
    if unicodedata.normalize("NFC", path) != path:
        return "must be in Unicode Normalization Form C"
    return None


@dataclass
class Memory:
    memory_id: str
    path: str
    memory_version_id: str
    content_sha256: str
    content_size_bytes: int
    sealed: str
    created_at: datetime
    updated_at: datetime


@dataclass
class Version:
    """What commands need of a version: whose it is and whether it was redacted."""

    memory_id: str
    redacted: bool = False


class MemoryStore(Aggregate):
    @staticmethod
    def create_id(memory_store_id: str, **_: Any) -> UUID:
        return stream_id(memory_store_id)

    class Created(Aggregate.Created):
        memory_store_id: str
        tenant_id: str
        name: str
        description: str
        metadata: dict[str, str]

    # The store's own events apply themselves (not through ``@event`` methods): an ``@event``
    # method runs before the aggregate's ``modified_on`` moves, and ``updated_at`` needs the
    # event's own time.
    class Updated(Aggregate.Event):
        """The store's name, description and metadata, all as they now are."""

        name: str
        description: str
        metadata: dict[str, str]

        def apply(self, aggregate: Any) -> None:
            aggregate.name = self.name
            aggregate.description = self.description
            aggregate.metadata = dict(self.metadata)
            aggregate.updated_at = self.timestamp

    class Archived(Aggregate.Event):
        """The store is read-only from now on (irreversible)."""

        def apply(self, aggregate: Any) -> None:
            aggregate.archived_at = self.timestamp
            aggregate.updated_at = self.timestamp

    class Deleted(Aggregate.Event):
        """The store, its memories and versions are gone; every version's key is shredded."""

        memory_store_id: str  # for readers that index by it (the vector index's points)

        def apply(self, aggregate: Any) -> None:
            aggregate.deleted = True

    class MemoryWritten(Aggregate.Event):
        """A new version of a memory: ``sealed`` is its content under the version's own key."""

        tenant_id: str
        memory_store_id: str
        memory_id: str
        memory_version_id: str
        path: str
        sealed: str
        content_sha256: str
        content_size_bytes: int
        actor: Actor | None

        def apply(self, aggregate: Any) -> None:
            aggregate.fold(self)

    class MemoryCreated(MemoryWritten):
        pass

    class MemoryModified(MemoryWritten):
        """The memory's content, path or both changed (same id)."""

    class MemoryDeleted(Aggregate.Event):
        tenant_id: str
        memory_store_id: str
        memory_id: str
        memory_version_id: str
        actor: Actor | None

        def apply(self, aggregate: Any) -> None:
            aggregate.fold(self)

    class MemoryVersionRedacted(Aggregate.Event):
        """The version's content, path, size and hash are gone; its key is shredded right after."""

        memory_version_id: str
        actor: Actor | None

        def apply(self, aggregate: Any) -> None:
            aggregate.fold(self)

    @event(Created)
    def __init__(self, memory_store_id: str, tenant_id: str, name: str, description: str, metadata: dict[str, str]) -> None:
        self.memory_store_id = memory_store_id
        self.tenant_id = tenant_id
        self.name = name
        self.description = description
        self.metadata = dict(metadata)
        # The store's own last change: its memories' changes are theirs.
        self.updated_at: datetime = self.created_on
        self.archived_at: datetime | None = None
        self.deleted = False
        self.memories: dict[str, Memory] = {}
        self.paths: dict[str, str] = {}
        self.versions: dict[str, Version] = {}

    # -- the store -------------------------------------------------------------------

    def _check_open(self) -> None:
        if self.archived_at is not None:
            raise Archived(f"memory store {self.memory_store_id} is archived")

    def update(self, name: str, description: str, metadata: dict[str, str]) -> bool:
        self._check_open()
        if (name, description, metadata) == (self.name, self.description, self.metadata):
            return False
        self.trigger_event(self.Updated, name=name, description=description, metadata=metadata)
        return True

    def archive(self) -> bool:
        if self.archived_at is not None:
            return False
        self.trigger_event(self.Archived)
        return True

    def delete(self) -> bool:
        if self.deleted:
            return False
        self.trigger_event(self.Deleted, memory_store_id=self.memory_store_id)
        return True

    # -- its memories ----------------------------------------------------------------

    def memory(self, memory_id: str) -> Memory:
        memory = self.memories.get(memory_id)
        if memory is None:
            raise UnknownMemory(f"memory {memory_id!r} not found in memory store {self.memory_store_id}")
        return memory

    def _check_path_free(self, path: str, memory_id: str | None = None) -> None:
        problem = path_problem(path)
        if problem is not None:
            raise InvalidState(f"path {path!r} {problem}")
        holder = self.paths.get(path)
        if holder is not None and holder != memory_id:
            raise MemoryPathConflict(f"memory store {self.memory_store_id} already has a memory at {path!r}")

    def create_memory(
        self, memory_id: str, version_id: str, path: str, sealed: str, sha256: str, size: int, actor: Actor | None
    ) -> None:
        self._check_open()
        self._check_path_free(path)
        self._write(
            self.MemoryCreated,
            memory_id=memory_id,
            memory_version_id=version_id,
            path=path,
            sealed=sealed,
            content_sha256=sha256,
            content_size_bytes=size,
            actor=actor,
        )

    def modify_memory(
        self,
        memory_id: str,
        version_id: str,
        path: str,
        sealed: str,
        sha256: str,
        size: int,
        actor: Actor | None,
        expected_sha256: str | None,
    ) -> bool:
        """Records a new version unless nothing changed (then no version, as the wire says).
        ``expected_sha256`` is checked against the content now, whatever the new path."""
        memory = self.memory(memory_id)
        self._check_open()
        self._check_precondition(memory, expected_sha256)
        if (path, sha256) == (memory.path, memory.content_sha256):
            return False
        self._check_path_free(path, memory_id)
        self._write(
            self.MemoryModified,
            memory_id=memory_id,
            memory_version_id=version_id,
            path=path,
            sealed=sealed,
            content_sha256=sha256,
            content_size_bytes=size,
            actor=actor,
        )
        return True

    def _write(self, event_class: type[MemoryWritten], **fields: Any) -> None:
        self.trigger_event(event_class, tenant_id=self.tenant_id, memory_store_id=self.memory_store_id, **fields)

    def delete_memory(self, memory_id: str, version_id: str, actor: Actor | None, expected_sha256: str | None) -> None:
        # An archived store still lets its memories be deleted (the wire says so).
        memory = self.memory(memory_id)
        self._check_precondition(memory, expected_sha256)
        self.trigger_event(
            self.MemoryDeleted,
            tenant_id=self.tenant_id,
            memory_store_id=self.memory_store_id,
            memory_id=memory_id,
            memory_version_id=version_id,
            actor=actor,
        )

    @staticmethod
    def _check_precondition(memory: Memory, expected_sha256: str | None) -> None:
        if expected_sha256 is not None and expected_sha256 != memory.content_sha256:
            raise MemoryPreconditionFailed(
                f"memory {memory.memory_id} content_sha256 is {memory.content_sha256}, not {expected_sha256}"
            )

    def redact_version(self, version_id: str, actor: Actor | None) -> bool:
        version = self.versions.get(version_id)
        if version is None:
            raise UnknownMemory(f"memory version {version_id!r} not found in memory store {self.memory_store_id}")
        if version.redacted:
            return False
        live = self.memories.get(version.memory_id)
        if live is not None and live.memory_version_id == version_id:
            raise HeadVersion(
                f"memory version {version_id} holds the current content of memory {version.memory_id}: "
                "update or delete the memory first, then redact this version"
            )
        self.trigger_event(self.MemoryVersionRedacted, memory_version_id=version_id, actor=actor)
        return True

    def fold(self, change: Any) -> None:
        """Folds a memory event into the state (each memory event's ``apply`` calls it)."""
        if isinstance(change, MemoryStore.MemoryWritten):
            previous = self.memories.get(change.memory_id)
            if previous is not None:
                self.paths.pop(previous.path, None)
            self.memories[change.memory_id] = Memory(
                memory_id=change.memory_id,
                path=change.path,
                memory_version_id=change.memory_version_id,
                content_sha256=change.content_sha256,
                content_size_bytes=change.content_size_bytes,
                sealed=change.sealed,
                created_at=previous.created_at if previous else change.timestamp,
                updated_at=change.timestamp,
            )
            self.paths[change.path] = change.memory_id
            self.versions[change.memory_version_id] = Version(change.memory_id)
        elif isinstance(change, MemoryStore.MemoryDeleted):
            gone = self.memories.pop(change.memory_id, None)
            if gone is not None:
                self.paths.pop(gone.path, None)
            self.versions[change.memory_version_id] = Version(change.memory_id)
        elif isinstance(change, MemoryStore.MemoryVersionRedacted):
            self.versions[change.memory_version_id].redacted = True
