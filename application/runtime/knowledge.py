"""The built-in ``knowledge_search`` tool: an agent with knowledge bases attached
(``knowledge_bases``, an Agentry field) may search them during a turn. The runtime runs the
search itself, inside the turn (no worker, no work item), and records the call and its
result as any server-run built-in tool: ``agent.tool_use`` then ``agent.tool_result``, each hit
an SDK ``search_result`` block whose ``source`` cites base, document and chunk.

The ports here are the runtime's narrow view of two read models: the knowledge bases (what to
search, and the notes the system prompt lists) and the skills (the name and description of a
version, for the prompt's Skills section)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

log = logging.getLogger("agentry.runtime")

TOOL_NAME = "knowledge_search"
MAX_LIMIT = 20
DEFAULT_LIMIT = 5
MAX_QUERY = 2000
NO_MATCH = "No passages matched."


@dataclass(frozen=True)
class KnowledgeHit:
    """One passage a search found, with where it comes from."""

    knowledge_base_id: str
    document_id: str
    title: str
    chunk_index: int
    text: str
    score: float
    start: int | None = None
    end: int | None = None
    page: int | None = None
    heading: str | None = None


@dataclass(frozen=True)
class KnowledgeBaseNote:
    """What the system prompt says of an attached base."""

    knowledge_base_id: str
    name: str
    description: str | None = None


@dataclass(frozen=True)
class SkillNote:
    """What the system prompt says of an agent's skill (from the pinned version)."""

    name: str
    description: str | None = None


class KnowledgeSearcher(Protocol):
    """The tenant's knowledge bases as the runtime reads them."""

    def bases(self, tenant_id: str, knowledge_base_ids: Sequence[str]) -> dict[str, KnowledgeBaseNote]:
        """The live bases of the tenant among these ids (others — deleted, another tenant's
        — are absent)."""
        ...

    def search(self, tenant_id: str, knowledge_base_ids: Sequence[str], query: str, limit: int) -> list[KnowledgeHit]:
        """The best ``limit`` passages of these (checked) bases, best first."""
        ...


class SkillCatalogue(Protocol):
    def describe(self, tenant_id: str, skill_id: str, version: str | None) -> SkillNote | None: ...


def attached(agent: dict[str, Any]) -> list[dict[str, Any]]:
    """The agent's ``knowledge_bases`` entries that name a base."""
    return [entry for entry in agent.get("knowledge_bases") or [] if isinstance(entry, dict) and entry.get("knowledge_base_id")]


def tool_definition(agent: dict[str, Any]) -> dict[str, Any]:
    ids = ", ".join(entry["knowledge_base_id"] for entry in attached(agent))
    return {
        "name": TOOL_NAME,
        "description": (
            "Search this agent's knowledge bases by meaning and keywords; returns the most relevant "
            "passages with their source (knowledge base, document and chunk)."
        ),
        "input_schema": {
            "type": "object",
            "required": ["query"],
            "properties": {
                "query": {"type": "string", "description": "What to look for, in natural language"},
                "knowledge_base_id": {"type": "string", "description": f"Search only this knowledge base (one of: {ids})"},
                "limit": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT},
            },
        },
    }


@dataclass(frozen=True)
class ToolOutcome:
    content: list[dict[str, Any]]
    is_error: bool


def _error(text: str) -> ToolOutcome:
    return ToolOutcome([{"type": "text", "text": text}], True)


def search_result_block(hit: KnowledgeHit) -> dict[str, Any]:
    """A hit as the SDK's ``search_result`` block; ``source`` is a stable citation the model
    can repeat (``kb_…/kdoc_…#chunk-3``), the offsets and page follow in the title."""
    where = [f"chunk {hit.chunk_index}"]
    if hit.page is not None:
        where.append(f"page {hit.page}")
    if hit.start is not None and hit.end is not None:
        where.append(f"characters {hit.start}-{hit.end}")
    if hit.heading:
        where.append(f"under {hit.heading!r}")
    return {
        "type": "search_result",
        "source": f"{hit.knowledge_base_id}/{hit.document_id}#chunk-{hit.chunk_index}",
        "title": f"{hit.title} ({', '.join(where)})",
        "content": [{"type": "text", "text": hit.text}],
        "citations": {"enabled": False},
    }


def run(searcher: KnowledgeSearcher, tenant_id: str, agent: dict[str, Any], tool_input: Any) -> ToolOutcome:
    """One ``knowledge_search`` call: bad input or a base the agent does not have is an error
    result the model can read, never a failed turn."""
    if not isinstance(tool_input, dict):
        return _error("knowledge_search takes an object: {query, knowledge_base_id?, limit?}.")
    query = tool_input.get("query")
    if not isinstance(query, str) or not query.strip():
        return _error("knowledge_search needs a non-empty 'query' string.")
    limit = tool_input.get("limit", DEFAULT_LIMIT)
    if limit is None:
        limit = DEFAULT_LIMIT
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        return _error(f"'limit' must be an integer from 1 to {MAX_LIMIT}.")
    own = [entry["knowledge_base_id"] for entry in attached(agent)]
    wanted = tool_input.get("knowledge_base_id")
    if wanted is not None:
        if not isinstance(wanted, str) or wanted not in own:
            return _error(f"The knowledge base {wanted!r} is not attached to this agent (it has: {', '.join(own)}).")
        own = [wanted]
    try:
        live = searcher.bases(tenant_id, own)
        if not live:
            return _error("None of this agent's knowledge bases exists any more.")
        hits = searcher.search(tenant_id, [base for base in own if base in live], query.strip()[:MAX_QUERY], limit)
    except Exception:  # the read side failing must not end the turn: the model hears of it
        log.exception("knowledge_search failed")
        return _error("The knowledge search failed inside Agentry; try again later.")
    if not hits:
        return ToolOutcome([{"type": "text", "text": NO_MATCH}], False)
    return ToolOutcome([search_result_block(hit) for hit in hits], False)
