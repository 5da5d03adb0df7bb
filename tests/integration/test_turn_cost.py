"""A turn reads what is new in its session, not the whole session again: the transcript is
kept and fed incrementally, so a long session's turns cost what a short one's do."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from application.agents import AgentService
from application.environments import EnvironmentService
from application.runtime import CancelToken, DefaultProviders, ModelResolver, SessionRuntime
from application.sessions import SessionService
from application.tenancy import Principal
from infra.event_store import EventsourcingEventStore
from infra.providers import SdkModelProvider
from tests.support.fake_provider import API_KEY, FakeProvider

ALICE = Principal("tenant-a", "key-a")


class CountingStore:
    """The real event store, counting the events each stream read returns (how much of a
    session a turn reads)."""

    def __init__(self, store: EventsourcingEventStore) -> None:
        self._store = store
        self.events_read = 0

    def read_stream(self, aggregate_id: UUID, after_version: int = 0, **kwargs: Any) -> Any:
        events = self._store.read_stream(aggregate_id, after_version, **kwargs)
        self.events_read += len(events)
        return events

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


def test_turn_reads_do_not_grow_with_the_session(fake_provider: FakeProvider) -> None:
    store = CountingStore(EventsourcingEventStore({"PERSISTENCE_MODULE": "eventsourcing.popo"}))
    agents, environments = AgentService(store), EnvironmentService(store)  # type: ignore[arg-type]
    sessions = SessionService(store, agents, environments)  # type: ignore[arg-type]
    runtime = SessionRuntime(
        store,  # type: ignore[arg-type]
        SdkModelProvider(),
        ModelResolver(None, DefaultProviders(anthropic_api_key=API_KEY, anthropic_base_url=fake_provider.anthropic_base_url)),
    )
    agent = agents.create(ALICE, {"name": "bot", "model": "claude-haiku-4-5"}).view
    env = environments.create(ALICE, {"name": "e"}).view
    session_id = sessions.create(ALICE, {"agent": agent["id"], "environment_id": env["id"]}).view["id"]
    reads = []
    for turn in range(40):
        sessions.send(ALICE, session_id, [{"type": "user.message", "content": [{"type": "text", "text": f"turn {turn}"}]}])
        before = store.events_read
        runtime.take_turns(session_id, CancelToken())
        reads.append(store.events_read - before)
    # every turn reads the same few new events (its own message and the last turn's output)
    assert max(reads[1:]) <= reads[1] + 2, reads
    last = fake_provider.requests[-1].body["messages"]
    assert len(last) == 79 and last[-1]["content"] == [{"type": "text", "text": "turn 39"}]
