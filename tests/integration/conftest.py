"""Fixtures for the integration tests that need a Kafka-protocol broker."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.kafka import Broker


@pytest.fixture
def broker() -> Iterator[Broker]:
    """A fresh tansu broker on a free port, per test (it can be stopped and restarted)."""
    running = Broker()
    running.start()
    yield running
    running.stop()
