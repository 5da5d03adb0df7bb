"""The memory vector source: what a vector projection is told to index and drop for each
memory event, with content opened from its sealed form and never put in a payload."""

from __future__ import annotations

from application.memory import sha256_of
from application.ports import IndexText, SecretUnavailable, UnindexWhere
from domain.memory import MemoryStore
from projections.memory_vectors import PART_CHARS, MemoryVectors


class Cipher:
    """Seals by prefixing the owner; a shredded owner cannot be opened."""

    def __init__(self) -> None:
        self.shredded: set[str] = set()

    def seal(self, owner: str, plaintext: str) -> str:
        return f"{owner}|{plaintext}"

    def open(self, owner: str, sealed: str) -> str:
        if owner in self.shredded:
            raise SecretUnavailable(owner)
        return sealed.split("|", 1)[1]

    def shred(self, owner: str) -> None:
        self.shredded.add(owner)


def _write(store: MemoryStore, cipher: Cipher, memory_id: str, version: str, path: str, content: str) -> None:
    sealed = cipher.seal(version, content)
    if memory_id in store.memories:
        store.modify_memory(memory_id, version, path, sealed, sha256_of(content), len(content), None, None)
    else:
        store.create_memory(memory_id, version, path, sealed, sha256_of(content), len(content), None)


def test_writes_reindex_the_memory_deletes_drop_it_and_payloads_hold_ids_only() -> None:
    cipher = Cipher()
    vectors = MemoryVectors(cipher)
    store = MemoryStore(memory_store_id="memstore_abcdefgh", tenant_id="tenant", name="n", description="", metadata={})
    _write(store, cipher, "mem_a", "memver_1", "/notes.md", "the cat sat")
    _write(store, cipher, "mem_a", "memver_2", "/notes.md", "the dog ran")
    _write(store, cipher, "mem_b", "memver_3", "/long.md", "x" * (PART_CHARS * 2))
    store.delete_memory("mem_a", "memver_4", None, None)
    store.delete()
    created, modified, long, deleted, store_deleted = [vectors(event) for event in store.collect_events()[1:]]

    unindex_a = UnindexWhere("memories", {"memory_id": "mem_a"})
    assert created[0] == unindex_a and modified[0] == unindex_a
    index = created[1]
    assert isinstance(index, IndexText) and index.collection == "memories"
    assert index.text == "/notes.md\nthe cat sat"
    assert index.payload == {"tenant_id": "tenant", "memory_store_id": "memstore_abcdefgh", "memory_id": "mem_a", "memory_version_id": "memver_1"}
    assert isinstance(modified[1], IndexText) and modified[1].text == "/notes.md\nthe dog ran" and modified[1].key != index.key
    assert [change.key for change in long[1:] if isinstance(change, IndexText)] == [f"{long[1].key.split(':')[0]}:{n}" for n in range(3)]  # type: ignore[union-attr]
    assert deleted == [unindex_a]
    assert store_deleted == [UnindexWhere("memories", {"memory_store_id": "memstore_abcdefgh"})]
    for change in created + modified + long:
        if isinstance(change, IndexText):
            assert all("cat" not in str(value) and "dog" not in str(value) for value in change.payload.values())


def test_a_shredded_version_is_not_indexed_and_replay_gives_the_same_keys() -> None:
    cipher = Cipher()
    vectors = MemoryVectors(cipher)
    store = MemoryStore(memory_store_id="memstore_abcdefgh", tenant_id="tenant", name="n", description="", metadata={})
    _write(store, cipher, "mem_a", "memver_1", "/a", "text")
    event = store.collect_events()[1]
    assert vectors(event) == vectors(event)
    cipher.shred("memver_1")
    assert vectors(event) == [UnindexWhere("memories", {"memory_id": "mem_a"})]
