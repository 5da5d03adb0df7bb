"""What the vector projection indexes of memory stores: each memory's current text (its path
and content), in the ``memories`` collection, keyed by the event that wrote it.

A write drops the memory's points first and indexes the new text, so a search never finds a
memory by words it no longer holds; a deleted memory or store drops its points. Payloads name
ids only (never content): a hit is looked up in the read model, which also drops hits whose
memory is gone. The text is opened with the cipher at the moment the event is projected; a
version whose key is already shredded (its store deleted since) is not indexed."""

from __future__ import annotations

from typing import Any

from application.memory import MEMORIES_COLLECTION
from application.outbox import event_id
from application.ports import IndexText, SecretCipher, SecretUnavailable, UnindexWhere, VectorChange
from domain.memory import MemoryStore

# Characters per indexed part: the local embedder reads 256 word pieces at most, and a long
# memory is found by any part of it.
PART_CHARS = 1000


def parts(text: str, size: int = PART_CHARS) -> list[str]:
    if len(text) <= size:
        return [text]
    return [text[start : start + size] for start in range(0, len(text), size)]


class MemoryVectors:
    """``(event) -> [VectorChange]`` for the vector projection."""

    event_classes = (MemoryStore.MemoryWritten, MemoryStore.MemoryDeleted, MemoryStore.Deleted)

    def __init__(self, cipher: SecretCipher) -> None:
        self._cipher = cipher

    def __call__(self, event: Any) -> list[VectorChange]:
        if isinstance(event, MemoryStore.MemoryWritten):
            return [self._unindex_memory(event), *self._index(event)]
        if isinstance(event, MemoryStore.MemoryDeleted):
            return [self._unindex_memory(event)]
        if isinstance(event, MemoryStore.Deleted):
            return [UnindexWhere(MEMORIES_COLLECTION, {"memory_store_id": event.memory_store_id})]
        return []

    @staticmethod
    def _unindex_memory(event: Any) -> UnindexWhere:
        return UnindexWhere(MEMORIES_COLLECTION, {"memory_id": event.memory_id})

    def _index(self, event: Any) -> list[VectorChange]:
        try:
            content = self._cipher.open(event.memory_version_id, event.sealed)
        except SecretUnavailable:
            return []
        payload = {
            "tenant_id": event.tenant_id,
            "memory_store_id": event.memory_store_id,
            "memory_id": event.memory_id,
            "memory_version_id": event.memory_version_id,
        }
        key = event_id(event.originator_id, event.originator_version)
        texts = parts(f"{event.path}\n{content}")
        if len(texts) == 1:
            return [IndexText(MEMORIES_COLLECTION, key, texts[0], payload)]
        return [IndexText(MEMORIES_COLLECTION, f"{key}:{number}", text, payload) for number, text in enumerate(texts)]

