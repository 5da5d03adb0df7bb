"""``GET /v1/search``: one query across the kinds of thing a caller can see.

Each kind answers from its own source (names and titles by keyword; knowledge and memories
by meaning), ranked by that source. The lists are fused by reciprocal rank, so a kind whose
scores run on another scale (a cosine, a keyword rank) neither drowns nor is drowned by the
others: a hit's place in its own list is what counts.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from application.errors import Unavailable

log = logging.getLogger("agentry.search")

# The usual constant of reciprocal rank fusion (Cormack et al., 2009): large enough that the
# first few places of every list weigh about the same.
FUSION_K = 60


@dataclass(frozen=True)
class SearchHit:
    type: str  # agent | session | task | knowledge | memory
    id: str
    title: str
    snippet: str
    score: float  # the source's own score, best = highest
    object: dict[str, Any] = field(default_factory=dict)


# tenant ids the caller may read, the query, how many → that kind's hits, best first
SearchSource = Callable[[Sequence[str], str, int], list[SearchHit]]


def snippet(text: str | None, query: str, width: int = 160) -> str:
    """The part of ``text`` around the first place ``query`` occurs (its start if nowhere)."""
    text = " ".join((text or "").split())
    at = text.lower().find(query.lower())
    start = max(0, at - width // 4) if at > 0 else 0
    piece = text[start : start + width]
    return ("…" if start else "") + piece + ("…" if start + width < len(text) else "")


class GlobalSearch:
    def __init__(self, sources: dict[str, SearchSource]) -> None:
        self._sources = dict(sources)

    @property
    def kinds(self) -> tuple[str, ...]:
        return tuple(self._sources)

    def add_source(self, kind: str, source: SearchSource) -> None:
        self._sources[kind] = source

    def search(self, tenant_ids: Sequence[str], query: str, limit: int, kinds: Sequence[str] = ()) -> list[dict[str, Any]]:
        fused: dict[tuple[str, str], float] = {}
        hits: dict[tuple[str, str], SearchHit] = {}
        for kind, source in self._sources.items():
            if kinds and kind not in kinds:
                continue
            try:
                found = source(tenant_ids, query, limit)
            except Unavailable as down:
                # One kind's service down (the embeddings endpoint): the others still answer.
                log.warning("global search: %s skipped (%s)", kind, down)
                continue
            for rank, hit in enumerate(found):
                key = (hit.type, hit.id)
                fused[key] = fused.get(key, 0.0) + 1.0 / (FUSION_K + rank + 1)
                hits.setdefault(key, hit)
        order = sorted(fused, key=lambda key: (-fused[key], key))
        return [
            {
                "type": hits[key].type,
                "id": hits[key].id,
                "title": hits[key].title,
                "snippet": hits[key].snippet,
                "score": round(fused[key], 6),
                "source_score": round(hits[key].score, 6),
                "object": hits[key].object,
            }
            for key in order[:limit]
        ]
