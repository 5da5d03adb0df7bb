"""The composition root: reads settings, builds adapters, wires them into the use cases.
Nothing else in the code base imports ``infra``."""

from __future__ import annotations

import hashlib
import logging
import os
import signal
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import uvicorn

from application.agents import AgentService
from application.api_keys import ApiKeyService, keyed_hash
from application.boards import BoardService, DepartmentService, Placements
from application.chat_completions import ChatCompletions
from application.environment_keys import EnvironmentKeyService
from application.environments import EnvironmentService
from application.files import FileService
from application.global_search import GlobalSearch
from application.knowledge import KnowledgeService
from application.login_tokens import LoginTokens
from application.mcp_credentials import McpCredentials
from application.memory import MemoryService
from application.model_cards import ModelCardService
from application.model_catalog import ModelCatalog
from application.notifications import NotificationService
from application.pacing import GATHER_SECONDS
from application.people import PeopleDirectory, PeopleService
from application.ports import BlobStore, Embedder, ModelProvider, ProviderProbe, SecretCipher
from application.rate_limit_config import RateLimitConfig
from application.rate_limits import Limits, RateLimiter
from application.relay import ChangeSignal, Relay
from application.runtime import DefaultProviders, ModelResolver, PreviewSink, SessionRuntime, TurnDispatcher, TurnPolicy
from application.runtime.mcp import McpTools
from application.runtime.models import CardLookup
from application.runtime.sweep import TurnSweeper
from application.session_log import SessionLog
from application.sessions import SessionService
from application.skills import SkillService
from application.tasks import TaskService
from application.telemetry import Telemetry, TimedProvider, TimedTurns
from application.tenancy import Principal
from application.vaults import VaultService
from application.webhook_delivery import RetryPolicy, Unleased, WebhookDispatcher
from application.webhooks import WebhookService
from application.work_queue import PLATFORM_KEY_PREFIX, WorkerWatch, WorkQueue
from application.workspaces import WorkspaceService, reaches
from infra.blob_store import LocalBlobStore
from infra.credential_locks import LocalCredentialLocks, PostgresCredentialLocks
from infra.data_dir import PrivateTextFile, prepare_data_dir, read_or_create_secret
from infra.embeddings import MiniLMEmbedder, OpenAICompatibleEmbedder
from infra.event_store import EventsourcingEventStore, PublishedEventDecoder, event_store_env
from infra.http_poster import HttpxPoster
from infra.mcp_client import SdkMcpClient
from infra.metrics import PrometheusTelemetry
from infra.passwords import Argon2Passwords
from infra.pdf_text import PypdfText
from infra.pg_advisory_lease import LOG_FOLLOWING_LOCK_KEY, WEBHOOKS_LOCK_KEY, AdvisoryLease
from infra.pg_changes import PostgresChangeFeed
from infra.pg_previews import FanOutPreviews, PostgresPreviewPublisher, PreviewReceiver
from infra.pg_relay import RelayLease
from infra.pg_session_lease import PostgresSessionLease
from infra.pg_signals import (
    INTERRUPTS_CHANNEL,
    PREVIEWS_CHANNEL,
    TURNS_CHANNEL,
    PostgresNotifier,
    PostgresSignalListener,
)
from infra.s3_blob_store import S3BlobStore
from infra.settings import Settings, SettingsError
from infra.vector_index import QdrantVectorIndex, VectorIndexBusy
from infra.webhook_deliveries import SqlDeliveryLog
from infra.webhook_poster import QuietHttpxPoster
from infra.work_leases import SqlWorkLeases
from interfaces.cli.processes import (
    ApiProcess,
    KafkaProjectorProcess,
    ReadSide,
    RelayProcess,
    SharedPositions,
    TransferStores,
    TurnTaking,
    WorkerProcess,
)
from interfaces.http.common import Services
from interfaces.http.live import LiveHub
from interfaces.http.notification_feed import NotificationFeed
from interfaces.http.operations import Operations, Readiness
from interfaces.http.slow_clients import bounded_config
from projections.activity import ActivityReadModels
from projections.dashboard import DashboardReadModels
from projections.files import FileReadModels
from projections.kafka_runner import KafkaProjector
from projections.knowledge import KnowledgeReads
from projections.knowledge_search import KnowledgeSearch
from projections.memory import MemoryReadModels
from projections.notifications import NotificationReadModels
from projections.people import PeopleReadModels
from projections.queries import ReadModels
from projections.resources import all_projections
from projections.runner import ReadModelRunner, create_engine
from projections.runtime_reads import AgentKnowledge, SkillNotes
from projections.search import KeywordSearch, MeaningSearch
from projections.skills import SkillReadModels
from projections.task_runs import TaskFollower
from projections.usage import UsageReports
from projections.vector_sources import all_vector_sources
from projections.vectors import EmbeddedSearch, VectorProjection
from projections.webhooks import WebhookReadModels

