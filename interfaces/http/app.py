"""The Falcon ASGI application factory: routes, auth and error handling."""

from __future__ import annotations

import secrets

import falcon
import falcon.asgi

from application.errors import Unauthorized
from interfaces.http import docs, errors
from interfaces.http.common import Services, run, send
from interfaces.http.resources.agents import Agent, AgentArchive, Agents, AgentVersions
from interfaces.http.resources.environments import Environment, EnvironmentArchive, Environments
from interfaces.http.resources.session_events import SessionEvents, SessionEventStream
from interfaces.http.resources.sessions import Session, SessionArchive, Sessions

PUBLIC_PATHS = frozenset({"/healthz", "/openapi.json", "/asyncapi.json", "/docs", "/docs/events"})


class RequestIds:
    async def process_request(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        req.context.request_id = "req_" + secrets.token_hex(12)

    async def process_response(self, req, resp, resource, req_succeeded) -> None:  # noqa: ANN001
        resp.set_header("request-id", req.context.request_id)


class ApiKeyAuth:
    """``x-api-key`` (as the anthropic SDK sends it) or ``Authorization: Bearer`` (openai SDK)."""

    def __init__(self, services: Services) -> None:
        self._api_keys = services.api_keys

    async def process_request(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        if req.path in PUBLIC_PATHS or req.path.startswith(docs.ASSETS_PREFIX) or req.method == "OPTIONS":
            return
        key = req.get_header("x-api-key")
        if not key:
            authorization = req.get_header("Authorization") or ""
            if authorization.lower().startswith("bearer "):
                key = authorization[7:].strip()
        if not key:
            raise Unauthorized("missing API key: send it in the x-api-key header")
        req.context.principal = await run(self._api_keys.authenticate, key)


class Health:
    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        send(resp, {"status": "ok"})


def create_app(services: Services) -> falcon.asgi.App:
    app = falcon.asgi.App(middleware=[RequestIds(), ApiKeyAuth(services)])
    app.req_options.strip_url_path_trailing_slash = True
    errors.install(app)
    app.add_route("/healthz", Health())
    docs.add_routes(app)
    app.add_route("/v1/agents", Agents(services))
    app.add_route("/v1/agents/{agent_id}", Agent(services))
    app.add_route("/v1/agents/{agent_id}/archive", AgentArchive(services))
    app.add_route("/v1/agents/{agent_id}/versions", AgentVersions(services))
    app.add_route("/v1/environments", Environments(services))
    app.add_route("/v1/environments/{environment_id}", Environment(services))
    app.add_route("/v1/environments/{environment_id}/archive", EnvironmentArchive(services))
    app.add_route("/v1/sessions", Sessions(services))
    app.add_route("/v1/sessions/{session_id}", Session(services))
    app.add_route("/v1/sessions/{session_id}/archive", SessionArchive(services))
    app.add_route("/v1/sessions/{session_id}/events", SessionEvents(services))
    app.add_route("/v1/sessions/{session_id}/events/stream", SessionEventStream(services))
    return app
