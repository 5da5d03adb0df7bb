"""Knowledge bases and their documents: text a tenant uploads for agents to search.

A KnowledgeBase and each Document are aggregates of their own, so a base with thousands of
documents is never one long stream to load. A document's bytes stay in the blob store (its
event names the blob's key); its text is split into chunks here, and the chunks travel in
``ChunksRecorded`` events of bounded size, so even a large document never makes an event
bigger than a Kafka message may be, and every index (keywords, vectors) is a projection of
the log, rebuildable from it.

A chunk records where it came from: its character offsets in the document's extracted text
and, for a PDF, the page it starts on; a search answer cites both.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.errors import DomainError
from domain.ids import stream_id

CHUNK_SIZE = 1200
CHUNK_OVERLAP = 200
# Text per ``ChunksRecorded`` event: even text that JSON escapes at six bytes a character
# stays under Kafka's default 1 MB message.
MAX_BATCH_CHARACTERS = 128 * 1024
MEDIA_TYPES = ("text/plain", "text/markdown", "application/pdf")
_HEADING = re.compile(r"^#{1,6}[ \t]+\S.*$", re.MULTILINE)


class NothingToIndex(DomainError):
    """The document holds no text to index (an empty upload)."""


@dataclass(frozen=True)
class Chunk:
    """``text`` is ``document_text[start:end]``; ``page`` (1-based) where a PDF's chunk starts."""

    index: int
    start: int
    end: int
    text: str
    page: int | None = None
    heading: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "start": self.start,
            "end": self.end,
            "page": self.page,
            "heading": self.heading,
            "text": self.text,
        }


def _sections(text: str, markdown: bool, page_starts: Sequence[int]) -> list[tuple[int, int, str | None]]:
    """(start, end, heading): a markdown document splits at its headings and a PDF at its
    pages, so a chunk never spans two sections and cites one page; anything else is one
    section."""
    if page_starts:
        ends = [*page_starts[1:], len(text)]
        return [(start, end, None) for start, end in zip(page_starts, ends, strict=True)]
    if not markdown:
        return [(0, len(text), None)]
    starts = [match.start() for match in _HEADING.finditer(text)]
    if not starts or starts[0] != 0:
        starts.insert(0, 0)
    sections = []
    for number, start in enumerate(starts):
        end = starts[number + 1] if number + 1 < len(starts) else len(text)
        match = _HEADING.match(text, start)
        sections.append((start, end, match.group(0).lstrip("#").strip() if match else None))
    return sections


def _break(text: str, low: int, high: int) -> int:
    """Where to end a chunk in ``text[low:high]``: after a paragraph, else a sentence, else a
    word; ``high`` when there is none."""
    for mark in ("\n\n", ". ", "\n", " "):
        at = text.rfind(mark, low, high)
        if at != -1:
            return at + len(mark)
    return high


def _page_of(page_starts: Sequence[int], offset: int) -> int | None:
    page = None
    for number, start in enumerate(page_starts, start=1):
        if start > offset:
            break
        page = number
    return page


