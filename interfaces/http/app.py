"""The Falcon ASGI application factory: routes, auth and error handling."""

from __future__ import annotations

from typing import Any

import falcon
import falcon.asgi
import falcon.media
import orjson

from application.api_keys import ApiKeyService
from application.environment_keys import EnvironmentKeyService, key_id_of
from application.errors import Unauthorized
from application.people import PeopleService
from application.tenancy import WORKSPACE_HEADER, Principal, select_workspace
from application.work_queue import PLATFORM_KEY_PREFIX, WorkQueue
from application.work_queue import TOKEN_PREFIX as WORK_TOKEN_PREFIX
from application.workspaces import WorkspaceService
from interfaces.http import console, docs, errors
from interfaces.http.common import ReadYourWrites, Services, run
from interfaces.http.guards import RefuseUnstorableText
from interfaces.http.operations import METRICS, OPERATIONS_PATHS, AccessLog, Operations
from interfaces.http.operations import add_routes as add_operations_routes
from interfaces.http.rate_limiting import RateLimiting
from interfaces.http.request_ids import new_request_id
from interfaces.http.resources.activity import add_activity_routes
from interfaces.http.resources.agents import AgentsResource
from interfaces.http.resources.chat_completions import ChatCompletionsResource
from interfaces.http.resources.environment_keys import EnvironmentKeysResource
from interfaces.http.resources.environments import EnvironmentsResource
from interfaces.http.resources.files import FilesResource
from interfaces.http.resources.knowledge import KnowledgeBasesResource
from interfaces.http.resources.memory import add_memory_routes
from interfaces.http.resources.model_cards import ModelCardsResource
from interfaces.http.resources.models import ModelsResource
from interfaces.http.resources.notifications import DashboardResource, NotificationsResource
from interfaces.http.resources.organization import ApiKeysResource, WorkspacesResource
from interfaces.http.resources.people import PUBLIC_AUTH_PATHS, add_people_routes
from interfaces.http.resources.rate_limits import OrganizationRateLimitsResource, WorkspaceRateLimitsResource
from interfaces.http.resources.search import add_search_routes
from interfaces.http.resources.session_events import SessionEventsResource
from interfaces.http.resources.session_resources import SessionResourcesResource
from interfaces.http.resources.sessions import SessionsResource
from interfaces.http.resources.skills import add_skill_routes
from interfaces.http.resources.tasks import (
    MentionsResource,
    TaskCommentsResource,
    TasksResource,
    boards_resource,
    departments_resource,
)
from interfaces.http.resources.usage import add_usage_routes
from interfaces.http.resources.vaults import VaultCredentialsResource, VaultsResource
from interfaces.http.resources.webhooks import add_webhook_routes
from interfaces.http.resources.work import CloudWorkResource, WorkResource
from interfaces.http.worker_access import WorkerAccess

PUBLIC_PATHS = (
    frozenset({"/healthz", "/openapi.json", "/asyncapi.json", "/docs", "/docs/events"}) | PUBLIC_AUTH_PATHS | OPERATIONS_PATHS
)


# Every JWT starts with its base64url header, ``{"`` → ``eyJ``.
LOGIN_TOKEN_PREFIX = "eyJ"


