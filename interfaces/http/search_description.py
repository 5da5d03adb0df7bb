"""Global search in the API description (``api_description.OPERATIONS`` takes it in one line)."""

from __future__ import annotations

from interfaces.http.api_description import Operation, Param, integer
from interfaces.http.search_schemas import KINDS, SearchResults

SEARCH_OPERATIONS: tuple[Operation, ...] = (
    Operation(
        "get", "/v1/search", "search", "Search agents, sessions, tasks, knowledge and memories", "search",
        SearchResults,
        params=(
            Param("q", "query", {"type": "string", "minLength": 1, "maxLength": 512}, "what to look for", required=True),
            Param("limit", "query", integer(1, 100), "how many results (default 20, at most 100)"),
            Param(
                "types", "query", {"type": "string", "maxLength": 128},
                f"comma-separated kinds to search (default all): {', '.join(KINDS)}",
            ),
        ),
        errors=(400,),
        description=(
            "Only what the caller's workspace holds. Agents, sessions and tasks match by keyword (name, title, "
            "description, id); knowledge (one hit per document, its best chunk cited) and memories (one per memory) "
            "by meaning, as far as the vector projection has indexed. Each kind ranks its own hits, and the lists "
            "are fused by reciprocal rank."
        ),
    ),
)