if TYPE_CHECKING:
    from interfaces.cli.sandbox_worker import SandboxWorker

log = logging.getLogger("agentry")

__all__ = [
    "ApiProcess",
    "Settings",
    "SettingsError",
    "VectorIndexBusy",
    "build",
    "build_kafka_projector",
    "build_kafka_projector_process",
    "build_relay",
    "build_vectors",
    "build_worker",
    "load_settings",
    "server_config",
]


def load_settings() -> Settings:
    """Settings from the ``AGENTRY_…`` environment (the CLI's only way in to them)."""
    return Settings.from_env()


def _check_settings(settings: Settings) -> None:
    """Settings no process of this deployment can run with, refused before anything opens."""
    if settings.database_url and not settings.uses_postgres:
        raise SettingsError(
            "AGENTRY_DATABASE_URL must be a postgresql:// URL (leave it unset for the embedded SQLite store)"
        )
    if settings.turns == "workers" and not settings.uses_postgres:
        raise SettingsError(
            "AGENTRY_TURNS=workers needs AGENTRY_DATABASE_URL (PostgreSQL): workers share its event store "
            "and leases; the embedded server takes turns itself (AGENTRY_TURNS=in-process)"
        )


def _prepare(settings: Settings) -> None:
    """What `build` checks and prepares before it opens anything, for the commands that open
    less of the platform: with PostgreSQL both secrets are checked even where such a command
    uses neither, so a deployment `build` refuses is refused alike, with the same message."""
    _check_settings(settings)
    if not settings.uses_postgres:
        prepare_data_dir(settings)
        return
    _api_key_secret(settings)
    root_source(settings)


