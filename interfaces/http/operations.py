"""The operations surface of an API process: probes (``/livez``, ``/readyz``), ``/metrics``,
and one access-log line and one measurement per request.

Probes and metrics are unauthenticated (``PUBLIC_PATHS``), except ``/metrics`` when
``AGENTRY_METRICS_REQUIRE_KEY`` is set. ``/readyz`` answers 200 or 503 with the checks it ran,
each by name; a 503 is also an error envelope, so clients that read envelopes read it too.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import falcon
import falcon.asgi
import orjson
from pydantic import Field

from application.telemetry import NoTelemetry, Telemetry
from interfaces.http.common import run
from interfaces.http.errors import envelope, write_error
from interfaces.http.responses import Described

log = logging.getLogger("agentry.access")

LIVEZ, READYZ, METRICS = "/livez", "/readyz", "/metrics"
OPERATIONS_PATHS = frozenset({LIVEZ, READYZ, METRICS})

# Methods named in metrics as they are; anything else is "other" (bounded label values).
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# A request no route matched: one label value, never the path that was asked for.
UNMATCHED = "unmatched"

DEFAULT_READY_MAX_LAG = 1000


class Live(Described):
    status: Literal["ok"]


class Ready(Described):
    status: Literal["ready", "not_ready"]
    checks: dict[str, dict[str, Any]] = Field(
        description="each check by name (`event_store`, `projections`, `runtime` when turns run in this process), "
        "each with `ok` and what it found"
    )


# The text format, as the document describes /metrics.
METRICS_CONTENT = {"text/plain": {"type": "string"}}


@dataclass
class Readiness:
    """What ``/readyz`` checks: the store answers a trivial read (the log's head); each
    projection is at most ``max_lag`` events behind it; the turn runtime, when it runs in this
    process, still takes turns."""

    head: Callable[[], int]
    positions: Callable[[], dict[str, int]] | None = None
    max_lag: int = DEFAULT_READY_MAX_LAG
    turns: Any | None = None  # a TurnDispatcher (``accepting``, ``driving``)

    def check(self) -> tuple[bool, dict[str, Any]]:
        checks: dict[str, Any] = {}
        try:
            head = self.head()
        except Exception as error:
            log.warning("readiness: the event store did not answer (%s)", type(error).__name__)
            checks["event_store"] = {"ok": False, "error": f"the event store did not answer ({type(error).__name__})"}
            return False, checks
        checks["event_store"] = {"ok": True, "head": head}
        if self.positions is not None:
            try:
                positions = self.positions()
            except Exception as error:
                log.warning("readiness: projection positions could not be read (%s)", type(error).__name__)
                checks["projections"] = {"ok": False, "error": f"positions could not be read ({type(error).__name__})"}
            else:
                behind = {name: max(head - position, 0) for name, position in sorted(positions.items())}
                late = sorted(name for name, lag in behind.items() if lag > self.max_lag)
                checks["projections"] = {"ok": not late, "max_lag": self.max_lag, "lag": behind, "behind": late}
        if self.turns is not None:
            checks["runtime"] = {"ok": bool(self.turns.accepting), "turns_running": int(self.turns.driving)}
        return all(check["ok"] for check in checks.values()), checks


@dataclass
class Operations:
    telemetry: Telemetry = field(default_factory=NoTelemetry)
    readiness: Readiness | None = None
    metrics_require_key: bool = False
    # ``serve --workers N``: the shared port reaches any of N processes, so /metrics there
    # would mix their counters; each serves them on AGENTRY_METRICS_PORT + its index instead.
    metrics_per_process: bool = False


class Livez:
    """The process answers: no I/O at all."""

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        resp.data = b'{"status":"ok"}'
        resp.content_type = falcon.MEDIA_JSON


class Readyz:
    def __init__(self, readiness: Readiness | None) -> None:
        self._readiness = readiness

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        ready, checks = True, dict[str, Any]()
        if self._readiness is not None:
            ready, checks = await run(self._readiness.check)
        body: dict[str, Any] = {"status": "ready" if ready else "not_ready", "checks": checks}
        if not ready:
            failing = ", ".join(name for name, check in checks.items() if not check["ok"])
            body = {**envelope(503, f"not ready: {failing}"), **body, "request_id": req.context.request_id}
            resp.status = 503
        resp.data = orjson.dumps(body)
        resp.content_type = falcon.MEDIA_JSON


class Metrics:
    def __init__(self, telemetry: Telemetry, per_process: bool = False) -> None:
        self._telemetry = telemetry
        self._per_process = per_process

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        if self._per_process:
            write_error(
                req, resp, 404,
                "with serve --workers N each API process serves its metrics on a port of its own: "
                "AGENTRY_METRICS_PORT + its index (0 … N-1); set AGENTRY_METRICS_PORT and scrape each",
            )  # fmt: skip
            return
        # Scrape-time collectors read the database: off the event loop.
        data, content_type = await run(self._telemetry.exposition)
        resp.data = data
        resp.content_type = content_type


class AccessLog:
    """First in the middleware: times the whole request, and writes its line once every other
    middleware answered (request id set, principal known)."""

    def __init__(self, telemetry: Telemetry) -> None:
        self._telemetry = telemetry
        self._router: Any = None

    def routes_of(self, app: falcon.asgi.App) -> None:
        """A request refused before routing (no key, too large) has no template yet; the app's
        router names it, so a 401 is counted under its route rather than as unmatched."""
        self._router = app._router  # noqa: SLF001 (falcon has no public accessor)

    def _route(self, req: falcon.asgi.Request) -> str:
        if req.uri_template:
            return str(req.uri_template)
        if self._router is not None:
            try:
                found = self._router.find(req.path, req)
            except Exception:
                found = None
            if found is not None and found[3]:
                return str(found[3])
        return UNMATCHED

    async def process_request(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        req.context.started = time.perf_counter()

    async def process_response(self, req, resp, resource, req_succeeded) -> None:  # noqa: ANN001
        started = getattr(req.context, "started", None)
        seconds = time.perf_counter() - started if started is not None else 0.0
        method = req.method if req.method in KNOWN_METHODS else "other"
        route = self._route(req)
        status = resp.status_code
        self._telemetry.request(method, route, status, seconds)
        fields: dict[str, Any] = {
            "method": method,
            "route": route,
            "status": status,
            "duration_ms": round(seconds * 1000, 2),
            "request_id": getattr(req.context, "request_id", None),
        }
        tenant = getattr(getattr(req.context, "principal", None), "tenant_id", None)
        if tenant:
            fields["tenant"] = tenant
        log.info("%s %s %d", method, route, status, extra={"fields": fields})


def add_routes(app: falcon.asgi.App, operations: Operations) -> None:
    app.add_route(LIVEZ, Livez())
    app.add_route(READYZ, Readyz(operations.readiness))
    app.add_route(METRICS, Metrics(operations.telemetry, operations.metrics_per_process))
