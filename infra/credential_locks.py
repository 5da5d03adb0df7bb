"""Locks a credential refresh is made under (``CredentialLocks``): a ``threading.Lock`` per
credential within a process, and with PostgreSQL also a session-level advisory lock, so the
drivers of every process (API replicas, workers) refresh one credential one at a time."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

from application.ports import CredentialLockTimeout


class LocalCredentialLocks:
    def __init__(self, timeout: float = 10.0) -> None:
        self._timeout = timeout
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    @contextmanager
    def holding(self, credential_id: str) -> Iterator[None]:
        with self._guard:
            lock = self._locks.setdefault(credential_id, threading.Lock())
        if not lock.acquire(timeout=self._timeout):
            raise CredentialLockTimeout(credential_id)
        try:
            yield
        finally:
            lock.release()


class PostgresCredentialLocks:
    """The process-local lock first (one database connection per refreshing process, not per
    driver), then ``pg_advisory_lock`` on a connection of its own, with ``lock_timeout``.
    Refreshes are rare (about once an hour per credential), so a connection per refresh is
    cheaper than keeping one open."""

    def __init__(self, conninfo: str, timeout: float = 10.0) -> None:
        self._conninfo = conninfo
        self._timeout = timeout
        self._local = LocalCredentialLocks(timeout)

    @contextmanager
    def holding(self, credential_id: str) -> Iterator[None]:
        with self._local.holding(credential_id), psycopg.connect(self._conninfo, autocommit=True) as conn:
            conn.execute(f"SET lock_timeout = '{int(self._timeout * 1000)}ms'")
            try:
                conn.execute("SELECT pg_advisory_lock(hashtextextended(%s, 0))", (f"agentry-vcrd:{credential_id}",))
            except psycopg.errors.LockNotAvailable:
                raise CredentialLockTimeout(credential_id) from None
            try:
                yield
            finally:
                conn.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 0))", (f"agentry-vcrd:{credential_id}",))
