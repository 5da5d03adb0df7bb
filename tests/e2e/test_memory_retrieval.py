"""Retrieval quality of memory search (``POST /v1/memory_stores/{id}/search``) on a real
server with the real embedder: each passage of the labelled sets (tests/data/, ~50 passages,
20 paraphrased questions each) is a memory; recall@5 must reach 0.8. Keyword-only recall
(BM25 over the same texts, the knowledge bases' keyword ranking) is printed beside it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from projections.keywords import rank
from tests.support.server import RunningServer, running_server

DATA = Path(__file__).parent.parent / "data"
SETS = {"retrieval_set.json": 0.8, "retrieval_set_hard.json": 0.8}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with running_server(tmp_path_factory.mktemp("memory-retrieval") / "data") as server:
        yield server


def _recall(found: list[set[str]], relevant: list[list[str]]) -> float:
    return sum(len(hits & set(wanted)) / len(wanted) for hits, wanted in zip(found, relevant, strict=True)) / len(relevant)


@pytest.mark.parametrize("name", list(SETS))
def test_memory_search_finds_the_labelled_passages(served: RunningServer, name: str) -> None:
    labelled = json.loads((DATA / name).read_text())
    with httpx.Client(base_url=served.base_url, headers={"x-api-key": served.api_key}, timeout=60) as http:
        store = http.post("/v1/memory_stores", json={"name": f"retrieval {name}"}).json()
        for passage in labelled["documents"]:
            made = http.post(
                f"/v1/memory_stores/{store['id']}/memories", json={"path": f"/notes/{passage['id']}.md", "content": passage["text"]}
            )
            assert made.status_code == 200, made.text
        vectors = served.platform.services.vectors
        assert vectors is not None and vectors.wait_for(served.platform.store.max_notification_id(), 120)
        found = []
        for query in labelled["queries"]:
            response = http.post(f"/v1/memory_stores/{store['id']}/search", json={"query": query["query"], "limit": 5})
            assert response.status_code == 200, response.text
            results = response.json()["data"]
            assert [result["score"] for result in results] == sorted((result["score"] for result in results), reverse=True)
            found.append({result["path"].removeprefix("/notes/").removesuffix(".md") for result in results})
    relevant = [query["relevant"] for query in labelled["queries"]]
    texts = [passage["text"] for passage in labelled["documents"]]
    keyword = [
        {labelled["documents"][at]["id"] for at, _ in rank(query["query"], texts)[:5]} for query in labelled["queries"]
    ]
    semantic_recall, keyword_recall = _recall(found, relevant), _recall(keyword, relevant)
    print(f"\n{name}: memory search recall@5 over {len(relevant)} queries: {semantic_recall:.2f} (keyword-only BM25 {keyword_recall:.2f})")
    assert semantic_recall >= SETS[name]
