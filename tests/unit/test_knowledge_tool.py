"""The ``knowledge_search`` tool's own rules: when it is offered, what a bad call answers, and
how a hit is cited. The search itself runs against real read models in
tests/e2e/test_knowledge_tool.py."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from application.runtime.knowledge import (
    NO_MATCH,
    TOOL_NAME,
    KnowledgeBaseNote,
    KnowledgeHit,
    run,
    search_result_block,
)
from application.runtime.tools import toolbox
from application.runtime.transcript import _user_blocks

AGENT: dict[str, Any] = {"knowledge_bases": [{"type": "knowledge_base", "knowledge_base_id": "kb_1"}]}
HIT = KnowledgeHit("kb_1", "kdoc_1", "Handbook", 3, "Refunds take 14 days.", 0.03, 120, 141, 2, "Refunds")


class _Bases:
    """Holds kb_1 only; records what was searched."""

    def __init__(self, hits: list[KnowledgeHit]) -> None:
        self.hits = hits
        self.searched: list[tuple[list[str], str, int]] = []

    def bases(self, tenant_id: str, knowledge_base_ids: Sequence[str]) -> dict[str, KnowledgeBaseNote]:
        return {kb: KnowledgeBaseNote(kb, "Handbook") for kb in knowledge_base_ids if kb == "kb_1"}

    def search(self, tenant_id: str, knowledge_base_ids: Sequence[str], query: str, limit: int) -> list[KnowledgeHit]:
        self.searched.append((list(knowledge_base_ids), query, limit))
        return self.hits


def test_the_tool_is_offered_only_to_an_agent_with_knowledge_bases_when_the_runtime_can_search() -> None:
    assert TOOL_NAME in toolbox(AGENT, searchable=True).routes
    assert toolbox(AGENT, searchable=True).route(TOOL_NAME).kind == "knowledge"
    assert TOOL_NAME not in toolbox(AGENT).routes
    assert TOOL_NAME not in toolbox({"knowledge_bases": []}, searchable=True).routes
    custom = {"type": "custom", "name": TOOL_NAME, "description": "mine", "input_schema": {"type": "object"}}
    declared = toolbox({**AGENT, "tools": [custom]}, searchable=True)
    assert declared.route(TOOL_NAME).kind == "custom"
    assert [tool["description"] for tool in declared.offered] == ["mine"]


def test_bad_calls_are_error_results_and_a_good_one_cites_its_passages() -> None:
    bases = _Bases([HIT])
    assert run(bases, "t", AGENT, {}).is_error
    assert run(bases, "t", AGENT, {"query": "refunds", "limit": 21}).is_error
    assert run(bases, "t", AGENT, {"query": "refunds", "limit": True}).is_error
    foreign = run(bases, "t", AGENT, {"query": "refunds", "knowledge_base_id": "kb_2"})
    assert foreign.is_error and "kb_2" in foreign.content[0]["text"]
    assert bases.searched == []

    found = run(bases, "t", AGENT, {"query": " refunds ", "limit": 3})
    assert not found.is_error and bases.searched == [(["kb_1"], "refunds", 3)]
    assert found.content == [search_result_block(HIT)]
    block = found.content[0]
    assert block["source"] == "kb_1/kdoc_1#chunk-3"
    assert block["title"] == "Handbook (chunk 3, page 2, characters 120-141, under 'Refunds')"
    assert block["content"] == [{"type": "text", "text": "Refunds take 14 days."}]
    # The model reads the passage with its title and source.
    assert _user_blocks([block]) == [
        {"type": "text", "text": "[Handbook (chunk 3, page 2, characters 120-141, under 'Refunds') — kb_1/kdoc_1#chunk-3]\n"
         "Refunds take 14 days."}
    ]  # fmt: skip

    nothing = run(_Bases([]), "t", AGENT, {"query": "nothing"})
    assert (nothing.is_error, nothing.content) == (False, [{"type": "text", "text": NO_MATCH}])
    gone = run(_Bases([]), "t", {"knowledge_bases": [{"knowledge_base_id": "kb_9"}]}, {"query": "x"})
    assert gone.is_error
