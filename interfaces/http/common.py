"""Small helpers every resource uses: JSON in and out, blocking calls off the event loop,
query parameters, the list query, read-your-writes."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import falcon
import orjson
from pydantic import BaseModel

from application.agents import AgentService
from application.api_keys import ApiKeyService
from application.boards import BoardService, DepartmentService
from application.chat_completions import ChatCompletions
from application.commands import Written
from application.environment_keys import EnvironmentCredential, EnvironmentKeyService
from application.environments import EnvironmentService
from application.errors import Forbidden
from application.files import FileService
from application.global_search import GlobalSearch
from application.knowledge import KnowledgeService
from application.memory import MemoryService
from application.model_cards import ModelCardService
from application.model_catalog import ModelCatalog
from application.notifications import NotificationService
from application.people import PeopleService
from application.ports import SemanticSearch
from application.rate_limit_config import RateLimitConfig
from application.rate_limits import RateLimiter
from application.session_log import SessionLog
from application.sessions import PLATFORM_WORKER_ROLE, WORKER_ROLE, SessionService
from application.skills import SkillService
from application.tasks import TaskService
from application.tenancy import Principal
from application.vaults import VaultService
from application.views import TIME_BOUNDS, iso
from application.webhooks import WebhookService
from application.work_queue import PlatformWorker, WorkCredential, Worker, WorkQueue
from application.workspaces import WorkspaceService
from interfaces.http.limits import MAX_BODY_BYTES
from interfaces.http.live import LiveHub
from interfaces.http.notification_feed import NotificationFeed
from projections.activity import ActivityReadModels
from projections.dashboard import DashboardReadModels
from projections.files import FileReadModels
from projections.knowledge_search import KnowledgeSearch
from projections.memory import MemoryReadModels
from projections.notifications import NotificationReadModels
from projections.people import PeopleReadModels
from projections.queries import ListQuery, ReadModels
from projections.skills import SkillReadModels
from projections.usage import UsageReports
from projections.vectors import VectorProjection
from projections.webhooks import WebhookReadModels

M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")

MAX_JSON_DEPTH = 32
MAX_JSON_NODES = 200_000
READ_YOUR_WRITES_SECONDS = 5.0


@dataclass
class Services:
    agents: AgentService
    environments: EnvironmentService
    model_cards: ModelCardService
    sessions: SessionService
    api_keys: ApiKeyService
    read_models: ReadModels
    live: LiveHub
    wait_for_projections: Callable[[int | None, float], bool]
    session_log: SessionLog
    environment_keys: EnvironmentKeyService
    work: WorkQueue
    model_catalog: ModelCatalog
    chat_completions: ChatCompletions
    vaults: VaultService
    rate_limits: RateLimitConfig
    rate_limiter: RateLimiter
    people: PeopleService
    people_lists: PeopleReadModels
    workspaces: WorkspaceService
    tasks: TaskService
    boards: BoardService
    departments: DepartmentService
    activity: ActivityReadModels
    usage_reports: UsageReports
    webhooks: WebhookService
    webhook_lists: WebhookReadModels
    notifications: NotificationService
    notification_lists: NotificationReadModels
    notification_feed: NotificationFeed
    dashboard: DashboardReadModels
    search: GlobalSearch
    skills: SkillService
    skill_lists: SkillReadModels
    knowledge: KnowledgeService
    knowledge_search: KnowledgeSearch
    memory: MemoryService
    memory_reads: MemoryReadModels
    files: FileService
    file_lists: FileReadModels
    file_max_bytes: int
    # Probes, metrics and the access log (interfaces/http/operations.py); None: no-op metrics.
    operations: Any = None
    # Search by meaning, and the vector projection (its position, ``wait_for``: write, then search).
    semantic_search: SemanticSearch | None = None
    vectors: VectorProjection | None = None


async def run(function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Event-store and read-model calls block; keep them off the event loop."""
    return await asyncio.to_thread(function, *args, **kwargs)


class ReadYourWrites:
    """Waits (bounded) until list projections include a write a request just made, so a
    client that creates and then lists sees what it created."""

    def __init__(self, wait_for_projections: Callable[[int | None, float], bool]) -> None:
        self._wait = wait_for_projections

    async def answer(self, resp: falcon.asgi.Response, written: Written) -> None:
        if written.position is not None:
            await run(self._wait, written.position, READ_YOUR_WRITES_SECONDS)
        resp.media = written.view


