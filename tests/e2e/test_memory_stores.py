"""Memory stores, memories and memory versions through the anthropic SDK on a real server
(SQLite and PostgreSQL): the store's lifecycle, memories' paths, views, preconditions and
conflicts, list prefixes and depth rollups, version filters, and a redaction whose content is
gone from every read — also after a projection rebuild — and from everything stored."""

from __future__ import annotations

import hashlib
import threading

import anthropic
import httpx
import pytest

from application.memory import session_actor
from application.tenancy import Principal
from tests.e2e.test_model_cards import _stored_bytes
from tests.e2e.test_people import as_person, invited, login
from tests.support.server import RunningServer

SECRET = "the launch code is 0000-memory-secret-7777"


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def test_store_lifecycle_create_update_list_archive_delete(client: anthropic.Anthropic) -> None:
    stores = client.beta.memory_stores
    store = stores.create(name="Team notes", description="what the team knows", metadata={"team": "a"})
    assert store.id.startswith("memstore_") and store.type == "memory_store"
    assert (store.name, store.description, store.metadata, store.archived_at) == ("Team notes", "what the team knows", {"team": "a"}, None)
    bare = stores.create(name="bare")
    assert bare.description == "" and bare.metadata == {}

    updated = stores.update(store.id, name="Team memory", metadata={"team": None, "env": "prod"})
    assert (updated.name, updated.description, updated.metadata) == ("Team memory", "what the team knows", {"env": "prod"})
    assert updated.updated_at > store.updated_at
    cleared = stores.update(store.id, description="")
    assert cleared.description == ""
    assert stores.retrieve(store.id).name == "Team memory"

    listed = [item.id for item in stores.list()]
    assert listed[:2] == [bare.id, store.id]

    archived = stores.archive(store.id)
    assert archived.archived_at is not None
    assert stores.archive(store.id).archived_at == archived.archived_at  # idempotent
    with pytest.raises(anthropic.BadRequestError):
        stores.update(store.id, name="again")
    with pytest.raises(anthropic.BadRequestError):
        client.beta.memory_stores.memories.create(store.id, path="/a.md", content="x")
    assert store.id not in [item.id for item in stores.list()]
    assert store.id in [item.id for item in stores.list(include_archived=True)]

    deleted = stores.delete(store.id)
    assert (deleted.id, deleted.type) == (store.id, "memory_store_deleted")
    with pytest.raises(anthropic.NotFoundError):
        stores.retrieve(store.id)
    with pytest.raises(anthropic.NotFoundError):
        stores.retrieve("memstore_doesnotexist0000")


def test_memories_create_retrieve_update_rename_conflicts_and_delete(client: anthropic.Anthropic) -> None:
    store = client.beta.memory_stores.create(name="notes")
    memories = client.beta.memory_stores.memories
    created = memories.create(store.id, path="/projects/foo/notes.md", content="hello")
    assert created.id.startswith("mem_") and created.content is None  # basic by default
    assert (created.content_sha256, created.content_size_bytes) == (sha("hello"), 5)
    full = memories.retrieve(created.id, memory_store_id=store.id)
    assert full.content == "hello" and full.memory_version_id == created.memory_version_id
    assert memories.retrieve(created.id, memory_store_id=store.id, view="basic").content is None
    empty = memories.create(store.id, path="/empty", content="", view="full")
    assert (empty.content, empty.content_size_bytes) == ("", 0)

    with pytest.raises(anthropic.ConflictError) as conflict:
        memories.create(store.id, path="/projects/foo/notes.md", content="again")
    assert conflict.value.body["error"]["type"] == "memory_path_conflict_error"  # type: ignore[index]
    for bad in ("no-slash", "/a//b", "/a/./b", "/a/../b", "/a\u0007", "/e\u0301", "/" + "x" * 1030, "/" + "/".join("a" * 21)):
        with pytest.raises(anthropic.BadRequestError):
            memories.create(store.id, path=bad, content="x")
    with pytest.raises(anthropic.BadRequestError):
        memories.create(store.id, path="/big", content="é" * 51_201)

    changed = memories.update(created.id, memory_store_id=store.id, content="hello world", view="full")
    assert changed.content == "hello world" and changed.memory_version_id != created.memory_version_id
    renamed = memories.update(created.id, memory_store_id=store.id, path="/projects/bar.md")
    assert (renamed.id, renamed.path, renamed.content_sha256) == (created.id, "/projects/bar.md", sha("hello world"))
    same = memories.update(created.id, memory_store_id=store.id, content="hello world")
    assert same.memory_version_id == renamed.memory_version_id  # nothing changed: no version

    with pytest.raises(anthropic.ConflictError) as stale:
        memories.update(
            created.id, memory_store_id=store.id, content="lost", precondition={"type": "content_sha256", "content_sha256": sha("hello")}
        )
    assert stale.value.body["error"]["type"] == "memory_precondition_failed_error"  # type: ignore[index]
    with pytest.raises(anthropic.ConflictError):
        memories.update(created.id, memory_store_id=store.id, path="/empty")
    ok = memories.update(
        created.id, memory_store_id=store.id, content="v3", precondition={"type": "content_sha256", "content_sha256": sha("hello world")}
    )
    assert ok.content_sha256 == sha("v3")

    with pytest.raises(anthropic.ConflictError):
        memories.delete(created.id, memory_store_id=store.id, expected_content_sha256=sha("nope"))
    assert memories.retrieve(created.id, memory_store_id=store.id).content == "v3"
    gone = memories.delete(created.id, memory_store_id=store.id, expected_content_sha256=sha("v3"))
    assert (gone.id, gone.type) == (created.id, "memory_deleted")
    with pytest.raises(anthropic.NotFoundError):
        memories.retrieve(created.id, memory_store_id=store.id)
    # The path is free again.
    memories.create(store.id, path="/projects/bar.md", content="new")

    # An archived store: read and delete, no writes.
    client.beta.memory_stores.archive(store.id)
    assert memories.retrieve(empty.id, memory_store_id=store.id).content == ""
    with pytest.raises(anthropic.BadRequestError):
        memories.update(empty.id, memory_store_id=store.id, content="x")
    memories.delete(empty.id, memory_store_id=store.id)


