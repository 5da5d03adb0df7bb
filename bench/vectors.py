"""The vector path's throughput and latency, each beside a baseline measured in the same run:

- indexing: events → the vector projection (embed + write to Qdrant local mode + move the
  position) in sentences/s, ÷ the local embedder's own raw rate on the same texts;
- search: p50/p99 of one query (Qdrant local mode, tenant-filtered) at 10k and 100k
  vectors, ÷ a numpy brute-force dot product over the same vectors; and the whole
  ``SemanticSearch`` call (embed the query + search) at 10k.

    .venv/bin/python bench/vectors.py [--texts 1000] [--threads 0] [--skip-100k]

The 10k collection holds the indexed texts' real vectors topped up with random unit vectors;
the 100k one is random unit vectors inserted directly (embedding 100k texts here would take
minutes and measures nothing new). Local mode is brute force either way.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from application.ports import IndexText, VectorChange  # noqa: E402
from domain.agents import Agent  # noqa: E402
from infra.embeddings import MiniLMEmbedder  # noqa: E402
from infra.event_store import EventsourcingEventStore, event_store_env  # noqa: E402
from infra.settings import Settings  # noqa: E402
from infra.vector_index import QdrantVectorIndex  # noqa: E402
from projections.runner import create_engine  # noqa: E402
from projections.vectors import EmbeddedSearch, Point, VectorProjection  # noqa: E402

SUBJECTS = ["The nightly backup", "Maria's recipe", "The staging deploy", "Lena's swimming lesson", "The API key",
            "The router", "A sourdough starter", "The train to Vienna", "The invoice", "The radiator"]  # fmt: skip
VERBS = ["runs", "needs checking", "was moved", "is cancelled", "gets renewed", "stays unchanged", "fails"]
WHEN = ["every Monday", "at 02:00 UTC", "after the holidays", "once a month", "before winter", "on request"]
QUERIES = ["How do I undo a bad release?", "Which foods could give Maria a bad reaction?",
           "How long is the rail journey from Munich to Vienna?", "When do I get my money back for a business trip?"]  # fmt: skip


def sentences(count: int) -> list[str]:
    return [
        f"{SUBJECTS[n % len(SUBJECTS)]} {VERBS[(n // 10) % len(VERBS)]} {WHEN[(n // 70) % len(WHEN)]} (item {n})."
        for n in range(count)
    ]


def descriptions(event: Any) -> list[VectorChange]:
    if isinstance(event, Agent.Created):
        return [IndexText("bench", f"{event.originator_id}", event.definition["description"], {"tenant_id": event.tenant_id})]
    return []


def percentile(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


def random_units(count: int, dimensions: int, seed: int) -> np.ndarray:
    vectors = np.random.default_rng(seed).standard_normal((count, dimensions)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def fill(index: QdrantVectorIndex, vectors: np.ndarray, start: int, tenants: int = 4) -> float:
    began = time.perf_counter()
    for offset in range(0, len(vectors), 1000):
        chunk = vectors[offset : offset + 1000]
        points = [
            Point(f"r{start + offset + n}", row, {"tenant_id": f"t{(start + offset + n) % tenants}"})
            for n, row in enumerate(chunk)
        ]
        index.upsert("bench", points)
    return time.perf_counter() - began


def search_latency(index: QdrantVectorIndex, all_vectors: np.ndarray, queries: np.ndarray, rounds: int) -> tuple[list[float], list[float]]:
    qdrant, numpy = [], []
    for n in range(rounds):
        query = queries[n % len(queries)]
        began = time.perf_counter()
        index.search("bench", query, 10, {"tenant_id": "t0"})
        qdrant.append(time.perf_counter() - began)
        began = time.perf_counter()
        scores = all_vectors @ query
        np.argpartition(-scores, 10)[:10]
        numpy.append(time.perf_counter() - began)
    return qdrant, numpy


def report(label: str, qdrant: list[float], numpy: list[float]) -> None:
    q50, q99 = percentile(qdrant, 50), percentile(qdrant, 99)
    n50, n99 = percentile(numpy, 50), percentile(numpy, 99)
    print(f"{label}: p50 {ms(q50)}, p99 {ms(q99)}  |  numpy brute force p50 {ms(n50)}, p99 {ms(n99)}"
          f"  |  ratio p50 {q50 / n50:.1f}x, p99 {q99 / n99:.1f}x")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--texts", type=int, default=1000, help="texts embedded and indexed (default 1000)")
    parser.add_argument("--threads", type=int, default=0, help="onnxruntime threads (0: every core)")
    parser.add_argument("--rounds", type=int, default=200, help="searches per measurement")
    parser.add_argument("--skip-100k", action="store_true")
    args = parser.parse_args()
    texts = sentences(args.texts)
    embedder = MiniLMEmbedder(threads=args.threads)
    embedder.embed(["warm up"])

    began = time.perf_counter()
    raw = np.asarray(embedder.embed(texts), np.float32)
    raw_rate = len(texts) / (time.perf_counter() - began)
    print(f"embedder alone: {raw_rate:.0f} sentences/s ({len(texts)} texts, batches of 32, threads={args.threads or 'all'})")

    with tempfile.TemporaryDirectory(prefix="agentry-bench-vectors-") as folder:
        settings = Settings(data_dir=Path(folder))
        store = EventsourcingEventStore(event_store_env(settings))
        engine = create_engine(settings.read_model_url)
        for n, text in enumerate(texts):
            store.save(Agent(agent_id=f"agent_{n}", tenant_id=f"t{n % 4}", definition={"description": text}))
        index = QdrantVectorIndex(settings.vector_dir, embedder.name, embedder.dimensions)
        projection = VectorProjection(engine, store, index, embedder, [descriptions])
        projection.setup()
        began = time.perf_counter()
        projection.catch_up()
        indexed_rate = len(texts) / (time.perf_counter() - began)
        assert index.count("bench") == len(texts)
        print(f"vector projection: {indexed_rate:.0f} sentences/s (events → embed → Qdrant local → position)"
              f"  |  ratio to the embedder alone {indexed_rate / raw_rate:.2f}")  # fmt: skip

        queries = np.asarray(embedder.embed(QUERIES), np.float32)
        top_up = random_units(10_000 - len(texts), embedder.dimensions, seed=1)
        seconds = fill(index, top_up, len(texts))
        print(f"10k: {len(texts)} real vectors + {len(top_up)} random unit vectors inserted directly ({len(top_up) / seconds:.0f}/s)")
        all_vectors = np.vstack([raw, top_up])
        report("search 10k (Qdrant local, tenant filter, top 10)", *search_latency(index, all_vectors, queries, args.rounds))
        search = EmbeddedSearch(index, embedder)
        whole = []
        for n in range(args.rounds // 4):
            began = time.perf_counter()
            search.search("bench", QUERIES[n % len(QUERIES)], 10, {"tenant_id": "t0"})
            whole.append(time.perf_counter() - began)
        print(f"SemanticSearch at 10k (embed the query + search): p50 {ms(percentile(whole, 50))}, p99 {ms(percentile(whole, 99))}")

        if not args.skip_100k:
            more = random_units(90_000, embedder.dimensions, seed=2)
            seconds = fill(index, more, 10_000)
            print(f"100k: 90k more random unit vectors inserted directly ({len(more) / seconds:.0f}/s)")
            all_vectors = np.vstack([all_vectors, more])
            report("search 100k (Qdrant local, tenant filter, top 10)", *search_latency(index, all_vectors, queries, max(20, args.rounds // 4)))
        index.close()
        store.close()
        engine.dispose()


if __name__ == "__main__":
    main()
