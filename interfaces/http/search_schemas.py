"""Response body of global search (``GET /v1/search``)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from interfaces.http.responses import Described

KINDS = ("agent", "session", "task", "knowledge", "memory")


class SearchResult(Described):
    type: Literal["agent", "session", "task", "knowledge", "memory"]
    id: str = Field(description="the object's id (`agent_…`, `sesn_…`, `task_…`, a knowledge chunk's document, `mem_…`)")
    title: str = Field(description="its name or title (a session without a title: its id)")
    snippet: str = Field(description="the text around the match")
    score: float = Field(description="reciprocal-rank fusion across kinds: higher is better; comparable within one answer")
    source_score: float = Field(description="the score of the kind's own ranking (keyword rank, or cosine similarity)")
    object: dict[str, Any] = Field(description="the object as its own endpoint answers (a knowledge hit: the citation)")


class SearchResults(Described):
    data: list[SearchResult] = Field(description="best first, at most `limit`")
