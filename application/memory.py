"""Use cases of memory stores, their memories and memory versions
(``client.beta.memory_stores``, ``.memories``, ``.memory_versions``), and Agentry's semantic
search over a store.

Each version's content is sealed with the ``SecretCipher`` under the version's own data key
(owner = the version id) before anything is recorded, so the event log only ever holds
ciphertext. Redacting a version records the redaction and then shreds that key: the text is
gone from every copy of the log, and the read models clear it on the event (a rebuild cannot
bring it back, the key being gone). Deleting a store shreds the keys of every version it held.

A rename re-seals the current content under the new version's key, so redacting an older
version never takes the live text with it. Redacting the version that holds a memory's
current content is refused (as OMA does): write new content, then redact the old version.

Every write names its ``Actor``: the calling API key (``api_actor``), a logged-in person
(``user_actor``), or, for the environment worker's sync of a mounted store, the session it
writes for (``session_actor``, passed in by that caller)."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any, Protocol

from application.commands import Commands, Kind, Written
from application.errors import Invalid, NotFound
from application.ids import new_id
from application.ports import EventStore, SecretCipher, SecretUnavailable, SemanticSearch
from application.tenancy import Principal
from application.views import iso
from domain.memory import MAX_CONTENT_BYTES, Actor, Memory, MemoryStore, UnknownMemory, path_problem
from domain.vaults import patched

MEMORIES_COLLECTION = "memories"
# Long memories are indexed in parts: a search asks for this many hits per result wanted.
HITS_PER_RESULT = 3


def api_actor(who: Principal) -> Actor:
    """The actor a caller's own request writes as: a person logged in, or an API key."""
    if who.user_id is not None:
        return {"type": "user_actor", "user_id": who.user_id}
    return {"type": "api_actor", "api_key_id": who.key_id}


def session_actor(session_id: str) -> Actor:
    return {"type": "session_actor", "session_id": session_id}


def sha256_of(content: str) -> str:
    return hashlib.sha256(content.encode("utf-8")).hexdigest()


def content_bytes(content: str) -> int:
    try:
        size = len(content.encode("utf-8"))
    except UnicodeEncodeError:
        raise Invalid("content must be valid UTF-8 text (it holds a lone surrogate)") from None
    if size > MAX_CONTENT_BYTES:
        raise Invalid(f"content must be at most {MAX_CONTENT_BYTES} bytes of UTF-8 (it is {size})")
    return size


def check_path(path: str) -> str:
    problem = path_problem(path)
    if problem is not None:
        raise Invalid(f"path {path[:200]!r} {problem}")
    return path


def store_view(
    memory_store_id: str,
    name: str,
    description: str,
    metadata: dict[str, str],
    created_at: datetime,
    updated_at: datetime,
    archived_at: datetime | None,
) -> dict[str, Any]:
    return {
        "type": "memory_store",
        "id": memory_store_id,
        "name": name,
        "description": description,
        "metadata": metadata,
        "created_at": iso(created_at),
        "updated_at": iso(updated_at),
        "archived_at": iso(archived_at),
    }


def memory_view(memory_store_id: str, memory: Memory) -> dict[str, Any]:
    """The memory without content (``view=basic``); ``content`` is filled in for full views."""
    return {
        "type": "memory",
        "id": memory.memory_id,
        "memory_store_id": memory_store_id,
        "path": memory.path,
        "content_sha256": memory.content_sha256,
        "content_size_bytes": memory.content_size_bytes,
        "memory_version_id": memory.memory_version_id,
        "created_at": iso(memory.created_at),
        "updated_at": iso(memory.updated_at),
        "content": None,
    }


def render_store(store: MemoryStore) -> dict[str, Any]:
    return store_view(
        store.memory_store_id, store.name, store.description, store.metadata, store.created_on, store.updated_at, store.archived_at
    )


MEMORY_STORES: Kind[MemoryStore] = Kind(MemoryStore, "memstore", "memory store", gone=lambda store: store.deleted)


class MemoryReads(Protocol):
    """The read model the searches look their hits up in (``projections.memory``)."""

    def memories_by_id(self, tenant_id: str, memory_store_id: str, memory_ids: list[str]) -> dict[str, dict[str, Any]]: ...


