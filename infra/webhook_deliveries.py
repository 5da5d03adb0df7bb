"""The webhook delivery log in the read-model database (SQLite embedded, PostgreSQL otherwise):
the dispatcher's position in the event log, its view of the subscriptions, and one row per
delivery (an endpoint × a webhook event) with its attempts.

Delivery state is mutable bookkeeping beside the event log, not domain history: attempts are
not events. The fan-out's writes and its position commit together, the position moving only
from the value the batch was read at, as the projections' do. Bodies hold thin webhook events
(kinds and ids), never a secret."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

import sqlalchemy as sa

from application.ids import new_id
from application.webhook_delivery import (
    FAILED,
    PENDING,
    SUCCEEDED,
    DueDelivery,
    ListWindow,
    NewDelivery,
    Subscription,
    delivery_view,
)
from application.webhooks import DELIVERY_PREFIX
from projections.webhooks import window_page

metadata = sa.MetaData()
POSITION_NAME = "webhooks"

positions = sa.Table(
    "webhook_positions",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("position", sa.BigInteger, nullable=False),
)

subscriptions = sa.Table(
    "webhook_subscriptions",
    metadata,
    sa.Column("stream_id", sa.String(36), primary_key=True),
    sa.Column("endpoint_id", sa.String(64), nullable=False, unique=True),
    sa.Column("organization_id", sa.String(64), nullable=False),
    sa.Column("enabled_events", sa.JSON, nullable=False),
    sa.Column("enabled", sa.Boolean, nullable=False),
)

deliveries = sa.Table(
    "webhook_deliveries",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("endpoint_id", sa.String(64), nullable=False),
    sa.Column("event_id", sa.String(64), nullable=False),
    sa.Column("event_type", sa.String(64), nullable=False),
    sa.Column("resource_key", sa.String(36), nullable=False),
    sa.Column("notification_id", sa.BigInteger, nullable=False),
    sa.Column("ordinal", sa.Integer, nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("round_attempts", sa.Integer, nullable=False, default=0),
    sa.Column("next_attempt_at", sa.String(40), nullable=True),
    sa.Column("last_attempt_at", sa.String(40), nullable=True),
    sa.Column("delivered_at", sa.String(40), nullable=True),
    sa.Column("response_status", sa.Integer, nullable=True),
    sa.Column("error", sa.String(256), nullable=True),
    sa.Column("created_at", sa.String(40), nullable=False),
    sa.UniqueConstraint("endpoint_id", "event_id", name="webhook_deliveries_once"),
    sa.Index("webhook_deliveries_by_resource", "endpoint_id", "resource_key", "status", "notification_id", "ordinal"),
    sa.Index("webhook_deliveries_due", "status", "next_attempt_at"),
    sa.Index("webhook_deliveries_in_order", "endpoint_id", "notification_id", "ordinal"),
)

_ORDER = (deliveries.c.notification_id, deliveries.c.ordinal)


class _Moved(Exception):
    """Another dispatcher advanced the position first; the batch is rolled back."""


def _heads(*conditions: Any) -> list[Any]:
    """Pending deliveries nothing of their resource, at their endpoint, is pending before."""
    earlier = deliveries.alias("earlier")
    blocked = (
        sa.exists()
        .where(
            earlier.c.endpoint_id == deliveries.c.endpoint_id,
            earlier.c.resource_key == deliveries.c.resource_key,
            earlier.c.status == PENDING,
            sa.tuple_(earlier.c.notification_id, earlier.c.ordinal) < sa.tuple_(*_ORDER),
        )
        .correlate(deliveries)
    )
    return [deliveries.c.status == PENDING, ~blocked, *conditions]


def _enabled_endpoints() -> Any:
    return sa.select(subscriptions.c.endpoint_id).where(subscriptions.c.enabled.is_(True))


class SqlDeliveryLog:
    """Implements ``application.webhook_delivery.DeliveryLog`` with SQLAlchemy."""

    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine
        try:
            metadata.create_all(engine, checkfirst=True)
        except sa.exc.SQLAlchemyError:
            # Another process created them between our check and our CREATE.
            metadata.create_all(engine, checkfirst=True)
        try:
            with engine.begin() as conn:
                if conn.execute(sa.select(positions.c.name).where(positions.c.name == POSITION_NAME)).first() is None:
                    conn.execute(sa.insert(positions).values(name=POSITION_NAME, position=0))
        except sa.exc.IntegrityError:
            pass  # another process inserted it first

    # -- the fan-out ------------------------------------------------------------------------

    def position(self) -> int:
        with self._engine.connect() as conn:
            return int(conn.execute(sa.select(positions.c.position).where(positions.c.name == POSITION_NAME)).scalar_one())

    def subscriptions(self) -> list[Subscription]:
        with self._engine.connect() as conn:
            rows = conn.execute(sa.select(subscriptions)).all()
        return [
            Subscription(row.endpoint_id, row.stream_id, row.organization_id, frozenset(row.enabled_events), row.enabled)
            for row in rows
        ]

    def record(
        self,
        read_at: int,
        reached: int,
        changed: dict[str, Subscription | None],
        made: Sequence[NewDelivery],
        now: str,
    ) -> bool:
        try:
            with self._engine.begin() as conn:
                # Claim the batch first: a concurrent dispatcher waits on the row lock, then
                # finds the position moved before it wrote anything.
                moved = conn.execute(
                    sa.update(positions)
                    .where(positions.c.name == POSITION_NAME, positions.c.position == read_at)
                    .values(position=reached)
                )
                if moved.rowcount != 1:
                    raise _Moved
                for stream, subscription in changed.items():
                    self._replace_subscription(conn, stream, subscription)
                if made:
                    conn.execute(
                        sa.insert(deliveries),
                        [
                            {
                                "id": new_id(DELIVERY_PREFIX), "endpoint_id": item.endpoint_id, "event_id": item.event_id,
                                "event_type": item.event_type, "resource_key": item.resource_key,
                                "notification_id": item.notification_id, "ordinal": item.ordinal, "body": item.body,
                                "status": PENDING, "attempts": 0, "round_attempts": 0, "next_attempt_at": now,
                                "created_at": now,
                            }  # fmt: skip
                            for item in made
                        ],
                    )
        except _Moved:
            return False
        return True

    @staticmethod
    def _replace_subscription(conn: sa.Connection, stream: str, subscription: Subscription | None) -> None:
        old = conn.execute(sa.select(subscriptions.c.endpoint_id).where(subscriptions.c.stream_id == stream)).scalar()
        conn.execute(sa.delete(subscriptions).where(subscriptions.c.stream_id == stream))
        if subscription is None:
            if old is not None:
                conn.execute(sa.delete(deliveries).where(deliveries.c.endpoint_id == old))
            return
        conn.execute(
            sa.insert(subscriptions).values(
                stream_id=stream, endpoint_id=subscription.endpoint_id, organization_id=subscription.organization_id,
                enabled_events=sorted(subscription.enabled_events), enabled=subscription.enabled,
            )  # fmt: skip
        )

    # -- sending ----------------------------------------------------------------------------

    def due_endpoints(self, now: str, busy: Collection[str], limit: int) -> list[str]:
        conditions = _heads(deliveries.c.next_attempt_at <= now, deliveries.c.endpoint_id.in_(_enabled_endpoints()))
        if busy:
            conditions.append(deliveries.c.endpoint_id.not_in(list(busy)))
        with self._engine.connect() as conn:
            rows = conn.execute(sa.select(deliveries.c.endpoint_id).where(*conditions).distinct().limit(limit)).all()
        return [row.endpoint_id for row in rows]

    def next_due(self, busy: Collection[str] = ()) -> str | None:
        conditions = _heads(deliveries.c.endpoint_id.in_(_enabled_endpoints()))
        if busy:
            conditions.append(deliveries.c.endpoint_id.not_in(list(busy)))
        with self._engine.connect() as conn:
            return conn.execute(sa.select(sa.func.min(deliveries.c.next_attempt_at)).where(*conditions)).scalar()

    def due(self, endpoint_id: str, now: str, limit: int) -> list[DueDelivery]:
        select = (
            sa.select(deliveries.c.id, deliveries.c.event_id, deliveries.c.body, deliveries.c.round_attempts)
            .where(*_heads(deliveries.c.endpoint_id == endpoint_id, deliveries.c.next_attempt_at <= now))
            .order_by(*_ORDER)
            .limit(limit)
        )
        with self._engine.connect() as conn:
            rows = conn.execute(select).all()
        return [DueDelivery(row.id, row.event_id, row.body, row.round_attempts) for row in rows]

    def delivered(self, delivery_id: str, at: str, status_code: int) -> None:
        self._attempted(
            delivery_id, status=SUCCEEDED, last_attempt_at=at, delivered_at=at, response_status=status_code,
            error=None, next_attempt_at=None,
        )  # fmt: skip

    def failed(self, delivery_id: str, at: str, status_code: int | None, error: str, retry_at: str | None) -> None:
        self._attempted(
            delivery_id, status=PENDING if retry_at else FAILED, last_attempt_at=at, response_status=status_code,
            error=error, next_attempt_at=retry_at,
        )  # fmt: skip

    def _attempted(self, delivery_id: str, **values: Any) -> None:
        with self._engine.begin() as conn:
            conn.execute(
                sa.update(deliveries)
                .where(deliveries.c.id == delivery_id)
                .values(attempts=deliveries.c.attempts + 1, round_attempts=deliveries.c.round_attempts + 1, **values)
            )

    def hasten(self, endpoint_id: str, now: str) -> None:
        with self._engine.begin() as conn:
            conn.execute(
                sa.update(deliveries)
                .where(
                    deliveries.c.endpoint_id == endpoint_id,
                    deliveries.c.status == PENDING,
                    deliveries.c.next_attempt_at > now,
                )
                .values(next_attempt_at=now)
            )

    def defer(self, endpoint_id: str, until: str) -> None:
        with self._engine.begin() as conn:
            conn.execute(
                sa.update(deliveries)
                .where(
                    deliveries.c.endpoint_id == endpoint_id,
                    deliveries.c.status == PENDING,
                    deliveries.c.next_attempt_at < until,
                )
                .values(next_attempt_at=until)
            )

    # -- reads and redelivery ---------------------------------------------------------------

    def page(self, endpoint_id: str, window: ListWindow, status: str | None) -> dict[str, Any]:
        conditions = [deliveries.c.endpoint_id == endpoint_id]
        if status:
            conditions.append(deliveries.c.status == status)
        with self._engine.connect() as conn:
            return window_page(conn, deliveries, (*_ORDER, deliveries.c.id), conditions, window, delivery_view)

    def get(self, endpoint_id: str, delivery_id: str) -> dict[str, Any] | None:
        with self._engine.connect() as conn:
            row = conn.execute(
                sa.select(deliveries).where(deliveries.c.id == delivery_id, deliveries.c.endpoint_id == endpoint_id)
            ).first()
        return delivery_view(row) if row is not None else None

    def redeliver(self, endpoint_id: str, delivery_id: str, now: str) -> dict[str, Any] | None:
        with self._engine.begin() as conn:
            conn.execute(
                sa.update(deliveries)
                .where(deliveries.c.id == delivery_id, deliveries.c.endpoint_id == endpoint_id)
                .values(status=PENDING, next_attempt_at=now, round_attempts=0, error=None)
            )
        return self.get(endpoint_id, delivery_id)
