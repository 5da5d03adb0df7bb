"""Many rows into one table inside the caller's transaction, the cheapest way the database has:
COPY on PostgreSQL (a batch of a rebuild writes thousands of rows to one table), a plain
multi-row insert elsewhere and for a few rows."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from itertools import chain
from typing import Any

import orjson
import sqlalchemy as sa

# Below this many rows an ordinary insert costs no more than setting COPY up.
COPY_FROM = 50


def insert_rows(conn: sa.Connection, table: sa.Table, rows: Sequence[dict[str, Any]]) -> None:
    """Rows of different shapes (sets of columns) go in one statement per shape."""
    shapes: dict[frozenset[str], list[dict[str, Any]]] = {}
    for row in rows:
        shapes.setdefault(frozenset(row), []).append(row)
    for shaped in shapes.values():
        _insert_shaped(conn, table, shaped)


def stream_rows(conn: sa.Connection, table: sa.Table, rows: Iterable[dict[str, Any]], count: int) -> None:
    """``count`` rows of one shape, written as they are made: on PostgreSQL the server stores
    the first while the caller is still making the rest (for a rebuild's activity feed, the
    server's index work then overlaps the Python that builds its rows)."""
    if conn.dialect.name != "postgresql" or count < COPY_FROM:
        made = list(rows)
        if made:
            conn.execute(sa.insert(table), made)
        return
    iterator = iter(rows)
    first = next(iterator, None)
    if first is not None:
        _copy(conn, table, first, chain((first,), iterator))


def _insert_shaped(conn: sa.Connection, table: sa.Table, rows: list[dict[str, Any]]) -> None:
    if conn.dialect.name != "postgresql" or len(rows) < COPY_FROM:
        conn.execute(sa.insert(table), rows)
        return
    _copy(conn, table, rows[0], rows)


def _copy(conn: sa.Connection, table: sa.Table, shape: dict[str, Any], rows: Iterable[dict[str, Any]]) -> None:
    columns = [column for column in table.columns if column.name in shape]
    names = [column.name for column in columns]
    # Only JSON columns need encoding; the rest go to COPY as they are (per row, per value
    # Python calls are most of a rebuild's cost here).
    encoded = [(index, _encoder(column.type)) for index, column in enumerate(columns) if isinstance(column.type, sa.JSON)]
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    listed = ", ".join(f'"{name}"' for name in names)
    with cursor.copy(f'COPY "{table.name}" ({listed}) FROM STDIN') as copy:
        for row in rows:
            values = [row[name] for name in names]
            for index, encode in encoded:
                values[index] = encode(values[index])
            copy.write_row(values)


def _encoder(json_type: sa.JSON) -> Any:
    # As SQLAlchemy stores it: None is JSON null unless the column says SQL NULL.
    if json_type.none_as_null:
        return lambda value: None if value is None else _json(value)
    return _json


def _json(value: Any) -> str:
    """The same JSON value SQLAlchemy's ``json.dumps`` writes (a ``json`` column is read back
    parsed, so spacing is not kept), ten times faster; what orjson refuses, json writes."""
    try:
        return orjson.dumps(value).decode()
    except orjson.JSONEncodeError:
        return json.dumps(value)
