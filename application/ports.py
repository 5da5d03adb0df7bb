"""The ports the use cases need. Adapters live in ``infra``; the composition root wires them."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar
from uuid import UUID

from eventsourcing.domain import Aggregate

from application.views import CatalogEntry

A = TypeVar("A", bound=Aggregate)


class StoredEvent(Protocol):
    """What a stream read yields: a decoded domain event of one aggregate."""

    originator_id: UUID
    originator_version: int


class PendingSave(Protocol):
    def wait(self) -> int | None: ...


class EventStore(Protocol):
    """One atomic append per command, optimistic concurrency on aggregate version.

    ``save`` raises ``application.errors.Conflict`` when another writer got there first, and
    returns the highest global notification id it wrote (``None`` when nothing was new).
    ``load`` raises ``application.errors.NotFound`` for an unknown stream.
    """

    def save(self, *aggregates: Aggregate) -> int | None: ...

    def save_pending(self, *aggregates: Aggregate) -> PendingSave:
        """``save`` in two steps: queued now, committed (or refused) by the result's
        ``wait``, which the caller must reach soon on every path."""
        ...

    def load(self, aggregate_id: UUID, version: int | None = None) -> Any: ...

    def load_current(self, aggregate_id: UUID) -> Any:
        """As ``load``, or the copy ``hold`` kept from this process's last save of it, read
        from nowhere: for load → command → save, whose optimistic check catches a stale copy."""
        ...

    def hold(self, aggregate: Aggregate) -> None:
        """Keeps ``aggregate``, just saved and not to be changed again, for ``load_current``."""
        ...

    def read_stream(
        self,
        aggregate_id: UUID,
        after_version: int = 0,
        limit: int | None = None,
        until_version: int | None = None,
        descending: bool = False,
    ) -> Sequence[Any]:
        """Events with ``after_version < version <= until_version``, oldest first unless
        ``descending``; at most ``limit`` of them."""
        ...


class ChangeListener(Protocol):
    """Told, after commit, which streams changed, so live tails can wake up."""

    def streams_changed(self, aggregate_ids: Iterable[UUID], notification_id: int) -> None: ...


# -- secrets -------------------------------------------------------------------------------


class SecretUnavailable(Exception):
    """A sealed secret can no longer be opened: its data key was destroyed (its owner was
    deleted), or the root key that wrapped it is not the one configured."""


class SecretCipher(Protocol):
    """Envelope encryption: each owner (a model card, a vault credential, …) gets its own
    AES-256-GCM data key, kept wrapped by the root key in a key table outside the event log.

    A sealed value is safe to put in an event: it is ciphertext plus the id of the data key.
    ``shred`` destroys the owner's data key, so every copy of its ciphertext (old events,
    Kafka, backups) becomes unreadable.
    """

    def seal(self, owner: str, plaintext: str) -> str:
        """Encrypts ``plaintext`` under ``owner``'s data key (made on first use)."""
        ...

    def open(self, owner: str, sealed: str) -> str:
        """Decrypts a value ``seal`` made; raises ``SecretUnavailable`` once shredded."""
        ...

    def shred(self, owner: str) -> None:
        """Destroys ``owner``'s data key. Idempotent."""
        ...


# -- model providers -----------------------------------------------------------------------

PROVIDER_KINDS = ("ant", "ant-compatible", "oai", "oai-compatible")


@dataclass(frozen=True)
class ProviderTarget:
    """Where one model request goes: a model card (or the default provider settings),
    with its key opened at the moment of use. Never logged, never stored."""

    provider: str  # one of PROVIDER_KINDS
    model: str  # the wire model name
    api_key: str = field(repr=False)
    base_url: str | None = None
    custom_headers: dict[str, str] = field(default_factory=dict, repr=False)

    @property
    def speaks_anthropic(self) -> bool:
        return self.provider in ("ant", "ant-compatible")


@dataclass(frozen=True)
class ModelRequest:
    """One provider call, in the Anthropic Messages shape (the OpenAI adapter converts).

    ``messages`` alternate user / assistant, first user; content is always a list of blocks:
    ``text``, ``image``, ``document``, ``thinking {thinking, signature}``,
    ``redacted_thinking {data}``, ``tool_use {id, name, input}``,
    ``tool_result {tool_use_id, content, is_error}``. ``system_notes`` are mid-conversation
    system messages, as ``(index into messages, text)``: OpenAI gets them as ``system``
    turns in place, Anthropic folds them into ``system``.
    """

    system: str | None
    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]]  # {name, description, input_schema}
    max_tokens: int = 8192
    system_notes: list[tuple[int, str]] = field(default_factory=list)
    temperature: float | None = None  # the provider's default when None
    stop: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ModelUsage:
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_input_tokens: int = 0
    cache_creation_input_tokens: int = 0

    def as_dict(self) -> dict[str, int]:
        return {
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cache_read_input_tokens": self.cache_read_input_tokens,
            "cache_creation_input_tokens": self.cache_creation_input_tokens,
        }