def build(settings: Settings | None = None) -> ApiProcess:
    settings = settings or Settings.from_env()
    _check_settings(settings)
    if not settings.uses_postgres:
        prepare_data_dir(settings)
    server_secret = _api_key_secret(settings)
    hash_key = keyed_hash(server_secret)
    cipher = build_cipher(settings)  # a missing root secret fails here, before anything opens
    store = EventsourcingEventStore(event_store_env(settings))
    telemetry = PrometheusTelemetry()
    store.on_appended = telemetry.appended
    blobs = build_blob_store(settings)
    engine = create_engine(settings.read_model_url)
    vectors, semantic_search, vector_index = build_vectors(settings, store, engine, cipher)
    # `serve --workers N`: the other processes wait for the followers by polling positions in
    # the database and cannot hurry them past a pause, so the followers there read at once.
    gather = 0.0 if settings.workers > 1 else GATHER_SECONDS
    projections = ReadModelRunner(engine, store, all_projections(), gather_seconds=gather)
    projections.setup()
    # Process managers: they follow the log as projections do, and act on what they see.
    task_follower = TaskFollower()
    # Its steps (a task's result, reply, run end) lag at most one pause under steady writes: a
    # quarter second on work that takes seconds or minutes. It decodes only the events it
    # follows (``TaskFollower.wants``: agent messages, status changes, task events).
    followers = ReadModelRunner(engine, store, [task_follower], gather_seconds=gather)
    followers.setup()
    live = LiveHub(telemetry)
    store.add_listener(live)
    store.add_listener(projections)
    store.add_listener(followers)
    store.add_listener(vectors)
    webhooks, webhook_dispatcher = _webhooks(settings, store, cipher, engine)
    store.add_listener(webhook_dispatcher)
    change_feed = None
    if settings.uses_postgres:
        # Writes made by other processes (API replicas, workers) wake this one's tails too.
        change_feed = PostgresChangeFeed(
            settings.postgres.conninfo, store.change_channel, store, [live, projections, followers, webhook_dispatcher, vectors]
        )

    # `serve --workers N`: one of the N follows the log (a lease); the others wait for
    # projections by their positions in the database, and their notification feeds poll.
    following = None
    wait_for_projections = projections.wait_for
    if settings.workers > 1 and settings.uses_postgres and settings.projections_in_process:
        following = AdvisoryLease(settings.postgres.conninfo, LOG_FOLLOWING_LOCK_KEY, "projections")
        wait_for_projections = SharedPositions(projections.positions).wait_for

    departments = DepartmentService(store)
    boards = BoardService(store, departments)
    skills = SkillService(store, blobs)
    knowledge = KnowledgeService(store, blobs, PypdfText())
    knowledge_reads = KnowledgeReads(engine, vectors.position)
    knowledge_search = KnowledgeSearch(knowledge_reads, semantic_search)
    agents = AgentService(store, Placements(departments, boards), skills, knowledge)
    environments = EnvironmentService(store)
    model_cards = ModelCardService(store, cipher, _provider_probe())
    read_models = ReadModels(engine)
    leases = SqlWorkLeases(engine)
    turn_owed = _TurnOwed()
    work = WorkQueue(
        store,
        environments,
        leases,
        read_models,
        hash_key,
        settings.work_lease_seconds,
        platform_key=sandbox_worker_key(settings),
        on_worker_failed=turn_owed,
    )
    tools = _ToolWork(
        WorkerWatch(store, leases, settings.worker_timeout_seconds),
        _mcp_tools(settings, store, cipher),
        work.queued,
        AgentKnowledge(knowledge_search, engine),
        SkillNotes(engine),
    )
    wiring = _api_turns(settings, store, live, read_models, model_cards, tools, telemetry)
    turn_owed.then = wiring.on_user_turn
    file_lists = FileReadModels(engine)
    # Files keep their bytes apart: a file's delete removes its blob when no other file names
    # it, which must never reach a skill's or a document's bytes (never deleted, shared).
    file_blobs = build_blob_store(settings, "files")
    # With projections in other processes the file list may lag: a delete then keeps the bytes.
    files = FileService(
        store, file_blobs, file_lists, settle=wait_for_projections if settings.projections_in_process else _never_settled
    )
    memory_reads = MemoryReadModels(engine, cipher)
    memory = MemoryService(store, cipher, search=semantic_search, reads=memory_reads)
    sessions = SessionService(
        store, agents, environments, on_user_turn=wiring.on_user_turn, on_interrupt=wiring.on_interrupt, files=files, memory=memory
    )
    catalog = ModelCatalog(agents, model_cards, read_models)
    tasks = TaskService(store, agents, boards, environments, sessions, read_models)
    task_follower.on_result = _crashing_around(tasks.record_result, "task_result", settings.fault_injection)
    task_follower.on_reply = tasks.post_reply
    task_follower.on_end = tasks.end_run
    workspaces = WorkspaceService(store)
    rate_limits = _rate_limits(settings, store, catalog, workspaces)
    people_lists = PeopleReadModels(engine)
    notification_lists = NotificationReadModels(engine)
    notification_feed = NotificationFeed(
        notification_lists.newest_by_tenant,
        notification_lists.newest_of_all,
        signalled=settings.projections_in_process and following is None,
    )
    projections.on_progress(notification_feed.progressed)

    def positions() -> dict[str, int]:
        return {**projections.positions(), **followers.positions()}

    def every_position() -> dict[str, int]:
        return {**positions(), "vectors": vectors.position()}

    # Vectors are measured but not part of readiness: embedding a long log may take a while,
    # and lists and read-your-writes do not wait for it.
    telemetry.watch_projections(every_position, store.max_notification_id)
    readiness = Readiness(
        store.max_notification_id,
        positions if settings.ready_projections else None,
        settings.ready_max_lag,
        wiring.turns.dispatcher if wiring.turns else None,
    )
    services = Services(
        agents=agents,
        environments=environments,
        model_cards=model_cards,
        sessions=sessions,
        api_keys=ApiKeyService(store, hash_key, workspaces, read_models.api_key_stream),
        read_models=read_models,
        live=live,
        wait_for_projections=wait_for_projections if settings.projections_in_process else _no_wait,
        session_log=SessionLog(store),
        environment_keys=EnvironmentKeyService(store, environments, hash_key),
        work=work,
        model_catalog=catalog,
        chat_completions=ChatCompletions(store, catalog, agents, environments, wiring.on_user_turn),
        vaults=VaultService(store, cipher, HttpxPoster()),
        rate_limits=rate_limits,
        rate_limiter=RateLimiter(
            Limits(settings.rate_limit_workspace_rpm, settings.rate_limit_caller_rpm, settings.rate_limit_login_rpm), rate_limits.override
        ),
        people=_people(settings, store, cipher, server_secret, workspaces, people_lists),
        people_lists=people_lists,
        workspaces=workspaces,
        tasks=tasks,
        boards=boards,
        departments=departments,
        activity=ActivityReadModels(engine),
        usage_reports=UsageReports(engine),
        webhooks=webhooks,
        webhook_lists=WebhookReadModels(engine),
        notifications=NotificationService(store, notification_lists),
        notification_lists=notification_lists,
        notification_feed=notification_feed,
        dashboard=DashboardReadModels(engine),
        search=_global_search(engine, semantic_search, knowledge_reads, memory_reads),
        knowledge=knowledge,
        knowledge_search=knowledge_search,
        memory=memory,
        memory_reads=memory_reads,
        semantic_search=semantic_search,
        vectors=vectors,
        skills=skills,
        skill_lists=SkillReadModels(engine),
        files=files,
        file_lists=file_lists,
        file_max_bytes=settings.file_max_bytes,
        operations=Operations(telemetry, readiness, settings.metrics_require_key, settings.workers > 1),
    )
    return ApiProcess(
        services=services,
        store=store,
        projections=projections,
        followers=followers,
        turns=wiring.turns,
        change_feed=change_feed,
        projections_in_process=settings.projections_in_process,
        bootstrap_api_key=settings.bootstrap_api_key,
        admin_key_file=None if settings.uses_postgres else PrivateTextFile(settings.admin_key_path),
        resources=[cipher, vector_index, telemetry, *(held for held in (blobs, file_blobs) if hasattr(held, "close"))],
        signals=wiring.signals,
        closers=wiring.closers,
        webhooks=webhook_dispatcher,
        vectors=vectors,
        following=following,
    )


