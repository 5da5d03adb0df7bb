"""Group commit on both back ends: saves queued while another is being written share one
write; a conflict in the batch fails only its own save; every save returns only once its
write has committed."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from application.commands import Commands, Kind
from application.errors import Conflict
from application.tenancy import Principal
from domain.agents import Agent
from domain.ids import stream_id
from infra.event_store import EventsourcingEventStore, event_store_env
from infra.settings import Settings


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[EventsourcingEventStore]:
    if request.param == "postgres":
        settings = Settings(data_dir=tmp_path, database_url=request.getfixturevalue("postgres_url"))
    else:
        settings = Settings(data_dir=tmp_path)
    store = EventsourcingEventStore(event_store_env(settings))
    yield store
    store.close()


def agent(name: str) -> Agent:
    return Agent(agent_id=f"agent_{name:0>12}", tenant_id="t", definition={"name": name})


class HeldFirstWrite:
    """Wraps the recorder's batch writer: the first write waits until released, so the saves
    started meanwhile queue up behind it; each later write's groups are recorded."""

    def __init__(self, store: EventsourcingEventStore) -> None:
        self.group_commit = store.app.recorder.group_commit  # type: ignore[attr-defined]
        self._write = self.group_commit._write_groups
        self.group_commit._write_groups = self
        self.entered = threading.Event()
        self.release = threading.Event()
        self.batches: list[int] = []

    def __call__(self, groups: Sequence[Sequence[Any]], after: Sequence[tuple[int, int]]) -> Any:
        if not self.entered.is_set():
            self.entered.set()
            self.release.wait()
        self.batches.append(len(groups))
        return self._write(groups, after)

    def wait_for_queue(self, length: int) -> None:
        while True:
            with self.group_commit._lock:
                if len(self.group_commit._queue) >= length:
                    return
            threading.Event().wait(0.005)


def test_a_conflict_in_a_batch_fails_only_its_own_save_and_the_rest_commit_together(
    store: EventsourcingEventStore,
) -> None:
    contested = agent("contested")
    store.save(contested)
    winner, loser = store.load(contested.id), store.load(contested.id)
    winner.update({"name": "winner"})
    loser.update({"name": "loser"})
    store.save(winner)

    held = HeldFirstWrite(store)
    outcomes: dict[str, Any] = {}
    committed_when_acknowledged: dict[str, bool] = {}

    def save(name: str, aggregate: Agent) -> None:
        try:
            outcomes[name] = store.save(aggregate)
        except Conflict as conflict:
            outcomes[name] = conflict
            return
        # Read on another connection: the save is acknowledged only once it is visible there.
        committed_when_acknowledged[name] = bool(store.read_stream(aggregate.id))

    first = threading.Thread(target=save, args=("first", agent("first")))
    first.start()
    held.entered.wait()
    others = [("before", agent("before")), ("loser", loser), ("after", agent("after"))]
    threads = []
    for name, aggregate in others:
        thread = threading.Thread(target=save, args=(name, aggregate))
        thread.start()
        threads.append(thread)
        held.wait_for_queue(len(threads))  # queued in this order
    held.release.set()
    for thread in [first, *threads]:
        thread.join()

    assert held.batches == [1, 3], "the three saves queued behind the first were one write"
    assert isinstance(outcomes["loser"], Conflict)
    assert store.load(contested.id).definition["name"] == "winner"
    assert committed_when_acknowledged == {"first": True, "before": True, "after": True}
    assert outcomes["first"] < outcomes["before"] < outcomes["after"], "commit order is queue order"
    log = [(n.id, n.originator_id) for n in store.notifications(0, 100)]
    assert [originator for _, originator in log][-3:] == [
        agent("first").id, agent("before").id, agent("after").id
    ]
    assert [nid for nid, _ in log] == sorted(nid for nid, _ in log)


def test_a_failed_write_fails_every_save_of_its_batch_and_the_next_batch_goes_on(
    store: EventsourcingEventStore,
) -> None:
    held = HeldFirstWrite(store)
    real_write = held._write
    failing = {"on": True}

    def write_or_fail(groups: Sequence[Sequence[Any]], after: Sequence[tuple[int, int]]) -> Any:
        if failing["on"] and len(groups) == 2:
            failing["on"] = False
            raise RuntimeError("the connection went away")
        return real_write(groups, after)

    held._write = write_or_fail
    outcomes: dict[str, Any] = {}

    def save(name: str) -> None:
        try:
            outcomes[name] = store.save(agent(name))
        except RuntimeError as error:
            outcomes[name] = error

    first = threading.Thread(target=save, args=("first",))
    first.start()
    held.entered.wait()
    threads = []
    for name in ("second", "third"):
        thread = threading.Thread(target=save, args=(name,))
        thread.start()
        threads.append(thread)
        held.wait_for_queue(len(threads))
    held.release.set()
    for thread in [first, *threads]:
        thread.join()
    assert isinstance(outcomes["second"], RuntimeError) and isinstance(outcomes["third"], RuntimeError)
    assert isinstance(outcomes["first"], int)
    assert store.save(agent("fourth")) is not None  # the lead was handed on, not lost
    assert [n.originator_id for n in store.notifications(0, 100)] == [agent("first").id, agent("fourth").id]


