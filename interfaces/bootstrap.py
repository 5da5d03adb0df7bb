"""The composition root: reads settings, builds adapters, wires them into the use cases.
Nothing else in the code base imports ``infra``."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import falcon.asgi

from application.agents import AgentService
from application.api_keys import ApiKeyService, generate_key
from application.environments import EnvironmentService
from application.runtime import SessionRuntime, TurnDispatcher
from application.relay import LeaseLost, Relay
from application.session_log import SessionLog
from application.sessions import SessionService
from infra.event_store import EventStore, PublishedEventDecoder, event_store_env
from infra.kafka import KafkaPublisher, all_topics, event_consumer, subscribe
from infra.pg_changes import PostgresChangeFeed
from infra.pg_relay import RelayLease
from infra.providers.unconfigured import UnconfiguredProvider
from infra.settings import Settings, SettingsError
from interfaces.http.app import create_app
from interfaces.http.common import Services
from interfaces.http.live import LiveHub
from projections.kafka_runner import KafkaProjector
from projections.queries import ReadModels
from projections.resources import all_projections
from projections.runner import ProjectionRunner, create_engine

log = logging.getLogger("agentry")

__all__ = ["Platform", "Settings", "SettingsError", "build", "build_kafka_projector", "build_relay", "load_settings"]


def load_settings() -> Settings:
    """Settings from the ``AGENTRY_…`` environment (the CLI's only way in to them)."""
    return Settings.from_env()


@dataclass
class Platform:
    settings: Settings
    store: EventStore
    projections: ProjectionRunner
    dispatcher: TurnDispatcher
    services: Services
    change_feed: PostgresChangeFeed | None = None

    def asgi_app(self) -> falcon.asgi.App:
        return create_app(self.services)

    def start(self) -> None:
        if self.settings.projections_in_process:
            self.start_projections()
        elif self.change_feed is not None:
            self.change_feed.start()
        self.ensure_admin_key()
        self.resume_interrupted_turns()

    def start_projections(self) -> None:
        """Catch up, then follow the log (woken across processes on PostgreSQL)."""
        self.projections.catch_up()
        self.projections.start()
        if self.change_feed is not None:
            self.change_feed.start()

    def resume_interrupted_turns(self) -> None:
        """A turn cut short by a stop left its session ``running``; take it up again."""
        for session_id in self.services.read_models.running_session_ids():
            self.dispatcher.submit(session_id)

    def close(self) -> None:
        if self.change_feed is not None:
            self.change_feed.stop()
        self.projections.stop()
        self.dispatcher.shutdown()
        self.store.close()
        log.info("agentry stopped cleanly")

    def ensure_admin_key(self) -> None:
        """A bootstrap key from the environment is recorded (hashed). Without one, an
        embedded server writes a fresh admin key to a 0600 file on first start, so the
        plaintext never appears in a log line."""
        api_keys = self.services.api_keys
        if self.settings.bootstrap_api_key:
            api_keys.issue(self.settings.bootstrap_api_key, name="bootstrap")
            return
        if self.settings.uses_postgres:
            return
        key_file = self.settings.data_dir / "admin-api-key"
        if not key_file.exists():
            key = generate_key()
            api_keys.issue(key, name="embedded-admin")
            _write_private(key_file, key + "\n")
            log.info("created an admin API key; read it from %s", key_file.resolve())
        else:
            log.info("admin API key is in %s", key_file.resolve())


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)


