"""Requests and responses of memory stores, memories and memory versions, as
``client.beta.memory_stores`` (``.memories``, ``.memory_versions``) sends and reads them, and
of Agentry's semantic search over a store."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field, field_validator

from interfaces.http.responses import Described, Paged
from interfaces.http.schemas import Strict, check_metadata

StoreName = Annotated[str, Field(min_length=1, max_length=255, pattern=r"^[^\x00-\x1f\x7f]+$")]
StoreDescription = Annotated[str, Field(max_length=1024)]
# The path rules themselves (segments, NFC, bytes) are the domain's: ``domain.memory.path_problem``.
MemoryPath = Annotated[str, Field(min_length=2, max_length=1024, pattern=r"^(/[^/]+)+$")]
# 102,400 bytes of UTF-8 at most: the byte count is checked by the application.
Content = Annotated[str, Field(max_length=102_400)]
Sha256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
View = Literal["basic", "full"]
Operation = Literal["created", "modified", "deleted"]


class MemoryStoreCreate(Strict):
    name: StoreName
    description: StoreDescription | None = None
    metadata: dict[str, str] | None = None

    _metadata = field_validator("metadata")(lambda cls, v: check_metadata(v))


class MemoryStoreUpdate(Strict):
    name: StoreName | None = None
    description: StoreDescription | None = Field(default=None, description='"" clears it')
    metadata: dict[str, str | None] | None = Field(default=None, description="a patch: null deletes a key")

    _metadata = field_validator("metadata")(lambda cls, v: check_metadata(v, allow_null_values=True))


class MemoryCreate(Strict):
    path: MemoryPath
    # Required, but the SDK types it ``Optional[str]``: null is an empty memory, as "" is.
    content: Content | None = Field(description='"" (or null) is an empty memory')


class Precondition(Strict):
    type: Literal["content_sha256"]
    content_sha256: Sha256


class MemoryUpdate(Strict):
    content: Content | None = Field(default=None, description="omitted (or null) keeps the content")
    path: MemoryPath | None = Field(default=None, description="renames the memory (same id)")
    precondition: Precondition | None = Field(default=None, description="a mismatch is a 409, nothing changes")


class MemorySearch(Strict):
    query: Annotated[str, Field(min_length=1, max_length=4096)]
    limit: Annotated[int, Field(ge=1, le=100)] = 10


# -- responses ---------------------------------------------------------------------------


class MemoryStore(Described):
    type: Literal["memory_store"]
    id: str
    name: str
    description: str
    metadata: dict[str, str]
    created_at: datetime
    updated_at: datetime
    archived_at: datetime | None


class MemoryStorePage(Paged):
    data: list[MemoryStore]


class MemoryStoreDeleted(Described):
    type: Literal["memory_store_deleted"]
    id: str


class Memory(Described):
    type: Literal["memory"]
    id: str
    memory_store_id: str
    path: str
    content_sha256: str
    content_size_bytes: int
    memory_version_id: str
    created_at: datetime
    updated_at: datetime
    content: str | None = Field(description="null with view=basic")


class MemoryPrefix(Described):
    type: Literal["memory_prefix"]
    path: str


class MemoryPage(Paged):
    data: list[Memory | MemoryPrefix]


class MemoryDeleted(Described):
    type: Literal["memory_deleted"]
    id: str


class Actor(Described):
    type: Literal["session_actor", "api_actor", "user_actor", "service_account_actor"]
    session_id: str | None = None
    api_key_id: str | None = None
    user_id: str | None = None
    service_account_id: str | None = None


class MemoryVersion(Described):
    type: Literal["memory_version"]
    id: str
    memory_id: str
    memory_store_id: str
    operation: Operation
    created_at: datetime
    content: str | None
    content_sha256: str | None
    content_size_bytes: int | None
    path: str | None
    created_by: Actor | None
    redacted_at: datetime | None
    redacted_by: Actor | None


class MemoryVersionPage(Paged):
    data: list[MemoryVersion]


class ScoredMemory(Memory):
    score: float = Field(description="similarity to the query; higher is nearer")


class MemorySearchResults(Described):
    data: list[ScoredMemory]
