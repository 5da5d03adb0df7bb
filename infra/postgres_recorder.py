"""A PostgreSQL application recorder whose save is one statement and one round trip, and
whose concurrent saves share that statement (group commit, ``infra.group_commit``).

The stock recorder takes the table lock, notifies and inserts in about five round trips
inside a transaction, once per save. This one does the same steps inside a PL/pgSQL
function called in autocommit, for every save queued meanwhile: the EXCLUSIVE table lock
still serialises writers (once per batch), so commit order equals notification-id order and
a tailing reader can never skip a late-committing lower id. (Unlike
``POSTGRES_ENABLE_DB_FUNCTIONS``, which drops the lock.) Each save's rows go in their own
sub-transaction (a PL/pgSQL exception block): a save whose version was taken is refused
alone, the rest of the batch commits. A save queued after one it follows that was refused
(``infra.group_commit``) is refused too."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eventsourcing.persistence import InterfaceError, OperationalError, StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from eventsourcing.utils import retry
from psycopg.sql import SQL, Identifier

from infra.group_commit import GroupCommit, GroupCommitted


def stream_position(event: StoredEvent) -> tuple[Any, int]:
    return event.originator_id, event.originator_version

TOPIC = "infra.postgres_recorder:SingleStatementRecorder"
# An advisory lock key of Agentry's own (any fixed 64-bit number no other lock uses).
CREATE_TABLE_LOCK = 0x61676E7472790001


class SingleStatementRecorder(GroupCommitted, PostgresApplicationRecorder):
    def __init__(self, datastore: PostgresDatastore, *, events_table_name: str = "stored_events") -> None:
        super().__init__(datastore, events_table_name=events_table_name)
        schema = Identifier(self.datastore.schema)
        # Named per table: the library's own function name is shared by every table in a schema.
        self.function_name = f"agentry_append_{self.events_table_name}"
        self.check_identifier_length(self.function_name)
        # ``groups[i]`` numbers the save that event i belongs to (a save's events are
        # adjacent); save ``after_later[j]`` follows save ``after_earlier[j]``. The result
        # is, per save in order, its notification ids, or one row with a NULL id when it was
        # refused: its optimistic check failed, or a save it follows was refused.
        self.sql_create_statements[self.create_insert_function_statement_index] = SQL(
            "CREATE OR REPLACE FUNCTION {schema}.{function}(events {schema}.{row_type}[], groups int[], after_later int[], after_earlier int[]) "
            "RETURNS TABLE (grp int, nid bigint) LANGUAGE plpgsql AS $BODY$ "
            "DECLARE total int := coalesce(array_length(events, 1), 0); lo int := 1; hi int; ids bigint[]; refused int[] := '{{}}'; "
            "BEGIN "
            "SET LOCAL lock_timeout = '{lock_timeout}s'; "
            "LOCK TABLE {schema}.{table} IN EXCLUSIVE MODE; "
            "NOTIFY {channel}; "
            "WHILE lo <= total LOOP "
            "  hi := lo; "
            "  WHILE hi < total AND groups[hi + 1] = groups[lo] LOOP hi := hi + 1; END LOOP; "
            "  IF groups[lo] = ANY(SELECT d.later FROM unnest(after_later, after_earlier) AS d(later, earlier) "
            "      WHERE d.earlier = ANY(refused)) "
            "  THEN ids := NULL; "
            "  ELSE BEGIN "
            "    WITH inserted AS ("
            "      INSERT INTO {schema}.{table} (originator_id, originator_version, topic, state) "
            "      SELECT e.originator_id, e.originator_version, e.topic, e.state FROM unnest(events[lo:hi]) AS e "
            "      RETURNING {table}.notification_id AS id) "
            "    SELECT array_agg(inserted.id ORDER BY inserted.id) INTO ids FROM inserted; "
            "  EXCEPTION WHEN unique_violation THEN ids := NULL; "
            "  END; END IF; "
            "  grp := groups[lo]; "
            "  IF ids IS NULL THEN refused := refused || groups[lo]; nid := NULL; RETURN NEXT; "
            "  ELSE FOREACH nid IN ARRAY ids LOOP RETURN NEXT; END LOOP; END IF; "
            "  lo := hi + 1; "
            "END LOOP; "
            "END; $BODY$"
        ).format(
            schema=schema,
            function=Identifier(self.function_name),
            row_type=Identifier(self.stored_event_type_name),
            lock_timeout=self.datastore.lock_timeout,
            table=Identifier(self.events_table_name),
            channel=Identifier(self.channel_name),
        )
        self.sql_call = SQL("SELECT grp, nid FROM {schema}.{function}(%s, %s, %s, %s)").format(
            schema=schema, function=Identifier(self.function_name)
        )
        self.group_commit: GroupCommit[StoredEvent] = GroupCommit(self._write_groups, stream_position)

    def _create_table(self, curs: Any) -> None:
        # Processes starting together (an API and its workers) would otherwise run the
        # CREATE OR REPLACE statements at once, and PostgreSQL refuses the loser with
        # "tuple concurrently updated": take turns, inside the creating transaction.
        curs.execute("SELECT pg_advisory_xact_lock(%s)", (CREATE_TABLE_LOCK,), prepare=False)
        super()._create_table(curs)

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def _write_groups(
        self, groups: Sequence[Sequence[StoredEvent]], after: Sequence[tuple[int, int]]
    ) -> list[list[int] | None]:
        rows = []
        numbers = []
        for number, group in enumerate(groups):
            for e in group:
                rows.append(self.construct_pg_stored_event(e.originator_id, e.originator_version, e.topic, e.state))
                numbers.append(number)
        with self.datastore.get_connection() as conn, conn.cursor() as cursor:
            later, earlier = [pair[0] for pair in after], [pair[1] for pair in after]
            cursor.execute(self.sql_call, (rows, numbers, later, earlier), prepare=True)
            results = cursor.fetchall()
        outcomes: list[list[int] | None] = [[] for _ in groups]
        for row in results:
            number, nid = row["grp"], row["nid"]
            if nid is None:
                outcomes[number] = None
            else:
                ids = outcomes[number]
                assert ids is not None
                ids.append(nid)
        return outcomes
