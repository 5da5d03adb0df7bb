"""The outbox relay: follows the global notification log from its own tracked position and
publishes every event, recording the new position only for what the broker acknowledged.

Delivery is at-least-once and ordered per aggregate: after a failure the relay re-sends from
the first unacknowledged event, so duplicates can only be events the broker had not
acknowledged (or whose acknowledgement had not been recorded).

Batches are pipelined: while the broker has one batch, the relay reads and builds the next
(from the end of the batch in flight), and drops that read-ahead if the broker refused
anything, so nothing is skipped and no key is reordered. A read-ahead that fails is dropped
too: the batch in flight is acknowledged all the same, and the next turn reads again.

Fencing: the publisher is a transactional producer with one fixed transactional id, and a
relay that takes the lease initialises it before anything else, which makes the broker
refuse every later write of the relay it replaced (``Fenced``)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from uuid import UUID

from application.outbox import OutboxMessage, build_message, is_published

log = logging.getLogger("agentry.relay")


class NotificationLog(Protocol):
    def notifications(self, after: int, limit: int) -> Sequence[Any]: ...

    def decode(self, notification: Any) -> Any: ...

    def state_of(self, notification: Any) -> dict[str, Any]: ...

    def load(self, aggregate_id: UUID) -> Any: ...


class LeaseLost(RuntimeError):
    """This relay is no longer the active one (its lock went with its connection)."""


class Fenced(LeaseLost):
    """The broker refused this relay's producer: a newer relay took over its transactional id."""


class Publisher(Protocol):
    def fence(self) -> None:
        """Makes this relay's producer the only one the broker accepts (best effort: a
        broker out of reach is fenced at the first send instead)."""
        ...

    def send(self, messages: Sequence[OutboxMessage]) -> None:
        """Starts sending, in order; ``acknowledged`` waits for the outcome."""
        ...

    def acknowledged(self) -> int:
        """How many messages of the last ``send``, from the first, the broker acknowledged
        (acks=all, committed). Raises ``Fenced`` when a newer relay took over."""
        ...


class RelayPosition(Protocol):
    """The position, kept under the lease that makes this relay the active one."""

    def get(self) -> int: ...

    def set(self, position: int) -> None:
        """Raises ``LeaseLost`` when the lease is gone."""
        ...

    def held(self) -> bool:
        """Whether this relay still holds the lease, asked of the database itself."""
        ...


