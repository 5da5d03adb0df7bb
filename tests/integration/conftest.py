"""Fixtures shared by the integration tests: a Kafka-protocol broker, and an event store with
its read-model database on each back end."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from infra.event_store import EventsourcingEventStore, event_store_env
from infra.settings import Settings
from projections.runner import create_engine
from tests.support.kafka import Broker
from tests.support.postgres import database_of


@pytest.fixture
def broker() -> Iterator[Broker]:
    """A fresh tansu broker on a free port, per test (it can be stopped and restarted)."""
    running = Broker()
    running.start()
    yield running
    running.stop()


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[EventsourcingEventStore, sa.Engine]]:
    """An event store and the read-model engine beside it, on SQLite and on PostgreSQL."""
    settings = Settings(data_dir=tmp_path, database_url=database_of(request))
    store = EventsourcingEventStore(event_store_env(settings))
    engine = create_engine(settings.read_model_url)
    yield store, engine
    store.close()
    engine.dispose()