def chunk_text(
    text: str,
    markdown: bool = False,
    page_starts: Sequence[int] = (),
    size: int = CHUNK_SIZE,
    overlap: int = CHUNK_OVERLAP,
) -> list[Chunk]:
    """Splits ``text`` into chunks of at most ``size`` characters that overlap by about
    ``overlap`` (so a sentence cut at one chunk's end is whole in the next), ending at
    paragraph, sentence or word breaks where it can. ``page_starts`` are the offsets where
    each page's text begins (the first is 0)."""
    chunks: list[Chunk] = []
    for section_start, section_end, heading in _sections(text, markdown, page_starts):
        position = section_start
        while position < section_end:
            end = min(position + size, section_end)
            if end < section_end:
                end = _break(text, position + size // 2, end)
            start, stop = position, end
            while start < stop and text[start].isspace():
                start += 1
            while stop > start and text[stop - 1].isspace():
                stop -= 1
            if stop > start:
                chunks.append(
                    Chunk(len(chunks), start, stop, text[start:stop], _page_of(page_starts, start), heading)
                )
            if end >= section_end:
                break
            # Step back by the overlap, to the start of a word, never behind where we were.
            back = max(end - overlap, position + 1)
            space = text.find(" ", back, end)
            position = space + 1 if space != -1 else end
    return chunks


def batches(chunks: Sequence[Chunk]) -> list[list[Chunk]]:
    """Consecutive runs of chunks whose text together stays under ``MAX_BATCH_CHARACTERS``."""
    runs: list[list[Chunk]] = []
    size = 0
    for chunk in chunks:
        if not runs or size + len(chunk.text) > MAX_BATCH_CHARACTERS:
            runs.append([])
            size = 0
        runs[-1].append(chunk)
        size += len(chunk.text)
    return runs


class KnowledgeBase(Aggregate):
    @staticmethod
    def create_id(knowledge_base_id: str, **_: Any) -> UUID:
        return stream_id(knowledge_base_id)

    class Created(Aggregate.Created):
        knowledge_base_id: str
        tenant_id: str
        name: str
        description: str | None
        metadata: dict[str, str]

    class Deleted(Aggregate.Event):
        """The base and every document in it are gone from reads and indexes."""

        context: dict[str, str]

    @event(Created)
    def __init__(
        self, knowledge_base_id: str, tenant_id: str, name: str, description: str | None, metadata: dict[str, str]
    ) -> None:
        self.knowledge_base_id = knowledge_base_id
        self.tenant_id = tenant_id
        self.name = name
        self.description = description
        self.metadata = dict(metadata)
        self.deleted = False

    def delete(self) -> None:
        self._delete({"tenant_id": self.tenant_id, "knowledge_base_id": self.knowledge_base_id})

    @event(Deleted)
    def _delete(self, context: dict[str, str]) -> None:
        self.deleted = True


class Document(Aggregate):
    """One uploaded document. ``status`` is what the log says: ``pending`` until its text is
    chunked, then ``indexing`` (reads turn it into ``ready`` once every index has it), or
    ``failed`` with a reason when no text could be had from it."""

    @staticmethod
    def create_id(document_id: str, **_: Any) -> UUID:
        return stream_id(document_id)

    class Added(Aggregate.Created):
        document_id: str
        tenant_id: str
        knowledge_base_id: str
        filename: str | None
        title: str
        media_type: str
        size_bytes: int
        blob_key: str

    class ChunksRecorded(Aggregate.Event):
        """A run of the document's chunks (each: index, start, end, page, heading, text);
        ``context`` names the document, so an index needs nothing but this event."""

        context: dict[str, str]
        chunks: list[dict[str, Any]]

    class Chunked(Aggregate.Event):
        """Every chunk is recorded: the document's text is ready to index."""

        chunk_count: int
        characters: int
        page_count: int | None

    class Failed(Aggregate.Event):
        reason: str

    class Deleted(Aggregate.Event):
        """The document is gone from reads and indexes."""

        context: dict[str, str]

    @event(Added)
    def __init__(
        self,
        document_id: str,
        tenant_id: str,
        knowledge_base_id: str,
        filename: str | None,
        title: str,
        media_type: str,
        size_bytes: int,
        blob_key: str,
    ) -> None:
        self.document_id = document_id
        self.tenant_id = tenant_id
        self.knowledge_base_id = knowledge_base_id
        self.filename = filename
        self.title = title
        self.media_type = media_type
        self.size_bytes = size_bytes
        self.blob_key = blob_key
        self.status = "pending"
        self.failure: str | None = None
        self.chunk_count = 0
        self.characters = 0
        self.page_count: int | None = None
        self.deleted = False
        self.updated_at: datetime = self.created_on

    def index(self, text: str, page_starts: Sequence[int] = ()) -> None:
        """Chunks the document's extracted text and records the chunks, in runs."""
        if not text.strip():
            raise NothingToIndex("the document holds no text")
        chunks = chunk_text(text, markdown=self.media_type == "text/markdown", page_starts=page_starts)
        for run in batches(chunks):
            self._record_chunks(self._context(), [chunk.as_dict() for chunk in run])
        self._chunked(len(chunks), len(text), len(page_starts) or None)

    def _context(self) -> dict[str, str]:
        return {
            "tenant_id": self.tenant_id,
            "knowledge_base_id": self.knowledge_base_id,
            "document_id": self.document_id,
        }

    @event(ChunksRecorded)
    def _record_chunks(self, context: dict[str, str], chunks: list[dict[str, Any]]) -> None:
        self.chunk_count += len(chunks)

    @event(Chunked)
    def _chunked(self, chunk_count: int, characters: int, page_count: int | None) -> None:
        self.status = "indexing"
        self.characters = characters
        self.page_count = page_count

    @event(Failed)
    def fail(self, reason: str) -> None:
        self.status = "failed"
        self.failure = reason

    def delete(self) -> None:
        self._delete(self._context())

    @event(Deleted)
    def _delete(self, context: dict[str, str]) -> None:
        self.deleted = True
