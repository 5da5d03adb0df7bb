"""Webhook delivery: from the event log to every subscribed endpoint, at least once, in order
per resource, retried with backoff.

Two stages, both in the one active dispatcher (one per deployment: the embedded server, or
whichever API process holds the PostgreSQL lease):

- **Fan-out** follows the global notification log from its own position. For each batch it
  decides which endpoints get which webhook events and records those deliveries, the
  endpoints' subscriptions as of that point of the log, and the new position, in one
  transaction that moves the position only from the value the batch was read at
  (compare-and-set). A crash or a second dispatcher therefore neither skips an event nor
  creates its deliveries twice. Subscriptions are read off the log itself (endpoint events
  are in it), so an event is matched against the endpoints as they were when it happened:
  events that happen while an endpoint is disabled are never delivered, and a change of
  ``enabled_events`` applies from the next event on.
- **Sending** picks, per endpoint, the oldest pending delivery of each resource (a
  resource's later events wait behind it: ordered per resource) whose attempt is due, and
  POSTs it signed the Standard Webhooks way. Each endpoint is served by at most one sender
  thread at a time, from a pool, so a slow or dead receiver holds up only its own queue. A
  failure (no answer, or any status but 2xx: redirects are not followed) is retried after
  ``base × 2^(n-1)`` seconds (jittered, capped) until ``max_attempts``; then the delivery is
  ``failed`` and the resource's next one goes. No answer at all (refused, timed out) defers
  all the endpoint's pending deliveries as long as the one that failed, so a dead receiver
  is probed once per backoff, not once per object; after a failure the first success to
  that endpoint makes its waiting deliveries due at once, so a receiver that was down gets
  what it missed as soon as it answers again. A sender stops at an endpoint's first failure
  and the endpoint goes back in line, so a failing receiver shares the senders fairly.
  Redelivery makes a delivery pending again.

The signing secret and the URL are read from the endpoint's own stream at each pass (a
regenerated secret signs from then on; a deleted endpoint's deliveries are dropped with its
subscription). Nothing here logs a URL, a secret or a body."""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import random
import threading
import time
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol
from uuid import UUID

import orjson

from application.pacing import PROMPT_GATHER_SECONDS, Pacer
from application.ports import HttpPoster, HttpUnreachable
from application.relay import LeaseLost
from application.views import iso
from application.webhook_events import Origin, origin_of, watched, webhook_events
from domain.webhooks import ENABLED, WebhookEndpoint

log = logging.getLogger("agentry.webhooks")

SECRET_PREFIX = "whsec_"
USER_AGENT = "Agentry-Webhooks/1"
PENDING, SUCCEEDED, FAILED = "pending", "succeeded", "failed"
DELIVERY_STATUSES = (PENDING, SUCCEEDED, FAILED)
ENDPOINT_MODULE = WebhookEndpoint.__module__
MAX_ERROR_LENGTH = 200


