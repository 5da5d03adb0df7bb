"""The long-running processes the commands start — the API process (`agentry serve`, and the
e2e servers) and the relay (`agentry relay`) — with their start-up and shut-down order.
The composition root builds their parts; this module only runs them."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import falcon.asgi

from application.api_keys import PrivateFile
from application.relay import Lease, Relay, run_while_leased
from application.runtime import TurnDispatcher
from interfaces.http.app import create_app
from interfaces.http.common import Services

log = logging.getLogger("agentry")


@dataclass
class ApiProcess:
    """The API with, unless they run elsewhere, the projections and the session runtime."""

    services: Services
    store: Any  # the event store adapter: closed last
    projections: Any  # the read-model runner
    dispatcher: TurnDispatcher
    change_feed: Any | None  # wakes this process for writes of others (PostgreSQL)
    projections_in_process: bool
    bootstrap_api_key: str
    admin_key_file: PrivateFile | None
    resources: list[Any] = field(default_factory=list)  # closed after the store (the cipher's key table)

    def asgi_app(self) -> falcon.asgi.App:
        return create_app(self.services)

    def start(self) -> None:
        if self.projections_in_process:
            self.start_projections()
        elif self.change_feed is not None:
            self.change_feed.start()
        self.services.api_keys.ensure_admin_key(self.bootstrap_api_key, self.admin_key_file)
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
        for resource in self.resources:
            resource.close()
        log.info("agentry stopped cleanly")


@dataclass
class RelayProcess:
    relay: Relay
    lease: Lease
    change_feed: Any
    resources: list[Any]  # closed in order after the feed stops

    def run(self, should_stop: Callable[[], bool]) -> None:
        self.change_feed.start()
        run_while_leased(self.relay, self.lease, should_stop)

    def close(self) -> None:
        self.change_feed.stop()
        for resource in self.resources:
            resource.close()
