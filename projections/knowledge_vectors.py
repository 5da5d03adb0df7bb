"""What the vector projection does with knowledge events: embed each recorded chunk into the
``knowledge`` collection, and drop a document's (or a whole base's) points when it is deleted.

Pure: the chunks' text is in the events, so replaying the log rebuilds the index. A point's
key is the recording event's id and the chunk's place in it, so a replay rewrites the same
points instead of adding new ones."""

from __future__ import annotations

from typing import Any

from application.outbox import event_id
from application.ports import IndexText, UnindexWhere, VectorChange
from domain.knowledge import Document, KnowledgeBase

COLLECTION = "knowledge"


def knowledge_vectors(event: Any) -> list[VectorChange]:
    """The vector changes ``event`` asks for (none for an event of another kind)."""
    if isinstance(event, Document.ChunksRecorded):
        context = event.context
        identifier = event_id(event.originator_id, event.originator_version)
        return [
            IndexText(
                collection=COLLECTION,
                key=f"{identifier}:{number}",
                text=chunk["text"],
                payload={
                    "tenant_id": context["tenant_id"],
                    "knowledge_base_id": context["knowledge_base_id"],
                    "document_id": context["document_id"],
                    "chunk_index": chunk["index"],
                    "start": chunk["start"],
                    "end": chunk["end"],
                    "page": chunk.get("page"),
                },
            )
            for number, chunk in enumerate(event.chunks)
        ]
    if isinstance(event, Document.Deleted):
        return [UnindexWhere(COLLECTION, {"tenant_id": event.context["tenant_id"], "document_id": event.context["document_id"]})]
    if isinstance(event, KnowledgeBase.Deleted):
        return [
            UnindexWhere(
                COLLECTION,
                {"tenant_id": event.context["tenant_id"], "knowledge_base_id": event.context["knowledge_base_id"]},
            )
        ]
    return []


# The events it handles (the vector projection decodes no other for it).
knowledge_vectors.event_classes = (Document.ChunksRecorded, Document.Deleted, KnowledgeBase.Deleted)  # type: ignore[attr-defined]