def signature(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """``webhook-signature`` as Standard Webhooks defines it: ``v1,`` and the base64
    HMAC-SHA256 of ``<id>.<timestamp>.<body>`` under the secret's bytes (base64 after
    ``whsec_``)."""
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    mac = hmac.new(key, f"{message_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


# -- what the dispatcher works with ----------------------------------------------------------


@dataclass(frozen=True)
class Subscription:
    """An endpoint as the fan-out sees it at its position in the log."""

    endpoint_id: str
    stream_id: str
    organization_id: str
    enabled_events: frozenset[str]
    enabled: bool


@dataclass(frozen=True)
class NewDelivery:
    endpoint_id: str
    event_id: str
    event_type: str
    resource_key: str  # the stream the event belongs to: deliveries of one key go in order
    notification_id: int
    ordinal: int  # the kind's place among those one stored event produced
    body: str


@dataclass(frozen=True)
class DueDelivery:
    delivery_id: str
    event_id: str
    body: str
    round_attempts: int  # attempts since it was created or last redelivered


@dataclass(frozen=True)
class Target:
    """Where and how an endpoint's deliveries go right now."""

    url: str
    secret: str
    enabled: bool


@dataclass(frozen=True)
class ListWindow:
    """A page of an organization-style list: ``limit`` items after ``after_id`` (or the
    first ``limit`` before ``before_id``) in list order."""

    limit: int = 20
    after_id: str | None = None
    before_id: str | None = None
    descending: bool = True


class DeliveryLog(Protocol):
    """Where the dispatcher keeps its position, its view of the subscriptions and every
    delivery (a mutable store beside the event log: attempts are not domain events)."""

    def position(self) -> int: ...

    def subscriptions(self) -> list[Subscription]: ...

    def record(
        self,
        read_at: int,
        reached: int,
        subscriptions: dict[str, Subscription | None],
        deliveries: Sequence[NewDelivery],
        now: str,
    ) -> bool:
        """In one transaction: moves the position from ``read_at`` to ``reached`` (False,
        and nothing written, when another dispatcher moved it first), upserts or (None)
        removes subscriptions by stream id — a removed one's deliveries with it — and adds
        the deliveries, each due at ``now``."""
        ...

    def due_endpoints(self, now: str, busy: Collection[str], limit: int) -> list[str]:
        """Enabled endpoints (not in ``busy``) with a delivery due that heads its resource."""
        ...

    def next_due(self, busy: Collection[str] = ()) -> str | None:
        """When the earliest pending delivery that heads its resource (at an enabled
        endpoint not in ``busy``) falls due."""
        ...

    def due(self, endpoint_id: str, now: str, limit: int) -> list[DueDelivery]:
        """The endpoint's due deliveries that head their resources, oldest first."""
        ...

    def delivered(self, delivery_id: str, at: str, status_code: int) -> None: ...

    def failed(self, delivery_id: str, at: str, status_code: int | None, error: str, retry_at: str | None) -> None:
        """One more failed attempt; ``retry_at`` None gives the delivery up (``failed``)."""
        ...

    def hasten(self, endpoint_id: str, now: str) -> None:
        """The endpoint's pending deliveries waiting for a retry become due at ``now``."""
        ...

    def defer(self, endpoint_id: str, until: str) -> None:
        """The endpoint's pending deliveries due before ``until`` become due then (no
        attempt is counted)."""
        ...

    def page(self, endpoint_id: str, window: ListWindow, status: str | None) -> dict[str, Any]: ...

    def get(self, endpoint_id: str, delivery_id: str) -> dict[str, Any] | None: ...

    def redeliver(self, endpoint_id: str, delivery_id: str, now: str) -> dict[str, Any] | None:
        """The delivery pending again (due at ``now``, a full round of attempts), or None."""
        ...


class NotificationLog(Protocol):
    def notifications(self, after: int, limit: int) -> Sequence[Any]: ...

    def decode(self, notification: Any) -> Any: ...

    def read_stream(self, aggregate_id: UUID, after_version: int = 0, limit: int | None = None) -> Sequence[Any]: ...


class Lease(Protocol):
    """What makes this dispatcher the active one (``application.relay.Lease`` plus
    ``held``, asked before each batch and each pass)."""

    def acquire(self, should_stop: Callable[[], bool]) -> bool: ...

    def held(self) -> bool: ...

    def release(self) -> None: ...


class Unleased:
    """The embedded server: one process, always the active dispatcher."""

    def acquire(self, should_stop: Callable[[], bool]) -> bool:
        return not should_stop()

    def held(self) -> bool:
        return True

    def release(self) -> None:
        pass


@dataclass(frozen=True)
class RetryPolicy:
    timeout_seconds: float = 10.0
    base_seconds: float = 5.0
    max_seconds: float = 6 * 3600.0
    max_attempts: int = 15
    senders: int = 8

    def backoff(self, attempts: int) -> float:
        """Seconds before attempt ``attempts + 1`` (±20 % jitter, capped)."""
        delay = min(self.base_seconds * 2 ** min(attempts - 1, 40), self.max_seconds)
        return delay * random.uniform(0.8, 1.2)


def delivery_view(row: Any) -> dict[str, Any]:
    """A delivery as the API shows it (``row`` has the delivery log's columns)."""
    return {
        "id": row.id,
        "type": "webhook_delivery",
        "webhook_endpoint_id": row.endpoint_id,
        "event_id": row.event_id,
        "event_type": row.event_type,
        "status": row.status,
        "attempts": row.attempts,
        "created_at": row.created_at,
        "last_attempt_at": row.last_attempt_at,
        "next_attempt_at": row.next_attempt_at if row.status == PENDING else None,
        "delivered_at": row.delivered_at,
        "response_status_code": row.response_status,
        "error": row.error,
        "event": orjson.loads(row.body),
    }


def _now() -> datetime:
    return datetime.now(UTC)


# How long the fan-out may hold a position in memory that only effect-free batches moved.
STORE_POSITION_SECONDS = 5.0


@dataclass
class _View:
    """The fan-out's place in the log: ``position`` (read up to), ``stored`` (recorded up
    to), the subscriptions as of ``position``, and when ``stored`` was last written."""

    position: int
    stored: int
    subscriptions: dict[str, Subscription]
    written: float


class WebhookDispatcher:
    """The fan-out and the senders, run by one thread while this process holds the lease."""

    def __init__(
        self,
        source: NotificationLog,
        deliveries: DeliveryLog,
        targets: Callable[[str], Target | None],
        http: HttpPoster,
        organization_of: Callable[[str], str],
        policy: RetryPolicy | None = None,
        lease: Lease | None = None,
        batch_size: int = 500,
        poll_seconds: float = 1.0,
    ) -> None:
        self._source = source
        self._log = deliveries
        self._targets = targets
        self._http = http
        self._organization_of = organization_of
        self._policy = policy or RetryPolicy()
        self._lease = lease or Unleased()
        self._batch_size = batch_size
        self._poll_seconds = poll_seconds
        self._origins: dict[UUID, Origin | None] = {}
        self._view: _View | None = None  # the fan-out's position and subscriptions
        self._busy: set[str] = set()
        self._failing: set[str] = set()  # endpoints whose last attempt here failed
        self._busy_lock = threading.Lock()
        self._wake = threading.Event()
        self._pacer = Pacer(PROMPT_GATHER_SECONDS)
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._senders: ThreadPoolExecutor | None = None

    # -- lifecycle --------------------------------------------------------------------------

    def wake(self, *_: Any) -> None:
        """Something was written (or a delivery made due): look now. A ``ChangeListener``."""
        self._wake.set()

    streams_changed = wake

    def start(self) -> None:
        self._senders = ThreadPoolExecutor(self._policy.senders, thread_name_prefix="agentry-webhook-send")
        self._thread = threading.Thread(target=self._run_while_leased, name="agentry-webhooks", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._pacer.hurry()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=15)
        if self._senders is not None:
            # A send in flight ends within the request timeout; no new one starts.
            self._senders.shutdown(wait=True, cancel_futures=True)
        self._lease.release()

    def _run_while_leased(self) -> None:
        """Delivers while this process holds the lease; one that loses it stands by again."""
        while self._lease.acquire(self._stopping.is_set):
            try:
                self.run(self._stopping.is_set)
                return
            except LeaseLost as lost:
                log.warning("%s; standing by", lost)
                self._lease.release()

    def run(self, should_stop: Callable[[], bool]) -> None:
        self._view = None  # read afresh: another dispatcher may have moved on meanwhile
        while not should_stop():
            self._wake.clear()
            self._pacer.reading()
            try:
                self._check_lease()
                while self.fan_out() and not should_stop():
                    pass
                self.send_due()
                wait = self._idle_wait()
            except LeaseLost:
                raise
            except Exception:
                log.exception("webhook dispatch failed; retrying")
                self._view = None
                wait = 1.0
            if self._wake.wait(wait):
                self._pacer.pause()
        try:
            self._store_position(force=True)  # what effect-free batches read, for the next start
        except Exception:
            log.warning("webhook fan-out could not record its position at stop; it will read again from the last one")

    def _check_lease(self) -> None:
        if not self._lease.held():
            raise LeaseLost("the webhook dispatcher's lock was lost; another process may deliver")

    def _idle_wait(self) -> float:
        if self._view is not None and not self._view.subscriptions:
            return self._poll_seconds
        with self._busy_lock:
            busy = set(self._busy)
        due = self._log.next_due(busy)
        if due is None:
            return self._poll_seconds
        seconds = (datetime.fromisoformat(due.replace("Z", "+00:00")) - _now()).total_seconds()
        return min(max(seconds, 0.01), self._poll_seconds)

    # -- fan-out ----------------------------------------------------------------------------

    def fan_out(self) -> int:
        """Turns the next batch of the log into deliveries; returns how many stored events
        it read (0: caught up).

        A batch that creates no delivery and changes no subscription moves the position in
        memory only, written at most every ``STORE_POSITION_SECONDS`` (or with the next batch
        that does write): after a crash such a batch is read again and again yields nothing,
        so a server without endpoints pays no write per event."""
        if self._view is None:
            stored = self._log.position()
            self._view = _View(stored, stored, {s.stream_id: s for s in self._log.subscriptions()}, time.monotonic())
        view = self._view
        batch = self._source.notifications(view.position, self._batch_size)
        if not batch:
            self._store_position(force=False)
            return 0
        subscriptions = dict(view.subscriptions)
        changed: dict[str, Subscription | None] = {}
        deliveries: list[NewDelivery] = []
        for notification in batch:
            topic = notification.topic
            if topic.split(":", 1)[0] == ENDPOINT_MODULE:
                stream = str(notification.originator_id)
                after = self._subscription_after(self._source.decode(notification), subscriptions.get(stream))
                changed[stream] = after
                if after is None:
                    subscriptions.pop(stream, None)
                else:
                    subscriptions[stream] = after
            elif watched(topic) and any(subscription.enabled for subscription in subscriptions.values()):
                deliveries += self._deliveries_of(notification, subscriptions.values())
        view.position, view.subscriptions = batch[-1].id, subscriptions
        if changed or deliveries:
            self._store_position(force=True, changed=changed, deliveries=deliveries)
        else:
            self._store_position(force=False)
        return len(batch)

    def _store_position(
        self,
        force: bool,
        changed: dict[str, Subscription | None] | None = None,
        deliveries: Sequence[NewDelivery] = (),
    ) -> None:
        view = self._view
        if view is None or view.position == view.stored:
            return
        if not force and time.monotonic() - view.written < STORE_POSITION_SECONDS:
            return
        if self._log.record(view.stored, view.position, changed or {}, deliveries, iso(_now()) or ""):
            view.stored, view.written = view.position, time.monotonic()
        else:
            log.info("webhook fan-out was advanced by another dispatcher; reading its position")
            self._view = None

    @staticmethod
    def _subscription_after(event: Any, before: Subscription | None) -> Subscription | None:
        if isinstance(event, WebhookEndpoint.Created):
            return Subscription(
                event.endpoint_id, str(event.originator_id), event.tenant_id, frozenset(event.enabled_events), True
            )
        if before is None or isinstance(event, WebhookEndpoint.Deleted):
            return None
        if isinstance(event, WebhookEndpoint.Updated):
            return Subscription(
                before.endpoint_id, before.stream_id, before.organization_id,
                frozenset(event.enabled_events), event.state == ENABLED,
            )  # fmt: skip
        return before

    def _deliveries_of(self, notification: Any, subscriptions: Collection[Subscription]) -> list[NewDelivery]:
        event = self._source.decode(notification)
        origin = self._origin(notification.topic, event)
        if origin is None:
            log.warning("webhooks: %s in stream %s names no object; skipped", notification.topic, event.originator_id)
            return []
        organization = self._organization_of(origin.workspace_id)
        made: list[NewDelivery] = []
        for ordinal, hook in enumerate(webhook_events(notification.topic, event, origin, organization)):
            body = orjson.dumps(hook.body).decode()
            for subscription in subscriptions:
                if (
                    subscription.enabled
                    and subscription.organization_id == organization
                    and hook.kind in subscription.enabled_events
                ):
                    made.append(
                        NewDelivery(
                            subscription.endpoint_id, hook.id, hook.kind, str(event.originator_id),
                            notification.id, ordinal, body,
                        )  # fmt: skip
                    )
        return made

    def _origin(self, topic: str, event: Any) -> Origin | None:
        """The object's public id and workspace, read off its stream's first event (ids and
        workspaces never change, so they are kept)."""
        stream = event.originator_id
        if stream not in self._origins:
            first = event if event.originator_version == 1 else next(iter(self._source.read_stream(stream, limit=1)), None)
            if len(self._origins) > 100_000:
                self._origins.clear()
            self._origins[stream] = origin_of(topic, first) if first is not None else None
        return self._origins[stream]

    # -- sending ----------------------------------------------------------------------------

    def send_due(self) -> None:
        """Hands every endpoint with due work, and no sender on it yet, to a sender."""
        if self._senders is None or (self._view is not None and not self._view.subscriptions):
            return  # no endpoint, so no delivery (a deleted endpoint's go with it)
        with self._busy_lock:
            busy = set(self._busy)
        for endpoint_id in self._log.due_endpoints(iso(_now()) or "", busy, self._policy.senders * 4):
            with self._busy_lock:
                if endpoint_id in self._busy:
                    continue
                self._busy.add(endpoint_id)
            try:
                self._senders.submit(self._serve, endpoint_id)
            except RuntimeError:  # shutting down
                with self._busy_lock:
                    self._busy.discard(endpoint_id)
                return

    def _serve(self, endpoint_id: str) -> None:
        """Sends the endpoint's due deliveries until none is due, one fails (the endpoint
        goes back in line behind the others), or this process stops being the active
        dispatcher."""
        try:
            while not self._stopping.is_set() and self._lease.held():
                due = self._log.due(endpoint_id, iso(_now()) or "", 50)
                # Read afresh for every pass: a new URL or secret applies from the next one.
                target = self._targets(endpoint_id) if due else None
                if target is None or not target.enabled:
                    return
                for delivery in due:
                    if self._stopping.is_set() or not self.attempt(endpoint_id, target, delivery):
                        return
        except Exception:
            log.exception("webhook sender for endpoint %s failed", endpoint_id)
        finally:
            with self._busy_lock:
                self._busy.discard(endpoint_id)
            self._wake.set()

    def attempt(self, endpoint_id: str, target: Target, delivery: DueDelivery) -> bool:
        """One signed POST of ``delivery``; records the outcome. True when it was accepted."""
        body = delivery.body.encode()
        timestamp = int(time.time())
        headers = {
            "content-type": "application/json",
            "user-agent": USER_AGENT,
            "webhook-id": delivery.event_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": signature(target.secret, delivery.event_id, timestamp, body),
        }
        status: int | None = None
        answered = True
        try:
            reply = self._http.post(target.url, headers, body, self._policy.timeout_seconds)
            status = reply.status_code
            error = "" if 200 <= status < 300 else f"the endpoint answered {status}"
        except HttpUnreachable as unreachable:
            answered = False
            error = f"no answer from the endpoint ({unreachable})"
        at = _now()
        if not error and status is not None:
            self._log.delivered(delivery.delivery_id, iso(at) or "", status)
            if endpoint_id in self._failing:
                self._failing.discard(endpoint_id)
                self._log.hasten(endpoint_id, iso(at) or "")
            return True
        self._failing.add(endpoint_id)
        attempts = delivery.round_attempts + 1
        retry_at = None
        if attempts < self._policy.max_attempts:
            retry_at = iso(at + timedelta(seconds=self._policy.backoff(attempts)))
        self._log.failed(delivery.delivery_id, iso(at) or "", status, error[:MAX_ERROR_LENGTH], retry_at)
        if not answered and retry_at is not None:
            # The endpoint is down (or hangs): its other deliveries wait as long, so a dead
            # receiver costs one attempt per backoff, not one per object it has pending.
            self._log.defer(endpoint_id, retry_at)
        log.info(
            "webhook delivery %s to endpoint %s failed (attempt %d): %s%s",
            delivery.delivery_id, endpoint_id, attempts, error, "" if retry_at else "; giving up",
        )  # fmt: skip
        return False