def test_list_by_path_prefix_depth_and_view(client: anthropic.Anthropic) -> None:
    store = client.beta.memory_stores.create(name="tree")
    memories = client.beta.memory_stores.memories
    paths = ["/a.md", "/notes/todo.md", "/notes/x/deep.md", "/notes/x/deeper/z.md", "/notes-archive/old.md", "/z/y.md"]
    for path in paths:
        memories.create(store.id, path=path, content=f"content of {path}")

    everything = memories.list(store.id)
    assert [item.path for item in everything] == sorted(paths)
    assert all(item.type == "memory" and item.content is None for item in everything)

    notes = memories.list(store.id, path_prefix="/notes/")
    assert [item.path for item in notes] == ["/notes/todo.md", "/notes/x/deep.md", "/notes/x/deeper/z.md"]

    top = memories.list(store.id, depth=1)
    assert [(item.type, item.path) for item in top] == [
        ("memory", "/a.md"), ("memory_prefix", "/notes-archive/"), ("memory_prefix", "/notes/"), ("memory_prefix", "/z/"),
    ]
    inner = memories.list(store.id, path_prefix="/notes/", depth=1, view="full")
    assert [(item.type, item.path) for item in inner] == [("memory", "/notes/todo.md"), ("memory_prefix", "/notes/x/")]
    assert inner.data[0].content == "content of /notes/todo.md"  # type: ignore[union-attr]

    first = memories.list(store.id, limit=2)
    assert len(first.data) == 2 and first.next_page
    walked = [item.path for item in memories.list(store.id, limit=2)]  # the SDK pages on its own
    assert walked == sorted(paths)
    paged = [item.path for item in memories.list(store.id, depth=1, limit=1)]
    assert paged == ["/a.md", "/notes-archive/", "/notes/", "/z/"]

    with pytest.raises(anthropic.BadRequestError):
        memories.list(store.id, path_prefix="/notes")
    with pytest.raises(anthropic.BadRequestError):
        memories.list(store.id, view="full", limit=21)


