"""The WorkItem aggregate: one session's claim on an environment's workers, from the moment
its agent first needs a tool until a worker let it go.

States (as the SDK's ``BetaSelfHostedWork.state`` names them): ``queued`` (waiting for a
worker; a poll claims it but it stays queued until acknowledged) → ``starting`` (acknowledged)
→ ``active`` (first heartbeat) → ``stopping`` (asked to stop) → ``stopped``. A claim that is
never acknowledged, or a lease that runs out, is taken over by the next poll: a new claim
number, so the credentials handed out with the old claim stop working.

Heartbeats are not events here (one every few seconds per worker would swamp the log): the
lease's clock lives beside the store (``application.ports.WorkLeases``); only transitions are
recorded. No I/O: the caller passes how old a claim is and whether its lease ran out.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.errors import InvalidState
from domain.ids import stream_id
from domain.stamps import Stamped

TAKEOVERS_KEPT = 8

MAX_METADATA_PAIRS = 16


class WorkItem(Aggregate):
    @staticmethod
    def create_id(work_id: str, **_: Any) -> UUID:
        return stream_id(work_id)

    class Created(Aggregate.Created):
        """Schema v2 adds ``hosting``: ``cloud`` (Agentry's own workers serve it) or
        ``self_hosted`` (the customer's); v1 items were all self-hosted."""

        class_version = 2
        work_id: str
        tenant_id: str
        environment_id: str
        session_id: str
        hosting: str

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["hosting"] = "self_hosted"

    class Claimed(Stamped):
        """A poll handed the item to ``worker_id``; ``took_over`` says why an earlier claim
        lapsed (``unacknowledged`` or ``lease_expired``), None for the first."""

        stamp = "claimed_at"
        claim: int
        worker_id: str | None
        took_over: str | None

        def apply(self, aggregate: Any) -> None:
            super().apply(aggregate)
            if aggregate.succeeds_running_worker:
                # The last few times a worker died running the calls and another took over.
                aggregate.takeovers = [*aggregate.takeovers, self.timestamp][-TAKEOVERS_KEPT:]

    class Acknowledged(Stamped):
        stamp = "acknowledged_at"
        claim: int

    class Started(Stamped):
        stamp = "started_at"
        claim: int

    class StopRequested(Stamped):
        stamp = "stop_requested_at"
        reason: str

    class Stopped(Stamped):
        stamp = "stopped_at"
        reason: str

        def apply(self, aggregate: Any) -> None:
            super().apply(aggregate)
            if aggregate.stop_requested_at is None:  # stopped without being asked first
                aggregate.stop_requested_at = self.timestamp

    class MetadataUpdated(Aggregate.Event):
        metadata: dict[str, str]

    @event(Created)
    def __init__(self, work_id: str, tenant_id: str, environment_id: str, session_id: str, hosting: str) -> None:
        self.work_id = work_id
        self.hosting = hosting
        self.tenant_id = tenant_id
        self.environment_id = environment_id
        self.session_id = session_id
        self.state = "queued"
        self.claim = 0
        self.worker_id: str | None = None
        self.claimed_at: datetime | None = None
        # Whether the claim in force took over from a worker that had heartbeated (it was
        # running the session's calls until its lease lapsed); a claim that took over from
        # one that never did is no sign that anyone runs them (see WorkerWatch).
        self.succeeds_running_worker = False
        self.takeovers: list[datetime] = []
        self.acknowledged_at: datetime | None = None
        self.started_at: datetime | None = None
        self.stop_requested_at: datetime | None = None
        self.stopped_at: datetime | None = None
        self.stop_reason: str | None = None
        self.metadata: dict[str, str] = {}

    @property
    def live(self) -> bool:
        return self.state != "stopped"

    @property
    def unacknowledged(self) -> bool:
        """Claimed by a poll, not yet acknowledged (the queue's ``pending``)."""
        return self.state == "queued" and self.claim > 0

    def claimable(self, claim_age_seconds: float | None, reclaim_after_seconds: float, lease_expired: bool) -> str | None:
        """Whether a poll may claim the item now: ``"new"`` for a first claim, the reason an
        earlier claim lapsed when it may be taken over, else None."""
        if self.state == "queued":
            if self.claim == 0:
                return "new"
            if claim_age_seconds is not None and claim_age_seconds >= reclaim_after_seconds:
                return "unacknowledged"
            return None
        if self.state in ("starting", "active") and lease_expired:
            return "lease_expired"
        return None

    def claim_for(self, worker_id: str | None, why: str) -> int:
        """Records a claim (``why`` as ``claimable`` said) and returns its number."""
        if not self.live:
            raise InvalidState(f"work {self.work_id} is stopped")
        self._record_claim(claim=self.claim + 1, worker_id=worker_id, took_over=None if why == "new" else why)
        return self.claim

    @event(Claimed)
    def _record_claim(self, claim: int, worker_id: str | None, took_over: str | None) -> None:
        self.succeeds_running_worker = took_over is not None and self.state == "active"
        self.claim = claim
        self.worker_id = worker_id
        self.state = "queued"
        self.acknowledged_at = None
        self.started_at = None

    def acknowledge(self) -> bool:
        """The claimed worker took the item up. Acknowledging it again is a no-op."""
        if self.state == "starting":
            return False
        if self.state != "queued" or self.claim == 0:
            raise InvalidState(f"work {self.work_id} is {self.state}{'' if self.claim else ' and unclaimed'}: nothing to acknowledge")
        self._record_acknowledgement(claim=self.claim)
        return True

    @event(Acknowledged)
    def _record_acknowledgement(self, claim: int) -> None:
        self.state = "starting"

    def start(self) -> bool:
        """The first heartbeat of a claim: the worker is running the session."""
        if self.state != "starting":
            return False
        self._record_start(claim=self.claim)
        return True

    @event(Started)
    def _record_start(self, claim: int) -> None:
        self.state = "active"

    def stop(self, force: bool, reason: str) -> bool:
        """Asks the worker to stop (it learns so from its next heartbeat), or, with
        ``force`` or when no worker holds the item, stops it at once."""
        if self.state == "stopped":
            return False
        if force or self.state == "queued":
            self._record_stopped(reason=reason)
            return True
        if self.state == "stopping":
            return False
        self._record_stop_request(reason=reason)
        return True

    @event(StopRequested)
    def _record_stop_request(self, reason: str) -> None:
        self.state = "stopping"
        self.stop_reason = reason

    @event(Stopped)
    def _record_stopped(self, reason: str) -> None:
        self.state = "stopped"
        self.stop_reason = self.stop_reason or reason

    def update_metadata(self, changes: dict[str, str | None]) -> bool:
        """Merges ``changes`` (a None value deletes its key)."""
        metadata = {**self.metadata}
        for key, value in changes.items():
            if value is None:
                metadata.pop(key, None)
            else:
                metadata[key] = value
        if metadata == self.metadata:
            return False
        if len(metadata) > MAX_METADATA_PAIRS:
            raise InvalidState(f"a work item holds at most {MAX_METADATA_PAIRS} metadata pairs; delete some (a null value) first")
        self._record_metadata(metadata=metadata)
        return True

    @event(MetadataUpdated)
    def _record_metadata(self, metadata: dict[str, str]) -> None:
        self.metadata = metadata