def build_embedder(settings: Settings) -> Embedder:
    """An OpenAI-compatible endpoint when configured, else the bundled local model."""
    if settings.embeddings_url:
        return OpenAICompatibleEmbedder(
            settings.embeddings_url, settings.embeddings_model, settings.embeddings_dimensions, settings.embeddings_api_key
        )
    return MiniLMEmbedder(threads=settings.embedding_threads)


def build_vectors(
    settings: Settings, store: EventsourcingEventStore, engine: Any, cipher: SecretCipher
) -> tuple[VectorProjection, EmbeddedSearch, QdrantVectorIndex]:
    """The vector projection, the search over its index, and the index (opened on first use:
    in local mode the process that first writes or searches holds its folder)."""
    embedder = build_embedder(settings)
    location = settings.qdrant_url or settings.vector_dir
    index = QdrantVectorIndex(location, embedder.name, embedder.dimensions, settings.qdrant_api_key)
    projection = VectorProjection(
        engine, store, index, embedder, all_vector_sources(cipher), head=store.max_notification_id,
        gather_seconds=0.0 if settings.workers > 1 else GATHER_SECONDS,
    )  # fmt: skip
    projection.setup()
    return projection, EmbeddedSearch(index, embedder), index


def build_read_side(settings: Settings) -> ReadSide:
    """`agentry projections status|rebuild`: the read models and the vector index over the
    event store. Not the platform: its services and turn runtime (the provider SDKs alone
    take ≈ 2 s to import) serve no part of a rebuild."""
    _prepare(settings)
    cipher = build_cipher(settings)  # the vector sources open sealed memory contents
    store = EventsourcingEventStore(event_store_env(settings))
    engine = create_engine(settings.read_model_url)
    vectors, _, index = build_vectors(settings, store, engine, cipher)
    projections = ReadModelRunner(engine, store, all_projections())
    projections.setup()
    # In ApiProcess.close's order: the runners, the store, then what they read through.
    closers = [projections.stop, vectors.stop, store.close, cipher.close, index.close, engine.dispose]
    return ReadSide(store, projections, vectors, closers)


def build_blob_store(settings: Settings, namespace: str = "") -> BlobStore:
    """``AGENTRY_BLOB_STORE``: ``local`` (a folder in the data folder) or ``s3``; a
    ``namespace`` is a sub-folder (a key prefix) of its own."""
    if settings.blob_store == "s3":
        return S3BlobStore(
            settings.s3_endpoint, settings.s3_bucket, settings.s3_access_key_id, settings.s3_secret_access_key,
            region=settings.s3_region, prefix=settings.s3_prefix + (f"{namespace}/" if namespace else ""),
        )  # fmt: skip
    return LocalBlobStore(settings.blob_dir / namespace if namespace else settings.blob_dir)


def _crashing_around(effect: Callable[..., None], point: str, injection: str) -> Callable[..., None]:
    """``effect``, unless a test asked this process to die just before or after it
    (``AGENTRY_FAULT_INJECTION=<point>:before|after``): a crash at the worst moment."""
    if not injection.startswith(point + ":"):
        return effect
    when = injection.split(":", 1)[1]

    def crashing(*args: Any) -> None:
        if when == "before":
            os.kill(os.getpid(), signal.SIGKILL)
        effect(*args)
        if when == "after":
            os.kill(os.getpid(), signal.SIGKILL)

    return crashing


def _rate_limits(
    settings: Settings, store: EventsourcingEventStore, catalog: ModelCatalog, workspaces: WorkspaceService
) -> RateLimitConfig:
    def models_of(who: Principal) -> list[str]:
        return [entry["id"] for entry in catalog.list(who, 1000, None, None)["data"]]

    def workspace_visible(who: Principal, workspace_id: str) -> bool:
        return reaches(who, workspace_id) and workspaces.selectable(workspace_id)

    limits = Limits(settings.rate_limit_workspace_rpm, settings.rate_limit_caller_rpm, settings.rate_limit_login_rpm)
    return RateLimitConfig(store, limits, models_of, workspace_visible)


# -- turns: in this process, or in `agentry worker` processes ------------------------------