def test_a_save_queued_behind_a_refused_one_of_its_own_stream_is_refused_too(
    store: EventsourcingEventStore,
) -> None:
    """``save_pending`` lets a writer queue its next save before the last one committed; if
    that one loses its race, the next (whose events follow it) must not leave a gap."""
    contested, chained = agent("contested"), agent("chained")
    store.save(contested)
    store.save(chained)
    stale = store.load(contested.id)
    winner = store.load(contested.id)
    winner.update({"name": "winner"})
    store.save(winner)

    held = HeldFirstWrite(store)
    first = threading.Thread(target=store.save, args=(agent("first"),))
    first.start()
    held.entered.wait()
    stale.update({"name": "loser"})
    refused = store.save_pending(stale)
    stale.update({"name": "after the loser"})
    refused_too = store.save_pending(stale)
    ok = store.load(chained.id)
    ok.update({"name": "one"})
    committed = store.save_pending(ok)
    ok.update({"name": "two"})
    committed_too = store.save_pending(ok)
    held.release.set()
    first.join()

    with pytest.raises(Conflict):
        refused.wait()
    with pytest.raises(Conflict):
        refused_too.wait()
    assert committed.wait() is not None and committed_too.wait() is not None
    assert held.batches == [1, 4]
    assert [e.originator_version for e in store.read_stream(contested.id)] == [1, 2]
    assert store.load(contested.id).definition["name"] == "winner"
    assert [e.originator_version for e in store.read_stream(chained.id)] == [1, 2, 3]
    assert store.load(chained.id).definition["name"] == "two"


def test_a_save_after_one_refused_in_an_earlier_write_is_refused_unwritten(store: EventsourcingEventStore) -> None:
    contested = agent("contested")
    store.save(contested)
    stale = store.load(contested.id)
    winner = store.load(contested.id)
    winner.update({"name": "winner"})
    store.save(winner)

    held = HeldFirstWrite(store)
    stale.update({"name": "loser"})
    refused = store.save_pending(stale)  # leads the next write, which is held
    outcome: list[BaseException] = []

    def wait_refused() -> None:
        try:
            refused.wait()
        except Conflict as conflict:
            outcome.append(conflict)

    leader = threading.Thread(target=wait_refused)
    leader.start()
    held.entered.wait()
    stale.update({"name": "after the loser"})
    refused_too = store.save_pending(stale)
    stale.update({"name": "after that"})
    refused_third = store.save_pending(stale)  # follows a save refused in the same step, not before it
    held.release.set()
    leader.join()
    with pytest.raises(Conflict):
        refused_too.wait()
    with pytest.raises(Conflict):
        refused_third.wait()
    assert len(outcome) == 1
    assert held.batches == [1], "the saves after the loser were refused without a write"
    assert [e.originator_version for e in store.read_stream(contested.id)] == [1, 2]


def test_the_next_command_on_a_stream_starts_only_from_a_recorded_save(store: EventsourcingEventStore) -> None:
    """A command waits for the commit of the one before it on the same stream: it must never
    decide on an event that might yet be refused."""
    public_id = "agent_pipelined0001"
    store.save(Agent(agent_id=public_id, tenant_id="t", definition={"name": "start"}))
    commands: Commands[Agent] = Commands(store, Kind(Agent, "agent", "agent"), lambda a: {"name": a.definition["name"]})
    who = Principal(tenant_id="t", key_id="k")
    held = HeldFirstWrite(store)
    second_ran = threading.Event()
    results: list[Any] = []

    def rename(name: str, ran: threading.Event | None = None) -> None:
        def command(aggregate: Agent) -> None:
            if ran is not None:
                ran.set()
            aggregate.update({"name": name})

        results.append(commands.change(who, public_id, command).view)

    first = threading.Thread(target=rename, args=("first",))
    first.start()
    held.entered.wait()
    second = threading.Thread(target=rename, args=("second", second_ran))
    second.start()
    assert not second_ran.wait(0.3), "the second command ran while the first save was not yet committed"
    held.release.set()
    first.join()
    second.join()
    assert second_ran.is_set()
    assert results == [{"name": "first"}, {"name": "second"}]
    assert [e.originator_version for e in store.read_stream(stream_id(public_id))] == [1, 2, 3]
