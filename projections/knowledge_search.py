"""Search of one knowledge base, by meaning and by keywords, blended.

Keywords: BM25 over the read model's postings (``rm_knowledge_terms``): a query reads the
postings of its own terms, and the ranking is computed here, so it is the same on SQLite and
PostgreSQL. Meaning: the ``SemanticSearch`` port over the
``knowledge`` vector collection. The two rankings are fused by reciprocal rank (each chunk
scores Σ 1/(K + rank) over the lists it is in), which needs no calibration between a cosine
and a BM25 score. A semantic hit whose chunk is no longer in the read model (its document was
deleted, the vector index has not caught up) is dropped, so an answer never cites a document
that is gone.

Every result cites where it came from: document id, title, filename, chunk index, character
offsets, page (PDF) and the heading it sits under (markdown).
"""

from __future__ import annotations

from typing import Any, Literal

from application.ports import SemanticSearch
from projections.keywords import terms
from projections.knowledge import ChunkRow, Key, KnowledgeReads
from projections.knowledge_vectors import COLLECTION

Mode = Literal["hybrid", "semantic", "keyword"]
MODES: tuple[Mode, ...] = ("hybrid", "semantic", "keyword")
RRF_K = 60
SNIPPET = 300


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
        return [self._cited(*found) for found in self.passages(tenant_id, knowledge_base_id, query, limit, mode)]

    def passages(
        self, tenant_id: str, knowledge_base_id: str, query: str, limit: int, mode: Mode
    ) -> list[tuple[ChunkRow, float, dict[str, int]]]:
        """The best chunks, whole, with their fused score and their rank on each side."""
        depth = max(limit * 4, 20)
        rankings: dict[str, list[Key]] = {}
        if mode in ("hybrid", "keyword"):
            rankings["keyword"] = self._reads.keyword_ranking(knowledge_base_id, set(terms(query)), depth)
        if mode in ("hybrid", "semantic") and self._semantic is not None:
            hits = self._semantic.search(
                COLLECTION, query, depth, {"tenant_id": tenant_id, "knowledge_base_id": knowledge_base_id}
            )
            ranked: list[Key] = []
            for hit in hits:
                key = (str(hit.payload.get("document_id")), int(hit.payload.get("chunk_index", -1)))
                if key not in ranked:
                    ranked.append(key)
            rankings["semantic"] = ranked
        # Only chunks the read model still holds are cited (the vector index may lag a delete).
        chunks = self._reads.chunks_at(knowledge_base_id, (key for ranked in rankings.values() for key in ranked))
        fused: dict[Key, float] = {}
        ranks: dict[Key, dict[str, int]] = {}
        for side, ranked in rankings.items():
            for rank, key in enumerate((key for key in ranked if key in chunks), start=1):
                fused[key] = fused.get(key, 0.0) + 1.0 / (RRF_K + rank)
                ranks.setdefault(key, {})[side] = rank
        best = sorted(fused, key=lambda key: (-fused[key], key))[:limit]
        return [(chunks[key], fused[key], ranks[key]) for key in best]

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
