"""What the relay keeps in PostgreSQL: its position, and the advisory lock that makes it the
one active relay. Both live on one dedicated connection, so a relay that lost its
connection (and with it the lock) cannot record a position any more; the relay also asks
whether it still holds the lock before each batch it publishes."""

from __future__ import annotations

import psycopg

from application.relay import LeaseLost
from infra.pg_advisory_lease import AdvisoryLease

LOCK_KEY = 0x61676E74  # "agnt": one advisory-lock key per Agentry database
POSITION_NAME = "kafka"


class RelayLease(AdvisoryLease):
    """The relay's advisory lock, and its position on the same connection."""

    def __init__(self, conninfo: str) -> None:
        super().__init__(conninfo, LOCK_KEY, "Kafka relay")
        conn = self._conn.get()  # at once: a relay that cannot reach PostgreSQL fails to start
        conn.execute(
            "CREATE TABLE IF NOT EXISTS agentry_relay_positions "
            "(name text PRIMARY KEY, position bigint NOT NULL)"
        )
        conn.execute(
            "INSERT INTO agentry_relay_positions (name, position) VALUES (%s, 0) ON CONFLICT DO NOTHING",
            (POSITION_NAME,),
        )

    def get(self) -> int:
        return int(self._one("SELECT position FROM agentry_relay_positions WHERE name = %s", (POSITION_NAME,)))

    def set(self, position: int) -> None:
        """Only on the connection that took the lock: once it is gone, so is the lease."""
        conn = self._conn.current()
        if conn is None:
            raise LeaseLost("the relay lock connection is gone")
        try:
            conn.execute(
                "UPDATE agentry_relay_positions SET position = %s WHERE name = %s",
                (position, POSITION_NAME),
            )
        except psycopg.OperationalError as error:
            raise LeaseLost(f"the relay lock connection failed: {type(error).__name__}") from error
