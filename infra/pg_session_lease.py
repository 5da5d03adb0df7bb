"""Which process drives which session, in PostgreSQL: a row per held session with its holder
and an expiry (the database's clock, so hosts need not agree on the time).

A holder takes a row that is free or expired; a renewer thread pushes every held row's
expiry forward every third of the lease, so only a holder that stopped (killed, frozen, cut
off from the database) loses its sessions, one lease length after its last renewal. A
renewal that finds a row gone or taken tells ``on_lost``, and the runtime stops driving
that session without writing anything: its successor carries the turn on."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import psycopg

from infra.pg_connections import OwnConnection

log = logging.getLogger("agentry.runtime")

TABLE = "agentry_session_leases"

_ACQUIRE = f"""
INSERT INTO {TABLE} AS held (session_id, holder, expires_at)
VALUES (%(session)s, %(holder)s, clock_timestamp() + make_interval(secs => %(ttl)s))
ON CONFLICT (session_id) DO UPDATE
   SET holder = EXCLUDED.holder, expires_at = EXCLUDED.expires_at
 WHERE held.expires_at < clock_timestamp() OR held.holder = EXCLUDED.holder
RETURNING session_id
"""

_RENEW = f"""
UPDATE {TABLE} SET expires_at = clock_timestamp() + make_interval(secs => %(ttl)s)
 WHERE holder = %(holder)s AND session_id = ANY(%(sessions)s)
RETURNING session_id
"""

_UNHELD = f"""
SELECT id FROM unnest(%(sessions)s::text[]) AS id
 WHERE NOT EXISTS (SELECT 1 FROM {TABLE} WHERE session_id = id AND expires_at > clock_timestamp())
"""


def new_holder_id() -> str:
    """Unique per process start; names the host and pid so an operator can tell who holds what."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class PostgresSessionLease:
    """A ``SessionLease`` across processes. Every statement is one autocommit round trip on
    one connection; a lock makes the bookkeeping of held sessions move with the database."""

    def __init__(self, conninfo: str, seconds: float, holder: str | None = None) -> None:
        self.holder = holder or new_holder_id()
        self.seconds = seconds
        self._lock = threading.Lock()
        # Holds per session: a driver that is letting go while the next one (same process)
        # takes over must not delete the row under its successor.
        self._held: dict[str, int] = {}
        self._confirmed = time.monotonic()  # the last time the database confirmed every hold
        self._on_lost: Callable[[str], None] = lambda session_id: None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._conn = OwnConnection(conninfo, "SET statement_timeout = '5s'")
        try:
            self._conn.get().execute(
                f"CREATE TABLE IF NOT EXISTS {TABLE} "
                "(session_id text PRIMARY KEY, holder text NOT NULL, expires_at timestamptz NOT NULL)"
            )
        except (psycopg.errors.UniqueViolation, psycopg.errors.DuplicateTable, psycopg.errors.DuplicateObject):
            pass  # processes starting together: IF NOT EXISTS is not atomic, and another made it

    # -- SessionLease ------------------------------------------------------------------

    def acquire(self, session_id: str) -> bool:
        with self._lock:
            try:
                row = self._run(_ACQUIRE, {"session": session_id, "holder": self.holder, "ttl": self.seconds}).fetchone()
            except psycopg.Error as error:
                log.warning("session lease for %s not taken: %s", session_id, type(error).__name__)
                return False
            if row is None:
                return False
            self._held[session_id] = self._held.get(session_id, 0) + 1
            return True

    def release(self, session_id: str) -> None:
        with self._lock:
            holds = self._held.get(session_id, 0)
            if holds > 1:
                self._held[session_id] = holds - 1
            if holds != 1:
                return
            del self._held[session_id]
            try:
                self._run(f"DELETE FROM {TABLE} WHERE session_id = %s AND holder = %s", (session_id, self.holder))
            except psycopg.Error as error:
                # Not fatal: the row expires on its own, a lease length from its last renewal.
                log.warning("session lease for %s not released: %s", session_id, type(error).__name__)

    # -- for the sweep ---------------------------------------------------------------------

    def unheld(self, session_ids: Sequence[str]) -> list[str]:
        """Those of ``session_ids`` that no live lease holds (free, or their holder's expired)."""
        if not session_ids:
            return []
        with self._lock:
            rows = self._run(_UNHELD, {"sessions": list(session_ids)}).fetchall()
        return [row[0] for row in rows]

    # -- renewal -----------------------------------------------------------------------

    def start_renewing(self, on_lost: Callable[[str], None]) -> None:
        self._on_lost = on_lost
        self._confirmed = time.monotonic()
        self._thread = threading.Thread(target=self._renew_loop, name="agentry-lease", daemon=True)
        self._thread.start()

    def _renew_loop(self) -> None:
        while not self._stop.wait(self.seconds / 3):
            self.renew()

    def renew(self) -> list[str]:
        """Extends every held lease; returns (and reports to ``on_lost``) the ones lost."""
        with self._lock:
            held = sorted(self._held)
            if not held:
                self._confirmed = time.monotonic()
                return []
            try:
                kept = {row[0] for row in self._run(_RENEW, {"ttl": self.seconds, "holder": self.holder, "sessions": held})}
            except psycopg.Error as error:
                if time.monotonic() - self._confirmed < self.seconds:
                    log.warning("session leases not renewed (%s); retrying", type(error).__name__)
                    return []
                # Unconfirmed for a whole lease: another process may hold them by now.
                log.error("session leases unconfirmed for %.0f s; giving them up", self.seconds)
                kept = set()
            else:
                self._confirmed = time.monotonic()
            lost = [session_id for session_id in held if session_id not in kept]
            for session_id in lost:
                del self._held[session_id]
            # Reported under the lock, so a release and a fresh acquire of the same session
            # cannot slip in between and have the new hold cancelled.
            for session_id in lost:
                log.warning("lost the lease on session %s; another process takes its turns", session_id)
                try:
                    self._on_lost(session_id)
                except Exception:
                    log.exception("stopping session %s after its lease was lost failed", session_id)
        return lost

    def held(self) -> set[str]:
        with self._lock:
            return set(self._held)

    # -- connection ----------------------------------------------------------------------

    def _run(self, query: str, params: Any) -> psycopg.Cursor[Any]:
        """Runs ``query``; a broken connection is replaced once before the error is raised."""
        try:
            return self._conn.get().execute(query, params)
        except psycopg.OperationalError:
            self._conn.drop()
            return self._conn.get().execute(query, params)

    def close(self) -> None:
        """Stops renewing and gives every remaining hold back."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        with self._lock:
            held, self._held = sorted(self._held), {}
            try:
                if held:
                    self._run(f"DELETE FROM {TABLE} WHERE holder = %s AND session_id = ANY(%s)", (self.holder, held))
            except psycopg.Error as error:
                log.warning("session leases not released at close: %s", type(error).__name__)
            self._conn.drop()