def test_versions_list_filter_retrieve_and_redact(server: RunningServer, client: anthropic.Anthropic, http: httpx.Client) -> None:
    store = client.beta.memory_stores.create(name="audit")
    memories = client.beta.memory_stores.memories
    versions = client.beta.memory_stores.memory_versions
    memory = memories.create(store.id, path="/secret.md", content=SECRET)
    first_version = memory.memory_version_id
    memories.update(memory.id, memory_store_id=store.id, content="harmless now")
    other = memories.create(store.id, path="/other.md", content="other")
    memories.delete(other.id, memory_store_id=store.id)

    listed = list(versions.list(store.id))
    assert [v.operation for v in listed] == ["deleted", "created", "modified", "created"]
    assert all(v.content is None for v in listed)
    created_by = listed[0].created_by
    assert created_by is not None and created_by.type == "api_actor"
    key_id = created_by.api_key_id  # type: ignore[union-attr]
    assert [v.operation for v in versions.list(store.id, memory_id=memory.id)] == ["modified", "created"]
    assert [v.memory_id for v in versions.list(store.id, operation="deleted")] == [other.id]
    assert len(list(versions.list(store.id, api_key_id=key_id))) == 4
    assert list(versions.list(store.id, api_key_id="apikey_someoneelse")) == []
    assert list(versions.list(store.id, session_id="sesn_none")) == []
    deleted_version = next(iter(versions.list(store.id, operation="deleted")))
    assert deleted_version.content_sha256 is None and deleted_version.path == "/other.md"

    old = versions.retrieve(first_version, memory_store_id=store.id)
    assert (old.content, old.path, old.content_sha256, old.operation) == (SECRET, "/secret.md", sha(SECRET), "created")
    assert versions.retrieve(first_version, memory_store_id=store.id, view="basic").content is None
    full = list(versions.list(store.id, memory_id=memory.id, view="full"))
    assert [v.content for v in full] == ["harmless now", SECRET]

    head = memories.retrieve(memory.id, memory_store_id=store.id).memory_version_id
    with pytest.raises(anthropic.BadRequestError):
        versions.redact(head, memory_store_id=store.id)

    redacted = versions.redact(first_version, memory_store_id=store.id)
    assert redacted.redacted_at is not None and redacted.redacted_by is not None
    assert (redacted.content, redacted.path, redacted.content_sha256, redacted.content_size_bytes) == (None, None, None, None)
    assert redacted.created_by is not None and redacted.created_by.type == "api_actor"
    assert versions.retrieve(first_version, memory_store_id=store.id).content is None
    assert versions.redact(first_version, memory_store_id=store.id).redacted_at == redacted.redacted_at  # idempotent

    def content_everywhere() -> list[str | None]:
        return [v.content for v in versions.list(store.id, view="full")] + [
            versions.retrieve(first_version, memory_store_id=store.id).content
        ]

    assert SECRET not in content_everywhere()
    # Rebuilt from the log, the read model cannot bring it back: its key is shredded.
    server.platform.projections.rebuild("memory_stores")
    again = versions.retrieve(first_version, memory_store_id=store.id)
    assert (again.content, again.path, again.redacted_at) == (None, None, redacted.redacted_at)
    assert SECRET not in content_everywhere()
    assert memories.retrieve(memory.id, memory_store_id=store.id).content == "harmless now"
    assert SECRET.encode() not in _stored_bytes(server)

    # Versions outlive their memory; the store's deletion takes them all.
    assert len(list(versions.list(store.id, memory_id=other.id))) == 2
    client.beta.memory_stores.delete(store.id)
    assert http.get(f"/v1/memory_stores/{store.id}/memory_versions").status_code == 404


def test_other_workspaces_and_bad_input_are_4xx(client: anthropic.Anthropic, http: httpx.Client) -> None:
    store = client.beta.memory_stores.create(name="mine")
    base = f"/v1/memory_stores/{store.id}"
    assert http.get(f"{base}/memories/mem_unknown000000").status_code == 404
    assert http.get(f"{base}/memory_versions/memver_unknown000000").status_code == 404
    assert http.post(f"{base}/memory_versions/memver_unknown000000/redact").status_code == 404
    assert http.post(f"{base}/memories", json={"path": "/a"}).status_code == 400
    assert http.post(f"{base}/memories", json={"path": "/a", "content": None}).json()["content_size_bytes"] == 0
    assert http.get(f"{base}/memories", params={"page": "garbage"}).status_code == 400
    assert http.delete(f"{base}/memories/mem_x0000000", params={"expected_content_sha256": "zz"}).status_code == 400
    assert http.post("/v1/memory_stores", json={"name": "a\u0001b"}).status_code == 400
    # Both beta headers are accepted alone.
    for beta in ("agent-memory-2026-07-22", "managed-agents-2026-04-01"):
        assert http.get(base, headers={"anthropic-beta": beta}).status_code == 200


