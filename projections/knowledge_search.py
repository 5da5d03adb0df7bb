"""Search of one knowledge base, by meaning and by keywords, blended.

Keywords: BM25 over the base's chunks as the read model holds them, computed here so the
same ranking runs on SQLite and PostgreSQL. Meaning: the ``SemanticSearch`` port over the
``knowledge`` vector collection. The two rankings are fused by reciprocal rank (each chunk
scores Σ 1/(K + rank) over the lists it is in), which needs no calibration between a cosine
and a BM25 score. A semantic hit whose chunk is no longer in the read model (its document was
deleted, the vector index has not caught up) is dropped, so an answer never cites a document
that is gone.

Every result cites where it came from: document id, title, filename, chunk index, character
offsets, page (PDF) and the heading it sits under (markdown).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from typing import Any, Literal

from application.ports import SemanticSearch
from projections.knowledge import ChunkRow, KnowledgeReads
from projections.knowledge_vectors import COLLECTION

Mode = Literal["hybrid", "semantic", "keyword"]
MODES: tuple[Mode, ...] = ("hybrid", "semantic", "keyword")
RRF_K = 60
BM25_K1 = 1.2
BM25_B = 0.75
SNIPPET = 300
_WORD = re.compile(r"[a-z0-9]+")
_STOP = frozenset(
    "a an and are as at be by can do does for from how i if in is it its my of on or our should "
    "the their this to was we what when where which who why will with you your".split()
)


def _stem(word: str) -> str:
    """A light suffix strip, so "backups" meets "backup" and "restoring" meets "restore"."""
    for suffix in ("ing", "ed", "es", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


def terms(text: str) -> list[str]:
    return [_stem(word) for word in _WORD.findall(text.lower()) if word not in _STOP]


def bm25(query: str, documents: Sequence[str]) -> list[tuple[int, float]]:
    """(position in ``documents``, score) of those sharing a term with ``query``, best first."""
    wanted = set(terms(query))
    if not wanted or not documents:
        return []
    bags = [Counter(terms(text)) for text in documents]
    average = sum(sum(bag.values()) for bag in bags) / len(bags) or 1.0
    frequency = Counter(term for bag in bags for term in wanted if term in bag)
    scored = []
    for position, bag in enumerate(bags):
        length = sum(bag.values())
        score = 0.0
        for term in wanted:
            count = bag.get(term, 0)
            if count:
                idf = math.log(1 + (len(bags) - frequency[term] + 0.5) / (frequency[term] + 0.5))
                score += idf * count * (BM25_K1 + 1) / (count + BM25_K1 * (1 - BM25_B + BM25_B * length / average))
        if score > 0:
            scored.append((position, score))
    scored.sort(key=lambda item: -item[1])
    return scored


def _snippet(text: str) -> str:
    return text if len(text) <= SNIPPET else text[:SNIPPET].rsplit(" ", 1)[0] + "…"


class KnowledgeSearch:
    def __init__(self, reads: KnowledgeReads, semantic: SemanticSearch | None) -> None:
        self._reads = reads
        self._semantic = semantic

    @property
    def reads(self) -> KnowledgeReads:
        return self._reads

    def effective(self, mode: Mode) -> Mode | None:
        """The mode a request gets: without a vector index hybrid is keywords alone, and
        semantic is not to be had (None)."""
        if self._semantic is not None or mode == "keyword":
            return mode
        return "keyword" if mode == "hybrid" else None

    def search(self, tenant_id: str, knowledge_base_id: str, query: str, limit: int, mode: Mode) -> list[dict[str, Any]]:
        chunks = self._reads.chunks(tenant_id, knowledge_base_id)
        where = {(chunk.document_id, chunk.chunk_index): number for number, chunk in enumerate(chunks)}
        depth = max(limit * 4, 20)
        rankings: dict[str, list[int]] = {}
        if mode in ("hybrid", "keyword"):
            # Title and heading count as the chunk's words too: they say what it is about.
            texts = [" ".join(filter(None, (chunk.title, chunk.heading, chunk.text))) for chunk in chunks]
            rankings["keyword"] = [number for number, _ in bm25(query, texts)[:depth]]
        if mode in ("hybrid", "semantic") and self._semantic is not None:
            hits = self._semantic.search(
                COLLECTION, query, depth, {"tenant_id": tenant_id, "knowledge_base_id": knowledge_base_id}
            )
            ranked: list[int] = []
            for hit in hits:
                number = where.get((str(hit.payload.get("document_id")), int(hit.payload.get("chunk_index", -1))))
                if number is not None and number not in ranked:
                    ranked.append(number)
            rankings["semantic"] = ranked
        fused: dict[int, float] = {}
        ranks: dict[int, dict[str, int]] = {}
        for side, ranked in rankings.items():
            for rank, number in enumerate(ranked, start=1):
                fused[number] = fused.get(number, 0.0) + 1.0 / (RRF_K + rank)
                ranks.setdefault(number, {})[side] = rank
        best = sorted(fused, key=lambda number: (-fused[number], number))[:limit]
        return [self._cited(chunks[number], fused[number], ranks[number]) for number in best]

    @staticmethod
    def _cited(chunk: ChunkRow, score: float, ranks: dict[str, int]) -> dict[str, Any]:
        return {
            "type": "knowledge_search_result",
            "document_id": chunk.document_id,
            "title": chunk.title,
            "filename": chunk.filename,
            "chunk_index": chunk.chunk_index,
            "start": chunk.start,
            "end": chunk.end,
            "page": chunk.page,
            "heading": chunk.heading,
            "snippet": _snippet(chunk.text),
            "score": round(score, 6),
            "keyword_rank": ranks.get("keyword"),
            "semantic_rank": ranks.get("semantic"),
        }
