"""All settings are environment variables prefixed ``AGENTRY_``; every one has a safe default
for the embedded shape (one process, SQLite and local files in a data folder)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlparse


class SettingsError(ValueError):
    """A setting has a value Agentry cannot use."""


@dataclass(frozen=True)
class PostgresLocation:
    host: str
    port: int
    user: str
    password: str
    dbname: str

    @property
    def sqlalchemy_url(self) -> str:
        auth = self.user + (f":{self.password}" if self.password else "")
        return f"postgresql+psycopg://{auth}@{self.host}:{self.port}/{self.dbname}"

    @property
    def conninfo(self) -> str:
        parts = f"host={self.host} port={self.port} user={self.user} dbname={self.dbname}"
        return parts + (f" password={self.password}" if self.password else "")


def parse_postgres_url(url: str) -> PostgresLocation:
    parsed = urlparse(url)
    if parsed.scheme not in ("postgres", "postgresql", "postgresql+psycopg"):
        raise SettingsError(f"not a PostgreSQL URL (scheme {parsed.scheme!r})")
    dbname = parsed.path.lstrip("/")
    if not dbname:
        raise SettingsError("the PostgreSQL URL names no database")
    return PostgresLocation(
        host=parsed.hostname or "127.0.0.1",
        port=parsed.port or 5432,
        user=unquote(parsed.username or "postgres"),
        password=unquote(parsed.password or ""),
        dbname=dbname,
    )


def _env(name: str, default: str) -> str:
    return os.environ.get("AGENTRY_" + name, default)


def _int(name: str, default: int) -> int:
    raw = _env(name, str(default))
    try:
        return int(raw)
    except ValueError:
        raise SettingsError(f"AGENTRY_{name} must be a whole number, not {raw!r}") from None


def _flag(name: str, default: str = "0") -> bool:
    raw = _env(name, default).strip().lower() or default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise SettingsError(f"AGENTRY_{name} must be 1 or 0, not {raw!r}")


def _seconds(name: str, default: float) -> float:
    raw = _env(name, str(default))
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"AGENTRY_{name} must be a number of seconds, not {raw!r}") from None
    if not value > 0:
        raise SettingsError(f"AGENTRY_{name} must be more than 0 seconds, not {raw!r}")
    return value


# An API key or the secret its hash is keyed with is guessable if it is short.
MIN_SECRET_LENGTH = 32


def _check_secret(name: str, value: str) -> None:
    if value and len(value) < MIN_SECRET_LENGTH:
        raise SettingsError(
            f"AGENTRY_{name} is {len(value)} characters long; it must be at least "
            f"{MIN_SECRET_LENGTH} (generate one with: python -c 'import secrets; print(secrets.token_urlsafe(32))')"
        )


def _projections_mode() -> str:
    mode = _env("PROJECTIONS", "in-process")
    if mode not in ("in-process", "external"):
        raise SettingsError(f"AGENTRY_PROJECTIONS must be in-process or external, not {mode!r}")
    return mode


TURN_MODES = ("in-process", "workers")


@dataclass(frozen=True)
class Settings:
    data_dir: Path = Path(".agentry")
    database_url: str = ""
    host: str = "127.0.0.1"
    port: int = 8400
    # API processes `agentry serve` runs on its one port (PostgreSQL and a Qdrant server only:
    # SQLite and Qdrant's local mode each let one process hold their files).
    workers: int = 1
    bootstrap_api_key: str = field(default="", repr=False)
    postgres_lock_timeout_seconds: int = 5
    postgres_pool_size: int = 10
    # Turns in flight at once in this process (each waits on its provider, not the CPU).
    runtime_workers: int = 32
    projections_in_process: bool = True
    log_level: str = "info"
    kafka_bootstrap_servers: str = ""
    kafka_topic_prefix: str = "agentry"
    kafka_projector_group: str = "agentry-projections"
    # The server secret API-key hashes are keyed with (HMAC-SHA256). Required with PostgreSQL;
    # the embedded server keeps a generated one in ``<data dir>/key-pepper``.
    api_key_secret: str = field(default="", repr=False)
    # Slow clients: how long a request's headers and then its body may take to arrive.
    header_timeout_seconds: float = 10.0
    body_timeout_seconds: float = 30.0
    keep_alive_timeout_seconds: int = 5
    # Open connections (event streams included) beyond which a new one is answered 503.
    max_connections: int = 1000
    # The root key that wraps every secret's data key. Required with PostgreSQL; the embedded
    # server keeps a generated one in ``<data dir>/root-secret``.
    root_secret: str = field(default="", repr=False)
    # The default providers, used when an agent's model names no model card of its tenant.
    anthropic_api_key: str = field(default="", repr=False)
    anthropic_base_url: str = ""
    openai_api_key: str = field(default="", repr=False)
    openai_base_url: str = ""
    # Provider retries: delays base, 2×base, 4×base … for ``runtime_retries`` attempts.
    runtime_retries: int = 5
    runtime_retry_base_seconds: float = 1.0
    # Model requests in one turn before it ends with tool_use_limit_reached_error.
    runtime_max_model_requests: int = 50
    # How long a process's hold on a session lasts without renewal (PostgreSQL): a turn left
    # by a dead process is taken up this long after its last renewal.
    runtime_lease_seconds: float = 15.0
    # Who drives turns: ``in-process`` (serve does) or ``workers`` (serve records and streams;
    # `agentry worker` processes drive, PostgreSQL only).
    turns: str = "in-process"
    # Tests only: where a process kills itself (SIGKILL) to show what a crash leaves, e.g.
    # ``task_result:before`` / ``task_result:after`` (around the task follower's effect).
    fault_injection: str = ""
    # An environment worker's lease on a work item: it heartbeats every half of this (the
    # SDK's worker: min(ttl/2, 30 s)), and an item whose lease ran out goes to another.
    work_lease_seconds: float = 30.0
    # A tool call waits this long without progress (none polls, or the one running it
    # vanished and none took it over; a claim alone is no progress, a heartbeat is: see
    # WorkerWatch) before it ends in an error.
    worker_timeout_seconds: float = 120.0
    # MCP servers (agents' ``mcp_servers``): each turn lists their tools within
    # ``mcp_list_timeout`` seconds per server; a call gets ``mcp_call_timeout``; an OAuth token
    # that expires within ``mcp_refresh_margin`` seconds is refreshed before use.
    mcp_list_timeout: float = 10.0
    mcp_call_timeout: float = 120.0
    mcp_refresh_margin: float = 60.0
    # Agentry's own sandbox workers (cloud environments): the secret they present (generated
    # into the data folder when embedded), how many `agentry serve` starts as its children,
    # how many sessions each serves at once, and where their sandboxes live (its parents must
    # be searchable by other users: each session runs as a uid of its own).
    sandbox_worker_key: str = field(default="", repr=False)
    sandbox_workers: int = 1
    sandbox_slots: int = 8
    sandbox_root: str = ""
    # Requests per minute each workspace (unless it sets its own) and each caller (an API key
    # or a person) may make, metered as token buckets per process; 0 turns a limit off.
    rate_limit_workspace_rpm: int = 12_000
    rate_limit_caller_rpm: int = 6_000
    # Sign-in requests (login, registration, invite acceptance) per client address.
    rate_limit_login_rpm: int = 60
    # People: whether anyone may register an account (``open``) or only invited people
    # (``closed``, the default); the organization's name as ``GET /v1/organizations/me`` shows it.
    registration: str = "closed"
    organization_name: str = "Agentry"
    # Webhooks: an attempt waits ``webhook_timeout`` seconds for an answer; a failed one is
    # retried after base × 2^(n-1) seconds (capped at ``webhook_retry_max``), at most
    # ``webhook_max_attempts`` times in all; ``webhook_senders`` endpoints are served at once.
    webhook_timeout_seconds: float = 10.0
    webhook_retry_base_seconds: float = 5.0
    webhook_retry_max_seconds: float = 6 * 3600.0
    webhook_max_attempts: int = 15
    webhook_senders: int = 8
    # Vector index and embeddings (docs/vectors.md): a Qdrant server, or (unset) Qdrant's local
    # mode in ``<data dir>/qdrant``, owned by the one process that runs the vector projection;
    # an OpenAI-compatible /v1/embeddings endpoint, or (unset) the bundled local MiniLM model.
    qdrant_url: str = ""
    qdrant_api_key: str = field(default="", repr=False)
    embeddings_url: str = ""
    embeddings_model: str = ""
    embeddings_api_key: str = field(default="", repr=False)
    embeddings_dimensions: int = 0
    embedding_threads: int = 0
    # -- blobs (uploaded files' bytes): ``local`` (``<data dir>/blobs``) or ``s3`` --
    blob_store: str = "local"
    s3_endpoint: str = ""
    s3_bucket: str = ""
    s3_region: str = "us-east-1"
    s3_access_key_id: str = ""
    s3_secret_access_key: str = field(default="", repr=False)
    s3_prefix: str = ""
    file_max_bytes: int = 500 * 1024 * 1024
    # -- operations: probes, metrics, logs (README "Operations") --
    # /readyz fails when a projection is more than this many events behind the log's head.
    ready_max_lag: int = 1000
    # Whether /readyz checks projection lag at all: off when the read models are fed from
    # Kafka (`agentry project --from kafka` records offsets, not log positions).
    ready_projections: bool = True
    # /metrics needs an API key (else it is public, like the probes).
    metrics_require_key: bool = False
    # The relay, projector and worker answer /metrics on this port (0: not at all).
    metrics_port: int = 0
    # auto (JSON unless stderr is a terminal), json or text.
    log_format: str = "auto"

    def __post_init__(self) -> None:
        self._check_blobs()
        _check_secret("BOOTSTRAP_API_KEY", self.bootstrap_api_key)
        _check_secret("API_KEY_SECRET", self.api_key_secret)
        _check_secret("ROOT_SECRET", self.root_secret)
        _check_secret("SANDBOX_WORKER_KEY", self.sandbox_worker_key)
        if self.max_connections < 1:
            raise SettingsError("AGENTRY_MAX_CONNECTIONS must be at least 1")
        self._check_workers()
        if min(self.rate_limit_workspace_rpm, self.rate_limit_caller_rpm, self.rate_limit_login_rpm) < 0:
            raise SettingsError("AGENTRY_RATE_LIMIT_WORKSPACE_RPM and AGENTRY_RATE_LIMIT_CALLER_RPM must be 0 (off) or more")
        if self.registration not in ("open", "closed"):
            raise SettingsError(f"AGENTRY_REGISTRATION must be open or closed, not {self.registration!r}")
        if self.turns not in TURN_MODES:
            raise SettingsError(f"AGENTRY_TURNS must be in-process or workers, not {self.turns!r}")
        if self.webhook_max_attempts < 1 or self.webhook_senders < 1:
            raise SettingsError("AGENTRY_WEBHOOK_MAX_ATTEMPTS and AGENTRY_WEBHOOK_SENDERS must be at least 1")
        if self.log_format not in ("auto", "json", "text"):
            raise SettingsError(f"AGENTRY_LOG_FORMAT must be auto, json or text, not {self.log_format!r}")
        if not 0 <= self.metrics_port <= 65535:
            raise SettingsError(f"AGENTRY_METRICS_PORT must be a port number (0: off), not {self.metrics_port}")
        if self.embeddings_url and (not self.embeddings_model or self.embeddings_dimensions < 1):
            raise SettingsError(
                "AGENTRY_EMBEDDINGS_URL needs AGENTRY_EMBEDDINGS_MODEL and AGENTRY_EMBEDDINGS_DIMENSIONS "
                "(the size of the model's vectors, e.g. 1536 for text-embedding-3-small)"
            )

    @classmethod
    def from_env(cls) -> Settings:
        return cls(
            data_dir=Path(_env("DATA_DIR", ".agentry")),
            database_url=_env("DATABASE_URL", ""),
            host=_env("HOST", "127.0.0.1"),
            port=_int("PORT", 8400),
            workers=_int("WORKERS", 1),
            bootstrap_api_key=_env("BOOTSTRAP_API_KEY", ""),
            postgres_lock_timeout_seconds=_int("POSTGRES_LOCK_TIMEOUT", 5),
            postgres_pool_size=_int("POSTGRES_POOL_SIZE", 10),
            runtime_workers=_int("RUNTIME_WORKERS", 32),
            projections_in_process=_projections_mode() == "in-process",
            log_level=_env("LOG_LEVEL", "info"),
            kafka_bootstrap_servers=_env("KAFKA_BOOTSTRAP_SERVERS", ""),
            kafka_topic_prefix=_env("KAFKA_TOPIC_PREFIX", "agentry"),
            kafka_projector_group=_env("KAFKA_PROJECTOR_GROUP", "agentry-projections"),
            api_key_secret=_env("API_KEY_SECRET", ""),
            header_timeout_seconds=_seconds("HEADER_TIMEOUT", 10.0),
            body_timeout_seconds=_seconds("BODY_TIMEOUT", 30.0),
            keep_alive_timeout_seconds=_int("KEEP_ALIVE_TIMEOUT", 5),
            max_connections=_int("MAX_CONNECTIONS", 1000),
            root_secret=_env("ROOT_SECRET", ""),
            anthropic_api_key=_env("ANTHROPIC_API_KEY", ""),
            anthropic_base_url=_env("ANTHROPIC_BASE_URL", ""),
            openai_api_key=_env("OPENAI_API_KEY", ""),
            openai_base_url=_env("OPENAI_BASE_URL", ""),
            runtime_retries=_int("RUNTIME_RETRIES", 5),
            runtime_retry_base_seconds=_seconds("RUNTIME_RETRY_BASE", 1.0),
            runtime_max_model_requests=_int("RUNTIME_MAX_MODEL_REQUESTS", 50),
            runtime_lease_seconds=_seconds("RUNTIME_LEASE", 15.0),
            turns=_env("TURNS", "in-process"),
            fault_injection=_env("FAULT_INJECTION", ""),
            work_lease_seconds=_seconds("WORK_LEASE", 30.0),
            worker_timeout_seconds=_seconds("WORKER_TIMEOUT", 120.0),
            mcp_list_timeout=_seconds("MCP_LIST_TIMEOUT", 10.0),
            mcp_call_timeout=_seconds("MCP_CALL_TIMEOUT", 120.0),
            mcp_refresh_margin=_seconds("MCP_REFRESH_MARGIN", 60.0),
            sandbox_worker_key=_env("SANDBOX_WORKER_KEY", ""),
            sandbox_workers=_int("SANDBOX_WORKERS", 1),
            rate_limit_workspace_rpm=_int("RATE_LIMIT_WORKSPACE_RPM", 12_000),
            rate_limit_caller_rpm=_int("RATE_LIMIT_CALLER_RPM", 6_000),
            rate_limit_login_rpm=_int("RATE_LIMIT_LOGIN_RPM", 60),
            sandbox_slots=_int("SANDBOX_SLOTS", 8),
            sandbox_root=_env("SANDBOX_ROOT", ""),
            registration=_env("REGISTRATION", "closed"),
            organization_name=_env("ORGANIZATION_NAME", "Agentry"),
            webhook_timeout_seconds=_seconds("WEBHOOK_TIMEOUT", 10.0),
            webhook_retry_base_seconds=_seconds("WEBHOOK_RETRY_BASE", 5.0),
            webhook_retry_max_seconds=_seconds("WEBHOOK_RETRY_MAX", 6 * 3600.0),
            webhook_max_attempts=_int("WEBHOOK_MAX_ATTEMPTS", 15),
            webhook_senders=_int("WEBHOOK_SENDERS", 8),
            qdrant_url=_env("QDRANT_URL", ""),
            qdrant_api_key=_env("QDRANT_API_KEY", ""),
            embeddings_url=_env("EMBEDDINGS_URL", ""),
            embeddings_model=_env("EMBEDDINGS_MODEL", ""),
            embeddings_api_key=_env("EMBEDDINGS_API_KEY", ""),
            embeddings_dimensions=_int("EMBEDDINGS_DIMENSIONS", 0),
            embedding_threads=_int("EMBEDDING_THREADS", 0),
            blob_store=_env("BLOB_STORE", "local"),
            s3_endpoint=_env("S3_ENDPOINT", ""),
            s3_bucket=_env("S3_BUCKET", ""),
            s3_region=_env("S3_REGION", "us-east-1"),
            s3_access_key_id=_env("S3_ACCESS_KEY_ID", ""),
            s3_secret_access_key=_env("S3_SECRET_ACCESS_KEY", ""),
            s3_prefix=_env("S3_PREFIX", ""),
            file_max_bytes=_int("FILE_MAX_BYTES", 500 * 1024 * 1024),
            ready_max_lag=_int("READY_MAX_LAG", 1000),
            ready_projections=_flag("READY_PROJECTIONS", default="1"),
            metrics_require_key=_flag("METRICS_REQUIRE_KEY"),
            metrics_port=_int("METRICS_PORT", 0),
            log_format=_env("LOG_FORMAT", "auto").lower(),
        )

    def _check_workers(self) -> None:
        if self.workers < 1:
            raise SettingsError("AGENTRY_WORKERS (serve --workers) must be at least 1")
        if self.workers == 1:
            return
        if not self.uses_postgres:
            raise SettingsError(
                f"{self.workers} API processes need AGENTRY_DATABASE_URL (PostgreSQL): the embedded SQLite store "
                "and the local vector index belong to one process; leave AGENTRY_WORKERS (serve --workers) at 1"
            )
        if not self.qdrant_url:
            raise SettingsError(
                f"{self.workers} API processes need AGENTRY_QDRANT_URL (a Qdrant server): Qdrant's local mode in "
                f"{self.vector_dir} lets only one process open it"
            )

    def _check_blobs(self) -> None:
        if self.blob_store not in ("local", "s3"):
            raise SettingsError(f"AGENTRY_BLOB_STORE must be local or s3, not {self.blob_store!r}")
        if self.blob_store == "s3":
            missing = [
                f"AGENTRY_S3_{name.upper()}"
                for name in ("endpoint", "bucket", "access_key_id", "secret_access_key")
                if not getattr(self, f"s3_{name}")
            ]
            if missing:
                raise SettingsError(f"AGENTRY_BLOB_STORE=s3 needs {', '.join(missing)}")
            if not self.s3_endpoint.startswith(("http://", "https://")):
                raise SettingsError("AGENTRY_S3_ENDPOINT must be an http:// or https:// URL")
        if self.file_max_bytes < 1:
            raise SettingsError("AGENTRY_FILE_MAX_BYTES must be at least 1")

    @property
    def uses_postgres(self) -> bool:
        return self.database_url.startswith(("postgres://", "postgresql"))

    @property
    def postgres(self) -> PostgresLocation:
        return parse_postgres_url(self.database_url)

    @property
    def sandbox_worker_key_path(self) -> Path:
        return self.data_dir / "sandbox-worker-key"

    @property
    def key_pepper_path(self) -> Path:
        return self.data_dir / "key-pepper"

    @property
    def root_secret_path(self) -> Path:
        return self.data_dir / "root-secret"

    @property
    def blob_dir(self) -> Path:
        """The embedded blob store: uploaded files, skill files and documents, by SHA-256."""
        return self.data_dir / "blobs"

    @property
    def vector_dir(self) -> Path:
        """The embedded vector index (Qdrant local mode), unless AGENTRY_QDRANT_URL names a server."""
        return self.data_dir / "qdrant"

    @property
    def secret_keys_path(self) -> Path:
        """The embedded data-key table (kept apart from the event log, so a key can be destroyed)."""
        return self.data_dir / "secret_keys.sqlite3"

    @property
    def admin_key_path(self) -> Path:
        return self.data_dir / "admin-api-key"

    @property
    def read_model_path(self) -> Path:
        return self.data_dir / "read_models.sqlite3"

    @property
    def event_store_path(self) -> Path:
        return self.data_dir / "events.sqlite3"

    @property
    def read_model_url(self) -> str:
        if self.uses_postgres:
            return self.postgres.sqlalchemy_url
        return f"sqlite:///{self.read_model_path.resolve()}"
