"""The PostgreSQL event store under concurrent writers, with a reader tailing the log."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from application.errors import Conflict
from domain.agents import Agent
from infra.event_store import EventsourcingEventStore, event_store_env
from infra.settings import Settings

WRITERS = 12
SAVES_PER_WRITER = 40


@pytest.fixture
def pg_store(postgres_url: str, tmp_path: Path) -> EventsourcingEventStore:
    store = EventsourcingEventStore(event_store_env(Settings(data_dir=tmp_path, database_url=postgres_url, postgres_pool_size=20)))
    yield store
    store.close()


def test_tailing_reader_skips_no_notification_under_concurrent_writers(pg_store: EventsourcingEventStore) -> None:
    done = threading.Event()
    seen: list[int] = []

    def tail() -> None:
        position = 0
        while True:
            finished = done.is_set()
            batch = pg_store.notifications(position, 50)
            for notification in batch:
                seen.append(notification.id)
                position = notification.id
            if finished and not batch:
                return
            if not batch:
                time.sleep(0.001)

    def write(writer: int) -> None:
        for i in range(SAVES_PER_WRITER):
            pg_store.save(Agent(agent_id=f"agent_w{writer:02d}x{i:05d}", tenant_id="t", definition={"name": "x"}))

    reader = threading.Thread(target=tail)
    reader.start()
    writers = [threading.Thread(target=write, args=(n,)) for n in range(WRITERS)]
    for thread in writers:
        thread.start()
    for thread in writers:
        thread.join()
    done.set()
    reader.join(timeout=60)

    everything = [n.id for n in pg_store.notifications(0, 100_000)]
    assert len(everything) == WRITERS * SAVES_PER_WRITER
    assert seen == everything, "the tailing reader skipped or reordered notifications"


def test_stale_save_is_a_conflict_and_records_nothing(pg_store: EventsourcingEventStore) -> None:
    agent = Agent(agent_id="agent_conflict0001", tenant_id="t", definition={"name": "a"})
    pg_store.save(agent)
    first = pg_store.load(agent.id)
    second = pg_store.load(agent.id)
    first.update({"name": "b"})
    second.update({"name": "c"})
    pg_store.save(first)
    with pytest.raises(Conflict):
        pg_store.save(second)
    assert pg_store.load(agent.id).definition["name"] == "b"
    assert pg_store.max_notification_id() == 2