def test_semantic_search_finds_memories_by_meaning_best_first(server: RunningServer, client: anthropic.Anthropic, http: httpx.Client) -> None:
    store = client.beta.memory_stores.create(name="search")
    other_store = client.beta.memory_stores.create(name="elsewhere")
    memories = client.beta.memory_stores.memories
    cats = memories.create(store.id, path="/pets/cats.md", content="Cats purr and chase mice around the house.")
    memories.create(store.id, path="/finance/q3.md", content="Quarterly revenue grew by twelve percent.")
    gone = memories.create(store.id, path="/pets/dog.md", content="The dog barks at the mailman every morning.")
    memories.create(other_store.id, path="/pets/cats.md", content="Cats purr and chase mice around the house.")
    memories.delete(gone.id, memory_store_id=store.id)
    vectors = server.platform.services.vectors
    assert vectors is not None

    def search(query: str, limit: int = 5) -> list[dict[str, object]]:
        answer = http.post(f"/v1/memory_stores/{store.id}/search", json={"query": query, "limit": limit})
        assert answer.status_code == 200, answer.text
        return list(answer.json()["data"])

    # Indexing follows the log on its own: wait for it to reach the last write.
    head = server.platform.store.max_notification_id()
    assert vectors.wait_for(head, 30.0)
    found = search("a feline pet that hunts rodents")
    assert found[0]["id"] == cats.id and found[0]["content"] == "Cats purr and chase mice around the house."
    assert found[0]["memory_store_id"] == store.id and isinstance(found[0]["score"], float)
    assert [hit["score"] for hit in found] == sorted((hit["score"] for hit in found), reverse=True)  # type: ignore[type-var]
    assert gone.id not in [hit["id"] for hit in found] and len(found) == 2  # deleted, and the other store's: absent
    assert len(search("anything", limit=1)) == 1

    # A rewrite is found by its new words only.
    memories.update(cats.id, memory_store_id=store.id, content="Budget spreadsheets and invoices.")
    assert vectors.wait_for(server.platform.store.max_notification_id(), 30.0)
    assert search("invoices and budgets", limit=1)[0]["id"] == cats.id
    assert http.post(f"/v1/memory_stores/{store.id}/search", json={"query": ""}).status_code == 400
    assert http.post("/v1/memory_stores/memstore_unknown0000/search", json={"query": "x"}).status_code == 404


def test_writes_on_behalf_of_a_session_are_its_versions(server: RunningServer, client: anthropic.Anthropic) -> None:
    """The environment worker's sync of a mounted store writes as the session (the service takes
    an actor); the versions say so and filter by it."""
    store = client.beta.memory_stores.create(name="mounted")
    memory = client.beta.memory_stores.memories.create(store.id, path="/todo.md", content="one")
    who = Principal("default", key_id="agentry-runtime")
    service = server.platform.services.memory
    service.update_memory(who, store.id, memory.id, {"content": "two"}, actor=session_actor("sesn_mounted0000"))
    server.platform.projections.wait_for(server.platform.store.max_notification_id(), 5.0)
    by_session = list(client.beta.memory_stores.memory_versions.list(store.id, session_id="sesn_mounted0000"))
    assert [(v.operation, v.created_by.type) for v in by_session] == [("modified", "session_actor")]  # type: ignore[union-attr]
    assert by_session[0].created_by.session_id == "sesn_mounted0000"  # type: ignore[union-attr]


def test_racing_creates_of_one_path_make_one_memory(client: anthropic.Anthropic) -> None:
    store = client.beta.memory_stores.create(name="race")
    outcomes: list[str] = []

    def create(index: int) -> None:
        try:
            client.beta.memory_stores.memories.create(store.id, path="/same.md", content=f"writer {index}")
            outcomes.append("created")
        except anthropic.ConflictError as conflict:
            outcomes.append(conflict.body["error"]["type"])  # type: ignore[index]

    threads = [threading.Thread(target=create, args=(index,)) for index in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # A loser sees the path taken; on a box too busy for its retries to finish in their
    # budget it may instead get the retryable race 409. Never a second memory.
    assert outcomes.count("created") == 1, outcomes
    assert set(outcomes) <= {"created", "memory_path_conflict_error", "conflict_error"}, outcomes
    assert [item.path for item in client.beta.memory_stores.memories.list(store.id)] == ["/same.md"]


def test_a_logged_in_person_writes_as_a_user_actor(server: RunningServer, client: anthropic.Anthropic, http: httpx.Client) -> None:
    user_id = invited(client, http, "mem@example.com", role="developer")
    person = as_person(server, login(http, "mem@example.com").json()["access_token"])
    store = person.beta.memory_stores.create(name="mine")
    memory = person.beta.memory_stores.memories.create(store.id, path="/a.md", content="by hand")
    version = person.beta.memory_stores.memory_versions.retrieve(memory.memory_version_id, memory_store_id=store.id)
    assert version.created_by is not None and version.created_by.type == "user_actor"
    assert version.created_by.user_id == user_id  # type: ignore[union-attr]
