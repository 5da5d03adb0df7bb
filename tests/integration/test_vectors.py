"""The vector index end to end, with the real local model and Qdrant's local mode: the
embedder is deterministic and needs no network; the vector projection indexes what its
sources ask for, exactly once by position (a replay, a rebuild and a SIGKILL in the middle
of a batch all end in the same points and the same answers); search filters by payload;
the embedded index belongs to one process; and retrieval on the labelled set is good."""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from domain.agents import Agent
from domain.environments import Environment
from infra.embeddings import MiniLMEmbedder
from infra.event_store import EventsourcingEventStore, event_store_env
from infra.settings import Settings
from infra.vector_index import QdrantVectorIndex, VectorIndexBusy
from projections.runner import create_engine
from projections.vectors import EmbeddedSearch, VectorProjection, position_name
from tests.support.decodes import record_decodes
from tests.support.postgres import database_of
from tests.support.serve_process import ROOT
from tests.support.vector_source import COLLECTION, agent, agent_descriptions

DATA = Path(__file__).resolve().parents[1] / "data"
TEXTS = [
    "The nightly database backup runs at 02:00 UTC.",
    "Maria is allergic to peanuts and shellfish.",
    "Trains from Munich to Vienna take about four hours.",
    "Descale the coffee machine every month.",
]


@pytest.fixture(scope="module")
def embedder() -> MiniLMEmbedder:
    return MiniLMEmbedder()


class Rig:
    """An event store and read-model database (SQLite) in a folder, and indexes beside them."""

    def __init__(self, root: Path, embedder: MiniLMEmbedder, database_url: str = "") -> None:
        self.root = root
        self.settings = Settings(data_dir=root, database_url=database_url)
        self.store = EventsourcingEventStore(event_store_env(self.settings))
        self.engine = create_engine(self.settings.read_model_url)
        self.embedder = embedder
        self.indexes: list[QdrantVectorIndex] = []

    def index(self, name: str = "qdrant") -> QdrantVectorIndex:
        index = QdrantVectorIndex(self.root / name, self.embedder.name, self.embedder.dimensions)
        self.indexes.append(index)
        return index

    def projection(self, index: QdrantVectorIndex, engine: sa.Engine | None = None, batch: int = 16) -> VectorProjection:
        projection = VectorProjection(engine or self.engine, self.store, index, self.embedder, [agent_descriptions], batch)
        projection.setup()
        return projection

    def close(self) -> None:
        for index in self.indexes:
            index.close()
        self.store.close()
        self.engine.dispose()


@pytest.fixture
def rig(tmp_path: Path, embedder: MiniLMEmbedder) -> Iterator[Rig]:
    made = Rig(tmp_path, embedder)
    yield made
    made.close()


@pytest.fixture(params=["sqlite", "postgres"])
def any_rig(request: pytest.FixtureRequest, tmp_path: Path, embedder: MiniLMEmbedder) -> Iterator[Rig]:
    """Events and the projection's position in SQLite or PostgreSQL."""
    made = Rig(tmp_path, embedder, database_of(request))
    yield made
    made.close()


def write_history(store: EventsourcingEventStore, documents: list[dict], tenant: str = "t1") -> list[Agent]:
    """One agent per document; every fifth rewritten, every seventh archived afterwards."""
    agents = []
    for doc in documents:
        made = agent(f"agent_{doc['id']}", tenant, doc["id"], doc["text"])
        store.save(made)
        agents.append(made)
    for number, made in enumerate(agents):
        if number % 5 == 0:
            made.update({"description": made.definition["description"] + " (revised)"})
            store.save(made)
        if number % 7 == 3:
            made.archive()
            store.save(made)
    return agents


def answers(search: EmbeddedSearch, queries: list[str], tenant: str = "t1") -> list[list[tuple[str, str, float]]]:
    return [
        [(hit.key, hit.payload["name"], round(hit.score, 6)) for hit in search.search(COLLECTION, query, 5, {"tenant_id": tenant})]
        for query in queries
    ]