def build(settings: Settings | None = None) -> Platform:
    settings = settings or Settings.from_env()
    if settings.database_url and not settings.uses_postgres:
        raise SettingsError(
            "AGENTRY_DATABASE_URL must be a postgresql:// URL (leave it unset for the embedded SQLite store)"
        )
    store = EventStore(event_store_env(settings))
    engine = create_engine(settings.read_model_url)
    projections = ProjectionRunner(engine, store, all_projections())
    projections.setup()
    live = LiveHub()
    store.add_listener(live)
    store.add_listener(projections)
    change_feed = None
    if settings.uses_postgres:
        # Writes made by other processes (API replicas, workers) wake this one's tails too.
        change_feed = PostgresChangeFeed(
            settings.postgres.conninfo, store.change_channel, store, [live, projections]
        )

    agents = AgentService(store)
    environments = EnvironmentService(store)
    runtime = SessionRuntime(store, UnconfiguredProvider())
    dispatcher = TurnDispatcher(runtime, workers=settings.runtime_workers)
    sessions = SessionService(store, agents, environments, on_user_turn=dispatcher.submit)
    services = Services(
        agents=agents,
        environments=environments,
        sessions=sessions,
        api_keys=ApiKeyService(store),
        read_models=ReadModels(engine),
        live=live,
        wait_for_projections=projections.wait_for if settings.projections_in_process else _no_wait,
        session_log=SessionLog(store),
    )
    return Platform(settings, store, projections, dispatcher, services, change_feed)


def _no_wait(position: int | None, timeout: float) -> bool:
    """Projections run in other processes: list reads are eventually consistent."""
    return True


def _require_kafka(settings: Settings, command: str) -> None:
    if not settings.uses_postgres:
        raise SettingsError(f"`agentry {command}` needs AGENTRY_DATABASE_URL (PostgreSQL)")
    if not settings.kafka_bootstrap_servers:
        raise SettingsError(f"`agentry {command}` needs AGENTRY_KAFKA_BOOTSTRAP_SERVERS")


@dataclass
class RelayProcess:
    relay: Relay
    lease: RelayLease
    publisher: KafkaPublisher
    store: EventStore
    change_feed: PostgresChangeFeed

    def run(self, should_stop: Callable[[], bool]) -> None:
        self.change_feed.start()
        while self.lease.acquire(should_stop):
            try:
                self.relay.run(should_stop)
                return
            except LeaseLost as lost:
                # Another relay may be active now: stand by again rather than publish beside it.
                log.warning("%s; standing by", lost)
                self.lease.release()

    def close(self) -> None:
        self.change_feed.stop()
        self.publisher.close()
        self.lease.close()
        self.store.close()


def build_relay(settings: Settings) -> RelayProcess:
    _require_kafka(settings, "relay")
    store = EventStore(event_store_env(settings))
    changed = threading.Event()
    wake = _WakeOnChange(changed)
    feed = PostgresChangeFeed(settings.postgres.conninfo, store.change_channel, store, [wake])
    lease = RelayLease(settings.postgres.conninfo)
    publisher = KafkaPublisher(settings.kafka_bootstrap_servers, all_topics(settings.kafka_topic_prefix))
    relay = Relay(store, publisher, lease, wake.wait, topic_prefix=settings.kafka_topic_prefix)
    return RelayProcess(relay, lease, publisher, store, feed)


class _WakeOnChange:
    def __init__(self, event: threading.Event) -> None:
        self._event = event

    def streams_changed(self, stream_ids: object, notification_id: int = 0) -> None:
        self._event.set()

    def wait(self, timeout: float) -> None:
        self._event.wait(timeout)
        self._event.clear()


def build_kafka_projector(settings: Settings) -> KafkaProjector:
    _require_kafka(settings, "project --from kafka")
    engine = create_engine(settings.read_model_url)
    consumer = event_consumer(settings.kafka_bootstrap_servers, settings.kafka_projector_group)
    # The store is read only for events published without their state (too large for Kafka).
    decoder = PublishedEventDecoder(EventStore(event_store_env(settings)))
    projector = KafkaProjector(engine, consumer, settings.kafka_projector_group, decoder, all_projections())
    projector.setup()
    topics = [f"{settings.kafka_topic_prefix}.{name}" for name in ("agents", "environments", "sessions")]
    subscribe(consumer, topics, projector.seek_to_stored)
    return projector
