"""The Falcon ASGI application factory: routes, auth and error handling."""

from __future__ import annotations

from typing import Any

import falcon
import falcon.asgi
import falcon.media
import orjson

from application.api_keys import ApiKeyService
from application.errors import Unauthorized
from interfaces.http import docs, errors
from interfaces.http.common import ReadYourWrites, Services, run
from interfaces.http.guards import RefuseUnstorableText
from interfaces.http.request_ids import new_request_id
from interfaces.http.resources.agents import AgentsResource
from interfaces.http.resources.environment_keys import EnvironmentKeysResource
from interfaces.http.resources.environments import EnvironmentsResource
from interfaces.http.resources.model_cards import ModelCardsResource
from interfaces.http.resources.session_events import SessionEventsResource
from interfaces.http.resources.session_resources import SessionResourcesResource
from interfaces.http.resources.sessions import SessionsResource

PUBLIC_PATHS = frozenset({"/healthz", "/openapi.json", "/asyncapi.json", "/docs", "/docs/events"})


class RequestIds:
    async def process_request(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        req.context.request_id = new_request_id()

    async def process_response(self, req, resp, resource, req_succeeded) -> None:  # noqa: ANN001
        resp.set_header("request-id", req.context.request_id)


class ApiKeyAuth:
    """``x-api-key`` (as the anthropic SDK sends it) or ``Authorization: Bearer`` (openai SDK)."""

    def __init__(self, api_keys: ApiKeyService) -> None:
        self._api_keys = api_keys

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
        resp.media = {"status": "ok"}


def create_app(services: Services) -> falcon.asgi.App:
    middleware: list[Any] = [RequestIds(), RefuseUnstorableText(), ApiKeyAuth(services.api_keys)]
    app = falcon.asgi.App(middleware=middleware)
    app.req_options.strip_url_path_trailing_slash = True
    app.resp_options.media_handlers[falcon.MEDIA_JSON] = falcon.media.JSONHandler(
        dumps=orjson.dumps, loads=orjson.loads
    )
    errors.install(app)
    written = ReadYourWrites(services.wait_for_projections)
    lists = services.read_models
    app.add_route("/healthz", Health())
    docs.add_routes(app)
    _add_family(app, "/v1/agents/{agent_id}", AgentsResource(services.agents, lists, written), "archive", "versions")
    environments = EnvironmentsResource(services.environments, lists, written)
    _add_family(app, "/v1/environments/{environment_id}", environments, "archive")
    keys = EnvironmentKeysResource(services.environment_keys, lists, written)
    _add_family(app, "/v1/environments/{environment_id}/keys/{key_id}", keys)
    _add_family(app, "/v1/sessions/{session_id}", SessionsResource(services.sessions, lists, written), "archive")
    _add_family(app, "/v1/model_cards/{model_card_id}", ModelCardsResource(services.model_cards, lists, written))
    events = SessionEventsResource(services.sessions, services.session_log, services.live)
    app.add_route("/v1/sessions/{session_id}/events", events)
    app.add_route("/v1/sessions/{session_id}/events/stream", events, suffix="stream")
    resources = SessionResourcesResource(services.sessions, lists, written)
    _add_family(app, "/v1/sessions/{session_id}/resources/{resource_id}", resources)
    return app


def _add_family(app: falcon.asgi.App, item_path: str, resource: object, *actions: str) -> None:
    """One resource serves a family: the collection, the item and its actions by suffix."""
    app.add_route(item_path.rsplit("/", 1)[0], resource)
    app.add_route(item_path, resource, suffix="item")
    for action in actions:
        app.add_route(f"{item_path}/{action}", resource, suffix=action)
