"""Shared fixtures: a real PostgreSQL (never skipped), real servers, real SDK clients."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import anthropic
import httpx
import pytest

from tests.support.event_validation import stored_event_problems
from tests.support.postgres import database_of, fresh_database, postgres_server
from tests.support.server import RunningServer, provider_settings, running_server

if TYPE_CHECKING:
    from tests.support.fake_provider import FakeProvider

# The ``fake_provider`` fixture (a local model provider speaking both streaming protocols).
pytest_plugins = ["tests.support.fake_provider"]


@pytest.fixture(scope="session")
def postgres_server_url() -> Iterator[str]:
    with postgres_server() as url:
        yield url


@pytest.fixture
def postgres_url(postgres_server_url: str) -> Iterator[str]:
    with fresh_database(postgres_server_url) as url:
        yield url


@pytest.fixture(params=["sqlite", "postgres"])
def server(request: pytest.FixtureRequest, tmp_path, fake_provider: FakeProvider) -> Iterator[RunningServer]:  # noqa: ANN001
    # ``@pytest.mark.server_settings(field=value)``: further Settings fields for this test's server.
    marker = request.node.get_closest_marker("server_settings")
    overrides = {**provider_settings(fake_provider), **(marker.kwargs if marker else {})}
    with running_server(tmp_path / "data", database_of(request), **overrides) as running:
        yield running
        # Every event the test made must match its schema in the published event catalogue.
        checked, problems = stored_event_problems(running.platform.store)
        assert checked > 0, "the event-catalogue check read no events (the bootstrap key's at least)"
        assert not problems, "stored events break the event catalogue:\n" + "\n".join(problems[:50])


@pytest.fixture
def client(server: RunningServer) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=server.base_url, api_key=server.api_key, max_retries=0, timeout=20)


@pytest.fixture
def http(server: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, headers={"x-api-key": server.api_key}, timeout=20) as client:
        yield client
