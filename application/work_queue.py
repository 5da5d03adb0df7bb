"""Environments' work queues: how a worker outside Agentry (the SDK's ``EnvironmentWorker``,
or ``agentry sandbox-worker``) finds sessions whose tools it must run, holds them under a
lease, and lets them go.

A session asks for a worker the first time its agent calls a built-in tool (the runtime
creates a ``WorkItem`` in the same append as the call); the session is the authority on
whether it still wants one. It lets its item go when it goes idle for any reason but
``requires_action``, is terminated or deleted: the worker learns so from its next heartbeat
(``state: stopping``), and a poll stops an item nobody claimed. So an idle session holds no
worker, and nothing has to reach into a second aggregate whenever a session goes idle.

A claim hands the worker a ``secret``: base64url JSON ``{"sessions_token": …}``, as the SDK
worker reads it. The token names the item and the claim and is signed with the server's
key hash; it works only while that claim is the item's current one, so a worker whose lease
was taken over is locked out. Nothing of it is stored.
"""

from __future__ import annotations

import base64
import hmac
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, NamedTuple

import orjson

from application.api_keys import KeyHash
from application.commands import Commands, Kind, Written, load_as
from application.environment_keys import EnvironmentCredential
from application.environments import EnvironmentService
from application.errors import Conflict, Forbidden, Invalid, NotFound, PreconditionFailed, Unauthorized
from application.ids import new_id
from application.ports import EventStore, Lease, WorkIndex, WorkLeases
from application.retry import retry_on_race
from application.tenancy import Principal
from application.views import iso, work_view
from domain.environments import Environment
from domain.errors import InvalidState
from domain.ids import looks_like, stream_id
from domain.sessions import Session
from domain.work_items import WorkItem

ID_PREFIX = "work"
TOKEN_PREFIX = "agentry_wtok_"
NO_HEARTBEAT = "NO_HEARTBEAT"
DEFAULT_RECLAIM_MS = 5000
# A worker that polls is counted in ``workers_polling`` for this long.
POLLING_WINDOW_SECONDS = 30.0
# How often a long poll looks again for items another process queued.
POLL_RECHECK_SECONDS = 0.1
# The SDK worker bounds its teardown memory flush at 30 s (MEMORY_FLUSH_TIMEOUT).
TEARDOWN_GRACE_SECONDS = 30.0

WORK_ITEMS: Kind[WorkItem] = Kind(WorkItem, ID_PREFIX, "work item")


class WorkCredential(NamedTuple):
    """A claimed item's ``sessions_token``: good for that item's heartbeat and stop, and for
    the calls its worker makes about its one session. ``hosting`` ``cloud``: the worker is
    Agentry's own."""

    tenant_id: str
    environment_id: str
    work_id: str
    session_id: str
    claim: int
    hosting: str = "self_hosted"


class PlatformWorker(NamedTuple):
    """Agentry's own sandbox worker (``agentry sandbox-worker``): it polls every ``cloud``
    environment's queue, of every tenant, and acts on an item with that item's token."""

    worker: str = "sandbox"


PLATFORM_KEY_PREFIX = "agentry_pwk_"


# Who may act as an environment's worker: its environment key, a claimed item's token, or
# an operator's API key (running a worker by hand).
Worker = EnvironmentCredential | WorkCredential | Principal


def render(item: WorkItem) -> dict[str, Any]:
    return work_view(
        item.work_id,
        item.environment_id,
        item.session_id,
        item.state,
        item.metadata,
        item.created_on,
        item.acknowledged_at,
        item.started_at,
        item.stop_requested_at,
        item.stopped_at,
    )


def new_work_item(session: Session, hosting: str) -> WorkItem:
    """The item a session's first built-in tool call asks for (saved with that call)."""
    return WorkItem(
        work_id=new_id(ID_PREFIX),
        tenant_id=session.tenant_id,
        environment_id=session.environment_id,
        session_id=session.session_id,
        hosting=hosting,
    )


def hosting_of(store: EventStore, environment_id: str) -> str:
    """``cloud`` or ``self_hosted``: who runs the environment's workers."""
    environment = load_as(store, stream_id(environment_id), Environment)
    config = (environment.definition.get("config") or {}) if environment is not None else {}
    return "self_hosted" if config.get("type") == "self_hosted" else "cloud"


def released_item(store: EventStore, before: str | None, session: Session) -> WorkItem | None:
    """The item a change to ``session`` just let go (``before`` was its work id), asked to
    stop, to save with the session; None when it let nothing go."""
    if before is None or session.work_id == before:
        return None
    item = load_as(store, stream_id(before), WorkItem)
    if item is None or not item.stop(force=False, reason="session_released"):
        return None
    return item


