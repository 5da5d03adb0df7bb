"""Reads of the list read models, with keyset pagination behind an opaque page token."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

import orjson
import sqlalchemy as sa

from projections import tables


class BadPageToken(ValueError):
    """The page token was not one this server handed out."""


def encode_token(*key: Any) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(list(key))).decode().rstrip("=")


MAX_TOKEN_INT = 2**62


def decode_token(token: str, *shape: type) -> list[Any]:
    """The token's values, each checked against ``shape`` (``str`` or ``int``)."""
    try:
        padded = token + "=" * (-len(token) % 4)
        key = orjson.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, orjson.JSONDecodeError):
        raise BadPageToken("invalid page token") from None
    if not isinstance(key, list) or len(key) != len(shape):
        raise BadPageToken("invalid page token")
    for value, kind in zip(key, shape, strict=True):
        if kind is int and (type(value) is not int or not 0 <= value <= MAX_TOKEN_INT):
            raise BadPageToken("invalid page token")
        if kind is str and (not isinstance(value, str) or len(value) > 128):
            raise BadPageToken("invalid page token")
    return key


@dataclass(frozen=True)
class Page:
    data: list[dict[str, Any]]
    next_page: str | None


class ReadModels:
    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine

    def _page(
        self,
        table: sa.Table,
        conditions: list[Any],
        limit: int,
        page: str | None,
        descending: bool = True,
    ) -> Page:
        query = sa.select(table.c.doc, table.c.created_at, table.c.id).where(*conditions)
        if page:
            created_at, last_id = decode_token(page, str, str)
            key = sa.tuple_(table.c.created_at, table.c.id)
            query = query.where(key < (created_at, last_id) if descending else key > (created_at, last_id))
        order = (sa.desc, sa.asc)[not descending]
        query = query.order_by(order(table.c.created_at), order(table.c.id)).limit(limit + 1)
        with self._engine.connect() as conn:
            rows = conn.execute(query).all()
        more = len(rows) > limit
        rows = rows[:limit]
        token = encode_token(rows[-1].created_at, rows[-1].id) if more and rows else None
        return Page([dict(row.doc) for row in rows], token)

    def agents(
        self,
        tenant_id: str,
        limit: int,
        page: str | None,
        include_archived: bool,
        created_at_gte: str | None = None,
        created_at_lte: str | None = None,
    ) -> Page:
        table = tables.agents
        conditions = [table.c.tenant_id == tenant_id]
        if not include_archived:
            conditions.append(table.c.archived.is_(False))
        if created_at_gte:
            conditions.append(table.c.created_at >= created_at_gte)
        if created_at_lte:
            conditions.append(table.c.created_at <= created_at_lte)
        return self._page(table, conditions, limit, page)

    def agent_versions(self, tenant_id: str, agent_id: str, limit: int, page: str | None) -> Page:
        table = tables.agent_versions
        query = sa.select(table.c.doc, table.c.version).where(
            table.c.tenant_id == tenant_id, table.c.agent_id == agent_id
        )
        if page:
            (before_version,) = decode_token(page, int)
            query = query.where(table.c.version < before_version)
        query = query.order_by(table.c.version.desc()).limit(limit + 1)
        with self._engine.connect() as conn:
            rows = conn.execute(query).all()
        more = len(rows) > limit
        rows = rows[:limit]
        token = encode_token(rows[-1].version) if more and rows else None
        return Page([dict(row.doc) for row in rows], token)

    def environments(
        self, tenant_id: str, limit: int, page: str | None, include_archived: bool
    ) -> Page:
        table = tables.environments
        conditions = [table.c.tenant_id == tenant_id]
        if not include_archived:
            conditions.append(table.c.archived.is_(False))
        return self._page(table, conditions, limit, page)

    def sessions(
        self,
        tenant_id: str,
        limit: int,
        page: str | None,
        include_archived: bool,
        order: str = "desc",
        agent_id: str | None = None,
        agent_version: int | None = None,
        statuses: list[str] | None = None,
        created_after: tuple[str, bool] | None = None,
        created_before: tuple[str, bool] | None = None,
    ) -> Page:
        table = tables.sessions
        conditions = [table.c.tenant_id == tenant_id, table.c.deleted.is_(False)]
        if not include_archived:
            conditions.append(table.c.archived.is_(False))
        if agent_id:
            conditions.append(table.c.agent_id == agent_id)
        if agent_version is not None:
            conditions.append(table.c.agent_version == agent_version)
        if statuses:
            conditions.append(table.c.status.in_(statuses))
        if created_after:
            moment, inclusive = created_after
            conditions.append(table.c.created_at >= moment if inclusive else table.c.created_at > moment)
        if created_before:
            moment, inclusive = created_before
            conditions.append(table.c.created_at <= moment if inclusive else table.c.created_at < moment)
        return self._page(table, conditions, limit, page, descending=order == "desc")

    def running_session_ids(self) -> list[str]:
        """Sessions a runtime was driving (any tenant): candidates to resume after a restart."""
        table = tables.sessions
        query = sa.select(table.c.id).where(table.c.status == "running", table.c.deleted.is_(False))
        with self._engine.connect() as conn:
            return [row.id for row in conn.execute(query)]
