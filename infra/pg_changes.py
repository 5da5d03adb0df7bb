"""Cross-process change feed on PostgreSQL LISTEN/NOTIFY.

Every save NOTIFYs the events table's channel. One listener per process reads the new part
of the notification log and tells its listeners which streams changed — live SSE tails,
the projection runner, the relay — so a write in one API process wakes tails in all of
them. A one-second poll covers a dropped connection."""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg import sql

from application.ports import ChangeListener
from infra.pg_connections import listen_until_stopped

log = logging.getLogger("agentry.changes")


class PostgresChangeFeed:
    def __init__(
        self,
        conninfo: str,
        channel: str,
        store: Any,
        listeners: Sequence[ChangeListener],
        poll_seconds: float = 1.0,
    ) -> None:
        self._conninfo = conninfo
        self._channel = channel
        self._store = store
        self._listeners = list(listeners)
        self._poll_seconds = poll_seconds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._wake_channel = f"agentry_wake_{uuid.uuid4().hex}"
        self.position = 0

    def start(self) -> None:
        self.position = self._store.max_notification_id()
        self._thread = threading.Thread(target=self._run, name="agentry-changes", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            # Wake the listener now rather than at its next poll (a second away): every
            # stopped process, and every test's server, would otherwise wait for it.
            try:
                with psycopg.connect(self._conninfo, autocommit=True, connect_timeout=2) as conn:
                    conn.execute(sql.SQL("NOTIFY {}").format(sql.Identifier(self._wake_channel)))
            except psycopg.Error:
                pass  # the poll ends it anyway
            self._thread.join(timeout=5)

    def _run(self) -> None:
        # Drained on every (re)connect (anything written meanwhile) and after every wake-up,
        # a NOTIFY or the poll. A failure draining (the event store's own errors, which are
        # not psycopg's) reconnects too: live tails in this process must not stop waking.
        listen_until_stopped(
            self._conninfo,
            [self._channel, self._wake_channel],
            self._stop,
            listening=self._drain,
            notice=lambda _: None,
            woken=self._drain,
            wait_seconds=self._poll_seconds,
            stop_after=1,
            name="change feed",
            logger=log,
        )

    def _drain(self) -> None:
        while True:
            batch = self._store.notifications(self.position, 1000)
            if not batch:
                return
            self.position = batch[-1].id
            # This process's own saves told the listeners already (the feed reads them too).
            announced = getattr(self._store, "announced_here", None)
            told = announced([n.id for n in batch]) if announced is not None else set()
            changed = {notification.originator_id for notification in batch if notification.id not in told}
            if not changed:
                continue
            for listener in self._listeners:
                try:
                    listener.streams_changed(changed, self.position)
                except Exception:
                    log.exception("change listener failed")
