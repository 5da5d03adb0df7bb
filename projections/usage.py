"""Usage rows and the usage and cost reports read from them.

The projection turns the runtime's records of each model request into counters per minute,
hour and day bucket and per recorded dimension (workspace, model, agent, session, environment,
API key, speed, context window). It reads only a session's first event and its request
records (``span.model_request_end``, ``span.outcome_evaluation_end``, ``Session.RequestCosted``);
every other event costs nothing. A request's tokens and its cost arrive as two events of one
append: the first leaves the request's bucket and tier on the session's row (``pending``), the
second adds the cost to the very rows its tokens went to, so a report never shows a cost
without its tokens. Each write adds to a counter (an upsert), never reads it.

What the reports may say about what Agentry records, and who may read them, is in
application/usage_reports.py.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from application.usage_reports import (
    COST_BREAKDOWN,
    EPOCH,
    MAX_GROUPS_PER_BUCKET,
    RECORDED,
    TOKEN_TYPES,
    WIDTHS,
    ReportQuery,
    context_window,
    split_cost,
)
from domain.sessions import ModelRequestEnded, OutcomeEvaluationEnded, Session
from projections.bulk import insert_rows
from projections.queries import BadPageToken, decode_token, encode_token
from projections.runner import ReadModelProjection
from projections.tables import metadata

# A session's attribution: what every request of it is counted under. ``pending`` is the
# last request whose tokens were counted and whose cost has yet to come.
usage_sessions = sa.Table(
    "rm_usage_sessions",
    metadata,
    sa.Column("stream_id", sa.String(36), primary_key=True),
    sa.Column("session_id", sa.String(64), nullable=False),
    sa.Column("tenant_id", sa.String(64), nullable=False),
    sa.Column("model", sa.String(256), nullable=False),
    sa.Column("agent_id", sa.String(64), nullable=False),
    sa.Column("environment_id", sa.String(64), nullable=False),
    sa.Column("api_key_id", sa.String(64), nullable=False),
    sa.Column("speed", sa.String(16), nullable=False),
    sa.Column("pending", sa.JSON, nullable=True),
)

KEY = ("tenant_id", "width", "bucket", "model", "agent_id", "session_id", "environment_id", "api_key_id", "speed", "context_window")
TOKEN_COLUMNS = {
    "uncached_input_tokens": "uncached_input_tokens",
    "output_tokens": "output_tokens",
    "cache_read_input_tokens": "cache_read_input_tokens",
    "cache_creation.ephemeral_5m_input_tokens": "cache_creation_5m_input_tokens",
    "cache_creation.ephemeral_1h_input_tokens": "cache_creation_1h_input_tokens",
}
COST_COLUMNS = {token_type: f"cost_{column}" for token_type, column in TOKEN_COLUMNS.items()}
METRICS = ("requests", "unpriced_requests", "cost_micros", *TOKEN_COLUMNS.values(), *COST_COLUMNS.values())

usage = sa.Table(
    "rm_usage",
    metadata,
    sa.Column("tenant_id", sa.String(64), primary_key=True),
    sa.Column("width", sa.String(2), primary_key=True),
    sa.Column("bucket", sa.BigInteger, primary_key=True, autoincrement=False),  # epoch seconds of its start
    sa.Column("model", sa.String(256), primary_key=True),
    sa.Column("agent_id", sa.String(64), primary_key=True),
    sa.Column("session_id", sa.String(64), primary_key=True),
    sa.Column("environment_id", sa.String(64), primary_key=True),
    sa.Column("api_key_id", sa.String(64), primary_key=True),
    sa.Column("speed", sa.String(16), primary_key=True),
    sa.Column("context_window", sa.String(16), primary_key=True),
    *(sa.Column(name, sa.BigInteger, nullable=False, default=0) for name in METRICS),
    sa.Index("rm_usage_by_time", "width", "bucket"),
)

# Report dimension → the column it is stored in.
COLUMN = {name: ("tenant_id" if name == "workspace_id" else name) for name in RECORDED}


@dataclass(frozen=True)
class Attribution:
    tenant_id: str
    model: str
    agent_id: str
    session_id: str
    environment_id: str
    api_key_id: str
    speed: str

    def key(self, context: str) -> dict[str, str]:
        return {
            "tenant_id": self.tenant_id, "model": self.model, "agent_id": self.agent_id,
            "session_id": self.session_id, "environment_id": self.environment_id,
            "api_key_id": self.api_key_id, "speed": self.speed, "context_window": context,
        }  # fmt: skip


def _text(value: Any, length: int) -> str:
    return value[:length] if isinstance(value, str) else ""


def _tokens(usage_dict: Mapping[str, Any] | None) -> dict[str, int]:
    """The token counts of a request, by report token type."""
    given = usage_dict or {}

    def count(name: str) -> int:
        value = given.get(name)
        return value if isinstance(value, int) and value > 0 else 0

    return {
        "uncached_input_tokens": count("input_tokens"),
        "output_tokens": count("output_tokens"),
        "cache_read_input_tokens": count("cache_read_input_tokens"),
        "cache_creation.ephemeral_5m_input_tokens": count("cache_creation_input_tokens"),
        "cache_creation.ephemeral_1h_input_tokens": 0,
    }


class UsageProjection(ReadModelProjection):
    name = "usage"
    tables = (usage, usage_sessions)
    CACHED_SESSIONS = 4096

    def __init__(self) -> None:
        self._handlers: dict[type, Callable[[sa.Connection, Any], None]] = {
            Session.Started: self._started,
            ModelRequestEnded: self._request_ended,
            OutcomeEvaluationEnded: self._evaluation_ended,
            Session.RequestCosted: self._costed,
        }
        # A session's attribution never changes once started: kept here, it spares the
        # read of its row for the tokens of every request.
        self._attributions: OrderedDict[str, Attribution] = OrderedDict()
        self._batch: UsageBatch | None = None

    def apply(self, conn: sa.Connection, event: Any) -> None:
        handler = self._handlers.get(type(event))
        if handler is not None:
            handler(conn, event)

    def apply_all(self, conn: sa.Connection, events: Sequence[Any], positions: Sequence[int] | None = None) -> None:
        """A batch's counters summed in memory and its sessions' ``pending`` kept there, both
        written once at its end (in the runner's transaction, with its position)."""
        if len(events) < 2:
            super().apply_all(conn, events, positions)
            return
        self._batch = UsageBatch()
        try:
            for event in events:
                self.apply(conn, event)
            self._batch.flush(conn)
        finally:
            self._batch = None

    def wants(self, event_class: type) -> bool:
        return event_class in self._handlers

    def forget(self) -> None:
        self._attributions.clear()

    # -- a session's attribution ------------------------------------------------------------

    def _started(self, conn: sa.Connection, event: Any) -> None:
        model = event.agent.get("model")
        config = model if isinstance(model, dict) else {"id": model}
        speed = config.get("speed")
        attribution = Attribution(
            tenant_id=_text(event.tenant_id, 64),
            model=_text(config.get("id"), 256),
            agent_id=_text(event.agent.get("id"), 64),
            session_id=_text(event.session_id, 64),
            environment_id=_text(event.environment_id, 64),
            api_key_id="",  # not recorded on a session (see application/usage_reports.py)
            speed=speed if speed in ("fast", "standard") else "standard",
        )
        stream = str(event.originator_id)
        if self._batch is not None:
            self._batch.started[stream] = attribution
            self._batch.pending[stream] = None
        else:
            conn.execute(sa.delete(usage_sessions).where(usage_sessions.c.stream_id == stream))
            conn.execute(sa.insert(usage_sessions).values(stream_id=stream, pending=None, **attribution.__dict__))
        self._remember(stream, attribution)

    def _remember(self, stream: str, attribution: Attribution) -> None:
        self._attributions[stream] = attribution
        self._attributions.move_to_end(stream)
        while len(self._attributions) > self.CACHED_SESSIONS:
            self._attributions.popitem(last=False)

    def _attribution(self, conn: sa.Connection, stream: str) -> Attribution | None:
        known = self._attributions.get(stream)
        if known is not None:
            return known
        if self._batch is not None and stream in self._batch.started:
            return self._batch.started[stream]
        row = conn.execute(sa.select(usage_sessions).where(usage_sessions.c.stream_id == stream)).first()
        if row is None:
            return None
        attribution = _attribution_of(row)
        self._remember(stream, attribution)
        return attribution

    # -- a request's tokens, then its cost --------------------------------------------------

    def _request_ended(self, conn: sa.Connection, event: Any) -> None:
        self._counted(conn, event, event.payload.get("model_request_start_id"), event.payload.get("model_usage"))

    def _evaluation_ended(self, conn: sa.Connection, event: Any) -> None:
        self._counted(conn, event, event.payload.get("outcome_evaluation_start_id"), event.payload.get("usage"))

    def _counted(self, conn: sa.Connection, event: Any, span: Any, usage_dict: Any) -> None:
        stream = str(event.originator_id)
        attribution = self._attribution(conn, stream)
        if attribution is None:
            return
        tokens = _tokens(usage_dict if isinstance(usage_dict, dict) else None)
        prompt = sum(count for name, count in tokens.items() if name != "output_tokens")
        context = context_window(prompt)
        at = _epoch(event.timestamp)
        if any(tokens.values()):
            self._add(conn, attribution.key(context), at, {TOKEN_COLUMNS[name]: count for name, count in tokens.items()})
        pending = {"span": span if isinstance(span, str) else None, "at": at, "context": context, "tokens": tokens}
        if self._batch is not None:
            self._batch.pending[stream] = pending
            self._batch.changed.add(stream)
            return
        conn.execute(sa.update(usage_sessions).where(usage_sessions.c.stream_id == stream).values(pending=pending))

    def _costed(self, conn: sa.Connection, event: Any) -> None:
        stream = str(event.originator_id)
        if self._batch is not None and stream in self._batch.pending:
            # Started, or its tokens counted, in this batch: its row is (still) in memory.
            known = self._attribution(conn, stream)
            if known is None:
                return
            attribution, pending = known, self._batch.pending[stream] or {}
        else:
            row = conn.execute(sa.select(usage_sessions).where(usage_sessions.c.stream_id == stream)).first()
            if row is None:
                return
            attribution = _attribution_of(row)
            pending = row.pending if isinstance(row.pending, dict) else {}
        if pending.get("span") == event.span_id:
            at, context, tokens = int(pending["at"]), str(pending["context"]), dict(pending["tokens"])
        else:  # a cost whose tokens were never counted: it stands on its own
            at, context, tokens = _epoch(event.timestamp), context_window(0), {}
        cost = max(int(event.cost_micros), 0)
        parts = split_cost(attribution.model, tokens, cost)
        increments = {
            "requests": 1,
            "unpriced_requests": 0 if event.priced else 1,
            "cost_micros": cost,
            **{COST_COLUMNS[name]: part for name, part in parts.items()},
        }
        self._add(conn, attribution.key(context), at, increments)

    def _add(self, conn: sa.Connection, key: dict[str, str], at: int, increments: dict[str, int]) -> None:
        if self._batch is not None:
            self._batch.add(key, at, increments)
        else:
            _add(conn, key, at, increments)


class UsageBatch:
    """One batch's sums per usage row, the sessions it started and the ``pending`` of those
    it counted."""

    def __init__(self) -> None:
        self.started: dict[str, Attribution] = {}
        self.sums: dict[tuple[Any, ...], dict[str, int]] = {}
        self.pending: dict[str, Any] = {}
        self.changed: set[str] = set()

    def add(self, key: dict[str, str], at: int, increments: dict[str, int]) -> None:
        for width, step in WIDTHS.items():
            row = {**key, "width": width, "bucket": at - at % step}
            sums = self.sums.setdefault(tuple(row[name] for name in KEY), dict.fromkeys(METRICS, 0))
            for name, count in increments.items():
                sums[name] += count

    def flush(self, conn: sa.Connection) -> None:
        started = sorted(self.started)
        for first in range(0, len(started), 500):
            conn.execute(sa.delete(usage_sessions).where(usage_sessions.c.stream_id.in_(started[first : first + 500])))
        insert_rows(
            conn, usage_sessions,
            [{"stream_id": stream, "pending": self.pending[stream], **self.started[stream].__dict__} for stream in started],
        )  # fmt: skip
        if self.sums:
            insert = (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(usage)
            upsert = insert.on_conflict_do_update(
                index_elements=list(KEY), set_={name: usage.c[name] + insert.excluded[name] for name in METRICS}
            )
            conn.execute(upsert, [{**dict(zip(KEY, key, strict=True)), **sums} for key, sums in self.sums.items()])
        changed = [{"_stream": stream, "_pending": self.pending[stream]} for stream in self.changed - self.started.keys()]
        if changed:
            update = (
                sa.update(usage_sessions)
                .where(usage_sessions.c.stream_id == sa.bindparam("_stream"))
                .values(pending=sa.bindparam("_pending"))
            )
            conn.execute(update, changed)


def _attribution_of(row: Any) -> Attribution:
    return Attribution(
        tenant_id=row.tenant_id, model=row.model, agent_id=row.agent_id, session_id=row.session_id,
        environment_id=row.environment_id, api_key_id=row.api_key_id, speed=row.speed,
    )  # fmt: skip


def _epoch(moment: datetime) -> int:
    return int((moment.astimezone(UTC) - EPOCH).total_seconds() // 1)


def _add(conn: sa.Connection, key: dict[str, str], at: int, increments: dict[str, int]) -> None:
    """Adds ``increments`` to the rows of ``key`` in the minute, hour and day of ``at``."""
    rows = [{**key, "width": width, "bucket": at - at % step, **increments} for width, step in WIDTHS.items()]
    insert = (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(usage)
    statement = insert.on_conflict_do_update(
        index_elements=list(KEY), set_={name: usage.c[name] + insert.excluded[name] for name in increments}
    )
    conn.execute(statement, rows)


# -- reading -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Total:
    """The counters of one bucket (None: the whole range) and one combination of values."""

    bucket: int | None
    values: dict[str, str | None]
    metrics: dict[str, int]

    @property
    def total_tokens(self) -> int:
        return sum(self.metrics[column] for column in TOKEN_COLUMNS.values())

    def sort_key(self) -> tuple[Any, ...]:
        return (self.bucket or 0, *((self.values.get(name) or "") for name in RECORDED))


def cents(micros: int) -> str:
    """Micro-dollars as fractional US cents, the reports' ``amount`` ("1.2345")."""
    return format(Decimal(micros) / Decimal(10_000), "f")


def moment(epoch: int) -> str:
    """Epoch seconds as an RFC 3339 UTC timestamp (``2026-03-01T00:00:00Z``)."""
    at = EPOCH + timedelta(seconds=epoch)
    return f"{at.year:04d}" + at.strftime("-%m-%dT%H:%M:%SZ")


def _usage_metrics(total: Total) -> dict[str, Any]:
    metrics = total.metrics
    return {
        "uncached_input_tokens": metrics["uncached_input_tokens"],
        "cache_creation": {
            "ephemeral_1h_input_tokens": metrics["cache_creation_1h_input_tokens"],
            "ephemeral_5m_input_tokens": metrics["cache_creation_5m_input_tokens"],
        },
        "cache_read_input_tokens": metrics["cache_read_input_tokens"],
        "output_tokens": metrics["output_tokens"],
        "server_tool_use": {"web_search_requests": 0},
        "requests": metrics["requests"],
    }


def _costs(total: Total, group_by: tuple[str, ...]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """The cost rows of one total: one combined row, or with ``cost_type`` / ``token_type``
    in ``group_by`` one per component (Agentry charges tokens only) or per token type. Each is
    (breakdown values, cost metrics)."""
    metrics = total.metrics

    def cost(micros: int, requests: int | None) -> dict[str, Any]:
        amount = cents(micros)
        return {"amount": amount, "list_amount": amount, "currency": "USD", "requests": requests}

    if "token_type" in group_by:
        return [
            ({"cost_type": "tokens", "token_type": name}, cost(metrics[COST_COLUMNS[name]], None))
            for name in TOKEN_TYPES
            if metrics[TOKEN_COLUMNS[name]] or metrics[COST_COLUMNS[name]]
        ]
    if "cost_type" in group_by:
        return [({"cost_type": "tokens", "token_type": None}, cost(metrics["cost_micros"], None))]
    return [({"cost_type": None, "token_type": None}, cost(metrics["cost_micros"], metrics["requests"]))]


# Every dimension a row of each report shows (null unless grouped by).
LEGACY_RESULT_DIMENSIONS = (
    "model", "product", "context_window", "inference_geo", "speed", "claude_tag_category", "claude_tag_user_id",
    "rbac_group_id", "slack_channel_id", "agent_id", "workspace_id", "api_key_id", "environment_id", "session_id",
)  # fmt: skip
GROUP_DIMENSIONS = (
    "actor", "actor_type", "agent_id", "api_key_id", "claude_tag_category", "claude_tag_user_id", "context_window",
    "deployment_id", "environment_id", "inference_geo", "model", "organization_id", "product", "rbac_group_id",
    "service_tier", "session_id", "slack_channel_id", "speed", "user_profile_id", "workspace_id",
)  # fmt: skip


def _dimensions(names: Iterable[str], total: Total) -> dict[str, Any]:
    return {name: total.values.get(name) for name in names}


class UsageReports:
    """The four reports over the usage rows. ``scope`` is the set of workspaces the caller may
    read (None: every one), from application.usage_reports.visible_workspaces."""

    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine

    # -- the bucketed reports (usage_report, cost_report) ---------------------------------

    def usage_report(self, scope: frozenset[str] | None, query: ReportQuery) -> dict[str, Any]:
        def results(totals: list[Total]) -> list[dict[str, Any]]:
            ranked = sorted(totals, key=lambda total: (-total.total_tokens, total.sort_key()))
            return [
                {**_usage_metrics(total), **_dimensions(LEGACY_RESULT_DIMENSIONS, total)}
                for total in ranked[:MAX_GROUPS_PER_BUCKET]
            ]

        return self._bucketed(scope, query, results)

    def cost_report(self, scope: frozenset[str] | None, query: ReportQuery) -> dict[str, Any]:
        def results(totals: list[Total]) -> list[dict[str, Any]]:
            ranked = sorted(totals, key=lambda total: (-total.metrics["cost_micros"], -total.total_tokens, total.sort_key()))
            return [
                {**cost, **breakdown, **_dimensions(LEGACY_RESULT_DIMENSIONS, total)}
                for total in ranked[:MAX_GROUPS_PER_BUCKET]
                for breakdown, cost in _costs(total, query.group_by)
            ]

        return self._bucketed(scope, query, results)

    def _bucketed(
        self, scope: frozenset[str] | None, query: ReportQuery, results: Callable[[list[Total]], list[dict[str, Any]]]
    ) -> dict[str, Any]:
        assert query.width is not None
        step = WIDTHS[query.width]
        first = query.start
        if query.page is not None:
            first = max(first, _position(query.page, "bucket"))
            first -= first % step
        count = max(0, -(-(query.end - first) // step))
        shown = min(count, query.limit)
        starts = [first + index * step for index in range(shown)]
        totals = self._totals(scope, query, query.width, first, first + shown * step, by_bucket=True) if shown else []
        by_bucket: dict[int | None, list[Total]] = {}
        for total in totals:
            by_bucket.setdefault(total.bucket, []).append(total)
        data = [
            {"starting_at": moment(start), "ending_at": moment(start + step), "results": results(by_bucket.get(start, []))}
            for start in starts
        ]
        more = count > shown
        return {"data": data, "has_more": more, "next_page": _token("bucket", first + shown * step) if more else None}

    # -- the row reports (usage, cost) --------------------------------------------------------

    def usage(self, scope: frozenset[str] | None, query: ReportQuery) -> dict[str, Any]:
        def metric(total: Total) -> int:
            if query.order_by in ("time", "total_tokens"):
                return total.total_tokens
            return total.metrics[query.order_by]

        def items(total: Total) -> list[dict[str, Any]]:
            usage_metrics = {**_usage_metrics(total), "total_tokens": total.total_tokens}
            return [{**self._bounds(query, total), "group": _dimensions(GROUP_DIMENSIONS, total), "usage": usage_metrics}]

        return self._rows(scope, query, metric, items)

    def cost(self, scope: frozenset[str] | None, query: ReportQuery) -> dict[str, Any]:
        def items(total: Total) -> list[dict[str, Any]]:
            return [
                {**self._bounds(query, total), "group": _dimensions(GROUP_DIMENSIONS, total) | breakdown, "cost": cost}
                for breakdown, cost in _costs(total, query.group_by)
            ]

        return self._rows(scope, query, lambda total: total.metrics["cost_micros"], items)

    def _rows(
        self,
        scope: frozenset[str] | None,
        query: ReportQuery,
        metric: Callable[[Total], int],
        items: Callable[[Total], list[dict[str, Any]]],
    ) -> dict[str, Any]:
        width = query.width or "1h"
        totals = self._totals(scope, query, width, query.start, query.end, by_bucket=query.width is not None)
        sign = -1 if query.descending else 1
        if query.order_by == "time" and query.width is not None:
            ranked = sorted(totals, key=lambda total: (sign * (total.bucket or 0), -metric(total), total.sort_key()))
        else:
            ranked = sorted(totals, key=lambda total: (sign * metric(total), total.sort_key()))
        offset = _position(query.page, "row") if query.page is not None else 0
        page = ranked[offset : offset + query.limit]
        more = offset + query.limit < len(ranked)
        data = [item for total in page for item in items(total)]
        return {"data": data, "has_more": more, "next_page": _token("row", offset + query.limit) if more else None}

    @staticmethod
    def _bounds(query: ReportQuery, total: Total) -> dict[str, str]:
        if total.bucket is None:
            return {"starting_at": moment(query.start), "ending_at": moment(query.end)}
        assert query.width is not None
        return {"starting_at": moment(total.bucket), "ending_at": moment(total.bucket + WIDTHS[query.width])}

    # -- the sums ---------------------------------------------------------------------------

    def _totals(
        self, scope: frozenset[str] | None, query: ReportQuery, width: str, start: int, end: int, by_bucket: bool
    ) -> list[Total]:
        if query.filters.nothing or (scope is not None and not scope) or start >= end:
            return []
        grouped = [name for name in query.group_by if name in COLUMN]
        columns = [usage.c[COLUMN[name]] for name in grouped]
        keys = ([usage.c.bucket] if by_bucket else []) + columns
        statement = (
            sa.select(*keys, sa.func.count().label("rows"), *(sa.func.sum(usage.c[name]).label(name) for name in METRICS))
            .where(usage.c.width == width, usage.c.bucket >= start, usage.c.bucket < end)
            .group_by(*keys)
        )
        if scope is not None:
            statement = statement.where(usage.c.tenant_id.in_(sorted(scope)))
        for name, wanted in query.filters.by_dimension().items():
            statement = statement.where(usage.c[COLUMN[name]].in_(wanted))
        with self._engine.connect() as conn:
            rows = conn.execute(statement).all()
        totals = []
        for row in rows:
            mapping = row._mapping
            if not mapping["rows"]:
                continue  # without a key to group by, SQL sums nothing into one row of nulls
            values = {name: (mapping[COLUMN[name]] or None) for name in grouped}
            metrics = {name: int(mapping[name] or 0) for name in METRICS}
            totals.append(Total(int(mapping["bucket"]) if by_bucket else None, values, metrics))
        return totals


def _token(kind: str, position: int) -> str:
    return encode_token(kind, str(position))


def _position(token: str, kind: str) -> int:
    """The position a page token of ``kind`` holds (a bucket's start, or a row's offset)."""
    found, position = decode_token(token, str, str)
    try:
        value = int(position)
    except ValueError:
        raise BadPageToken("invalid page token") from None
    if found != kind or (kind == "row" and value < 0):
        raise BadPageToken("invalid page token")
    return value


__all__ = ["COST_BREAKDOWN", "UsageProjection", "UsageReports", "cents", "usage", "usage_sessions"]