class WorkTokens:
    """``agentry_wtok_<claim>.<work id>.<signature>``: verifiable without a lookup."""

    def __init__(self, hash_key: KeyHash) -> None:
        self._hash = hash_key

    def issue(self, work_id: str, claim: int) -> str:
        return f"{TOKEN_PREFIX}{claim}.{work_id}.{self._sign(work_id, claim)}"

    def read(self, token: str) -> tuple[str, int] | None:
        if not token.startswith(TOKEN_PREFIX):
            return None
        parts = token[len(TOKEN_PREFIX):].split(".")
        if len(parts) != 3 or not parts[0].isdigit() or not looks_like(ID_PREFIX, parts[1]):
            return None
        claim, work_id, signature = int(parts[0]), parts[1], parts[2]
        if not hmac.compare_digest(signature, self._sign(work_id, claim)):
            return None
        return work_id, claim

    def _sign(self, work_id: str, claim: int) -> str:
        return self._hash(f"work-token:{work_id}:{claim}")


def secret_for(token: str) -> str:
    return base64.urlsafe_b64encode(orjson.dumps({"sessions_token": token})).decode().rstrip("=")


class _Polling:
    """Which workers polled an environment lately (this process's view), and a bell rung
    when this process queues an item, so a long poll here answers at once."""

    def __init__(self) -> None:
        self._seen: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()
        self._bell = threading.Condition()

    def saw(self, environment_id: str, worker_id: str | None) -> None:
        if worker_id:
            with self._lock:
                self._seen[(environment_id, worker_id[:128])] = time.monotonic()

    def count(self, environment_id: str) -> int:
        horizon = time.monotonic() - POLLING_WINDOW_SECONDS
        with self._lock:
            for key in [key for key, when in self._seen.items() if when < horizon]:
                self._seen.pop(key, None)
            return sum(1 for environment, _ in self._seen if environment == environment_id)

    def ring(self) -> None:
        with self._bell:
            self._bell.notify_all()

    def wait(self, seconds: float) -> None:
        with self._bell:
            self._bell.wait(seconds)


