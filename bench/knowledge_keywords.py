"""Keyword search over a large knowledge base: how long the BM25 read of the postings takes.

Fills the knowledge read model (SQLite, or PostgreSQL with AGENTRY_TEST_POSTGRES_URL) by
applying real Document events to the real projection — N documents of ~30 KB each — then
times ``keyword_ranking`` + ``chunks_at`` for a few queries.

    python -m bench.knowledge_keywords [documents]
"""

from __future__ import annotations

import os
import random
import sys
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa

from domain.knowledge import Document
from projections import tables
from projections.keywords import terms
from projections.knowledge import KnowledgeDocumentsProjection, KnowledgeReads
from projections.runner import create_engine

BASE = "kb_benchbenchbench0001"
QUERIES = ("how do I restore the database backup", "vacation days policy", "rotate the api credentials")


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    url = os.environ.get("AGENTRY_TEST_POSTGRES_URL")
    engine = create_engine(
        url.replace("postgresql://", "postgresql+psycopg://") if url else f"sqlite:///{Path(tempfile.mkdtemp()) / 'rm.db'}"
    )
    tables.metadata.create_all(engine)
    projection = KnowledgeDocumentsProjection()
    words = Path("tests/data/retrieval_set.json").read_text().split()
    random.seed(7)
    position = 0
    started = time.perf_counter()
    for number in range(count):
        document = Document(
            document_id=f"kdoc_bench{number:08d}x", tenant_id="bench", knowledge_base_id=BASE, filename=None,
            title=f"doc {number}", media_type="text/plain", size_bytes=0, blob_key="0" * 64,
        )  # fmt: skip
        document.index(" ".join(random.choice(words) for _ in range(5000)))
        with engine.begin() as conn:
            for event in document.collect_events():
                position += 1
                projection.apply_at(conn, event, position)
    if url:
        with engine.begin() as conn:
            conn.execute(sa.text("analyze"))  # what autovacuum does after a bulk load
    with engine.connect() as conn:
        chunks = conn.execute(sa.text("select count(*) from rm_knowledge_chunks")).scalar()
        postings = conn.execute(sa.text("select count(*) from rm_knowledge_terms")).scalar()
    print(f"{count} documents, {chunks} chunks, {postings} postings, filled in {time.perf_counter() - started:.1f}s")
    reads = KnowledgeReads(engine, None)
    for query in QUERIES:
        started = time.perf_counter()
        for _ in range(5):
            keys = reads.keyword_ranking(BASE, set(terms(query)), 20)
            reads.chunks_at(BASE, keys)
        print(f"{query!r}: {(time.perf_counter() - started) / 5 * 1000:.0f} ms a search")


if __name__ == "__main__":
    main()