class ChangeSignal:
    """A ``ChangeListener`` that wakes the relay when anything was written."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def streams_changed(self, stream_ids: object, notification_id: int = 0) -> None:
        self._event.set()

    def wait(self, timeout: float) -> None:
        self._event.wait(timeout)
        self._event.clear()


class Lease(Protocol):
    """What makes one relay of many the active one."""

    def acquire(self, should_stop: Callable[[], bool]) -> bool:
        """Waits until this relay holds the lease (True) or should stop (False)."""
        ...

    def release(self) -> None: ...


def run_while_leased(relay: Relay, lease: Lease, should_stop: Callable[[], bool]) -> None:
    """Publishes while this relay holds the lease; one that loses it stands by again rather
    than publish beside the relay that took over."""
    while lease.acquire(should_stop):
        try:
            relay.run(should_stop)
            return
        except LeaseLost as lost:
            log.warning("%s; standing by", lost)
            lease.release()


@dataclass(frozen=True)
class _Batch:
    notifications: Sequence[Any]
    messages: list[OutboxMessage]


_ABSENT = object()


class _Recorded:
    """An event as the message needs it, without decoding it: ``seq`` and ``tenant_id`` from
    its recorded fields (plain JSON values), ``public_type`` from its class, as attribute
    look-up on the decoded event would find them."""

    __slots__ = ("public_type", "seq", "tenant_id")  # one left unset is absent, as on the event

    def __init__(self, state: dict[str, Any], defaults: dict[str, Any]) -> None:
        if (public_type := state.get("public_type", defaults["public_type"])) is not _ABSENT:
            self.public_type = public_type
        if (seq := state.get("seq", defaults["seq"])) is not _ABSENT:
            self.seq = seq
        if (tenant_id := state.get("tenant_id", defaults["tenant_id"])) is not _ABSENT:
            self.tenant_id = tenant_id


class Relay:
    def __init__(
        self,
        notifications: NotificationLog,
        publisher: Publisher,
        position: RelayPosition,
        wait_for_change: Callable[[float], Any],
        topic_prefix: str = "agentry",
        batch_size: int = 500,
    ) -> None:
        self._log = notifications
        self._publisher = publisher
        self._position = position
        self._wait_for_change = wait_for_change
        self._prefix = topic_prefix
        self._batch_size = batch_size
        self._tenants: dict[UUID, str] = {}
        self._classes: dict[str, dict[str, Any]] = {}
        self.published = 0
        self.position = 0  # the last position recorded (metrics read it)

    def run(self, should_stop: Callable[[], bool], idle_wait: float = 0.5) -> None:
        backoff = 0.2
        # Fence first: from here on the broker takes nothing from the relay this one replaced.
        self._publisher.fence()
        position = self.position = self._position.get()
        log.info("relay starting after event %d", position)
        ahead: _Batch | None = None
        while not should_stop():
            batch = ahead if ahead is not None else self._read(position)
            ahead = None
            if batch is None:
                self._wait_for_change(idle_wait)
                continue
            acknowledged = 0
            started = time.perf_counter()
            if batch.messages:
                # A relay whose lock went with a dropped connection must not publish next to
                # the relay that took over: ask before every batch (the broker's fence covers
                # the moment between this question and the send).
                if not self._position.held():
                    raise LeaseLost("the relay lock was lost; another relay may be active")
                self._publisher.send(batch.messages)
                ahead = self._read_ahead(batch.notifications[-1].id)
                acknowledged = self._publisher.acknowledged()
            reached = self._reached(batch.notifications, batch.messages, acknowledged)
            if reached > position:
                position = self.position = reached
                self._position.set(position)
            self.published += acknowledged
            log.info(
                "relay batch: %d of %d messages acknowledged, at event %d",
                acknowledged,
                len(batch.messages),
                position,
                extra={
                    "fields": {
                        "step": "relay_batch",
                        "events": len(batch.notifications),
                        "messages": len(batch.messages),
                        "acknowledged": acknowledged,
                        "position": position,
                        "duration_ms": round((time.perf_counter() - started) * 1000, 1),
                    }
                },
            )
            if acknowledged < len(batch.messages):
                ahead = None  # it starts after events the broker has not taken
                log.warning(
                    "broker acknowledged %d of %d messages; re-sending from event %d in %.1fs",
                    acknowledged,
                    len(batch.messages),
                    batch.messages[acknowledged].notification_id,
                    backoff,
                )
                time.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
            else:
                backoff = 0.2

    def _read_ahead(self, after: int) -> _Batch | None:
        """The next batch, read while the broker has this one. It only saves time, so a read
        that fails must not stop the batch in flight from being acknowledged (its broker
        transaction would stay open): it is dropped, and the next turn reads again, not
        ahead, where an error propagates outside any broker transaction."""
        try:
            return self._read(after)
        except Exception as error:
            # The type only: a database error's text can carry connection details.
            log.warning(
                "reading ahead after event %d failed (%s); reading again after the batch in flight",
                after,
                type(error).__name__,
            )
            return None

    def _read(self, after: int) -> _Batch | None:
        notifications = self._log.notifications(after, self._batch_size)
        if not notifications:
            return None
        return _Batch(notifications, [self._message(n) for n in notifications if is_published(n.topic)])

    @staticmethod
    def _reached(batch: Sequence[Any], messages: Sequence[OutboxMessage], acknowledged: int) -> int:
        """The last notification id up to which everything is acknowledged or not published."""
        if acknowledged == len(messages):
            return batch[-1].id
        first_unacknowledged = messages[acknowledged].notification_id
        reached = 0
        for notification in batch:
            if notification.id >= first_unacknowledged:
                break
            reached = notification.id
        return reached

    def _message(self, notification: Any) -> OutboxMessage:
        state = self._log.state_of(notification)
        defaults = self._class_defaults(notification)
        event: Any = _Recorded(state, defaults)
        if state.get("class_version", 1) < defaults["class_version"]:
            event = self._log.decode(notification)  # an older schema: its upcasts apply
        return build_message(
            notification.id,
            notification.originator_id,
            notification.originator_version,
            notification.topic,
            state,
            event,
            self._tenant(notification.originator_id, event),
            self._prefix,
        )

    def _class_defaults(self, notification: Any) -> dict[str, Any]:
        """Decoding every event cost the relay half its time; what a message needs beyond
        the recorded fields is on the event's class, and one decode per topic finds it."""
        defaults = self._classes.get(notification.topic)
        if defaults is None:
            cls = type(self._log.decode(notification))
            defaults = self._classes[notification.topic] = {
                "public_type": getattr(cls, "public_type", _ABSENT),
                "seq": getattr(cls, "seq", _ABSENT),
                "tenant_id": getattr(cls, "tenant_id", _ABSENT),
                "class_version": getattr(cls, "class_version", 1),
            }
        return defaults

    def _tenant(self, originator_id: UUID, event: Any) -> str:
        tenant = getattr(event, "tenant_id", None) or self._tenants.get(originator_id)
        if tenant is None:
            tenant = getattr(self._log.load(originator_id), "tenant_id", "default")
        if len(self._tenants) > 100_000:
            self._tenants.clear()
        self._tenants[originator_id] = tenant
        return tenant