class _ApiTurns:
    """How an API process takes part in turns: what it does when a session owes one or is
    interrupted, and what it runs and closes for that."""

    def __init__(
        self,
        turns: TurnTaking | None,
        on_user_turn: Callable[[str], None],
        on_interrupt: Callable[[str], None],
        signals: PostgresSignalListener | None = None,
        closers: list[Callable[[], None]] | None = None,
    ) -> None:
        self.turns = turns
        self.on_user_turn = on_user_turn
        self.on_interrupt = on_interrupt
        self.signals = signals
        self.closers = closers or []


class _TurnOwed:
    """Tells the runtime a session owes a turn (wired once the runtime exists)."""

    def __init__(self) -> None:
        self.then: Callable[[str], None] = lambda session_id: None

    def __call__(self, session_id: str) -> None:
        self.then(session_id)


def sandbox_worker_key(settings: Settings) -> str | None:
    """The key Agentry's own sandbox workers present: the operator's with PostgreSQL (none:
    no sandbox worker can poll), generated into the data folder when embedded."""
    secret = settings.sandbox_worker_key
    if not secret and not settings.uses_postgres:
        secret = read_or_create_secret(settings.sandbox_worker_key_path)
    return f"{PLATFORM_KEY_PREFIX}{secret}" if secret else None


def sandbox_root(settings: Settings) -> Path:
    """Where the sandbox workers keep sessions' sandboxes: outside the data folder (0700),
    one folder per server so two servers on a machine never sweep each other's."""
    if settings.sandbox_root:
        return Path(settings.sandbox_root)
    where = settings.database_url or str(settings.data_dir.resolve())
    return Path(tempfile.gettempdir()) / "agentry-sandboxes" / hashlib.sha256(where.encode()).hexdigest()[:12]


def _global_search(engine: Any, semantic: EmbeddedSearch, knowledge: KnowledgeReads, memories: MemoryReadModels) -> GlobalSearch:
    keywords = KeywordSearch(engine)
    meaning = MeaningSearch(semantic, knowledge, memories)
    return GlobalSearch(
        {
            "agent": keywords.agents,
            "session": keywords.sessions,
            "task": keywords.tasks,
            "knowledge": meaning.knowledge,
            "memory": meaning.memories,
        }
    )


def build_sandbox_worker(settings: Settings, api: str, key: str, slots: int) -> SandboxWorker:
    """`agentry sandbox-worker`: a client of the API at `api` whose sessions' tools run in
    bubblewrap sandboxes (imported here, not at the top: only this command needs them)."""
    from infra.sandbox import PackageError, Sandbox, SandboxError, SandboxLimits, sandbox_tools
    from interfaces.cli.sandbox_worker import Sandboxes, SandboxWorker  # the SDK's client: ≈ 1.4 s to import

    limits = SandboxLimits()

    async def open_sandbox(root: Path, session_id: str, config: Mapping[str, Any]) -> Sandbox:
        return await Sandbox.create(
            root, session_id, networking=config.get("networking"), packages=config.get("packages"), limits=limits
        )

    # ValueError: a config the sandbox refuses (stored before the API refused it at the edge).
    sandboxes = Sandboxes(open_sandbox, sandbox_tools, (PackageError, SandboxError, ValueError))
    return SandboxWorker(api, key, sandbox_root(settings), sandboxes, slots)


# How often the embedded server looks for sessions whose environment worker vanished.
WORKER_SWEEP_SECONDS = 2.0


class _ToolWork:
    """What the turn loop needs of environments' workers: to know when one vanished, and
    to ring the queue when it asked for one."""

    def __init__(
        self,
        watch: WorkerWatch,
        mcp: McpTools,
        queued: Callable[[], None] = lambda: None,
        knowledge: AgentKnowledge | None = None,
        skills: SkillNotes | None = None,
    ) -> None:
        self.watch = watch
        self.mcp = mcp  # the agents' MCP servers, called by the turn itself
        self.queued = queued
        self.knowledge = knowledge  # the agents' knowledge bases, searched by the turn itself
        self.skills = skills  # the skills' names and descriptions, for the system prompt


def _mcp_tools(settings: Settings, store: EventsourcingEventStore, cipher: SecretCipher) -> McpTools:
    http = HttpxPoster()
    locks = PostgresCredentialLocks(settings.postgres.conninfo) if settings.uses_postgres else LocalCredentialLocks()
    credentials = McpCredentials(
        store, cipher, http, VaultService(store, cipher, http), locks, refresh_margin=settings.mcp_refresh_margin
    )
    return McpTools(SdkMcpClient(), credentials, settings.mcp_list_timeout, settings.mcp_call_timeout)


