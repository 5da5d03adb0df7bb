"""A PostgreSQL application recorder whose save is one statement and one round trip.

The stock recorder takes the table lock, notifies and inserts in about five round trips
inside a transaction. This one does the same three steps inside a PL/pgSQL function called
in autocommit: the EXCLUSIVE table lock still serialises writers, so commit order equals
notification-id order and a tailing reader can never skip a late-committing lower id.
(Unlike ``POSTGRES_ENABLE_DB_FUNCTIONS``, which drops the lock.)"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eventsourcing.persistence import InterfaceError, OperationalError, StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from eventsourcing.utils import retry
from psycopg.sql import SQL, Identifier

TOPIC = "infra.postgres_recorder:SingleStatementRecorder"
# An advisory lock key of Agentry's own (any fixed 64-bit number no other lock uses).
CREATE_TABLE_LOCK = 0x61676E7472790001


class SingleStatementRecorder(PostgresApplicationRecorder):
    def __init__(self, datastore: PostgresDatastore, *, events_table_name: str = "stored_events") -> None:
        super().__init__(datastore, events_table_name=events_table_name)
        schema = Identifier(self.datastore.schema)
        # Named per table: the library's own function name is shared by every table in a schema.
        self.function_name = f"agentry_insert_{self.events_table_name}"
        self.check_identifier_length(self.function_name)
        self.sql_create_statements[self.create_insert_function_statement_index] = SQL(
            "CREATE OR REPLACE FUNCTION {schema}.{function}(events {schema}.{row_type}[]) "
            "RETURNS SETOF bigint LANGUAGE plpgsql AS $BODY$ BEGIN "
            "SET LOCAL lock_timeout = '{lock_timeout}s'; "
            "LOCK TABLE {schema}.{table} IN EXCLUSIVE MODE; "
            "NOTIFY {channel}; "
            "RETURN QUERY INSERT INTO {schema}.{table} (originator_id, originator_version, topic, state) "
            "SELECT originator_id, originator_version, topic, state FROM unnest(events) "
            "RETURNING notification_id; "
            "END; $BODY$"
        ).format(
            schema=schema,
            function=Identifier(self.function_name),
            row_type=Identifier(self.stored_event_type_name),
            lock_timeout=self.datastore.lock_timeout,
            table=Identifier(self.events_table_name),
            channel=Identifier(self.channel_name),
        )
        self.sql_call = SQL("SELECT * FROM {schema}.{function}(%s)").format(
            schema=schema, function=Identifier(self.function_name)
        )

    def _create_table(self, curs: Any) -> None:
        # Processes starting together (an API and its workers) would otherwise run the
        # CREATE OR REPLACE statements at once, and PostgreSQL refuses the loser with
        # "tuple concurrently updated": take turns, inside the creating transaction.
        curs.execute("SELECT pg_advisory_xact_lock(%s)", (CREATE_TABLE_LOCK,), prepare=False)
        super()._create_table(curs)

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        if not stored_events:
            return []
        rows = [
            self.construct_pg_stored_event(e.originator_id, e.originator_version, e.topic, e.state)
            for e in stored_events
        ]
        with self.datastore.get_connection() as conn, conn.cursor() as cursor:
            cursor.execute(self.sql_call, (rows,), prepare=True)
            return [row[self.function_name] for row in cursor.fetchall()]