class RequestIds:
    async def process_request(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        req.context.request_id = new_request_id()

    async def process_response(self, req, resp, resource, req_succeeded) -> None:  # noqa: ANN001
        # falcon refuses some requests (an unknown method) before any process_request ran
        request_id = getattr(req.context, "request_id", None)
        if request_id is None:
            request_id = req.context.request_id = new_request_id()
        resp.set_header("request-id", request_id)


class ApiKeyAuth:
    """``x-api-key`` (as the anthropic SDK sends it) or ``Authorization: Bearer`` (openai SDK).
    The environment worker's credentials come as a Bearer too and are told apart by their
    form: an environment key, or a work item's token. Which routes take which is the
    resources' business (``interfaces.http.common``)."""

    def __init__(
        self,
        api_keys: ApiKeyService,
        environment_keys: EnvironmentKeyService,
        work: WorkQueue,
        people: PeopleService,
        workspaces: WorkspaceService,
        metrics_require_key: bool = False,
    ) -> None:
        self._public = PUBLIC_PATHS - {METRICS} if metrics_require_key else PUBLIC_PATHS
        self._api_keys = api_keys
        self._environment_keys = environment_keys
        self._work = work
        self._people = people
        self._workspaces = workspaces

    async def process_request(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        if (
            req.path in self._public
            or req.path.startswith(docs.ASSETS_PREFIX)
            or console.is_public(req.path)
            or req.method == "OPTIONS"
        ):
            return
        key = req.get_header("x-api-key")
        if not key:
            authorization = req.get_header("Authorization") or ""
            if authorization.lower().startswith("bearer "):
                key = authorization[7:].strip()
        if not key:
            raise Unauthorized("missing API key: send it in the x-api-key header")
        if key.startswith(WORK_TOKEN_PREFIX):
            req.context.principal = await run(self._work.authenticate, key)
        elif key.startswith(PLATFORM_KEY_PREFIX):
            req.context.principal = await run(self._work.authenticate_platform, key)
        elif key_id_of(key) is not None:
            req.context.principal = await run(self._environment_keys.authenticate, key)
        # -- people: a login token (a JWT; API keys start with "agentry-") ------------------
        elif key.startswith(LOGIN_TOKEN_PREFIX):
            workspace = req.get_header("anthropic-workspace-id") or None
            req.context.principal = await run(self._people.authenticate, key, workspace)
        # -- end people ----------------------------------------------------------------------
        else:
            req.context.principal = await run(self._api_keys.authenticate, key)
        # -- workspace selection (workers' credentials keep their tenant) --
        who, requested = req.context.principal, req.get_header(WORKSPACE_HEADER)
        if isinstance(who, Principal) and requested and requested != who.tenant_id:
            req.context.principal = await run(select_workspace, who, requested, self._workspaces.selectable)


class Health:
    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        resp.media = {"status": "ok"}


def create_app(services: Services) -> falcon.asgi.App:
    operations = services.operations or Operations()
    access_log = AccessLog(operations.telemetry)
    middleware: list[Any] = [
        access_log,
        RequestIds(),
        RefuseUnstorableText(),
        ApiKeyAuth(
            services.api_keys, services.environment_keys, services.work, services.people, services.workspaces,
            operations.metrics_require_key,
        ),  # fmt: skip
        RateLimiting(services.rate_limiter, services.rate_limits, PUBLIC_AUTH_PATHS),
    ]
    app = falcon.asgi.App(middleware=middleware)
    app.req_options.strip_url_path_trailing_slash = True
    app.resp_options.media_handlers[falcon.MEDIA_JSON] = falcon.media.JSONHandler(
        dumps=orjson.dumps, loads=orjson.loads
    )
    errors.install(app)
    written = ReadYourWrites(services.wait_for_projections)
    lists = services.read_models
    access_log.routes_of(app)
    app.add_route("/healthz", Health())
    add_operations_routes(app, operations)
    docs.add_routes(app)
    console.add_routes(app)
    _add_family(app, "/v1/agents/{agent_id}", AgentsResource(services.agents, lists, written), "archive", "versions")
    environments = EnvironmentsResource(services.environments, lists, written)
    _add_family(app, "/v1/environments/{environment_id}", environments, "archive")
    keys = EnvironmentKeysResource(services.environment_keys, lists, written)
    _add_family(app, "/v1/environments/{environment_id}/keys/{key_id}", keys)
    work = WorkResource(services.work, lists, written)
    _add_family(app, "/v1/environments/{environment_id}/work/{work_id}", work, "ack", "heartbeat", "stop")
    app.add_route("/v1/environments/{environment_id}/work/poll", work, suffix="poll")
    app.add_route("/v1/environments/{environment_id}/work/stats", work, suffix="stats")
    app.add_route("/v1/work/poll", CloudWorkResource(services.work))
    _add_family(app, "/v1/sessions/{session_id}", SessionsResource(services.sessions, lists, written), "archive")
    _add_family(app, "/v1/model_cards/{model_card_id}", ModelCardsResource(services.model_cards, lists, written))
    models = ModelsResource(services.model_catalog)
    app.add_route("/v1/models", models)
    app.add_route("/v1/models/{model_id:path}", models, suffix="item")
    events = SessionEventsResource(services.sessions, services.session_log, services.live)
    app.add_route("/v1/sessions/{session_id}/events", events)
    app.add_route("/v1/sessions/{session_id}/events/stream", events, suffix="stream")
    resources = SessionResourcesResource(services.sessions, lists, written)
    _add_family(app, "/v1/sessions/{session_id}/resources/{resource_id}", resources)
    app.add_route(
        "/v1/chat/completions", ChatCompletionsResource(services.chat_completions, services.session_log, services.live)
    )
    _add_family(app, "/v1/vaults/{vault_id}", VaultsResource(services.vaults, lists, written), "archive")
    credentials = VaultCredentialsResource(services.vaults, lists, written)
    _add_family(app, "/v1/vaults/{vault_id}/credentials/{credential_id}", credentials, "archive", "mcp_oauth_validate")
    app.add_route("/v1/organizations/rate_limits", OrganizationRateLimitsResource(services.rate_limits))
    workspace_limits = WorkspaceRateLimitsResource(services.rate_limits)
    _add_family(app, "/v1/organizations/workspaces/{workspace_id}/rate_limits/{rate_limit_id}", workspace_limits)
    add_people_routes(app, services.people, services.people_lists, written)
    add_usage_routes(app, services.usage_reports)
    # -- the organization: workspaces and API keys --
    workspaces = WorkspacesResource(services.workspaces, lists, written)
    _add_family(app, "/v1/organizations/workspaces/{workspace_id}", workspaces, "archive")
    _add_family(app, "/v1/organizations/api_keys/{api_key_id}", ApiKeysResource(services.api_keys, lists, written))
    # -- tasks, boards, departments --
    _add_family(app, "/v1/tasks/{task_id}", TasksResource(services.tasks, lists, written), "archive", "execute", "approve", "reject")
    app.add_route("/v1/tasks/{task_id}/comments", TaskCommentsResource(services.tasks, lists, written))
    app.add_route("/v1/mentions/search", MentionsResource(services.tasks))
    _add_family(app, "/v1/boards/{board_id}", boards_resource(services.boards, lists, written), "archive")
    _add_family(app, "/v1/departments/{department_id}", departments_resource(services.departments, lists, written), "archive")
    add_activity_routes(app, services.activity)
    add_webhook_routes(app, services.webhooks, services.webhook_lists, written)
    worker_access = WorkerAccess(services.sessions)
    add_memory_routes(app, services.memory, services.memory_reads, written, worker_access)
    # -- notifications and the dashboard --
    notifications = NotificationsResource(services.notifications, services.notification_lists, services.notification_feed, written)
    _add_family(app, "/v1/notifications/{notification_id}", notifications, "read")
    for action in ("unread_count", "read_all", "stream"):
        app.add_route(f"/v1/notifications/{action}", notifications, suffix=action)
    app.add_route("/v1/dashboard/stats", DashboardResource(services.dashboard), suffix="stats")
    add_search_routes(app, services.search)
    add_skill_routes(app, services.skills, services.skill_lists, written, worker_access)
    knowledge = KnowledgeBasesResource(services.knowledge, services.knowledge_search, written)
    _add_family(app, "/v1/knowledge_bases/{knowledge_base_id}", knowledge, "documents", "search")
    app.add_route("/v1/knowledge_bases/{knowledge_base_id}/documents/{document_id}", knowledge, suffix="document")
    files = FilesResource(services.files, services.file_lists, written, services.file_max_bytes, worker_access)
    _add_family(app, "/v1/files/{file_id}", files, "content")
    return app


def _add_family(app: falcon.asgi.App, item_path: str, resource: object, *actions: str) -> None:
    """One resource serves a family: the collection, the item and its actions by suffix."""
    app.add_route(item_path.rsplit("/", 1)[0], resource)
    app.add_route(item_path, resource, suffix="item")
    for action in actions:
        app.add_route(f"{item_path}/{action}", resource, suffix=action)
