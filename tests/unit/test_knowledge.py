"""Chunking, the bounded chunk events, the PDF text, keyword ranking and the vector source of
knowledge documents."""

from __future__ import annotations

import orjson
import pytest

from application.knowledge import Unreadable
from application.ports import IndexText, UnindexWhere
from domain.knowledge import MAX_BATCH_CHARACTERS, Document, KnowledgeBase, NothingToIndex, chunk_text
from infra.pdf_text import PypdfText
from projections.keywords import rank
from projections.knowledge_vectors import knowledge_vectors
from tests.support.pdf import tiny_pdf


def _document(media_type: str = "text/plain") -> Document:
    return Document(
        document_id="kdoc_abcdefgh12345678",
        tenant_id="tenant",
        knowledge_base_id="kb_abcdefgh12345678",
        filename="notes.txt",
        title="Notes",
        media_type=media_type,
        size_bytes=10,
        blob_key="0" * 64,
    )


def test_chunks_cover_the_text_overlap_and_record_their_offsets() -> None:
    text = " ".join(f"Sentence number {n} says something about topic {n % 7}." for n in range(400))
    chunks = chunk_text(text, size=500, overlap=100)
    assert len(chunks) > 10
    for chunk in chunks:
        assert text[chunk.start : chunk.end] == chunk.text
        assert len(chunk.text) <= 500
    assert chunks[0].start == 0 and chunks[-1].end == len(text)
    for before, after in zip(chunks, chunks[1:], strict=False):
        assert after.start < before.end, "consecutive chunks overlap"
        assert after.start > before.start


def test_markdown_chunks_never_span_two_sections_and_name_their_heading() -> None:
    text = "# Backups\nThe backup runs nightly.\n\n## Restore\nUse pg_restore.\n"
    chunks = chunk_text(text, markdown=True)
    assert [(chunk.heading, chunk.text) for chunk in chunks] == [
        ("Backups", "# Backups\nThe backup runs nightly."),
        ("Restore", "## Restore\nUse pg_restore."),
    ]


def test_a_chunk_knows_the_page_it_starts_on() -> None:
    text = "first page text\n\nsecond page text"
    chunks = chunk_text(text, page_starts=(0, 17), size=20, overlap=0)
    assert [(chunk.text, chunk.page) for chunk in chunks] == [("first page text", 1), ("second page text", 2)]


def test_a_large_document_is_recorded_in_events_under_a_kafka_message() -> None:
    document = _document()
    document.index("word " * 600_000)  # 3 MB of text
    events = document.collect_events()
    runs = [event for event in events if isinstance(event, Document.ChunksRecorded)]
    assert len(runs) > 1
    for run in runs:
        assert sum(len(chunk["text"]) for chunk in run.chunks) <= MAX_BATCH_CHARACTERS
        assert len(orjson.dumps(run.chunks)) < 1_000_000
    assert isinstance(events[-1], Document.Chunked) and events[-1].chunk_count == sum(len(run.chunks) for run in runs)


def test_a_document_without_text_is_refused() -> None:
    with pytest.raises(NothingToIndex):
        _document().index("  \n ")


def test_the_pdf_text_keeps_its_pages() -> None:
    extracted = PypdfText().extract(tiny_pdf(["Alpha page one", "Beta page two"]))
    assert "Alpha page one" in extracted.text and "Beta page two" in extracted.text
    assert extracted.page_starts[0] == 0
    assert extracted.text[extracted.page_starts[1] :].startswith("Beta")


def test_a_broken_pdf_is_unreadable_not_a_crash() -> None:
    with pytest.raises(Unreadable):
        PypdfText().extract(b"%PDF-1.4\nthis is not really a pdf at all")


def test_keyword_ranking_prefers_the_passage_with_the_rare_terms() -> None:
    passages = ["backups run nightly at two", "restore a backup with pg_restore", "lunch is at noon"]
    ranked = [position for position, _ in rank("how to restore backups", passages)]
    assert ranked[0] == 1 and 2 not in ranked


def test_the_vector_source_indexes_each_chunk_and_unindexes_on_delete() -> None:
    document = _document()
    document.index("one chunk of text")
    document.delete()
    events = document.collect_events()
    changes = [change for event in events for change in knowledge_vectors(event)]
    indexed = [change for change in changes if isinstance(change, IndexText)]
    assert len(indexed) == 1 and indexed[0].collection == "knowledge" and indexed[0].text == "one chunk of text"
    assert indexed[0].key.endswith(":0")
    assert indexed[0].payload | {"start": 0} == {
        "tenant_id": "tenant", "knowledge_base_id": "kb_abcdefgh12345678", "document_id": "kdoc_abcdefgh12345678",
        "chunk_index": 0, "start": 0, "end": 17, "page": None,
    }  # fmt: skip
    assert changes[-1] == UnindexWhere("knowledge", {"tenant_id": "tenant", "document_id": "kdoc_abcdefgh12345678"})
    base = KnowledgeBase(knowledge_base_id="kb_abcdefgh12345678", tenant_id="tenant", name="n", description=None, metadata={})
    base.delete()
    assert knowledge_vectors(base.collect_events()[-1]) == [
        UnindexWhere("knowledge", {"tenant_id": "tenant", "knowledge_base_id": "kb_abcdefgh12345678"})
    ]
