"""The long-running processes the commands start — the API process (`agentry serve`, and the
e2e servers), the turn worker (`agentry worker`) and the relay (`agentry relay`) — with their
start-up and shut-down order; and what the one-shot commands that need less than the API
process open instead (`agentry export` / `import`, `agentry projections`).
The composition root builds their parts; this module only runs them."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import falcon.asgi

from application.api_keys import PrivateFile
from application.relay import Lease, Relay, run_while_leased
from application.runtime import TurnDispatcher
from application.runtime.sweep import TurnSweeper
from application.transfer import RawEventLog
from interfaces.http.common import Services
from projections.kafka_runner import KafkaProjector

log = logging.getLogger("agentry")


@dataclass
class TurnTaking:
    """This process's share of driving turns: its dispatcher and, across processes
    (PostgreSQL), the lease it renews and the sweep that finds turns nobody drives."""

    dispatcher: TurnDispatcher
    lease: Any | None = None  # PostgresSessionLease: renewed while started
    sweeper: TurnSweeper | None = None

    def start(self) -> None:
        if self.lease is not None:
            self.lease.start_renewing(self.dispatcher.lease_lost)
        if self.sweeper is not None:
            self.sweeper.start()

    def stop(self) -> None:
        """No new turns; turns in flight are left as they stand (``shutting_down``) and their
        leases given back, so another process takes them up at its next sweep."""
        if self.sweeper is not None:
            self.sweeper.stop()
        self.dispatcher.shutdown()
        if self.lease is not None:
            self.lease.close()


class LeasedJob:
    """Starts ``job`` in the one process of several that holds ``lease`` (an advisory lock on
    its own connection), and in another once that process is gone. A lease lost while its
    connection dropped leaves the job running: what it runs is claimed batch by batch in the
    database, so two of them only repeat work, never effects."""

    def __init__(self, lease: Any, job: Callable[[], None]) -> None:
        self._lease = lease
        self._job = job
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="agentry-leased-job", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        if self._lease.acquire(self._stop.is_set):
            self._job()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        self._lease.release()


class SharedPositions:
    """Read-your-writes when the projections may run in another process: waits until the
    positions they record with their rows reach ``position``."""

    def __init__(
        self, positions: Callable[[], dict[str, int]], poll_seconds: float = 0.01, max_poll_seconds: float = 0.1
    ) -> None:
        self._positions = positions
        self._poll_seconds = poll_seconds
        self._max_poll_seconds = max_poll_seconds

    def wait_for(self, position: int | None, timeout: float = 5.0) -> bool:
        if position is None:
            return True
        deadline = time.monotonic() + timeout
        pause = self._poll_seconds
        while min(self._positions().values(), default=0) < position:
            if time.monotonic() >= deadline:
                return False
            time.sleep(pause)
            # A write usually lands within a poll or two; a stuck projection must not turn
            # every waiting request into a 100-reads-a-second loop on the database.
            pause = min(pause * 2, self._max_poll_seconds)
        return True


@dataclass
class ApiProcess:
    """The API with, unless they run elsewhere, the projections and the session runtime."""

    services: Services
    store: Any  # the event store adapter: closed last
    projections: Any  # the read-model runner
    turns: TurnTaking | None  # None when `agentry worker` processes drive turns
    change_feed: Any | None  # wakes this process for writes of others (PostgreSQL)
    projections_in_process: bool
    bootstrap_api_key: str
    admin_key_file: PrivateFile | None
    resources: list[Any] = field(default_factory=list)  # closed after the store (the cipher's key table)
    signals: Any | None = None  # LISTENs for interrupts and previews from other processes
    closers: list[Callable[[], None]] = field(default_factory=list)  # called after the turns stop
    followers: Any | None = None  # process managers following the log (the task follower)
    webhooks: Any | None = None  # the webhook dispatcher (delivers while this process holds its lease)
    vectors: Any | None = None  # the vector projection: runs where the read models do
    # One of `serve --workers N`'s processes: the log's followers (projections, vectors, task
    # follower) run in whichever holds this lease; every process keeps its live tails.
    following: Any | None = None  # an AdvisoryLease
    _leased_following: LeasedJob | None = field(default=None, init=False, repr=False)

    def asgi_app(self) -> falcon.asgi.App:
        # Imported by the processes that serve only: the routes and their OpenAPI description
        # take ≈ 0.3 s, which every other command (export, import, projections…) would pay.
        from interfaces.http.app import create_app

        return create_app(self.services)

    def start(self) -> None:
        # First: the projections' catch-up below then includes the admin key (listed at once).
        self.services.api_keys.ensure_admin_key(self.bootstrap_api_key, self.admin_key_file)
        leased: LeasedJob | None = None
        if self.projections_in_process and self.following is not None:
            leased = self._leased_following = LeasedJob(self.following, self._follow_the_log)
            if self.change_feed is not None:
                self.change_feed.start()
        elif self.projections_in_process:
            self.start_projections()
        elif self.change_feed is not None:
            self.change_feed.start()
        if self.followers is not None and leased is None:
            # In every API process: each batch is claimed by moving its position, and what a
            # follower does twice after a crash records nothing the second time.
            self.followers.start()
        if leased is not None:
            leased.start()
        if self.signals is not None:
            self.signals.start()
        if self.turns is not None:
            self.turns.start()
            if self.turns.sweeper is None:
                self.resume_interrupted_turns()
        if self.webhooks is not None:
            self.webhooks.start()

    def _follow_the_log(self) -> None:
        # The runners' loops catch up first (and retry a failed batch), on their own threads.
        self.projections.start()
        if self.vectors is not None:
            self.vectors.start()
        if self.followers is not None:
            self.followers.start()

    def start_projections(self) -> None:
        """Catch up, then follow the log (woken across processes on PostgreSQL)."""
        self.projections.catch_up()
        self.projections.start()
        if self.vectors is not None:
            # Catches up on its own thread: embedding a long log must not hold up start-up.
            self.vectors.start()
        if self.change_feed is not None:
            self.change_feed.start()

    def resume_interrupted_turns(self) -> None:
        """A turn cut short by a stop left its session ``running``; take it up again. (With
        PostgreSQL the sweep does this, once the stopped process's leases are free.)"""
        assert self.turns is not None
        for session_id in self.services.read_models.running_session_ids():
            self.turns.dispatcher.submit(session_id)

    def close(self) -> None:
        if self._leased_following is not None:
            self._leased_following.stop()
        if self.signals is not None:
            self.signals.stop()
        if self.change_feed is not None:
            self.change_feed.stop()
        self.projections.stop()
        if self.vectors is not None:
            self.vectors.stop()
        if self.followers is not None:
            self.followers.stop()
        if self.webhooks is not None:
            self.webhooks.stop()
        if self.turns is not None:
            self.turns.stop()
        for close in self.closers:
            close()
        self.store.close()
        for resource in self.resources:
            resource.close()
        log.info("agentry stopped cleanly")


@dataclass
class WorkerProcess:
    """`agentry worker`: drives turns (PostgreSQL). Work arrives as signals (a session owes a
    turn, an interrupt) and, for anything a signal missed or a dead worker left, the sweep."""

    turns: TurnTaking
    signals: Any  # PostgresSignalListener: turns and interrupts
    closers: list[Callable[[], None]]  # called in order once the turns stopped (the store's last)
    telemetry: Any = None  # served on AGENTRY_METRICS_PORT by the command

    def run(self, stop: threading.Event) -> None:
        self.signals.start()
        self.turns.start()
        log.info("worker %s taking turns", getattr(self.turns.lease, "holder", "?"))
        stop.wait()
        log.info("worker stopping: turns in flight are left for another worker")

    def close(self) -> None:
        self.signals.stop()
        self.turns.stop()
        for close in self.closers:
            close()
        log.info("worker stopped cleanly")


@dataclass
class RelayProcess:
    relay: Relay
    lease: Lease
    change_feed: Any
    resources: list[Any]  # closed in order after the feed stops
    telemetry: Any = None  # served on AGENTRY_METRICS_PORT by the command

    def run(self, should_stop: Callable[[], bool]) -> None:
        self.change_feed.start()
        run_while_leased(self.relay, self.lease, should_stop)

    def close(self) -> None:
        self.change_feed.stop()
        for resource in self.resources:
            resource.close()


@dataclass
class KafkaProjectorProcess:
    """`agentry project --from kafka`: projections fed from the relay's topics in a consumer group."""

    projector: KafkaProjector
    telemetry: Any = None  # served on AGENTRY_METRICS_PORT by the command

    def run(self, should_stop: Callable[[], bool]) -> None:
        self.projector.run(should_stop)

    def close(self) -> None:
        try:
            self.projector.close()  # leaves the group at once
        finally:
            if self.telemetry is not None:
                self.telemetry.close()


@dataclass
class TransferStores:
    """What `agentry export` and `agentry import` open, closed when they end."""

    log: RawEventLog  # the event store as stored rows
    projections: Any | None  # the read models' runner, for an import's catch-up
    closers: list[Callable[[], None]]  # called in order

    def close(self) -> None:
        _close_in_order(self.closers)


@dataclass
class ReadSide:
    """What `agentry projections status|rebuild` opens: the event store, the read models'
    runner and the vector projection, none of them started; closed when the command ends."""

    store: Any
    projections: Any  # the read-model runner
    vectors: Any  # the vector projection
    closers: list[Callable[[], None]]  # called in order

    def close(self) -> None:
        _close_in_order(self.closers)
        log.info("agentry stopped cleanly")  # the command's last line at info, as the API process's close writes it


def _close_in_order(closers: list[Callable[[], None]]) -> None:
    for close in closers:
        close()
