"""Request bodies and query strings, validated at the edge. Invariants live in aggregates;
these only decide whether a request is well-formed."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, RootModel, field_validator, model_validator

from application.ports import PROVIDER_KINDS
from application.sessions import OVERRIDABLE
from domain.environment_config import MANAGERS, host_problem, package_problem
from interfaces.http.limits import check_event_sizes

Name = Annotated[str, Field(min_length=1, max_length=256)]
ShortText = Annotated[str, Field(max_length=256)]


class Open(BaseModel):
    """A nested object: known fields are checked, unknown ones are kept (forward compatible)."""

    model_config = ConfigDict(extra="allow")


class ModelConfig(Open):
    id: Annotated[str, Field(min_length=1, max_length=256)]
    effort: str | dict[str, Any] | None = None
    speed: Literal["standard", "fast"] | None = None
    inference_geo: str | None = None


ModelRef = Annotated[str, Field(min_length=1, max_length=256)] | ModelConfig


class PermissionPolicy(Open):
    type: Literal["always_allow", "always_ask", "auto"]


class ToolDefault(Open):
    enabled: bool | None = None
    permission_policy: PermissionPolicy | None = None


class ToolConfig(ToolDefault):
    name: Annotated[str, Field(min_length=1, max_length=128)]
    type: str | None = None


class AgentToolset(Open):
    type: Literal["agent_toolset_20260401"]
    configs: list[ToolConfig] | None = Field(default=None, max_length=64)
    default_config: ToolDefault | None = None


class McpToolset(Open):
    type: Literal["mcp_toolset"]
    mcp_server_name: Annotated[str, Field(min_length=1, max_length=128)]
    configs: list[ToolConfig] | None = Field(default=None, max_length=256)
    default_config: ToolDefault | None = None


class InputSchema(Open):
    type: Literal["object"]


class CustomTool(Open):
    type: Literal["custom"]
    name: Annotated[str, Field(min_length=1, max_length=128)]
    description: Annotated[str, Field(max_length=10_000)]
    input_schema: InputSchema


Tool = Annotated[AgentToolset | McpToolset | CustomTool, Field(discriminator="type")]


class McpServer(Open):
    type: Literal["url"]
    name: Annotated[str, Field(min_length=1, max_length=128)]
    url: Annotated[str, Field(min_length=1, max_length=2048)]


class Skill(Open):
    type: Literal["anthropic", "custom"]
    skill_id: Annotated[str, Field(min_length=1, max_length=256)]
    version: str | None = None


class ExecutionIdentity(Open):
    type: Literal["service_account", "aws_role"]


class Multiagent(Open):
    type: Literal["coordinator", "multiagent_20261001"]


def check_metadata(metadata: dict[str, Any] | None, allow_null_values: bool = False) -> Any:
    if metadata is None:
        return metadata
    if len(metadata) > 16:
        raise ValueError("at most 16 metadata pairs are allowed")
    for key, value in metadata.items():
        if not 0 < len(key) <= 64:
            raise ValueError("metadata keys must be 1 to 64 characters")
        if value is None and allow_null_values:
            continue
        if not isinstance(value, str) or len(value) > 512:
            raise ValueError("metadata values must be strings of at most 512 characters")
    return metadata


def not_null(value: Any) -> Any:
    if value is None:
        raise ValueError("may not be null")
    return value


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")

    def given(self) -> dict[str, Any]:
        """The fields the client actually sent (partial updates rely on this)."""
        return self.model_dump(exclude_unset=True)


class KnowledgeBaseRef(Strict):
    type: Literal["knowledge_base"]
    knowledge_base_id: Annotated[str, Field(min_length=1, max_length=128)]
    description: str | None = Field(default=None, max_length=1024, description="Why this agent has it (shown to the model)")


class AgentFields(Strict):
    description: str | None = Field(default=None, max_length=2048)
    system: str | None = Field(default=None, max_length=100_000)
    tools: list[Tool] | None = Field(default=None, max_length=256)
    mcp_servers: list[McpServer] | None = Field(default=None, max_length=20)
    skills: list[Skill] | None = Field(default=None, max_length=64)
    multiagent: Multiagent | None = None
    execution_identity: ExecutionIdentity | None = None
    # Agentry's own: knowledge bases the agent searches with its built-in knowledge_search tool.
    knowledge_bases: list[KnowledgeBaseRef] | None = Field(
        default=None,
        max_length=20,
        description=(
            "Agentry: knowledge bases the agent searches with the built-in `knowledge_search` tool "
            "(SDK: `extra_body`). A full replacement on update; `[]` or null clears it."
        ),
    )
    # Agentry's own: where the agent sits among the workspace's departments and boards.
    department_id: Annotated[str, Field(min_length=1, max_length=64)] | None = Field(
        default=None, description="Agentry: the department the agent belongs to (`dept_…`)"
    )
    primary_board_id: Annotated[str, Field(min_length=1, max_length=64)] | None = Field(
        default=None, description="Agentry: the board the agent mostly works on (`board_…`)"
    )


class AgentCreate(AgentFields):
    name: Name
    model: ModelRef
    metadata: dict[str, str] | None = None

    _metadata = field_validator("metadata")(lambda cls, v: check_metadata(v))


class AgentUpdate(AgentFields):
    name: Name | None = None
    model: ModelRef | None = None
    metadata: dict[str, str | None] | None = None
    version: int | None = Field(default=None, ge=1)

    _metadata = field_validator("metadata")(lambda cls, v: check_metadata(v, allow_null_values=True))

    _not_null = field_validator("name", "model")(lambda cls, v: not_null(v))


def obeyed(problem: Callable[[object], str | None], value: str) -> str:
    """`value`, if the domain's rule (`problem`) has nothing against it (the error's location
    names the field)."""
    if found := problem(value):
        raise ValueError(found)
    return value


class Networking(Open):
    type: Literal["unrestricted", "limited"]
    allowed_hosts: list[ShortText] | None = Field(default=None, max_length=256)
    allow_mcp_servers: bool | None = None
    allow_package_managers: bool | None = None

    @field_validator("allowed_hosts")
    @classmethod
    def _hosts(cls, hosts: list[str] | None) -> list[str] | None:
        return [obeyed(host_problem, host) for host in hosts] if hosts else hosts


PackageList = list[Annotated[str, Field(min_length=1, max_length=256)]] | None


class Packages(Open):
    type: Literal["packages"] | None = None
    apt: PackageList = None
    cargo: PackageList = None
    gem: PackageList = None
    go: PackageList = None
    npm: PackageList = None
    pip: PackageList = None

    @field_validator(*MANAGERS)
    @classmethod
    def _names(cls, names: list[str] | None) -> list[str] | None:
        return [obeyed(package_problem, name) for name in names] if names else names


class CloudConfig(Open):
    type: Literal["cloud"]
    networking: Networking | None = None
    packages: Packages | None = None


class SelfHostedConfig(Open):
    type: Literal["self_hosted"]


EnvironmentConfig = Annotated[CloudConfig | SelfHostedConfig, Field(discriminator="type")]


class EnvironmentCreate(Strict):
    name: Name
    description: str | None = Field(default=None, max_length=2048)
    config: EnvironmentConfig | None = None
    metadata: dict[str, str] | None = None
    scope: Literal["organization", "account"] | None = None

    _metadata = field_validator("metadata")(lambda cls, v: check_metadata(v))


class EnvironmentUpdate(Strict):
    name: Name | None = None
    description: str | None = Field(default=None, max_length=2048)
    config: EnvironmentConfig | None = None
    metadata: dict[str, str | None] | None = None
    scope: Literal["organization", "account"] | None = None

    _metadata = field_validator("metadata")(lambda cls, v: check_metadata(v, allow_null_values=True))
    _not_null = field_validator("name")(lambda cls, v: not_null(v))


class EnvironmentKeyCreate(Strict):
    name: Name | None = None


class WorkUpdate(Strict):
    metadata: dict[str, str | None]

    _metadata = field_validator("metadata")(lambda cls, v: check_metadata(v, allow_null_values=True))


class WorkStop(Strict):
    force: bool | None = None
    # Agentry's own worker only: why the session's sandbox could not start.
    error: str | None = Field(default=None, min_length=1, max_length=4096)


class AgentRef(Strict):
    type: Literal["agent", "agent_with_overrides"] = "agent"
    id: Annotated[str, Field(min_length=1, max_length=128)]
    version: int | None = Field(default=None, ge=1, le=2**31, strict=True)
    model: ModelRef | None = None
    system: str | None = Field(default=None, max_length=100_000)
    tools: list[Tool] | None = Field(default=None, max_length=256)
    mcp_servers: list[McpServer] | None = Field(default=None, max_length=20)
    skills: list[Skill] | None = Field(default=None, max_length=64)

    @model_validator(mode="after")
    def _overrides_need_their_type(self) -> AgentRef:
        overridden = [name for name in OVERRIDABLE if name in self.model_fields_set]
        if overridden and self.type != "agent_with_overrides":
            raise ValueError(
                f"{', '.join(overridden)} may only be given with type 'agent_with_overrides'"
            )
        return self


# -- session events a client may send ----------------------------------------------------


class TextBlock(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: Literal["text"]
    text: str


class _Source(BaseModel):
    model_config = ConfigDict(extra="allow")


class Base64Source(_Source):
    type: Literal["base64"]
    data: str
    media_type: str


class UrlSource(_Source):
    type: Literal["url"]
    url: str = Field(min_length=1)


class FileSource(_Source):
    type: Literal["file"]
    file_id: str = Field(min_length=1)


class PlainTextSource(_Source):
    type: Literal["text"]
    data: str
    media_type: str | None = None


class ImageBlock(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: Literal["image"]
    source: Annotated[Base64Source | UrlSource | FileSource, Field(discriminator="type")]


class DocumentBlock(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: Literal["document"]
    source: Annotated[Base64Source | PlainTextSource | UrlSource | FileSource, Field(discriminator="type")]
    title: str | None = None
    context: str | None = None


class SearchResultBlock(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: Literal["search_result"]
    source: str
    title: str
    content: list[TextBlock]


ContentBlock = Annotated[TextBlock | ImageBlock | DocumentBlock | SearchResultBlock, Field(discriminator="type")]


class UserMessage(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: Literal["user.message"]
    content: list[ContentBlock] = Field(min_length=1)


class UserInterrupt(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: Literal["user.interrupt"]


class UserToolConfirmation(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: Literal["user.tool_confirmation"]
    tool_use_id: str = Field(min_length=1)
    result: Literal["allow", "deny"]
    deny_message: str | None = None


class UserCustomToolResult(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: Literal["user.custom_tool_result"]
    custom_tool_use_id: str = Field(min_length=1)
    content: list[ContentBlock] | None = None
    is_error: bool | None = None


class UserToolResult(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: Literal["user.tool_result"]
    tool_use_id: str = Field(min_length=1)
    content: list[ContentBlock] | None = None
    is_error: bool | None = None


class TextRubric(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: Literal["text"]
    content: str = Field(min_length=1, max_length=262_144)


class FileRubric(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: Literal["file"]
    file_id: str = Field(min_length=1)


class UserDefineOutcome(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: Literal["user.define_outcome"]
    description: str = Field(min_length=1)
    rubric: Annotated[TextRubric | FileRubric, Field(discriminator="type")]
    max_iterations: int | None = Field(default=None, ge=1)


class SystemMessage(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: Literal["system.message"]
    content: list[TextBlock] = Field(min_length=1)


UserEvent = Annotated[
    UserMessage | UserInterrupt | UserToolConfirmation | UserToolResult | UserCustomToolResult | UserDefineOutcome | SystemMessage,
    Field(discriminator="type"),
]


class SendEvents(Strict):
    events: list[UserEvent] = Field(min_length=1, max_length=100)

    _sizes = field_validator("events", mode="before")(lambda cls, v: check_event_sizes(v, "events"))


class MonetaryAmount(Open):
    amount: Annotated[str, Field(pattern=r"^[0-9]{1,18}$")]
    currency: Literal["USD"]


class BudgetLimit(Strict):
    type: Literal["limit"]
    max_list_cost: MonetaryAmount


# -- session resources ------------------------------------------------------------------


def check_mount_path(value: str | None) -> str | None:
    """An absolute path with no ``.`` or ``..`` segment, kept without a trailing slash so
    ``/a/`` and ``/a`` are the one mount point they are."""
    if value is None:
        return value
    if any(segment in (".", "..") for segment in value.split("/")):
        raise ValueError("may not contain . or .. segments")
    return value.rstrip("/")


# Absolute, no empty segment, no control character; at most one trailing slash.
MountPath = Annotated[str, Field(min_length=2, max_length=1024, pattern=r"^(/[^/\x00-\x1f\x7f]+)+/?$")]
ResourceKey = Annotated[str, Field(min_length=1, max_length=256)]
# Sent to GitHub in a header when the repository is cloned: visible ASCII only.
RepositoryToken = Annotated[
    str, Field(min_length=1, max_length=4096, pattern=r"^[\x21-\x7e]+$", json_schema_extra={"writeOnly": True})
]


class FileResourceParams(Strict):
    type: Literal["file"]
    file_id: ResourceKey
    mount_path: MountPath | None = Field(default=None, description="default `/mnt/session/uploads/<file_id>`")

    _mount_path = field_validator("mount_path")(lambda cls, v: check_mount_path(v))


class BranchCheckout(Strict):
    type: Literal["branch"]
    name: Annotated[str, Field(min_length=1, max_length=256)]


class CommitCheckout(Strict):
    type: Literal["commit"]
    sha: Annotated[str, Field(pattern=r"^([0-9a-fA-F]{40}|[0-9a-fA-F]{64})$")]


class GitHubRepositoryResourceParams(Strict):
    type: Literal["github_repository"]
    url: Annotated[str, Field(min_length=1, max_length=2048, pattern=r"^https?://[^\s]+$")]
    authorization_token: RepositoryToken | None = Field(default=None, repr=False, description="write-only")
    checkout: Annotated[BranchCheckout | CommitCheckout, Field(discriminator="type")] | None = None
    mount_path: MountPath | None = Field(default=None, description="default `/workspace/<repository name>`")

    _url = field_validator("url")(lambda cls, v: check_base_url(v))
    _mount_path = field_validator("mount_path")(lambda cls, v: check_mount_path(v))


class MemoryStoreResourceParams(Strict):
    type: Literal["memory_store"]
    memory_store_id: ResourceKey
    access: Literal["read_write", "read_only"] | None = None
    instructions: str | None = Field(default=None, max_length=4096)


SessionResourceParams = Annotated[
    FileResourceParams | GitHubRepositoryResourceParams | MemoryStoreResourceParams, Field(discriminator="type")
]


class SessionResourceAdd(RootModel[SessionResourceParams]):
    """The SDK sends a ``file``; the kinds a session can be created with are all accepted."""

    def given(self) -> dict[str, Any]:
        return self.root.given()


class SessionResourceUpdate(Strict):
    authorization_token: RepositoryToken = Field(repr=False, description="the repository's new token (write-only)")


class SessionCreate(Strict):
    agent: Annotated[str, Field(min_length=1)] | AgentRef
    environment_id: str = Field(min_length=1)
    title: str | None = Field(default=None, max_length=512)
    metadata: dict[str, str] | None = None
    resources: list[SessionResourceParams] | None = Field(default=None, max_length=1000)
    vault_ids: list[str] | None = Field(default=None, max_length=50)
    budget: BudgetLimit | None = None
    initial_events: list[UserEvent] | None = Field(default=None, max_length=50)

    _sizes = field_validator("initial_events", mode="before")(
        lambda cls, v: check_event_sizes(v, "initial_events")
    )

    _metadata = field_validator("metadata")(lambda cls, v: check_metadata(v))


class SessionAgentUpdate(Strict):
    """Only ``tools`` and ``mcp_servers`` may change mid-session; each replaces the whole list."""

    tools: list[Tool] | None = Field(default=None, max_length=256)
    mcp_servers: list[McpServer] | None = Field(default=None, max_length=20)


class SessionUpdate(Strict):
    title: str | None = Field(default=None, max_length=512)
    metadata: dict[str, str | None] | None = None
    agent: SessionAgentUpdate | None = None
    budget: BudgetLimit | None = None
    # The SDK documents this as not yet supported, yet its own tests send it: a full replacement.
    vault_ids: list[str] | None = Field(default=None, max_length=50)

    _metadata = field_validator("metadata")(lambda cls, v: check_metadata(v, allow_null_values=True))


# -- model cards ---------------------------------------------------------------------------

Provider = Literal[PROVIDER_KINDS]  # type: ignore[valid-type]  # the one list, in application.ports
# A name the catalogue sorts and PostgreSQL extracts as text: no control characters (a NUL
# stored here made every later /v1/models listing of the tenant a 500).
ModelHandle = Annotated[str, Field(min_length=1, max_length=256, pattern=r"^[^\x00-\x1f\x7f]+$")]
# Keys travel in HTTP headers: visible ASCII only. At least 8 characters, so the 4 the
# responses preview are never more than half of it. The fields using it are ``repr=False``,
# so a model's repr never shows one.
ApiKey = Annotated[
    str, Field(min_length=8, max_length=4096, pattern=r"^[\x21-\x7e]+$", json_schema_extra={"writeOnly": True})
]
BaseUrl = Annotated[str, Field(min_length=1, max_length=2048, pattern=r"^https?://[^\s]+$")]
# RFC 9110 token characters; values: visible ASCII, space and tab (no CR/LF: no header injection).
HeaderName = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")]
HeaderValue = Annotated[str, Field(max_length=8192, pattern=r"^[\t\x20-\x7e]*$")]
CustomHeaders = Annotated[
    dict[HeaderName, HeaderValue],
    Field(max_length=32, json_schema_extra={"description": "values are write-only: responses show names only"}),
]


def check_base_url(value: str | None) -> str | None:
    if value is None:
        return value
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018  # raises on a port that is not a number
    except ValueError:
        raise ValueError("must be an http(s) URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http(s) URL with a host")
    return value


class ModelCardCreate(Strict):
    model_id: ModelHandle = Field(description="the handle an agent's `model` names; unique per tenant")
    provider: Provider
    api_key: ApiKey = Field(repr=False)
    model: ModelHandle | None = Field(default=None, description="the wire model name (default: model_id)")
    base_url: BaseUrl | None = None
    custom_headers: CustomHeaders | None = Field(default=None, repr=False)
    probe: bool = Field(default=True, description="false skips the capability probe (offline set-up)")

    _base_url = field_validator("base_url")(lambda cls, v: check_base_url(v))


class ModelCardUpdate(Strict):
    model_id: ModelHandle | None = None
    provider: Provider | None = None
    api_key: ApiKey | None = Field(default=None, repr=False, description="rotates the key")
    model: ModelHandle | None = None
    base_url: BaseUrl | None = Field(default=None, description="null clears it")
    custom_headers: CustomHeaders | None = Field(default=None, repr=False, description="replaces every header; null clears")
    probe: bool = Field(default=True, description="false skips the capability probe")

    _base_url = field_validator("base_url")(lambda cls, v: check_base_url(v))
    _not_null = field_validator("model_id", "provider", "api_key", "model", "probe")(lambda cls, v: not_null(v))


# -- vaults and credentials ----------------------------------------------------------------
# Secrets (token, access_token, refresh_token, client_secret, secret_value) are write-only:
# ``repr=False`` keeps them out of any log of a model, and responses never carry them.

DisplayName = Annotated[str, Field(min_length=1, max_length=255)]
# Sent as ``Authorization: Bearer …`` or in a form: visible ASCII only (no header injection).
BearerSecret = Annotated[str, Field(min_length=1, max_length=8192, pattern=r"^[\x21-\x7e]+$")]
SecretValue = Annotated[str, Field(min_length=1, max_length=16384)]
McpServerUrl = Annotated[str, Field(min_length=1, max_length=2047, pattern=r"^https?://[^\s]+$")]
EndpointUrl = Annotated[str, Field(min_length=1, max_length=2047, pattern=r"^https?://[^\s]+$")]
OAuthText = Annotated[str, Field(max_length=2048)]
# A bare host, an IPv4 address or ``*.example.com``: no scheme, port, path or IPv6.
AllowedHost = Annotated[
    str, Field(min_length=1, max_length=253, pattern=r"^(\*\.)?[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*$")
]
EnvVarName = Annotated[str, Field(min_length=1, max_length=256, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]


class VaultCreate(Strict):
    display_name: DisplayName
    metadata: dict[str, str] | None = None

    _metadata = field_validator("metadata")(lambda cls, v: check_metadata(v))


class VaultUpdate(Strict):
    display_name: DisplayName | None = None
    metadata: dict[str, str | None] | None = Field(default=None, description="a patch: null deletes a key")

    _metadata = field_validator("metadata")(lambda cls, v: check_metadata(v, allow_null_values=True))


class TokenEndpointAuthNone(Strict):
    type: Literal["none"]


class TokenEndpointAuthSecret(Strict):
    type: Literal["client_secret_basic", "client_secret_post"]
    client_secret: BearerSecret = Field(repr=False, description="write-only")


class TokenEndpointAuthSecretUpdate(Strict):
    type: Literal["client_secret_basic", "client_secret_post"]
    client_secret: BearerSecret | None = Field(default=None, repr=False, description="write-only; omitted keeps it")


class McpOAuthRefresh(Strict):
    client_id: Annotated[str, Field(min_length=1, max_length=2048)]
    refresh_token: BearerSecret = Field(repr=False, description="write-only")
    token_endpoint: EndpointUrl
    token_endpoint_auth: Annotated[TokenEndpointAuthNone | TokenEndpointAuthSecret, Field(discriminator="type")]
    resource: OAuthText | None = None
    scope: OAuthText | None = None


class McpOAuthRefreshUpdate(Strict):
    refresh_token: BearerSecret | None = Field(default=None, repr=False, description="write-only")
    scope: OAuthText | None = Field(default=None, description='"" clears the scope')
    token_endpoint_auth: Annotated[
        TokenEndpointAuthNone | TokenEndpointAuthSecretUpdate, Field(discriminator="type")
    ] | None = None
    # Immutable: accepted only so the refusal can say so (any other value is a 400).
    client_id: str | None = None
    token_endpoint: str | None = None
    resource: str | None = None


class StaticBearerAuth(Strict):
    type: Literal["static_bearer"]
    token: BearerSecret = Field(repr=False, description="write-only")
    mcp_server_url: McpServerUrl


class McpOAuthAuth(Strict):
    type: Literal["mcp_oauth"]
    access_token: BearerSecret = Field(repr=False, description="write-only")
    mcp_server_url: McpServerUrl
    expires_at: datetime | None = Field(default=None, description="in the future")
    refresh: McpOAuthRefresh | None = None


class UnrestrictedNetworking(Strict):
    type: Literal["unrestricted"]


class LimitedNetworking(Strict):
    type: Literal["limited"]
    allowed_hosts: list[AllowedHost] = Field(max_length=16)


CredentialNetworking = Annotated[UnrestrictedNetworking | LimitedNetworking, Field(discriminator="type")]


class InjectionLocation(Strict):
    header: bool | None = None
    body: bool | None = None


class EnvironmentVariableAuth(Strict):
    type: Literal["environment_variable"]
    secret_name: EnvVarName
    secret_value: SecretValue = Field(repr=False, description="write-only")
    networking: CredentialNetworking
    injection_location: InjectionLocation | None = None


class StaticBearerAuthUpdate(Strict):
    type: Literal["static_bearer"]
    token: BearerSecret | None = Field(default=None, repr=False, description="write-only; omitted keeps it")
    mcp_server_url: str | None = Field(default=None, description="immutable")


class McpOAuthAuthUpdate(Strict):
    type: Literal["mcp_oauth"]
    access_token: BearerSecret | None = Field(default=None, repr=False, description="write-only; omitted keeps it")
    expires_at: datetime | None = None
    refresh: McpOAuthRefreshUpdate | None = Field(default=None, description="null clears the refresh settings")
    mcp_server_url: str | None = Field(default=None, description="immutable")


class EnvironmentVariableAuthUpdate(Strict):
    type: Literal["environment_variable"]
    secret_value: SecretValue | None = Field(default=None, repr=False, description="write-only; omitted keeps it")
    networking: CredentialNetworking | None = None
    injection_location: InjectionLocation | None = None
    secret_name: str | None = Field(default=None, description="immutable")


class CredentialCreate(Strict):
    auth: Annotated[StaticBearerAuth | McpOAuthAuth | EnvironmentVariableAuth, Field(discriminator="type")]
    display_name: Annotated[str, Field(max_length=255)] | None = None
    metadata: dict[str, str] | None = None

    _metadata = field_validator("metadata")(lambda cls, v: check_metadata(v))


class CredentialUpdate(Strict):
    auth: Annotated[
        StaticBearerAuthUpdate | McpOAuthAuthUpdate | EnvironmentVariableAuthUpdate, Field(discriminator="type")
    ] | None = Field(default=None, description="`type` must be the credential's own")
    display_name: Annotated[str, Field(max_length=255)] | None = None
    metadata: dict[str, str | None] | None = Field(default=None, description="a patch: null deletes a key")

    _metadata = field_validator("metadata")(lambda cls, v: check_metadata(v, allow_null_values=True))


# -- rate limits ---------------------------------------------------------------------------

LIMITER_TYPES = Literal[
    "fast_itpmca",
    "fast_otpm",
    "input_tokens_per_minute",
    "input_tokens_per_minute_cache_aware",
    "output_tokens_per_minute",
    "requests_per_minute",
    "tokens_per_day",
    "tokens_per_minute",
    "tool_uses_per_second",
]


class RateLimitValue(Strict):
    type: LIMITER_TYPES = Field(description="Agentry enforces `requests_per_minute` only; others are refused")
    value: Annotated[int, Field(ge=0, le=2**31)] | None = Field(
        description="null clears the workspace's own value (the organization's applies again); 0 allows no requests"
    )


class WorkspaceRateLimitUpdate(Strict):
    limits: Annotated[list[RateLimitValue], Field(min_length=1, max_length=16)]
# -- the organization: workspaces and API keys ---------------------------------------------

HexColor = Annotated[str, Field(pattern=r"^#[0-9A-Fa-f]{6}$")]
WorkspaceName = Annotated[str, Field(min_length=1, max_length=40)]
TagKey = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^([^a]|a[^n]|an[^t]|ant[^h]|anth[^r]|anthr[^o]|anthro[^p]|anthrop[^i]|anthropi[^c]|.{1,8}$)")]
TagValue = Annotated[str, Field(max_length=256)]


class WorkspaceCreate(Open):
    """``name`` (and colour, tags) are kept; the SDK's residency, encryption and profile
    settings are accepted and ignored (Agentry has none: the view shows their defaults)."""

    name: WorkspaceName
    display_color: HexColor | None = None
    tags: dict[TagKey, TagValue] | None = Field(default=None, max_length=16)


class WorkspaceUpdate(Open):
    name: WorkspaceName | None = None
    display_color: HexColor | None = None
    tags: dict[TagKey, TagValue | None] | None = Field(default=None, max_length=16, description="a patch: null deletes a tag")

    def given(self) -> dict[str, Any]:
        return self.model_dump(exclude_unset=True, include={"name", "display_color", "tags"})


class ApiKeyCreate(Strict):
    name: Annotated[str, Field(min_length=1, max_length=256)]
    workspace_id: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    role: Literal["admin", "member"] | None = None


class ApiKeyUpdate(Strict):
    name: Annotated[str, Field(min_length=1, max_length=256)] | None = None
    status: Literal["active", "inactive", "archived"] | None = None
    role: Literal["admin", "member"] | None = Field(default=None, description="Agentry's: the key's role in its workspace")
