"""Fixtures of the unit tests: use cases against the real event store adapter, in memory."""

from __future__ import annotations

import pytest

from infra.event_store import EventsourcingEventStore


@pytest.fixture
def store() -> EventsourcingEventStore:
    return EventsourcingEventStore({"PERSISTENCE_MODULE": "eventsourcing.popo"})