def check_shape(body: Any) -> None:
    """Refuses JSON nested deeper than anything the API defines: such a document could be
    stored but never serialized or loaded again."""
    pending = [(body, 1)]
    nodes = 0
    while pending:
        value, depth = pending.pop()
        nodes += 1
        if depth > MAX_JSON_DEPTH:
            raise falcon.HTTPBadRequest(description=f"the JSON body is nested more than {MAX_JSON_DEPTH} levels deep")
        if nodes > MAX_JSON_NODES:
            raise falcon.HTTPBadRequest(description=f"the JSON body has more than {MAX_JSON_NODES} values")
        if isinstance(value, dict):
            pending.extend((item, depth + 1) for item in value.values())
        elif isinstance(value, list):
            pending.extend((item, depth + 1) for item in value)


def refuse_nul(body: Any) -> None:
    """Refuses a NUL character (``\\u0000``) in any text of the body, naming where:
    PostgreSQL text cannot hold one, and a read model holding it breaks every query that
    reads a field of that row's document (an agent's description broke ``agent:<name>``)."""
    pending: list[tuple[Any, tuple[str | int, ...]]] = [(body, ())]
    while pending:
        value, path = pending.pop()
        if isinstance(value, str):
            if "\x00" in value:
                _refuse_nul(path)
        elif isinstance(value, dict):
            for key, item in value.items():
                if "\x00" in key:
                    _refuse_nul((*path, key.replace("\x00", "\\u0000")))
                pending.append((item, (*path, key)))
        elif isinstance(value, list):
            pending.extend((item, (*path, index)) for index, item in enumerate(value))


def _refuse_nul(path: tuple[str | int, ...]) -> None:
    where = ".".join(str(part) for part in path) or "the body"
    raise falcon.HTTPBadRequest(description=f"{where}: text may not contain a NUL character (\\u0000)")


