"""Notifications projected from Kafka (``agentry project --from kafka``) are the ones projected
from the store: the same ids and positions (each message carries its event's global position),
and the same read marks (the readers' inboxes are published on ``agentry.notifications``)."""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from application.notifications import NotificationService, audience_of
from application.tenancy import Principal
from domain.tasks import Task
from infra.event_store import EventsourcingEventStore, event_store_env
from infra.settings import Settings
from interfaces.bootstrap import build_kafka_projector, build_relay
from projections.notifications import NotificationReadModels, NotificationsProjection
from projections.queries import ListQuery
from projections.resources import all_projections
from projections.runner import ReadModelRunner, create_engine
from tests.support.kafka import Broker
from tests.support.postgres import fresh_database

READER = Principal("t1", "apikey_kafka")


def _snapshot(engine: sa.Engine) -> dict[str, list[Any]]:
    with engine.connect() as conn:
        return {
            table.name: sorted(tuple(row) for row in conn.execute(sa.select(table)))
            for table in NotificationsProjection.tables
        }


def test_notifications_from_kafka_match_the_ones_from_the_store(postgres_server_url: str, broker: Broker, tmp_path: Path) -> None:
    prefix, group = "n" + uuid.uuid4().hex[:8], "g" + uuid.uuid4().hex[:8]
    with fresh_database(postgres_server_url) as events_db, fresh_database(postgres_server_url) as reference_db:
        settings = Settings(
            data_dir=tmp_path, database_url=events_db, kafka_bootstrap_servers=broker.bootstrap,
            kafka_topic_prefix=prefix, kafka_projector_group=group,
        )  # fmt: skip
        store = EventsourcingEventStore(event_store_env(settings))
        reference_engine = create_engine(Settings(database_url=reference_db).read_model_url)
        reference = ReadModelRunner(reference_engine, store, all_projections())
        reference.setup()
        tasks = []
        for i, status in enumerate(("done", "review", "done")):
            task = Task(task_id=f"task_kafka{i:08d}", tenant_id="t1", fields={"title": f"T{i}"}, assigned_agent_id=None, status="todo")
            task.update({"status": status})
            tasks.append(task)
        store.save(*tasks)
        reference.catch_up()
        lists = NotificationReadModels(reference_engine)
        reads = NotificationService(store, lists)
        listed = lists.notifications_of(audience_of(READER), ListQuery(limit=10)).data
        reads.mark_read(READER, listed[0]["id"])
        reads.mark_all_read(READER, up_to=listed[-1]["position"])
        reference.catch_up()
        expected = _snapshot(reference_engine)
        assert len(expected["rm_notifications"]) == 3 and len(expected["rm_notification_reads"]) == 1
        assert len(expected["rm_notification_watermarks"]) == 1

        stop = threading.Event()
        relay = build_relay(settings)
        relay_thread = threading.Thread(target=relay.run, args=(stop.is_set,), daemon=True)
        relay_thread.start()
        try:
            projector = build_kafka_projector(settings)
            deadline = time.monotonic() + 60
            while _snapshot(projector.engine) != expected:
                assert time.monotonic() < deadline, f"never matched: {_snapshot(projector.engine)}"
                projector.poll_once(timeout_ms=200)
            projector.close()
        finally:
            stop.set()
            relay_thread.join(timeout=15)
            relay.close()
            store.close()
            reference_engine.dispose()