def _api_turns(
    settings: Settings,
    store: EventsourcingEventStore,
    live: LiveHub,
    read_models: ReadModels,
    cards: CardLookup,
    tools: _ToolWork,
    telemetry: Telemetry,
) -> _ApiTurns:
    if not settings.uses_postgres:
        dispatcher = TurnDispatcher(
            TimedTurns(_session_runtime(settings, store, live, cards, tools, telemetry), telemetry),
            workers=settings.runtime_workers,
        )
        # Sessions waiting on a worker that vanished are found by this sweep (no lease here).
        sweeper = TurnSweeper(read_models.running_session_ids, dispatcher.offer, WORKER_SWEEP_SECONDS)
        return _ApiTurns(TurnTaking(dispatcher, sweeper=sweeper), dispatcher.submit, dispatcher.interrupt)
    conninfo = settings.postgres.conninfo
    notifier = PostgresNotifier(conninfo)
    interrupt_elsewhere = notifier.session_signal(INTERRUPTS_CHANNEL)
    if settings.turns == "workers":
        # This process records and streams; the workers drive, told by NOTIFY (and their sweep).
        signals = PostgresSignalListener(conninfo, {PREVIEWS_CHANNEL: PreviewReceiver(live)})
        return _ApiTurns(
            None, notifier.session_signal(TURNS_CHANNEL), interrupt_elsewhere, signals, [notifier.close]
        )
    # Turns in this process, under the same leases as workers and other API processes, so
    # several of them never drive one session at once; previews reach tails on the others.
    publisher = PostgresPreviewPublisher(notifier)
    turns = _leased_turns(settings, store, FanOutPreviews(live, publisher), read_models, cards, tools, telemetry)
    dispatcher = turns.dispatcher

    def interrupt(session_id: str) -> None:
        dispatcher.interrupt(session_id)  # driven here: abort at once
        interrupt_elsewhere(session_id)  # or by another process

    signals = PostgresSignalListener(
        conninfo,
        {PREVIEWS_CHANNEL: PreviewReceiver(live, skip_origin=publisher.origin), INTERRUPTS_CHANNEL: dispatcher.interrupt},
    )
    return _ApiTurns(turns, dispatcher.submit, interrupt, signals, [publisher.close, notifier.close])


def _session_runtime(
    settings: Settings,
    store: EventsourcingEventStore,
    previews: PreviewSink,
    cards: CardLookup,
    tools: _ToolWork,
    telemetry: Telemetry,
) -> SessionRuntime:
    """The turn loop, wired the same in `agentry serve` and `agentry worker`."""
    return SessionRuntime(
        store,
        TimedProvider(_model_provider(), telemetry),
        ModelResolver(cards, _default_providers(settings)),
        previews=previews,
        policy=_turn_policy(settings),
        workers=tools.watch,
        on_queued=tools.queued,
        mcp=tools.mcp,
        knowledge=tools.knowledge,
        skills=tools.skills,
    )


def _leased_turns(
    settings: Settings,
    store: EventsourcingEventStore,
    previews: PreviewSink,
    read_models: ReadModels,
    cards: CardLookup,
    tools: _ToolWork,
    telemetry: Telemetry,
) -> TurnTaking:
    """A dispatcher under PostgreSQL session leases, with the sweep that takes up turns no
    live lease holds (a dead process's, once its lease expired)."""
    lease = PostgresSessionLease(settings.postgres.conninfo, settings.runtime_lease_seconds)
    dispatcher = TurnDispatcher(
        TimedTurns(_session_runtime(settings, store, previews, cards, tools, telemetry), telemetry),
        workers=settings.runtime_workers,
        lease=lease,
    )

    def candidates() -> list[str]:
        return lease.unheld(read_models.running_session_ids())

    sweeper = TurnSweeper(candidates, dispatcher.offer, settings.runtime_lease_seconds / 3)
    return TurnTaking(dispatcher, lease, sweeper)


def build_worker(settings: Settings) -> WorkerProcess:
    """`agentry worker`: the turn loop alone, for the PostgreSQL shape."""
    if not settings.uses_postgres:
        raise SettingsError(
            "`agentry worker` needs AGENTRY_DATABASE_URL (PostgreSQL); the embedded server takes turns itself"
        )
    conninfo = settings.postgres.conninfo
    cipher = build_cipher(settings)  # model cards' keys are opened at the moment of use
    store = EventsourcingEventStore(event_store_env(settings))
    telemetry = PrometheusTelemetry()
    store.on_appended = telemetry.appended
    # Read only, for the sweep's list of running sessions (whoever projects keeps it).
    engine = create_engine(settings.read_model_url)
    notifier = PostgresNotifier(conninfo)
    publisher = PostgresPreviewPublisher(notifier)
    cards = ModelCardService(store, cipher, _provider_probe())
    # Keywords only: the vector index (a local folder) belongs to the API process.
    tools = _ToolWork(
        WorkerWatch(store, SqlWorkLeases(engine), settings.worker_timeout_seconds),
        _mcp_tools(settings, store, cipher),
        knowledge=AgentKnowledge(KnowledgeSearch(KnowledgeReads(engine, None), None), engine),
        skills=SkillNotes(engine),
    )
    turns = _leased_turns(settings, store, publisher, ReadModels(engine), cards, tools, telemetry)
    signals = PostgresSignalListener(
        conninfo, {TURNS_CHANNEL: turns.dispatcher.submit, INTERRUPTS_CHANNEL: turns.dispatcher.interrupt}
    )
    return WorkerProcess(
        turns,
        signals,
        closers=[telemetry.close, publisher.close, notifier.close, engine.dispose, store.close, cipher.close],
        telemetry=telemetry,
    )