async def read_json(req: falcon.asgi.Request, optional: bool = False) -> Any:
    if req.content_length and req.content_length > MAX_BODY_BYTES:
        raise falcon.HTTPContentTooLarge(description="request body is larger than 8 MiB")
    raw = await req.stream.read(MAX_BODY_BYTES + 1)
    if len(raw) > MAX_BODY_BYTES:
        raise falcon.HTTPContentTooLarge(description="request body is larger than 8 MiB")
    if not raw.strip():
        if optional:
            return {}
        raise falcon.HTTPBadRequest(description="a JSON request body is required")
    media_type = (req.content_type or "").split(";", 1)[0].strip().lower()
    if media_type and media_type != "application/json" and not media_type.endswith("+json"):
        raise falcon.HTTPUnsupportedMediaType(description="send the request body as application/json")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise falcon.HTTPBadRequest(description="the request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise falcon.HTTPBadRequest(description="the request body must be a JSON object")
    check_shape(body)
    # JSON can carry a NUL only escaped: a body without the escape needs no second walk.
    if b"\\u0000" in raw:
        refuse_nul(body)
    return body


async def parse(req: falcon.asgi.Request, model: type[M], optional: bool = False) -> M:
    return model.model_validate(await read_json(req, optional))


def principal(req: falcon.asgi.Request) -> Principal:
    """The API key's principal. A worker's credential (an environment key, a work token) is
    refused here: it is good only on the routes that ask for it by name."""
    who = req.context.principal
    if not isinstance(who, Principal):
        raise Forbidden(f"{_noun(who)} is accepted only on its environment's work endpoints; use an API key")
    return who


def environment_credential(req: falcon.asgi.Request) -> EnvironmentCredential:
    """An environment key (the work queue's poll and list reject anything else)."""
    who = req.context.principal
    if not isinstance(who, EnvironmentCredential):
        raise Forbidden(f"this endpoint takes an environment key, not {_noun(who)}")
    return who


def worker_credential(req: falcon.asgi.Request) -> Worker:
    """An environment key, the work token of the item the route names, or an API key (an
    operator acting as a worker); the queue checks each against the route."""
    who = req.context.principal
    if not isinstance(who, EnvironmentCredential | WorkCredential | Principal):
        raise Forbidden(f"this endpoint does not take {_noun(who)}; Agentry's own workers act with each item's token")
    return who


def session_caller(req: falcon.asgi.Request, session_id: str) -> Principal:
    """An API key, or the work token of an item serving this session (its worker reads the
    session and its events and sends the tool results)."""
    who = req.context.principal
    if isinstance(who, WorkCredential):
        if who.session_id != session_id:
            raise Forbidden("this work token is for another session")
        role = PLATFORM_WORKER_ROLE if who.hosting == "cloud" else WORKER_ROLE
        return Principal(who.tenant_id, who.work_id, role=role)
    return principal(req)


def _noun(who: object) -> str:
    if isinstance(who, EnvironmentCredential):
        return "an environment key"
    if isinstance(who, WorkCredential):
        return "a work item's token"
    if isinstance(who, PlatformWorker):
        return "the sandbox worker key"
    return "an API key"


def int_param(req: falcon.asgi.Request, name: str, default: int | None, low: int, high: int) -> int | None:
    raw = req.get_param(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise falcon.HTTPBadRequest(description=f"query parameter {name} must be an integer") from None
    if not low <= value <= high:
        raise falcon.HTTPBadRequest(description=f"query parameter {name} must be between {low} and {high}")
    return value


def bool_param(req: falcon.asgi.Request, name: str, default: bool = False) -> bool:
    raw = req.get_param(name)
    if raw is None:
        return default
    if raw.lower() in ("true", "1", "yes"):
        return True
    if raw.lower() in ("false", "0", "no"):
        return False
    raise falcon.HTTPBadRequest(description=f"query parameter {name} must be true or false")


def choice_param(req: falcon.asgi.Request, name: str, choices: tuple[str, ...], default: str) -> str:
    return optional_choice_param(req, name, choices) or default


def optional_choice_param(req: falcon.asgi.Request, name: str, choices: tuple[str, ...]) -> str | None:
    """The parameter, if given, checked against ``choices`` (a filter that may be absent)."""
    raw = req.get_param(name) or None
    if raw is not None and raw not in choices:
        raise falcon.HTTPBadRequest(description=f"query parameter {name} must be one of {', '.join(choices)}")
    return raw


def limit_param(req: falcon.asgi.Request, default: int = 20, most: int = 1000) -> int:
    """Larger limits are clamped, not refused (the SDK's own helpers ask for 1000)."""
    return min(int_param(req, "limit", default, 1, 2**31) or default, most)


def list_params(req: falcon.asgi.Request, name: str) -> list[str]:
    """Repeated (``a=1&a=2``) and bracketed (``a[]=1``) forms, as HTTP clients send them."""
    values = req.get_param_as_list(name) or []
    values += req.get_param_as_list(name + "[]") or []
    return values


def list_query(req: falcon.asgi.Request, default_order: str = "desc") -> ListQuery:
    """The query every list endpoint takes: ``limit``, ``page``, ``include_archived``,
    ``created_at[gt|gte|lt|lte]`` and, where a list has an order, ``order``."""
    return ListQuery(
        limit=limit_param(req),
        page=req.get_param("page") or None,
        include_archived=bool_param(req, "include_archived"),
        created_at=time_bounds(req),
        descending=choice_param(req, "order", ("asc", "desc"), default_order) == "desc",
    )


def time_bounds(req: falcon.asgi.Request) -> dict[str, str]:
    """The ``created_at[gt|gte|lt|lte]`` bounds given, each as a fixed-width UTC string."""
    return {op: moment for op in TIME_BOUNDS if (moment := timestamp_param(req, op))}


def timestamp_param(req: falcon.asgi.Request, op: str) -> str | None:
    """``created_at[gte]=…`` (as the SDK sends it) or ``created_at_gte=…``."""
    raw = req.get_param(f"created_at[{op}]") or req.get_param(f"created_at_{op}")
    return normalize_timestamp(raw) if raw else None


def normalize_timestamp(raw: str) -> str:
    """Any RFC 3339 timestamp → the fixed-width UTC form the read models sort by."""
    try:
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        stamp = iso(moment)
    except (ValueError, OverflowError):
        raise falcon.HTTPBadRequest(description=f"{raw[:64]!r} is not a usable RFC 3339 timestamp") from None
    assert stamp is not None
    return stamp
