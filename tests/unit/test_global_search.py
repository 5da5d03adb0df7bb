from collections.abc import Sequence

from application.errors import Unavailable
from application.global_search import GlobalSearch, SearchHit


def _kind(kind: str, *ids: str):  # noqa: ANN202
    def source(tenant_ids: Sequence[str], query: str, limit: int) -> list[SearchHit]:
        return [SearchHit(kind, id_, id_, "", 1.0 / (at + 1)) for at, id_ in enumerate(ids)][:limit]

    return source


def _down(tenant_ids: Sequence[str], query: str, limit: int) -> list[SearchHit]:
    raise Unavailable("embeddings endpoint unreachable")


def test_lists_are_fused_by_rank_and_a_kind_that_is_down_is_skipped() -> None:
    search = GlobalSearch({"agent": _kind("agent", "a1", "a2"), "task": _kind("task", "t1"), "memory": _down})
    found = search.search(["t"], "q", 10)
    # First places of each list tie (1/61) and sort by kind and id; the second place follows.
    assert [(hit["type"], hit["id"]) for hit in found] == [("agent", "a1"), ("task", "t1"), ("agent", "a2")]
    assert found[0]["score"] == round(1 / 61, 6)
    assert [hit["id"] for hit in search.search(["t"], "q", 10, kinds=["task"])] == ["t1"]
    assert len(search.search(["t"], "q", 1)) == 1