def _model_provider() -> ModelProvider:
    # The provider SDKs (anthropic, openai) take about 2 s to import: a command that drives no
    # turn and probes no card (`agentry --help`, `api-keys`, `export`) does not pay for them.
    from infra.providers import SdkModelProvider

    return SdkModelProvider()


def _provider_probe() -> ProviderProbe:
    from infra.providers.probe import HttpProviderProbe

    return HttpProviderProbe()


def _default_providers(settings: Settings) -> DefaultProviders:
    return DefaultProviders(
        anthropic_api_key=settings.anthropic_api_key,
        anthropic_base_url=settings.anthropic_base_url,
        openai_api_key=settings.openai_api_key,
        openai_base_url=settings.openai_base_url,
    )


def _turn_policy(settings: Settings) -> TurnPolicy:
    return TurnPolicy(
        retries=settings.runtime_retries,
        retry_base_seconds=settings.runtime_retry_base_seconds,
        max_model_requests=settings.runtime_max_model_requests,
    )


def _api_key_secret(settings: Settings) -> str:
    """Kept like the admin key: generated once into the data folder when embedded; given by
    the operator with PostgreSQL, where API processes on many hosts must share it."""
    if settings.api_key_secret:
        return settings.api_key_secret
    if settings.uses_postgres:
        raise SettingsError(
            "AGENTRY_API_KEY_SECRET is required with PostgreSQL: every API process hashes keys with it "
            "(at least 32 characters, e.g. python -c 'import secrets; print(secrets.token_urlsafe(32))')"
        )
    return read_or_create_secret(settings.key_pepper_path)


def _people(
    settings: Settings,
    store: EventsourcingEventStore,
    cipher: EnvelopeCipher,
    server_secret: str,
    workspaces: WorkspaceService,
    directory: PeopleDirectory,
) -> PeopleService:
    """Login tokens are signed with a key derived from the API-key secret (no new secret to
    keep)."""
    return PeopleService(
        store,
        Argon2Passwords(),
        cipher,
        LoginTokens(server_secret),
        workspaces.selectable,
        directory,
        allow_registration=settings.registration == "open",
        organization_name=settings.organization_name,
    )


def _webhooks(
    settings: Settings, store: EventsourcingEventStore, cipher: SecretCipher, engine: Any
) -> tuple[WebhookService, WebhookDispatcher]:
    """The webhook endpoints and their dispatcher. Every API process runs one; it delivers
    while it holds the lease (PostgreSQL: one process at a time) or always (embedded)."""
    deliveries = SqlDeliveryLog(engine)
    lease = (
        AdvisoryLease(settings.postgres.conninfo, WEBHOOKS_LOCK_KEY, "webhook dispatcher")
        if settings.uses_postgres
        else Unleased()
    )
    policy = RetryPolicy(
        timeout_seconds=settings.webhook_timeout_seconds,
        base_seconds=settings.webhook_retry_base_seconds,
        max_seconds=settings.webhook_retry_max_seconds,
        max_attempts=settings.webhook_max_attempts,
        senders=settings.webhook_senders,
    )
    dispatcher = WebhookDispatcher(
        store, deliveries, lambda endpoint_id: service.target(endpoint_id), QuietHttpxPoster(),
        lambda workspace_id: service.organization_of(workspace_id), policy, lease,
    )  # fmt: skip
    service = WebhookService(store, cipher, deliveries, on_due=dispatcher.wake)
    return service, dispatcher


def _never_settled(position: int | None, timeout: float) -> bool:
    return False


def _no_wait(position: int | None, timeout: float) -> bool:
    """Projections run in other processes: list reads are eventually consistent."""
    return True


def _require_kafka(settings: Settings, command: str) -> None:
    if not settings.uses_postgres:
        raise SettingsError(f"`agentry {command}` needs AGENTRY_DATABASE_URL (PostgreSQL)")
    if not settings.kafka_bootstrap_servers:
        raise SettingsError(f"`agentry {command}` needs AGENTRY_KAFKA_BOOTSTRAP_SERVERS")