class WorkQueue:
    def __init__(
        self,
        store: EventStore,
        environments: EnvironmentService,
        leases: WorkLeases,
        index: WorkIndex,
        hash_key: KeyHash,
        lease_seconds: float,
        clock: Callable[[], float] = time.time,
        platform_key: str | None = None,
        on_worker_failed: Callable[[str], None] = lambda session_id: None,
    ) -> None:
        self._store = store
        self._environments = environments
        self._leases = leases
        self._index = index
        self._tokens = WorkTokens(hash_key)
        self._commands = Commands(store, WORK_ITEMS, render)
        self._ttl = lease_seconds
        self._clock = clock
        self._polling = _Polling()
        self._hash = hash_key
        self._platform_key_hash = hash_key(platform_key) if platform_key else None
        self._on_worker_failed = on_worker_failed

    # -- credentials ---------------------------------------------------------------------

    def authenticate(self, token: str) -> WorkCredential:
        refused = Unauthorized("invalid or expired work token")
        read = self._tokens.read(token)
        if read is None:
            raise refused
        work_id, claim = read
        item = load_as(self._store, stream_id(work_id), WorkItem)
        if item is None or item.claim != claim or item.state == "stopped":
            raise refused
        return WorkCredential(item.tenant_id, item.environment_id, item.work_id, item.session_id, claim, item.hosting)

    def authenticate_platform(self, key: str) -> PlatformWorker:
        if self._platform_key_hash is None or not hmac.compare_digest(self._hash(key), self._platform_key_hash):
            raise Unauthorized("invalid sandbox worker key")
        return PlatformWorker()

    def queued(self) -> None:
        """Called after this process saved a new item: long polls here look at once."""
        self._polling.ring()

    # -- the worker's calls ----------------------------------------------------------------

    def poll(
        self,
        who: Worker,
        environment_id: str,
        worker_id: str | None,
        reclaim_older_than_ms: int | None,
        block_ms: int | None,
    ) -> dict[str, Any] | None:
        """The oldest item a worker may take now, claimed for it with a fresh secret; None
        when there is none within ``block_ms``. Only self-hosted items: a cloud item is
        Agentry's own workers' (``poll_cloud``)."""
        self._check_environment(who, environment_id)
        self._polling.saw(environment_id, worker_id)
        return self._long_poll(environment_id, "self_hosted", worker_id, reclaim_older_than_ms, block_ms)

    def poll_cloud(
        self, who: PlatformWorker, worker_id: str | None, reclaim_older_than_ms: int | None, block_ms: int | None
    ) -> dict[str, Any] | None:
        """Agentry's own workers' poll: the oldest item of any ``cloud`` environment, with
        that environment's ``config`` (networking, packages) beside it."""
        claimed = self._long_poll(None, "cloud", worker_id, reclaim_older_than_ms, block_ms)
        if claimed is None:
            return None
        environment = load_as(self._store, stream_id(claimed["environment_id"]), Environment)
        config = environment.definition.get("config") if environment is not None else None
        return {**claimed, "environment": {"id": claimed["environment_id"], "config": config}}

    def _long_poll(
        self,
        environment_id: str | None,
        hosting: str,
        worker_id: str | None,
        reclaim_older_than_ms: int | None,
        block_ms: int | None,
    ) -> dict[str, Any] | None:
        reclaim_after = (DEFAULT_RECLAIM_MS if reclaim_older_than_ms is None else reclaim_older_than_ms) / 1000
        deadline = time.monotonic() + (block_ms or 0) / 1000
        while True:
            claimed = self._claim_one(environment_id, worker_id, reclaim_after, hosting)
            if claimed is not None:
                return claimed
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            self._polling.wait(min(remaining, POLL_RECHECK_SECONDS))

    def _claim_one(
        self, environment_id: str | None, worker_id: str | None, reclaim_after: float, hosting: str | None = None
    ) -> dict[str, Any] | None:
        ids = self._index.live_work_ids(None if environment_id is None else [environment_id], hosting)
        leases = self._leases.many(ids)
        now = self._clock()
        for work_id in ids:
            item = load_as(self._store, stream_id(work_id), WorkItem)
            if item is None or not item.live:
                continue
            lease = leases.get(work_id)
            expired = lease is None or lease.claim != item.claim or lease.expires_at < now
            if item.state != "queued" and not expired:
                continue  # a worker holds it (its heartbeats compare with the session)
            if not self._still_wanted(item):
                if item.state == "queued" or expired:
                    self._transition(item, lambda it: it.stop(force=True, reason="session_released"))
                continue
            if item.state == "stopping" and expired:
                self._transition(item, lambda it: it.stop(force=True, reason="lease_expired"))
                continue
            age = None if item.claimed_at is None else now - item.claimed_at.timestamp()
            why = item.claimable(age, reclaim_after, expired)
            if why is None:
                continue
            claim = item.claim_for(worker_id[:128] if worker_id else None, why)
            try:
                self._store.save(item)
            except Conflict:
                continue  # another poll took it first
            self._leases.grant(work_id, claim, now + self._ttl)
            view = render(item)
            view["secret"] = secret_for(self._tokens.issue(work_id, claim))
            return view
        return None

    def _teardown_grace(self, item: WorkItem, lease: Lease, ttl: float) -> None:
        """A worker told to stop still flushes (the SDK's worker uploads changed memories
        before its stop call, for up to 30 s) under the item's token, which dies with the
        lease: the lease is stretched to ``TEARDOWN_GRACE`` past the stop request, once —
        later beats find it long enough and leave it."""
        asked = item.stop_requested_at.timestamp() if item.stop_requested_at else self._clock()
        until = asked + max(ttl, TEARDOWN_GRACE_SECONDS)
        if lease.claim == item.claim and lease.expires_at < until and lease.last_heartbeat is not None:
            self._leases.extend(item.work_id, item.claim, lease.last_heartbeat, lease.last_heartbeat, until)

    def acknowledge(self, who: Worker, environment_id: str, work_id: str) -> dict[str, Any]:
        item = self._worker_item(who, environment_id, work_id)
        try:
            changed = item.acknowledge()
        except InvalidState as refusal:
            raise Conflict(str(refusal), retryable=False) from None
        if changed:
            self._save(item)
            # The lease runs from the acknowledgment: a slow start does not eat the first beat's time.
            self._leases.grant(work_id, item.claim, self._clock() + self._ttl)
        return self._shown(item)

    def heartbeat(
        self,
        who: Worker,
        environment_id: str,
        work_id: str,
        expected: str | None,
        desired_ttl_seconds: int | None,
    ) -> dict[str, Any]:
        item = self._worker_item(who, environment_id, work_id)
        ttl = self._effective_ttl(desired_ttl_seconds)
        if item.state in ("starting", "active") and not self._still_wanted(item):
            item = self._transition(item, lambda it: it.stop(force=False, reason="session_released"))
        lease = self._leases.get(work_id)
        current = lease.last_heartbeat if lease is not None and lease.claim == item.claim else None
        if item.state in ("stopping", "stopped", "queued"):
            if item.state == "stopping" and lease is not None and current is not None:
                self._teardown_grace(item, lease, ttl)
            # Not compared: the worker is told to let go (queued: its claim was taken over).
            return _beat(current, False, item.state, ttl)
        stamp = _stamp(self._clock())
        if stamp == current:
            stamp = _stamp(self._clock() + 1e-6)
        # Omitted, the condition is the heartbeat just read: two unconditional beats racing
        # still extend the lease once each, never over each other.
        condition = current if expected is None else (None if expected == NO_HEARTBEAT else expected)
        if not self._leases.extend(work_id, item.claim, condition, stamp, self._clock() + ttl):
            lease = self._leases.get(work_id)
            raise PreconditionFailed(
                "expected_last_heartbeat does not match the lease's last heartbeat",
                "heartbeat_precondition_failed",
                {"current_state": {
                    "last_heartbeat": lease.last_heartbeat if lease is not None else None,
                    "lease_extended": False,
                    "state": item.state,
                    "ttl_seconds": int(ttl),
                }},
            )
        item = self._transition(item, WorkItem.start)
        return _beat(stamp, True, item.state, ttl)

    def stop(
        self, who: Worker, environment_id: str, work_id: str, force: bool, error: str | None = None
    ) -> dict[str, Any]:
        """Stops the item. Agentry's own worker may say why it could not serve the session
        (``error``: its sandbox could not start): the session records it as a
        ``session.error`` and each call that waited for the worker ends in an error result."""
        item = self._worker_item(who, environment_id, work_id)
        if error is not None and not (isinstance(who, WorkCredential) and who.hosting == "cloud"):
            raise Forbidden("only Agentry's own workers report a failed start")
        if item.state == "stopped":
            raise Conflict(f"work {work_id} is already stopped", retryable=False)
        if error is not None:
            return self._shown(self._fail_start(work_id, error))
        reason = "stopped_by_worker" if isinstance(who, WorkCredential) else "stopped_by_operator"
        item.stop(force=force, reason=reason)
        self._save(item)
        return self._shown(item)

    def _fail_start(self, work_id: str, message: str) -> WorkItem:
        """Stops the item and, if it is still its session's, records why in the session, in
        one append (so nothing else answers the session's calls in between)."""
        failed = False

        def attempt() -> WorkItem:
            nonlocal failed
            item = self._load(work_id)
            assert item is not None
            item.stop(force=True, reason="failed_to_start")
            session = load_as(self._store, stream_id(item.session_id), Session)
            failed = (
                session is not None
                and session.work_id == item.work_id
                and session.fail_worker_calls(new_id("sevt"), message, new_id)
            )
            self._store.save(item, *([session] if failed and session is not None else []))
            return item

        item = retry_on_race(attempt, key=work_id)
        if failed:
            self._on_worker_failed(item.session_id)
        return item

    def check_listing(self, who: EnvironmentCredential, environment_id: str) -> None:
        """A worker lists its own environment's items (the page comes from the read model)."""
        self._check_environment(who, environment_id)

    # -- the operator's calls (API keys) ----------------------------------------------------

    def stats(self, who: Principal, environment_id: str) -> dict[str, Any]:
        self._environments.load(who, environment_id)
        depth, pending, oldest = self._index.work_queue_depth(environment_id)
        return {
            "type": "work_queue_stats",
            "depth": depth,
            "pending": pending,
            "oldest_queued_at": oldest,
            "workers_polling": self._polling.count(environment_id),
        }

    def retrieve(self, who: Principal, environment_id: str, work_id: str) -> dict[str, Any]:
        return self._shown(self._operator_item(who, environment_id, work_id))

    def update(self, who: Principal, environment_id: str, work_id: str, metadata: dict[str, str | None]) -> Written:
        self._operator_item(who, environment_id, work_id)
        written = self._commands.change(who, work_id, lambda item: item.update_metadata(metadata))
        return Written(self.with_heartbeats([written.view])[0], written.position)

    # -- helpers -------------------------------------------------------------------------

    def _check_environment(self, who: Worker, environment_id: str) -> None:
        """An operator's API key works for any environment of its tenant; a worker's
        credential for its own environment only."""
        if isinstance(who, Principal):
            self._environments.load(who, environment_id)
        elif who.environment_id != environment_id:
            raise Forbidden("this credential belongs to another environment")

    def _worker_item(self, who: Worker, environment_id: str, work_id: str) -> WorkItem:
        self._check_environment(who, environment_id)
        if isinstance(who, WorkCredential) and who.work_id != work_id:
            raise Forbidden("this work token belongs to another work item")
        return self._operator_item(who, environment_id, work_id)

    def _operator_item(self, who: Worker, environment_id: str, work_id: str) -> WorkItem:
        """The caller's tenant's item in that environment; anything else is the same 404."""
        item = self._load(work_id)
        if item is None or item.tenant_id != who.tenant_id or item.environment_id != environment_id:
            raise NotFound(f"work item {work_id!r} not found")
        return item

    def _load(self, work_id: str) -> WorkItem | None:
        if not looks_like(ID_PREFIX, work_id):
            return None
        return load_as(self._store, stream_id(work_id), WorkItem)

    def _still_wanted(self, item: WorkItem) -> bool:
        session = load_as(self._store, stream_id(item.session_id), Session)
        return session is not None and session.work_id == item.work_id

    def _save(self, item: WorkItem) -> None:
        try:
            self._store.save(item)
        except Conflict:
            raise Conflict(f"work item {item.work_id} changed meanwhile; try again") from None

    def _transition(self, item: WorkItem, change: Callable[[WorkItem], object]) -> WorkItem:
        """Applies a bookkeeping transition and saves it, re-running it on a fresh load if
        another process moved the item meanwhile; returns the item as it now stands."""
        for _ in range(3):
            change(item)
            if not item.pending_events:
                return item
            try:
                self._store.save(item)
                return item
            except Conflict:
                fresh = self._load(item.work_id)
                if fresh is None:
                    return item
                item = fresh
        return item

    def _shown(self, item: WorkItem) -> dict[str, Any]:
        """The item as every response but a poll's shows it: with its lease's last heartbeat."""
        return self.with_heartbeats([render(item)])[0]

    def with_heartbeats(self, views: list[dict[str, Any]]) -> list[dict[str, Any]]:
        leases = self._leases.many([view["id"] for view in views])
        return [view | {"latest_heartbeat_at": _heartbeat_of(leases.get(view["id"]))} for view in views]

    def _effective_ttl(self, desired: int | None) -> float:
        if desired is None:
            return self._ttl
        if not 1 <= desired <= 3600:
            raise Invalid("desired_ttl_seconds must be between 1 and 3600")
        return float(desired)