@dataclass(frozen=True)
class ModelResponse:
    """The provider's complete answer. ``content`` holds ``text``, ``thinking``,
    ``redacted_thinking`` and ``tool_use`` blocks in model order (Anthropic shape; an OpenAI
    tool call becomes ``tool_use`` with its ``call_…`` id and parsed arguments).
    ``stop_reason`` is ``end_turn``, ``tool_use``, ``max_tokens``, ``refusal`` or
    ``stop_sequence``; ``usage`` is the provider's final usage for the request."""

    content: list[dict[str, Any]]
    stop_reason: str
    usage: ModelUsage


@dataclass(frozen=True)
class TextDelta:
    """A piece of streamed text: ``index`` counts the text blocks of the response (0, 1,
    …), so it is the block's position in the final ``agent.message`` content."""

    index: int
    text: str


@dataclass(frozen=True)
class ThinkingStarted:
    """The model began a thinking block (previews of ``agent.thinking`` are start-only)."""


ProviderDelta = TextDelta | ThinkingStarted


class ProviderError(Exception):
    """A provider call failed. ``kind`` decides what the runtime does:

    - ``overloaded`` (529), ``rate_limited`` (429), ``request_failed`` (5xx, connection
      lost, error frame mid-stream, timeout): retried with backoff;
    - ``invalid_request`` (400, 413, 422: the provider refused this request — an image it
      cannot read, a prompt too long): not retried; the turn ends, the session stays usable;
    - ``authentication`` (401/403), ``billing`` (402), ``configuration`` (404 and other
      4xx, a model the provider does not know): terminal.

    ``message`` is the provider's reason, safe to show (it never holds the key)."""

    RETRYABLE = frozenset({"overloaded", "rate_limited", "request_failed"})

    def __init__(self, kind: str, message: str, status: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.status = status
        self.retry_after = retry_after

    @property
    def retryable(self) -> bool:
        return self.kind in self.RETRYABLE


class Cancellation(Protocol):
    """Set by an interrupt; a provider stream registers a callback that aborts it."""

    @property
    def cancelled(self) -> bool: ...

    def on_cancel(self, callback: Callable[[], None]) -> None:
        """Runs ``callback`` now if already cancelled, else when cancelled (once)."""
        ...


class ProviderCancelled(Exception):
    """The stream was aborted because the turn was interrupted."""


class ModelProvider(Protocol):
    """Streams one model request to a provider through its official SDK."""

    def stream(
        self,
        target: ProviderTarget,
        request: ModelRequest,
        on_delta: Callable[[ProviderDelta], None],
        cancel: Cancellation,
    ) -> ModelResponse:
        """Raises ``ProviderError`` on failure, ``ProviderCancelled`` once ``cancel`` fires."""
        ...


@dataclass(frozen=True)
class ProbeResult:
    """``ok`` False carries the provider's reason (``"Provider returned HTTP 401: …"``)."""

    ok: bool
    message: str = ""
    status: int | None = None


class ProviderProbe(Protocol):
    """A one-token request (at most 6 s) that shows a key and URL are accepted."""

    def probe(self, target: ProviderTarget) -> ProbeResult: ...


@dataclass(frozen=True)
class Lease:
    """A work item's lease as its last claim left it: the heartbeat a worker must echo
    (None before its first), and when it runs out (seconds since the epoch)."""

    claim: int
    last_heartbeat: str | None
    expires_at: float


class WorkLeases(Protocol):
    """The heartbeat clock of claimed work items, shared by every API process. Changes are
    compare-and-set: one claim, one expected heartbeat, one winner."""

    def grant(self, work_id: str, claim: int, expires_at: float) -> None:
        """Starts the lease of a new claim (replacing an older claim's)."""

    def extend(self, work_id: str, claim: int, expected: str | None, heartbeat: str, expires_at: float) -> bool:
        """Records ``heartbeat`` if the claim holds and ``expected`` is the last one."""

    def get(self, work_id: str) -> Lease | None: ...

    def many(self, work_ids: list[str]) -> dict[str, Lease]: ...


class WorkIndex(Protocol):
    """Where polls find an environment's live work items (the work-items read model)."""

    def live_work_ids(self, environment_ids: list[str] | None, hosting: str | None = None, limit: int = 200) -> list[str]: ...

    def work_queue_depth(self, environment_id: str) -> tuple[int, int, str | None]: ...


class ModelIndex(Protocol):
    """Where ``GET /v1/models`` finds a tenant's live agents and model cards (the read models)."""

    def model_catalog(
        self, tenant_id: str, limit: int, after: tuple[str, str] | None = None, before: tuple[str, str] | None = None
    ) -> tuple[list[CatalogEntry], bool]: ...

    def catalog_key(self, tenant_id: str, entry_id: str) -> tuple[str, str] | None: ...

    def agent_ids_named(self, tenant_id: str, name: str, limit: int = 2) -> list[str]: ...


# -- outbound HTTP (credential checks) -----------------------------------------------------


@dataclass(frozen=True)
class HttpReply:
    status_code: int
    content_type: str
    body: str


class HttpUnreachable(Exception):
    """No HTTP answer: DNS, connection, TLS or timeout."""


class HttpPoster(Protocol):
    """One short outbound POST (a credential's MCP server, its OAuth token endpoint)."""

    def post(self, url: str, headers: dict[str, str], body: bytes, timeout: float) -> HttpReply:
        """The server's answer (any status); ``HttpUnreachable`` when there is none."""
        ...


@dataclass(frozen=True)
class McpListedTool:
    """One tool an MCP server lists."""

    name: str
    description: str
    input_schema: dict[str, Any]


@dataclass(frozen=True)
class McpCallOutcome:
    """A tool call's result, its content already in event shape (text / image blocks).
    A tool that failed is a result with ``is_error``, not an exception."""

    content: list[dict[str, Any]]
    is_error: bool


class McpUnauthorized(Exception):
    """The MCP server answered 401 or 403 (``status``). The message names the status only."""

    def __init__(self, status: int) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status


class McpUnreachable(Exception):
    """No usable answer: DNS, connect, TLS, 404, a protocol error or the deadline. The message
    names the failure's class only (never an exception's text, which may quote a header)."""


class McpCancelled(Exception):
    """The caller's cancellation fired during the operation."""


class McpCancellation(Protocol):
    @property
    def cancelled(self) -> bool: ...


class McpClient(Protocol):
    """Streamable-HTTP MCP client: one connection per operation, each bounded by ``deadline``
    seconds and ended early when ``cancel`` fires."""

    def list_tools(self, url: str, bearer: str | None, cancel: McpCancellation, deadline: float) -> list[McpListedTool]: ...

    def call_tool(
        self, url: str, bearer: str | None, name: str, arguments: dict[str, Any], cancel: McpCancellation, deadline: float
    ) -> McpCallOutcome: ...


class CredentialLocks(Protocol):
    """One refresh of a credential at a time, among every process sharing the store (refresh
    tokens rotate: two refreshes with one token spoil the second, or revoke the family)."""

    def holding(self, credential_id: str) -> AbstractContextManager[None]:
        """Held for the ``with`` block; ``CredentialLockTimeout`` when not had in time."""
        ...


class CredentialLockTimeout(Exception):
    """Another holder kept the credential's lock longer than the wait allows."""


# -- blobs (file bytes, skill files, knowledge documents) ----------------------------------


class BlobMissing(Exception):
    """No blob is stored under the key asked for."""


class BlobStore(Protocol):
    """Bytes kept outside the event log, content-addressed: the key is the SHA-256 (lowercase
    hex) of the bytes, so an event holds the key, never the bytes, and storing the same bytes
    twice stores them once. ``delete`` is the caller's decision that no live record still
    names the key (the store keeps no reference counts)."""

    def put(self, data: bytes) -> str:
        """Stores ``data``; returns its key. Idempotent."""
        ...

    def get(self, key: str) -> bytes:
        """Raises ``BlobMissing`` for an unknown key."""
        ...

    def exists(self, key: str) -> bool: ...

    def delete(self, key: str) -> None:
        """Idempotent."""
        ...


# -- meaning: embeddings and the vector index ----------------------------------------------


class Embedder(Protocol):
    """Text → vectors of a fixed size, in the order given. ``name`` identifies the model so
    an index built with one model is never searched with another's vectors."""

    name: str
    dimensions: int

    def embed(self, texts: Sequence[str]) -> list[list[float]]: ...


@dataclass(frozen=True)
class IndexText:
    """A vector projection's instruction: embed ``text`` and store it as the point ``key``.

    ``key`` is stable for a given event (an event id, plus a part number when one event
    yields several texts): the projection turns it into the point id, so replaying the
    event writes the same point again instead of a second one. ``payload`` holds what a
    search filters and answers on; it always names ``tenant_id``.
    """

    collection: str
    key: str
    text: str
    payload: dict[str, Any]


@dataclass(frozen=True)
class UnindexWhere:
    """A vector projection's instruction: drop every point of ``collection`` whose payload
    has all of ``match``'s values (a memory rewritten or deleted, a document removed)."""

    collection: str
    match: dict[str, str]


VectorChange = IndexText | UnindexWhere


@dataclass(frozen=True)
class VectorHit:
    key: str
    score: float
    payload: dict[str, Any]


class SemanticSearch(Protocol):
    """Searches one collection by meaning: ``query`` is embedded with the index's model and
    the points whose payload has all of ``match``'s values are ranked, best first."""

    def search(self, collection: str, query: str, limit: int, match: dict[str, str]) -> list[VectorHit]: ...