class MemoryService:
    def __init__(
        self, store: EventStore, cipher: SecretCipher, search: SemanticSearch | None = None, reads: MemoryReads | None = None
    ) -> None:
        self._store = store
        self._cipher = cipher
        self._search = search
        self._reads = reads
        self._commands = Commands(store, MEMORY_STORES, render_store)

    # -- stores ------------------------------------------------------------------------

    def create_store(self, who: Principal, fields: dict[str, Any]) -> Written:
        store = MemoryStore(
            memory_store_id=new_id("memstore"),
            tenant_id=who.tenant_id,
            name=fields["name"],
            description=fields.get("description") or "",
            metadata=patched({}, fields.get("metadata")),
        )
        return self._commands.create(store)

    def retrieve_store(self, who: Principal, memory_store_id: str) -> dict[str, Any]:
        return self._commands.view(who, memory_store_id)

    def attachable(self, who: Principal, memory_store_id: str) -> tuple[str, str]:
        """The (name, description) a session attaching the store snapshots: 404 unless it is
        the caller's, 400 once archived (the spec refuses attaching an archived store)."""
        store = self._commands.load(who, memory_store_id)
        if store.archived_at is not None:
            raise Invalid(f"memory store {memory_store_id} is archived")
        return store.name, store.description

    def check_store(self, who: Principal, memory_store_id: str) -> None:
        """404 unless the store is the caller's (a list of another tenant's memories too)."""
        self._commands.load(who, memory_store_id)

    def update_store(self, who: Principal, memory_store_id: str, changes: dict[str, Any]) -> Written:
        def command(store: MemoryStore) -> bool:
            name = changes.get("name") or store.name
            description = changes["description"] if changes.get("description") is not None else store.description
            return store.update(name, description, patched(store.metadata, changes.get("metadata")))

        return self._commands.change(who, memory_store_id, command)

    def archive_store(self, who: Principal, memory_store_id: str) -> Written:
        return self._commands.change(who, memory_store_id, MemoryStore.archive)

    def delete_store(self, who: Principal, memory_store_id: str) -> Written:
        """Records the deletion, then shreds every version's key: the store's text is
        unreadable from then on, in every copy of the log."""
        shred: list[str] = []

        def command(store: MemoryStore) -> bool:
            shred[:] = list(store.versions)
            return store.delete()

        deleted = {"id": memory_store_id, "type": "memory_store_deleted"}
        written = self._commands.change(who, memory_store_id, command, render=lambda store: deleted)
        for version_id in shred:
            self._cipher.shred(version_id)
        return written

    # -- memories ----------------------------------------------------------------------

    def create_memory(
        self, who: Principal, memory_store_id: str, path: str, content: str, view: str = "basic", actor: Actor | None = None
    ) -> Written:
        check_path(path)
        size = content_bytes(content)
        self._commands.load(who, memory_store_id)  # nothing is sealed for a store not the caller's
        memory_id, version_id = new_id("mem"), new_id("memver")
        sealed = self._cipher.seal(version_id, content)
        written_by = actor or api_actor(who)

        def command(store: MemoryStore) -> None:
            store.create_memory(memory_id, version_id, path, sealed, sha256_of(content), size, written_by)

        return self._sealed_write(who, memory_store_id, version_id, command, self._renderer(memory_id, view, content))

    def update_memory(
        self,
        who: Principal,
        memory_store_id: str,
        memory_id: str,
        changes: dict[str, Any],
        view: str = "basic",
        actor: Actor | None = None,
    ) -> Written:
        """A new version with the content and path given (omitted ones kept). Nothing changed
        → no version. ``precondition`` names the content the caller expects now."""
        new_path = changes.get("path")
        if new_path is not None:
            check_path(new_path)
        new_content = changes.get("content")
        if new_content is not None:
            content_bytes(new_content)
        precondition = changes.get("precondition") or {}
        expected = precondition.get("content_sha256")
        self._memory(self._commands.load(who, memory_store_id), memory_id)  # nothing sealed for a missing one
        version_id = new_id("memver")
        written_by = actor or api_actor(who)

        def command(store: MemoryStore) -> bool:
            memory = self._memory(store, memory_id)
            # A rename keeps the content as it is in this (fresh) state, not as an earlier read saw it.
            content = new_content if new_content is not None else self._open(memory.memory_version_id, memory.sealed)
            if content is None:
                raise Invalid(f"memory {memory_id}'s content can no longer be read; write new content")
            sealed = self._cipher.seal(version_id, content)
            return store.modify_memory(
                memory_id,
                version_id,
                new_path if new_path is not None else memory.path,
                sealed,
                sha256_of(content),
                len(content.encode("utf-8")),
                written_by,
                expected,
            )

        written = self._sealed_write(who, memory_store_id, version_id, command, self._renderer(memory_id, view))
        if written.view["memory_version_id"] != version_id:
            self._cipher.shred(version_id)  # nothing changed: no version was recorded
        return written

    def delete_memory(
        self, who: Principal, memory_store_id: str, memory_id: str, expected_sha256: str | None = None, actor: Actor | None = None
    ) -> Written:
        version_id = new_id("memver")
        written_by = actor or api_actor(who)

        def command(store: MemoryStore) -> None:
            self._memory(store, memory_id)
            store.delete_memory(memory_id, version_id, written_by, expected_sha256)

        deleted = {"id": memory_id, "type": "memory_deleted"}
        return self._commands.change(who, memory_store_id, command, render=lambda store: deleted)

    # -- versions ----------------------------------------------------------------------

    def redact_version(
        self, who: Principal, memory_store_id: str, version_id: str, actor: Actor | None = None
    ) -> Written:
        """Records the redaction, then shreds the version's key (also when it was redacted
        before: a shred is idempotent, and a crash between the two must heal on retry)."""
        redacted_by = actor or api_actor(who)

        def command(store: MemoryStore) -> bool:
            try:
                return store.redact_version(version_id, redacted_by)
            except UnknownMemory as missing:
                raise NotFound(str(missing)) from None

        written = self._commands.change(who, memory_store_id, command, render=lambda store: {})
        self._cipher.shred(version_id)
        return written

    # -- search ------------------------------------------------------------------------

    def search(self, who: Principal, memory_store_id: str, query: str, limit: int) -> list[dict[str, Any]]:
        """The store's memories nearest in meaning to ``query``, best first, each as retrieve
        shows it (full) with its ``score``. A hit whose memory is gone since it was indexed is
        dropped; so are the further parts of a memory already listed."""
        self._commands.load(who, memory_store_id)
        if self._search is None or self._reads is None:
            raise Invalid("semantic search is not configured on this server")
        match = {"tenant_id": who.tenant_id, "memory_store_id": memory_store_id}
        # Each memory's best part stands for it.
        hits = self._search.search(MEMORIES_COLLECTION, query, limit * HITS_PER_RESULT, match)
        best: dict[str, float] = {}
        for hit in hits:
            memory_id = str(hit.payload.get("memory_id", ""))
            if memory_id and memory_id not in best:
                best[memory_id] = hit.score
        found = self._reads.memories_by_id(who.tenant_id, memory_store_id, list(best))
        results = []
        for memory_id, score in best.items():
            memory = found.get(memory_id)
            if memory is not None:
                results.append(memory | {"score": score})
            if len(results) == limit:
                break
        return results

    # -- helpers -----------------------------------------------------------------------

    def _sealed_write(self, who: Principal, memory_store_id: str, version_id: str, command: Any, render: Any) -> Written:
        try:
            return self._commands.change(who, memory_store_id, command, render=render)
        except BaseException:
            # Nothing was stored (or nothing changed): the key made for this version must not outlive it.
            self._cipher.shred(version_id)
            raise

    def _renderer(self, memory_id: str, view: str, content: str | None = None) -> Any:
        def render(store: MemoryStore) -> dict[str, Any]:
            memory = store.memories[memory_id]
            doc = memory_view(store.memory_store_id, memory)
            if view == "full":
                doc["content"] = content if content is not None else self._open(memory.memory_version_id, memory.sealed)
            return doc

        return render

    def _open(self, version_id: str, sealed: str) -> str | None:
        try:
            return self._cipher.open(version_id, sealed)
        except SecretUnavailable:
            return None

    @staticmethod
    def _memory(store: MemoryStore, memory_id: str) -> Memory:
        try:
            return store.memory(memory_id)
        except UnknownMemory as missing:
            raise NotFound(str(missing)) from None