def _heartbeat_of(lease: Lease | None) -> str | None:
    return None if lease is None else lease.last_heartbeat


def _stamp(moment: float) -> str:
    return iso(datetime.fromtimestamp(moment, UTC)) or ""


def _beat(last: str | None, extended: bool, state: str, ttl: float) -> dict[str, Any]:
    return {
        "type": "work_heartbeat",
        "last_heartbeat": last or "",
        "lease_extended": extended,
        "state": state,
        "ttl_seconds": int(ttl),
    }


class WorkerWatch:
    """Tells the runtime when a session waits for tool results no worker will send: its
    work item is stopped, or its calls went ``timeout_seconds`` without progress.

    Progress is the session recording something (the calls routed, one of them answered) or
    a worker heartbeating its claim, which keeps the calls alive until that lease runs out
    (a long command is not cut short). A claim or an acknowledgment alone is not: a worker
    that dies right after every claim is taken over again and again, and none of those
    claims may keep the calls waiting forever. One exception: a claim that took over from a
    worker that had heartbeated (it died mid-call) counts from its own time, so the worker
    taking over has the whole timeout to start, however long the calls ran before — unless
    workers died running them ``MAX_TAKEOVERS`` times since the session last moved: a call
    that kills whoever runs it ends in an error result instead of killing workers forever."""

    MAX_TAKEOVERS = 3

    def __init__(self, store: EventStore, leases: WorkLeases, timeout_seconds: float, clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._leases = leases
        self._timeout = timeout_seconds
        self._clock = clock

    @property
    def vanished_message(self) -> str:
        return (
            f"The tool did not run: no worker of this session's environment held its work for "
            f"{self._timeout:g} s (none is polling the environment's queue, or the one running "
            f"the tool stopped answering), or {self.MAX_TAKEOVERS} workers in a row died running it."
        )

    def vanished(self, session: Session) -> bool:
        item = None if session.work_id is None else load_as(self._store, stream_id(session.work_id), WorkItem)
        if item is None or not item.live:
            return True
        if sum(moment > session.modified_on for moment in item.takeovers) >= self.MAX_TAKEOVERS:
            return True
        alive_until = session.modified_on.timestamp()
        if item.succeeds_running_worker and item.claimed_at is not None:
            alive_until = max(alive_until, item.claimed_at.timestamp())
        lease = self._leases.get(item.work_id)
        if lease is not None and lease.claim == item.claim and lease.last_heartbeat is not None:
            alive_until = max(alive_until, lease.expires_at)
        return self._clock() - alive_until > self._timeout
