"""Notifications: who sees which, and reading them.

Notifications are raised by events (a task awaiting approval or done, a session error, a
mention in a task's comment) and kept by a projection, so they can be rebuilt at any time;
their ids derive from the event that raised them and the recipient. What a reader has read is
recorded as events on the reader's ``Inbox`` (``domain/notifications.py``).

Who sees what: a mention is addressed to the person mentioned; every other kind is addressed
to the workspace. A person (a login token) sees the workspace's notifications and their own;
an API key sees the workspace's. Each caller — each person, each API key — has read marks of
their own: one reader marking a workspace notification read leaves it unread for the others.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Protocol
from uuid import UUID

from application.commands import Written, load_as
from application.errors import Invalid, NotFound
from application.ports import EventStore
from application.retry import retry_on_race
from application.tenancy import Principal
from domain.notifications import Inbox, inbox_stream_id

# The recipient of a notification the whole workspace sees.
WORKSPACE = "*"


@dataclass(frozen=True)
class Audience:
    """A caller as notifications see them: the workspace, whose read marks apply, and the
    recipients whose notifications they see."""

    tenant_id: str
    reader: str
    recipients: tuple[str, ...]


def audience_of(who: Principal) -> Audience:
    if who.user_id is not None:
        return Audience(who.tenant_id, f"user:{who.user_id}", (WORKSPACE, who.user_id))
    return Audience(who.tenant_id, who.key_id, (WORKSPACE,))


def notification_id(originator_id: UUID, originator_version: int, recipient: str) -> str:
    """The same in every process and every rebuild: from the event that raised it and whom
    it is for."""
    digest = hashlib.sha256(f"{originator_id}/{originator_version}/{recipient}".encode()).hexdigest()
    return "ntf_" + digest[:24]


class NotificationIndex(Protocol):
    """What reading them needs of the read model."""

    def find(self, audience: Audience, notification_id: str) -> dict[str, Any] | None:
        """The notification as this audience sees it (with its ``read``), if they see it."""
        ...

    def newest_position(self, audience: Audience) -> int:
        """The position of the newest notification this audience sees (0: none)."""
        ...


class NotificationService:
    def __init__(self, store: EventStore, index: NotificationIndex) -> None:
        self._store = store
        self._index = index

    def mark_read(self, who: Principal, notification_id: str) -> Written:
        """One notification read (again: nothing recorded). Another caller's mention or
        another workspace's notification is the usual 404."""
        audience = audience_of(who)
        found = self._index.find(audience, notification_id) if len(notification_id) <= 64 else None
        if found is None:
            raise NotFound(f"notification {notification_id[:64]!r} not found")
        position = self._record(audience, lambda inbox: inbox.mark_read({notification_id: found["position"]}))
        return Written({**found, "read": True}, position)

    def mark_all_read(self, who: Principal, up_to: int | None = None) -> Written:
        """Every notification the caller sees, up to ``up_to`` (a notification's ``position``,
        the stream's event id) or, without it, up to the newest one now."""
        audience = audience_of(who)
        newest = self._index.newest_position(audience)
        if up_to is not None and up_to < 0:
            raise Invalid("up_to must be a position (0 or more)")
        reach = newest if up_to is None else min(up_to, newest)
        position = self._record(audience, lambda inbox: inbox.mark_all_read(reach)) if reach else None
        return Written({"type": "notifications_read", "up_to": reach}, position)

    def _record(self, audience: Audience, command: Any) -> int | None:
        """Runs ``command`` on the caller's inbox (opened on first use); saves what it recorded."""
        stream = inbox_stream_id(audience.tenant_id, audience.reader)

        def attempt() -> int | None:
            inbox = load_as(self._store, stream, Inbox) or Inbox(tenant_id=audience.tenant_id, reader=audience.reader)
            return self._store.save(inbox) if command(inbox) else None

        return retry_on_race(attempt, key=str(stream))
