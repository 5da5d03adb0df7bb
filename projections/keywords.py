"""Keyword ranking: the terms a text is indexed under, and BM25 over postings.

The same analysis runs when a chunk is indexed and when a query is ranked (lowercase words,
a few stop words out, a light suffix strip), so both sides meet on the same terms.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Hashable, Iterable, Mapping
from typing import TypeVar

BM25_K1 = 1.2
BM25_B = 0.75
MAX_TERM = 64
K = TypeVar("K", bound=Hashable)
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
    return [_stem(word) for word in _WORD.findall(text.lower()) if word not in _STOP and len(word) <= MAX_TERM]


def bag(text: str) -> Counter[str]:
    return Counter(terms(text))


def bm25(
    postings: Iterable[tuple[K, str, int]], lengths: Mapping[K, int], total: int, average: float
) -> list[tuple[K, float]]:
    """(key, score), best first, from the postings (key, term, count) of the query's terms;
    ``lengths`` holds each key's length, ``total`` and ``average`` the collection's size and
    mean length."""
    rows = list(postings)
    frequency = Counter(term for _, term, _ in rows)
    scores: dict[K, float] = {}
    average = average or 1.0
    for key, term, count in rows:
        idf = math.log(1 + (total - frequency[term] + 0.5) / (frequency[term] + 0.5))
        norm = BM25_K1 * (1 - BM25_B + BM25_B * lengths[key] / average)
        scores[key] = scores.get(key, 0.0) + idf * count * (BM25_K1 + 1) / (count + norm)
    return sorted(scores.items(), key=lambda item: -item[1])


def rank(query: str, texts: list[str]) -> list[tuple[int, float]]:
    """BM25 of ``texts`` for ``query`` in memory (the index's ranking, for a list at hand)."""
    wanted = set(terms(query))
    bags = [bag(text) for text in texts]
    postings = [(number, term, counts[term]) for number, counts in enumerate(bags) for term in wanted if term in counts]
    lengths = {number: sum(counts.values()) for number, counts in enumerate(bags)}
    average = sum(lengths.values()) / len(lengths) if lengths else 1.0
    return bm25(postings, lengths, len(bags), average)
