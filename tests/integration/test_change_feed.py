"""The LISTEN/NOTIFY change feed that wakes this process's live tails and projections."""

from __future__ import annotations

import threading
import uuid
from pathlib import Path
from typing import Any

from eventsourcing.persistence import OperationalError

from domain.agents import Agent
from infra.event_store import EventsourcingEventStore, event_store_env
from infra.pg_changes import PostgresChangeFeed
from infra.settings import Settings


class FailsOnce:
    """The event store, except that one read fails the way the store's own errors do."""

    def __init__(self, store: EventsourcingEventStore) -> None:
        self._store = store
        self.fail_next = False
        self.failures = 0

    def notifications(self, after: int, limit: int) -> Any:
        if self.fail_next:
            self.fail_next = False
            self.failures += 1
            raise OperationalError("the pool timed out")
        return self._store.notifications(after, limit)

    def max_notification_id(self) -> int:
        return self._store.max_notification_id()


class Woken:
    def __init__(self) -> None:
        self.streams: set[uuid.UUID] = set()
        self.event = threading.Event()

    def streams_changed(self, stream_ids: Any, notification_id: int = 0) -> None:
        self.streams |= set(stream_ids)
        self.event.set()


def test_the_feed_outlives_an_event_store_error_and_still_wakes_listeners(postgres_url: str, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, database_url=postgres_url)
    store = EventsourcingEventStore(event_store_env(settings))
    flaky, woken = FailsOnce(store), Woken()
    feed = PostgresChangeFeed(settings.postgres.conninfo, store.change_channel, flaky, [woken], poll_seconds=0.2)
    feed.start()
    try:
        flaky.fail_next = True
        first = Agent(agent_id="agent_feed0000000001", tenant_id="t", definition={"name": "a"})
        store.save(first)
        assert woken.event.wait(10), "the feed died on the error"
        assert flaky.failures == 1
        woken.event.clear()
        second = Agent(agent_id="agent_feed0000000002", tenant_id="t", definition={"name": "b"})
        store.save(second)
        assert woken.event.wait(10)
        assert {first.id, second.id} <= woken.streams
    finally:
        feed.stop()
        store.close()
