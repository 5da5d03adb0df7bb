"""`python -m tests.support.vector_indexer_process DATA_DIR QDRANT_DIR [KILL_AT]`: runs the
vector projection (with the test source) over DATA_DIR's event log into QDRANT_DIR until it
has caught up, printing its position after each batch.

With KILL_AT = n, the n-th write of points writes only the first half of its points and
then the process SIGKILLs itself: a crash in the middle of a batch, after some of its points
are in the index and before the position moved."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import Any

from infra.embeddings import MiniLMEmbedder
from infra.event_store import EventsourcingEventStore, event_store_env
from infra.settings import Settings
from infra.vector_index import QdrantVectorIndex
from projections.runner import create_engine
from projections.vectors import VectorProjection
from tests.support.vector_source import agent_descriptions

BATCH = 16


class CrashingIndex(QdrantVectorIndex):
    def __init__(self, *args: Any, kill_at: int) -> None:
        super().__init__(*args)
        self.kill_at = kill_at
        self.writes = 0

    def upsert(self, collection: str, points: Any) -> None:
        self.writes += 1
        if self.writes == self.kill_at:
            super().upsert(collection, points[: max(1, len(points) // 2)])
            print("killing myself mid-batch", flush=True)
            os.kill(os.getpid(), signal.SIGKILL)
        super().upsert(collection, points)


def main() -> int:
    data_dir, qdrant_dir = Path(sys.argv[1]), sys.argv[2]
    kill_at = int(sys.argv[3]) if len(sys.argv) > 3 else 0
    settings = Settings(data_dir=data_dir)
    store = EventsourcingEventStore(event_store_env(settings))
    engine = create_engine(settings.read_model_url)
    embedder = MiniLMEmbedder(threads=1)
    index = CrashingIndex(qdrant_dir, embedder.name, embedder.dimensions, kill_at=kill_at)
    projection = VectorProjection(engine, store, index, embedder, [agent_descriptions], batch_size=BATCH)
    projection.setup()
    print("started at", projection.position(), flush=True)
    reached = projection.catch_up(lambda position, head: print("position", position, flush=True))
    print("caught up at", reached, flush=True)
    index.close()
    store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