def build_relay(settings: Settings) -> RelayProcess:
    # kafka-python (≈ 0.15 s to import) only for the commands that reach the broker.
    from infra.kafka import KafkaPublisher, all_topics

    _require_kafka(settings, "relay")
    store = EventsourcingEventStore(event_store_env(settings))
    wake = ChangeSignal()
    feed = PostgresChangeFeed(settings.postgres.conninfo, store.change_channel, store, [wake])
    lease = RelayLease(settings.postgres.conninfo)
    # One transactional id per topic prefix: whichever relay initialises it last is the only
    # one the broker accepts writes from (docs/architecture.md, "Relay fencing").
    publisher = KafkaPublisher(
        settings.kafka_bootstrap_servers,
        all_topics(settings.kafka_topic_prefix),
        transactional_id=f"{settings.kafka_topic_prefix}.relay",
    )
    relay = Relay(store, publisher, lease, wake.wait, topic_prefix=settings.kafka_topic_prefix)
    telemetry = PrometheusTelemetry()
    telemetry.watch_relay(lambda: relay.position, store.max_notification_id)
    return RelayProcess(relay, lease, feed, resources=[publisher, lease, store, telemetry], telemetry=telemetry)


def build_kafka_projector(settings: Settings, telemetry: Telemetry | None = None) -> KafkaProjector:
    from infra.kafka import all_topics, event_consumer, subscribe  # as in build_relay

    _require_kafka(settings, "project --from kafka")
    engine = create_engine(settings.read_model_url)
    consumer = event_consumer(settings.kafka_bootstrap_servers, settings.kafka_projector_group)
    # The store is read only for events published without their state (too large for Kafka).
    decoder = PublishedEventDecoder(EventsourcingEventStore(event_store_env(settings)))
    projector = KafkaProjector(engine, consumer, settings.kafka_projector_group, decoder, all_projections(), telemetry)
    projector.setup()
    subscribe(consumer, all_topics(settings.kafka_topic_prefix), projector.seek_to_stored)
    return projector


def build_kafka_projector_process(settings: Settings) -> KafkaProjectorProcess:
    """`agentry project --from kafka`, with the metrics its port serves (AGENTRY_METRICS_PORT)."""
    telemetry = PrometheusTelemetry()
    projector = build_kafka_projector(settings, telemetry)
    telemetry.watch_partitions(projector.partition_progress)
    return KafkaProjectorProcess(projector, telemetry)


def server_config(settings: Settings, app: Any, **options: Any) -> uvicorn.Config:
    """uvicorn's config for ``app``, with the slow-client bounds the settings give."""
    return bounded_config(
        app,
        header_timeout=settings.header_timeout_seconds,
        body_timeout=settings.body_timeout_seconds,
        keep_alive_timeout=settings.keep_alive_timeout_seconds,
        max_connections=settings.max_connections,
        **options,
    )


# -- secrets at rest (imports kept here: this section only adds to the file) ---------------

from infra.secrets.cipher import EnvelopeCipher  # noqa: E402
from infra.secrets.rotation import RotationOutcome  # noqa: E402
from infra.secrets.wiring import cipher_for, rotate_for  # noqa: E402


def build_cipher(settings: Settings) -> EnvelopeCipher:
    """The secrets cipher (model-card API keys, vault credentials): its key table and root.
    With PostgreSQL and no AGENTRY_ROOT_SECRET this is a SettingsError."""
    return cipher_for(settings)


def rotate_root_secret(settings: Settings, new_root_secret: str = "") -> RotationOutcome:
    """``agentry secrets rotate-root``: every data key re-wrapped under a new root.
    ``new_root_secret`` (``AGENTRY_NEW_ROOT_SECRET``) is required when the operator gives the
    root, and refused when the embedded server generates it."""
    return rotate_for(settings, new_root_secret)


# -- event history export / import (imports kept here: this section only adds to the file) ---

from infra.event_transfer import DataKeyTransfer, StoredEventLog  # noqa: E402
from infra.secrets.wiring import key_table, root_source  # noqa: E402


def build_transfer(settings: Settings, read_models: bool = False) -> TransferStores:
    """``agentry export`` / ``agentry import``: the event store as stored rows and, for an
    import's catch-up (``read_models``), the read models' runner. Not the platform: its
    services, provider SDKs and vector index took seconds to start, and these commands only
    read and append stored rows (the data keys come apart, from ``data_key_transfer``)."""
    _prepare(settings)
    store = EventsourcingEventStore(event_store_env(settings))
    if not read_models:
        return TransferStores(StoredEventLog(store), None, [store.close])
    engine = create_engine(settings.read_model_url)
    projections = ReadModelRunner(engine, store, all_projections())
    projections.setup()
    return TransferStores(StoredEventLog(store), projections, [store.close, engine.dispose])


def data_key_transfer(settings: Settings) -> DataKeyTransfer:
    """Sealed secrets' data keys in and out of exports (``--with-secrets``); close it after."""
    return DataKeyTransfer(key_table(settings), root_source(settings))
