"""The outbox relay: follows the global notification log from its own tracked position and
publishes every event, recording the new position only for what the broker acknowledged.

Delivery is at-least-once and ordered per aggregate: after a failure the relay re-sends from
the first unacknowledged event, so duplicates can only be events the broker had not
acknowledged (or whose acknowledgement had not been recorded)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol
from uuid import UUID

from application.outbox import OutboxMessage, build_message, is_published

log = logging.getLogger("agentry.relay")


class NotificationLog(Protocol):
    def notifications(self, after: int, limit: int) -> Sequence[Any]: ...

    def decode(self, notification: Any) -> Any: ...

    def state_of(self, notification: Any) -> dict[str, Any]: ...

    def load(self, aggregate_id: UUID) -> Any: ...


class Publisher(Protocol):
    def publish(self, messages: Sequence[OutboxMessage]) -> int:
        """Sends in order; returns how many messages, from the first, the broker acknowledged."""
        ...


class LeaseLost(RuntimeError):
    """This relay is no longer the active one (its lock went with its connection)."""


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
        self.published = 0

    def run(self, should_stop: Callable[[], bool], idle_wait: float = 0.5) -> None:
        backoff = 0.2
        position = self._position.get()
        log.info("relay starting after event %d", position)
        while not should_stop():
            batch = self._log.notifications(position, self._batch_size)
            if not batch:
                self._wait_for_change(idle_wait)
                continue
            messages = [self._message(n) for n in batch if is_published(n.topic)]
            # A relay whose lock went with a dropped connection must not publish next to
            # the relay that took over: ask before every batch, not only when saving.
            if messages and not self._position.held():
                raise LeaseLost("the relay lock was lost; another relay may be active")
            acknowledged = self._publisher.publish(messages) if messages else 0
            reached = self._reached(batch, messages, acknowledged)
            if reached > position:
                position = reached
                self._position.set(position)
            self.published += acknowledged
            if acknowledged < len(messages):
                log.warning(
                    "broker acknowledged %d of %d messages; re-sending from event %d in %.1fs",
                    acknowledged,
                    len(messages),
                    messages[acknowledged].notification_id,
                    backoff,
                )
                time.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
            else:
                backoff = 0.2

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
        event = self._log.decode(notification)
        return build_message(
            notification.id,
            notification.originator_id,
            notification.originator_version,
            notification.topic,
            self._log.state_of(notification),
            event,
            self._tenant(notification.originator_id, event),
            self._prefix,
        )

    def _tenant(self, originator_id: UUID, event: Any) -> str:
        tenant = getattr(event, "tenant_id", None) or self._tenants.get(originator_id)
        if tenant is None:
            tenant = getattr(self._log.load(originator_id), "tenant_id", "default")
        if len(self._tenants) > 100_000:
            self._tenants.clear()
        self._tenants[originator_id] = tenant
        return tenant