def retrieval_set() -> dict:
    return json.loads((DATA / "retrieval_set.json").read_text())


# -- the embedder ----------------------------------------------------------------------------


def test_the_local_embedder_gives_the_same_bits_alone_in_a_batch_and_again(embedder: MiniLMEmbedder) -> None:
    batched = embedder.embed(TEXTS)
    alone = [embedder.embed([text])[0] for text in TEXTS]
    again = MiniLMEmbedder(threads=1).embed(list(reversed(TEXTS)))[::-1]
    assert batched == alone == again
    assert all(len(vector) == 384 for vector in batched)
    assert all(abs(math.fsum(x * x for x in vector) - 1.0) < 1e-5 for vector in batched)
    assert embedder.embed([]) == []


@pytest.mark.skipif(shutil.which("unshare") is None, reason="needs unshare(1) for a network-less namespace")
def test_the_local_embedder_needs_no_network_and_writes_nothing(tmp_path: Path, embedder: MiniLMEmbedder) -> None:
    home = tmp_path / "home"
    home.mkdir()
    script = textwrap.dedent(
        """
        import json, socket, sys
        try:
            socket.create_connection(("pypi.org", 443), timeout=3)
            print("NETWORK")
        except OSError:
            pass
        from infra.embeddings import MiniLMEmbedder
        print(json.dumps(MiniLMEmbedder().embed(json.loads(sys.argv[1]))))
        """
    )
    env = {"PATH": os.environ["PATH"], "HOME": str(home), "PYTHONPATH": str(ROOT)}
    probe = subprocess.run(["unshare", "-n", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"unshare -n is not permitted here: {probe.stderr.decode().strip()}")
    done = subprocess.run(
        ["unshare", "-n", sys.executable, "-c", script, json.dumps(TEXTS)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert "NETWORK" not in lines
    assert json.loads(lines[-1]) == embedder.embed(TEXTS)
    assert list(home.rglob("*")) == []  # no telemetry id, no model cache


# -- the projection --------------------------------------------------------------------------


def test_the_projection_indexes_rewrites_and_drops_and_a_replay_changes_nothing(any_rig: Rig) -> None:
    rig = any_rig
    documents = retrieval_set()["documents"]
    agents = write_history(rig.store, documents)
    rig.store.save(agent("agent_other", "t2", "other", "Backups of the database are restored with pg_restore."))
    index = rig.index()
    projection = rig.projection(index)
    head = rig.store.max_notification_id()
    assert projection.catch_up() == head == projection.position()
    archived = sum(1 for made in agents if made.archived_at is not None)
    assert index.count(COLLECTION) == len(documents) - archived + 1
    queries = [query["query"] for query in retrieval_set()["queries"]]
    first = answers(EmbeddedSearch(index, rig.embedder), queries)
    # Tenancy: the other tenant's agent never answers t1, and is what t2 finds.
    assert all(name != "other" for hits in first for _, name, _ in hits)
    assert [name for _, name, _ in answers(EmbeddedSearch(index, rig.embedder), ["restore a dump"], "t2")[0]] == ["other"]
    # A rewritten agent is found by its new text only, an archived one not at all.
    revised = agents[0]
    hits = EmbeddedSearch(index, rig.embedder).search(COLLECTION, revised.definition["description"], 5, {"tenant_id": "t1"})
    assert hits[0].payload["name"] == documents[0]["id"]
    assert hits[0].key.endswith(f":{revised.version}")
    gone = {documents[n]["id"] for n, made in enumerate(agents) if made.archived_at is not None}
    assert not gone & {name for hits in first for _, name, _ in hits}

    # Replaying the whole log (the position lost, the points kept) writes the same points.
    with rig.engine.begin() as conn:
        conn.execute(sa.text("UPDATE projection_positions SET position = 0 WHERE name = :n"), {"n": projection.position_name})
    assert projection.catch_up() == head == projection.position()  # from the position as stored
    assert index.count(COLLECTION) == len(documents) - archived + 1
    assert answers(EmbeddedSearch(index, rig.embedder), queries) == first


def test_a_position_moved_back_behind_the_running_projection_is_found_in_a_quiet_spell(any_rig: Rig) -> None:
    """The loop keeps the position it last left; one moved back in the database (a rebuild
    elsewhere cut short) with no write after it is read again once the log is quiet."""
    rig = any_rig
    write_history(rig.store, retrieval_set()["documents"][:6])
    head = rig.store.max_notification_id()
    projection = rig.projection(rig.index())
    projection.start(poll_seconds=0.1)
    try:
        assert projection.wait_for(head, 30.0)
        with rig.engine.begin() as conn:
            conn.execute(sa.text("UPDATE projection_positions SET position = 0 WHERE name = :n"), {"n": projection.position_name})
        deadline = time.monotonic() + 30
        while projection.position() != head and time.monotonic() < deadline:
            time.sleep(0.05)
        assert projection.position() == head, "the position moved back was never caught up again"
    finally:
        projection.stop()


def test_the_projection_decodes_only_the_events_its_sources_handle(rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    write_history(rig.store, retrieval_set()["documents"][:3])
    rig.store.save(Environment(environment_id="env_vx", tenant_id="t1", definition={"name": "e", "config": {}}))
    head = rig.store.max_notification_id()
    decoded = record_decodes(monkeypatch, rig.store)
    index = rig.index()
    projection = rig.projection(index)
    assert projection.catch_up() == head == projection.position()
    assert decoded and all(":Agent." in topic for topic in decoded)  # the environment's never
    assert index.count(COLLECTION) == 3


def test_a_rebuild_drops_the_collections_and_gives_the_same_answers(rig: Rig) -> None:
    write_history(rig.store, retrieval_set()["documents"])
    index = rig.index()
    projection = rig.projection(index)
    projection.catch_up()
    queries = [query["query"] for query in retrieval_set()["queries"]]
    before = answers(EmbeddedSearch(index, rig.embedder), queries)
    count = index.count(COLLECTION)
    # A point no event asked for (left by some earlier model or bug) is gone after a rebuild.
    index.upsert(COLLECTION, [type("P", (), {"key": "stray", "vector": [1.0] + [0.0] * 383, "payload": {"tenant_id": "t1", "name": "stray"}})()])
    seen: list[tuple[int, int]] = []
    assert projection.rebuild(lambda position, head: seen.append((position, head))) == rig.store.max_notification_id()
    assert seen and seen[-1][0] == rig.store.max_notification_id()
    assert index.count(COLLECTION) == count
    assert answers(EmbeddedSearch(index, rig.embedder), queries) == before
    assert index.collections() == [f"{COLLECTION}__minilm-l6-v2-int8-384"]


def test_the_position_is_the_model_s_own(rig: Rig) -> None:
    """A projection for another model starts at 0 (its collections are others, empty)."""
    write_history(rig.store, retrieval_set()["documents"][:5])
    projection = rig.projection(rig.index())
    projection.catch_up()

    class Other(MiniLMEmbedder):
        name = "another-model"

    other = VectorProjection(rig.engine, rig.store, rig.index("other"), Other(), [agent_descriptions])
    other.setup()
    assert projection.position() == rig.store.max_notification_id()
    assert other.position() == 0
    assert other.position_name != projection.position_name
    # So is a projection with another set of sources (what a release adds is indexed from 0).
    more = VectorProjection(rig.engine, rig.store, rig.index("more"), rig.embedder, [agent_descriptions, len])  # type: ignore[list-item]
    more.setup()
    assert more.position() == 0 and more.position_name.startswith("vectors:minilm-l6-v2-int8-384:")


def test_search_waits_for_a_write_through_the_running_projection(any_rig: Rig) -> None:
    rig = any_rig
    index = rig.index()
    projection = rig.projection(index)
    projection.start(poll_seconds=5.0)
    try:
        search = EmbeddedSearch(index, rig.embedder)
        assert search.search(COLLECTION, "anything", 5, {"tenant_id": "t1"}) == []
        written = rig.store.save(agent("agent_bike", "t1", "bike", "The bicycle chain should be oiled every 300 km."))
        assert projection.wait_for(written, timeout=30)
        assert projection.position() >= (written or 0)
        assert projection.working_on() is None
        hits = search.search(COLLECTION, "How do I look after my bike's chain?", 5, {"tenant_id": "t1"})
        assert [hit.payload["name"] for hit in hits] == ["bike"]
        assert search.search(COLLECTION, "bike", 5, {"tenant_id": "t2"}) == []
    finally:
        projection.stop()


def test_two_runners_at_once_index_each_batch_once(any_rig: Rig) -> None:
    """Two projections on one position (two processes on a shared Qdrant): each batch is
    claimed by one of them, in log order, and the index ends as one runner leaves it."""
    rig = any_rig
    documents = retrieval_set()["documents"]
    write_history(rig.store, documents)
    index = rig.index()
    first, second = rig.projection(index, batch=8), rig.projection(index, batch=8)
    reached: list[int] = []
    runners = [threading.Thread(target=lambda p=p: reached.append(p.catch_up())) for p in (first, second)]
    for runner in runners:
        runner.start()
    for runner in runners:
        runner.join(120)
    head = rig.store.max_notification_id()
    assert reached == [head, head]
    alone = rig.projection(rig.index("alone"), create_engine(f"sqlite:///{rig.root / 'alone.sqlite3'}"))
    alone.catch_up()
    queries = [query["query"] for query in retrieval_set()["queries"]]
    assert index.count(COLLECTION) == rig.indexes[-1].count(COLLECTION)
    assert answers(EmbeddedSearch(index, rig.embedder), queries) == answers(EmbeddedSearch(rig.indexes[-1], rig.embedder), queries)


# -- crashes -------------------------------------------------------------------------------


def run_indexer(rig: Rig, qdrant: Path, kill_at: int = 0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tests.support.vector_indexer_process", str(rig.root), str(qdrant), str(kill_at)],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def test_a_sigkill_in_the_middle_of_a_batch_loses_and_duplicates_nothing(rig: Rig, tmp_path: Path) -> None:
    documents = retrieval_set()["documents"]
    # Twice the documents (under two tenants), so the log spans many batches of 16.
    write_history(rig.store, documents, "t1")
    write_history(rig.store, [{**doc, "id": doc["id"] + "b"} for doc in documents], "t2")
    head = rig.store.max_notification_id()

    # What one uninterrupted run leaves (its own position, its own index).
    reference_index = rig.index("reference")
    reference = rig.projection(reference_index, create_engine(f"sqlite:///{tmp_path / 'reference.sqlite3'}"))
    reference.catch_up()
    queries = [query["query"] for query in retrieval_set()["queries"]]
    expected = answers(EmbeddedSearch(reference_index, rig.embedder), queries)
    expected_count = reference_index.count(COLLECTION)
    reference_index.close()

    qdrant = tmp_path / "crashed"
    killed = run_indexer(rig, qdrant, kill_at=3)
    assert killed.returncode == -9, killed.stdout + killed.stderr
    assert "killing myself mid-batch" in killed.stdout
    crashed_at = max([int(n) for n in re.findall(r"position (\d+)", killed.stdout)], default=0)
    assert 0 < crashed_at < head
    # The half-written batch is in the index, and the position is before it.
    projection = rig.projection(rig.index("unused"))
    assert projection.position() == crashed_at

    resumed = run_indexer(rig, qdrant)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert f"started at {crashed_at}" in resumed.stdout
    assert f"caught up at {head}" in resumed.stdout

    index = rig.index("crashed")
    assert index.count(COLLECTION) == expected_count
    assert answers(EmbeddedSearch(index, rig.embedder), queries) == expected
    assert answers(EmbeddedSearch(index, rig.embedder), queries, "t2") == answers(
        EmbeddedSearch(rig.index("reference"), rig.embedder), queries, "t2"
    )


# -- ownership of the embedded index ---------------------------------------------------------


def test_the_embedded_index_has_one_owner_and_rebuild_says_so(rig: Rig) -> None:
    owner = QdrantVectorIndex(rig.settings.vector_dir, rig.embedder.name, rig.embedder.dimensions)
    rig.indexes.append(owner)
    owner.open()
    with pytest.raises(VectorIndexBusy, match="agentry serve"):
        QdrantVectorIndex(rig.settings.vector_dir, rig.embedder.name, rig.embedder.dimensions).open()
    env = {**os.environ, "AGENTRY_DATA_DIR": str(rig.root), "PYTHONPATH": str(ROOT)}
    env.pop("AGENTRY_DATABASE_URL", None)
    refused = subprocess.run(
        [sys.executable, "-m", "interfaces.cli.main", "projections", "rebuild", "vectors"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "already open" in refused.stderr and "agentry serve" in refused.stderr
    owner.close()
    rebuilt = subprocess.run(
        [sys.executable, "-m", "interfaces.cli.main", "projections", "rebuild", "vectors"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert rebuilt.returncode == 0, rebuilt.stdout + rebuilt.stderr
    assert "rebuilt vectors up to event" in rebuilt.stdout
    status = subprocess.run(
        [sys.executable, "-m", "interfaces.cli.main", "projections", "status"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert status.returncode == 0, status.stderr
    assert re.search(r"^vectors\s+position\s+\d+\s+behind\s+0\s+\(vectors:minilm-l6-v2-int8-384:[0-9a-f]{8}\)", status.stdout, re.M), status.stdout


# -- retrieval quality -------------------------------------------------------------------------


def bm25_ranking(documents: list[dict], query: str, k1: float = 1.2, b: float = 0.75) -> list[str]:
    def terms(text: str) -> list[str]:
        return [word.rstrip("s") for word in re.findall(r"[a-z0-9]+", text.lower()) if len(word) > 2]

    bags = {doc["id"]: Counter(terms(doc["text"])) for doc in documents}
    average = sum(sum(bag.values()) for bag in bags.values()) / len(bags)
    frequency = Counter(term for bag in bags.values() for term in bag)
    scores = {}
    for doc_id, bag in bags.items():
        length = sum(bag.values())
        score = 0.0
        for term in set(terms(query)):
            if term in bag:
                idf = math.log(1 + (len(bags) - frequency[term] + 0.5) / (frequency[term] + 0.5))
                score += idf * bag[term] * (k1 + 1) / (bag[term] + k1 * (1 - b + b * length / average))
        scores[doc_id] = score
    return sorted(scores, key=lambda doc_id: -scores[doc_id])


def recall_at(ranked: list[list[str]], relevant: list[list[str]], k: int = 5) -> float:
    return sum(len(set(r[:k]) & set(want)) / len(want) for r, want in zip(ranked, relevant, strict=True)) / len(relevant)


def test_recall_at_5_on_the_labelled_set_beats_keywords(rig: Rig) -> None:
    fixture = retrieval_set()
    for doc in fixture["documents"]:
        rig.store.save(agent(f"agent_{doc['id']}", "t1", doc["id"], doc["text"]))
    index = rig.index()
    rig.projection(index).catch_up()
    search = EmbeddedSearch(index, rig.embedder)
    relevant = [query["relevant"] for query in fixture["queries"]]
    dense = [
        [hit.payload["name"] for hit in search.search(COLLECTION, query["query"], 5, {"tenant_id": "t1"})]
        for query in fixture["queries"]
    ]
    keywords = [bm25_ranking(fixture["documents"], query["query"]) for query in fixture["queries"]]
    dense_recall, keyword_recall = recall_at(dense, relevant), recall_at(keywords, relevant)
    print(f"\nrecall@5 on {len(relevant)} queries: MiniLM + Qdrant {dense_recall:.2f}, BM25 keywords only {keyword_recall:.2f}")
    assert dense_recall >= 0.8
    assert dense_recall > keyword_recall


def test_local_mode_ranks_as_qdrant_itself_does(tmp_path: Path) -> None:
    """Local mode answers from an in-memory copy (Qdrant's local filter is slow): after
    writes, rewrites and deletions its answers are Qdrant's own, read from the folder anew."""
    import numpy as np
    from qdrant_client import QdrantClient, models

    from infra.vector_index import IndexedPoint

    rng = np.random.default_rng(7)
    index = QdrantVectorIndex(tmp_path / "q", "m", 16)
    for start in range(0, 3000, 500):
        index.upsert("c", [IndexedPoint(f"k{n}", rng.standard_normal(16), {"tenant_id": f"t{n % 3}", "group": f"g{n % 5}"}) for n in range(start, start + 500)])
    index.upsert("c", [IndexedPoint(f"k{n}", rng.standard_normal(16), {"tenant_id": "t0", "group": "moved"}) for n in range(0, 300, 7)])
    index.delete_where("c", {"tenant_id": "t1", "group": "g2"})
    queries = rng.standard_normal((10, 16))
    matches: list[dict[str, str]] = [{}, {"tenant_id": "t0"}, {"tenant_id": "t1"}, {"tenant_id": "t0", "group": "moved"}]
    ours = [[(h.key, h.score) for h in index.search("c", q, 8, m)] for q in queries for m in matches]
    count = index.count("c")
    name = index.collection_name("c")
    index.close()
    client = QdrantClient(path=str(tmp_path / "q"))
    try:
        def theirs(query: np.ndarray, match: dict[str, str]) -> list[tuple[str, float]]:
            where = models.Filter(must=[models.FieldCondition(key=k, match=models.MatchValue(value=v)) for k, v in match.items()]) if match else None
            points = client.query_points(name, query=query.tolist(), query_filter=where, limit=8, with_payload=True).points
            return [(str(p.payload["_key"]), p.score) for p in points]

        assert client.count(name, exact=True).count == count == 2803  # 200 of t1 in g2 gone, 3 of them moved first
        expected = [theirs(q, m) for q in queries for m in matches]
        assert [[key for key, _ in hits] for hits in ours] == [[key for key, _ in hits] for hits in expected]
        assert all(abs(a - b) < 1e-5 for x, y in zip(ours, expected, strict=True) for (_, a), (_, b) in zip(x, y, strict=True))
    finally:
        client.close()


def test_the_api_process_has_the_search_and_the_projection(tmp_path: Path) -> None:
    from interfaces.bootstrap import build

    platform = build(Settings(data_dir=tmp_path / "data"))
    try:
        vectors, search = platform.services.vectors, platform.services.semantic_search
        assert vectors is not None and search is not None
        assert vectors.position() == 0 and vectors.working_on() is None
        assert search.search("memories", "anything", 5, {"tenant_id": "default"}) == []
        platform.start_projections()
        head = platform.store.max_notification_id()
        assert vectors.wait_for(head, timeout=30)
        assert vectors.position() == head
    finally:
        platform.close()


def test_a_batch_holds_a_bounded_number_of_texts(rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    """Many texts in a few events (a large document's chunks) are indexed in several short
    batches, each moving the position, instead of one that holds the position row for all."""
    import projections.vectors as vectors

    monkeypatch.setattr(vectors, "MAX_TEXTS_PER_BATCH", 4)
    for number in range(10):
        rig.store.save(agent(f"agent_{number}", "t1", f"a{number}", f"text number {number}"))
    index = rig.index()
    projection = rig.projection(index, batch=16)
    reached: list[int] = []
    head = rig.store.max_notification_id()
    assert projection.catch_up(lambda position, _head: reached.append(position)) == head
    assert len(reached) == 3 and reached[-1] == head and reached == sorted(reached)
    assert index.count(COLLECTION) == 10


def test_the_position_name_is_the_same_in_every_process(embedder: MiniLMEmbedder) -> None:
    """Sources that are objects (the memories' holds the cipher) name the position by their
    class: a restart finds its position instead of indexing the whole log again."""
    from projections.vector_sources import all_vector_sources

    first, second = all_vector_sources(None), all_vector_sources(None)  # type: ignore[arg-type]
    assert first[0] is not second[0]
    assert position_name(embedder, first) == position_name(embedder, second)
