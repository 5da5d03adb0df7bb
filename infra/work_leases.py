"""Work item leases in a table of the read-model database (SQLite embedded, PostgreSQL in
production), so every API process sees the same clock. Each change is one conditional
UPDATE: the row count says whether this caller's claim and expected heartbeat still held."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from application.ports import Lease

metadata = sa.MetaData()

work_leases = sa.Table(
    "work_leases",
    metadata,
    sa.Column("work_id", sa.String(64), primary_key=True),
    sa.Column("claim", sa.Integer, nullable=False),
    sa.Column("last_heartbeat", sa.String(40), nullable=True),
    sa.Column("expires_at", sa.Float, nullable=False),
)


class SqlWorkLeases:
    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine
        try:
            metadata.create_all(engine, checkfirst=True)
        except sa.exc.SQLAlchemyError:
            # Another process created it between our check and our CREATE.
            metadata.create_all(engine, checkfirst=True)

    def grant(self, work_id: str, claim: int, expires_at: float) -> None:
        table = work_leases
        values: dict[str, Any] = {"claim": claim, "last_heartbeat": None, "expires_at": expires_at}
        with self._engine.begin() as conn:
            updated = conn.execute(
                sa.update(table).where(table.c.work_id == work_id, table.c.claim <= claim).values(**values)
            ).rowcount
            if not updated:
                exists = conn.execute(sa.select(table.c.claim).where(table.c.work_id == work_id)).first()
                if exists is None:
                    conn.execute(sa.insert(table).values(work_id=work_id, **values))

    def extend(self, work_id: str, claim: int, expected: str | None, heartbeat: str, expires_at: float) -> bool:
        table = work_leases
        matches = table.c.last_heartbeat.is_(None) if expected is None else table.c.last_heartbeat == expected
        with self._engine.begin() as conn:
            updated = conn.execute(
                sa.update(table)
                .where(table.c.work_id == work_id, table.c.claim == claim, matches)
                .values(last_heartbeat=heartbeat, expires_at=expires_at)
            ).rowcount
        return bool(updated)

    def get(self, work_id: str) -> Lease | None:
        return self.many([work_id]).get(work_id)

    def many(self, work_ids: list[str]) -> dict[str, Lease]:
        if not work_ids:
            return {}
        table = work_leases
        with self._engine.connect() as conn:
            rows = conn.execute(sa.select(table).where(table.c.work_id.in_(work_ids))).all()
        return {row.work_id: Lease(row.claim, row.last_heartbeat, row.expires_at) for row in rows}
