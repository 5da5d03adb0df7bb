"""The wrapped data keys: one mutable row per owner, outside the event log.

Embedded, the table has its own SQLite file (``secret_keys.sqlite3``, 0600) so that a deleted
key is gone from disk: ``secure_delete`` overwrites freed pages and the rollback journal
(not WAL, which would keep old pages until a checkpoint) is removed at each commit. With
PostgreSQL it lives in the application's database.

Writers that could race a root rotation serialise against it: SQLite with ``BEGIN IMMEDIATE``,
PostgreSQL with table locks (ROW EXCLUSIVE for a new key, which many writers share; EXCLUSIVE
for the rotation, which readers still pass)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from infra.data_dir import SQLITE_SIDE_FILES, create_private

metadata = sa.MetaData()

secret_data_keys = sa.Table(
    "secret_data_keys",
    metadata,
    sa.Column("owner", sa.String(255), primary_key=True),
    sa.Column("key_id", sa.String(64), nullable=False),
    sa.Column("wrapped_key", sa.LargeBinary, nullable=False),
    sa.Column("root_fingerprint", sa.String(32), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

# Any fixed number: serialises concurrent first set-ups of the table on one PostgreSQL database.
_SETUP_LOCK = 0x5EC12E7


@dataclass(frozen=True)
class WrappedKey:
    owner: str
    key_id: str
    wrapped: bytes
    root_fingerprint: str


class ForeignRoot(Exception):
    """The table holds keys wrapped by a root this process does not know."""

    def __init__(self, fingerprint: str) -> None:
        super().__init__(fingerprint)
        self.fingerprint = fingerprint


def key_table_engine(url: str) -> sa.Engine:
    if not url.startswith("sqlite"):
        return sa.create_engine(url, pool_size=2, max_overflow=3, pool_pre_ping=True)
    engine = sa.create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

    @sa.event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _: Any) -> None:
        dbapi_connection.isolation_level = None  # SQLAlchemy's "begin" below issues BEGIN
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=DELETE")
        cursor.execute("PRAGMA secure_delete=ON")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _begin(conn: sa.Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("writer") else "BEGIN")

    return engine


def sqlite_url(path: Path) -> str:
    """The embedded table's file, created 0600 before SQLite first opens it."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    create_private(path)
    for suffix in SQLITE_SIDE_FILES:
        side = path.with_name(path.name + suffix)
        if side.exists():
            create_private(side)
    return f"sqlite:///{path.resolve()}"


class KeyTable:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self._postgres = engine.dialect.name == "postgresql"

    def setup(self) -> None:
        with self.engine.begin() as conn:
            if self._postgres:
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _SETUP_LOCK})
            metadata.create_all(conn)

    def close(self) -> None:
        self.engine.dispose()

    def get(self, owner: str) -> WrappedKey | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(secret_data_keys).where(secret_data_keys.c.owner == owner)).first()
        return None if row is None else _wrapped(row)

    def insert_if_absent(self, key: WrappedKey, known_roots: Sequence[str]) -> None:
        """Stores ``key`` unless the owner has one already (two processes sealing for one
        owner at once: the first insert wins, both then read it). Refuses, raising
        ``ForeignRoot``, while the table holds keys under a root not in ``known_roots``: the
        root was rotated under this process, and a key it wrapped now would be lost."""
        insert = (postgresql.insert if self._postgres else sqlite.insert)(secret_data_keys)
        with self._writer("ROW EXCLUSIVE") as conn:
            foreign = conn.execute(
                sa.select(secret_data_keys.c.root_fingerprint)
                .where(secret_data_keys.c.root_fingerprint.not_in(list(known_roots)))
                .limit(1)
            ).scalar()
            if foreign is not None:
                raise ForeignRoot(foreign)
            conn.execute(
                insert.values(
                    owner=key.owner,
                    key_id=key.key_id,
                    wrapped_key=key.wrapped,
                    root_fingerprint=key.root_fingerprint,
                    created_at=datetime.now(UTC),
                ).on_conflict_do_nothing(index_elements=["owner"])
            )

    def delete(self, owner: str) -> None:
        with self._writer(None) as conn:
            conn.execute(sa.delete(secret_data_keys).where(secret_data_keys.c.owner == owner))

    def rewrap_all(self, rewrap: Callable[[WrappedKey], WrappedKey | None]) -> tuple[int, int]:
        """Applies ``rewrap`` to every row in one transaction (all or none). ``rewrap``
        returns the row's replacement, or None when it needs none. Returns (rewrapped, kept)."""
        rewrapped = kept = 0
        with self._writer("EXCLUSIVE") as conn:
            for row in conn.execute(sa.select(secret_data_keys).order_by(secret_data_keys.c.owner)).all():
                replacement = rewrap(_wrapped(row))
                if replacement is None:
                    kept += 1
                    continue
                conn.execute(
                    sa.update(secret_data_keys)
                    .where(secret_data_keys.c.owner == row.owner)
                    .values(wrapped_key=replacement.wrapped, root_fingerprint=replacement.root_fingerprint)
                )
                rewrapped += 1
        return rewrapped, kept

    @contextmanager
    def _writer(self, pg_lock: str | None) -> Iterator[sa.Connection]:
        with self.engine.execution_options(writer=True).begin() as conn:
            if self._postgres and pg_lock:
                conn.execute(sa.text(f"LOCK TABLE secret_data_keys IN {pg_lock} MODE"))
            yield conn


def _wrapped(row: sa.Row[Any]) -> WrappedKey:
    return WrappedKey(
        owner=row.owner, key_id=row.key_id, wrapped=bytes(row.wrapped_key), root_fingerprint=row.root_fingerprint
    )
