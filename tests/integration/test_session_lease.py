"""The PostgreSQL session lease: one holder per session across processes (here: several
lease objects, each its own connection and holder id), expiry, renewal, and what a holder
that lost its lease does."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from application.runtime import CancelToken, TurnDispatcher
from infra.pg_session_lease import PostgresSessionLease
from infra.settings import parse_postgres_url


@pytest.fixture
def conninfo(postgres_url: str) -> str:
    return parse_postgres_url(postgres_url).conninfo


@pytest.fixture
def leases(conninfo: str) -> Iterator[list[PostgresSessionLease]]:
    made: list[PostgresSessionLease] = []
    yield made
    for lease in made:
        lease.close()


def _lease(conninfo: str, made: list[PostgresSessionLease], seconds: float = 30.0) -> PostgresSessionLease:
    lease = PostgresSessionLease(conninfo, seconds)
    made.append(lease)
    return lease


def test_two_holders_never_both_hold_a_session(conninfo: str, leases: list[PostgresSessionLease]) -> None:
    first, second = _lease(conninfo, leases), _lease(conninfo, leases)
    assert first.holder != second.holder
    assert first.acquire("sesn_a") is True
    assert second.acquire("sesn_a") is False
    assert second.acquire("sesn_b") is True  # other sessions are free
    first.release("sesn_a")
    assert second.acquire("sesn_a") is True
    assert first.acquire("sesn_a") is False


def test_racing_holders_get_each_session_exactly_once(conninfo: str, leases: list[PostgresSessionLease]) -> None:
    # Made side by side too, as processes starting together make the table at once.
    holders: list[PostgresSessionLease] = []
    failures: list[BaseException] = []

    def make() -> None:
        try:
            holders.append(_lease(conninfo, leases))
        except Exception as error:
            failures.append(error)

    makers = [threading.Thread(target=make) for _ in range(4)]
    for maker in makers:
        maker.start()
    for maker in makers:
        maker.join(20)
    assert not failures and len(holders) == 4
    sessions = [f"sesn_race{i:04d}" for i in range(40)]
    won: dict[str, list[str]] = {session: [] for session in sessions}
    lock = threading.Lock()
    start = threading.Barrier(len(holders))

    def race(lease: PostgresSessionLease) -> None:
        start.wait()
        for session in sessions:
            if lease.acquire(session):
                with lock:
                    won[session].append(lease.holder)

    threads = [threading.Thread(target=race, args=(lease,)) for lease in holders]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    assert all(len(winners) == 1 for winners in won.values()), won


def test_an_expired_lease_is_taken_over_and_its_old_holder_learns_it_lost(
    conninfo: str, leases: list[PostgresSessionLease]
) -> None:
    dead = _lease(conninfo, leases, seconds=0.5)  # never renewed: a frozen or killed process
    successor = _lease(conninfo, leases, seconds=0.5)
    assert dead.acquire("sesn_x")
    assert successor.acquire("sesn_x") is False
    assert successor.unheld(["sesn_x", "sesn_y"]) == ["sesn_y"]
    time.sleep(0.7)
    assert successor.unheld(["sesn_x"]) == ["sesn_x"]
    assert successor.acquire("sesn_x") is True
    lost: list[str] = []
    dead.start_renewing(lost.append)
    assert dead.renew() == ["sesn_x"] and lost == ["sesn_x"]
    assert "sesn_x" not in dead.held()
    dead.release("sesn_x")  # a late release must not free the successor's hold
    assert dead.acquire("sesn_x") is False
    assert successor.renew() == []


def test_renewal_keeps_a_live_holders_lease_past_its_length(conninfo: str, leases: list[PostgresSessionLease]) -> None:
    # Lengths wide enough that a renewer thread starved for a moment (the suite runs in two
    # processes on two cores) still renews in time; the sleep spans well over one lease length.
    holder = _lease(conninfo, leases, seconds=3.0)
    other = _lease(conninfo, leases, seconds=3.0)
    lost: list[str] = []
    holder.start_renewing(lost.append)  # renews every 1 s
    assert holder.acquire("sesn_kept")
    time.sleep(5.0)
    assert other.acquire("sesn_kept") is False
    assert lost == []
    holder.close()  # gives every hold back
    assert other.acquire("sesn_kept") is True


class _Blocking:
    """A turn that waits on its token: stands for a provider stream in flight."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.tokens: list[CancelToken] = []

    def take_turns(self, session_id: str, cancel: CancelToken) -> None:
        self.tokens.append(cancel)
        self.started.set()
        cancel.wait(10)


def test_a_lost_lease_stops_the_turn_as_shutting_down_and_the_driver_lets_go(
    conninfo: str, leases: list[PostgresSessionLease]
) -> None:
    lease = _lease(conninfo, leases, seconds=0.5)
    runner = _Blocking()
    dispatcher = TurnDispatcher(runner, workers=2, lease=lease)
    try:
        dispatcher.submit("sesn_lost")
        assert runner.started.wait(5)
        dispatcher.submit("sesn_lost")  # marked again: must not drive on once the lease is gone
        time.sleep(0.7)
        successor = _lease(conninfo, leases, seconds=5)
        assert successor.acquire("sesn_lost")
        lease.start_renewing(dispatcher.lease_lost)
        deadline = time.monotonic() + 5
        while not runner.tokens[0].cancelled and time.monotonic() < deadline:
            time.sleep(0.02)
        token = runner.tokens[0]
        assert token.cancelled and token.shutting_down  # nothing is written as an interrupt
        time.sleep(0.3)
        assert len(runner.tokens) == 1  # the driver stopped instead of looking again
    finally:
        dispatcher.shutdown()
