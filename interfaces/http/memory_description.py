"""The memory store, memory and memory version endpoints in the API description
(``api_description.OPERATIONS`` takes them in one line), and Agentry's semantic search."""

from __future__ import annotations

from interfaces.http import memory_schemas as memory
from interfaces.http.api_description import BODY, PAGE, WRITE, Operation, Param, created_at, integer, path_id

# The memories operations are the ones an environment worker syncs a mounted store through.
SYNCED = (
    "Also takes the `sessions_token` of a work item whose session has the store attached "
    "(another store: 404; a write to a `read_only` attachment: 403); its writes are versions whose "
    "actor is that session (`session_actor`). An environment key is refused (403)."
)
TAG = "memory stores"
STORE = path_id("memory_store_id", "memstore")
MEMORY = (STORE, path_id("memory_id", "mem"))
VERSION = (STORE, path_id("memory_version_id", "memver"))


def _view(default: str) -> Param:
    return Param("view", "query", {"type": "string", "enum": ["basic", "full"]}, f"include `content` (default {default})")


LIMIT = Param("limit", "query", integer(1, 100), "page size (default 20); at most 20 with view=full")
STORE_LIST = (
    Param("limit", "query", integer(1, 100), "page size (default 20)"),
    PAGE,
    Param("include_archived", "query", {"type": "boolean"}, "also list archived stores"),
    *created_at("gte", "lte"),
)
MEMORY_LIST = (
    Param("path_prefix", "query", {"type": "string", "pattern": "^/(.*/)?$"}, "only memories below this directory (ends with /)"),
    Param("depth", "query", integer(0, 20), "0: every memory below; N: deeper ones rolled up into `memory_prefix` items"),
    _view("basic"),
    LIMIT,
    PAGE,
)
VERSION_LIST = (
    Param("memory_id", "query", {"type": "string"}, "only versions of this memory (also after its deletion)"),
    Param("operation", "query", {"type": "string", "enum": ["created", "modified", "deleted"]}, "only this kind of change"),
    Param("session_id", "query", {"type": "string"}, "only versions a session wrote"),
    Param("api_key_id", "query", {"type": "string"}, "only versions written with this API key"),
    Param("service_account_id", "query", {"type": "string"}, "only versions written by this service account"),
    *created_at("gte", "lte"),
    _view("basic"),
    LIMIT,
    PAGE,
)
EXPECTED = Param(
    "expected_content_sha256", "query", {"type": "string", "pattern": "^[0-9a-f]{64}$"},
    "delete only if the content's SHA-256 is this (else 409, nothing deleted)",
)

MEMORY_OPERATIONS: tuple[Operation, ...] = (
    Operation(
        "post", "/v1/memory_stores", "createMemoryStore", "Create a memory store", TAG, memory.MemoryStore,
        request=memory.MemoryStoreCreate, errors=BODY,
    ),
    Operation(
        "get", "/v1/memory_stores", "listMemoryStores", "List memory stores, newest first", TAG, memory.MemoryStorePage,
        params=STORE_LIST, errors=(400,),
    ),
    Operation(
        "get", "/v1/memory_stores/{memory_store_id}", "getMemoryStore", "Retrieve a memory store", TAG,
        memory.MemoryStore, params=(STORE,), errors=(404,),
    ),
    Operation(
        "post", "/v1/memory_stores/{memory_store_id}", "updateMemoryStore", "Update a memory store (a patch)", TAG,
        memory.MemoryStore, request=memory.MemoryStoreUpdate, request_optional=True, params=(STORE,),
        errors=(*WRITE, 404), description="An archived store refuses updates (400).",
    ),
    Operation(
        "post", "/v1/memory_stores/{memory_store_id}/archive", "archiveMemoryStore",
        "Archive a memory store (irreversible; its memories become read-only)", TAG, memory.MemoryStore,
        params=(STORE,), errors=(409, 404),
    ),
    Operation(
        "delete", "/v1/memory_stores/{memory_store_id}", "deleteMemoryStore",
        "Delete a memory store, its memories and versions (their content becomes unreadable everywhere)", TAG,
        memory.MemoryStoreDeleted, params=(STORE,), errors=(409, 404),
    ),
    Operation(
        "post", "/v1/memory_stores/{memory_store_id}/search", "searchMemories",
        "Agentry: the store's memories nearest in meaning to a query, best first", TAG, memory.MemorySearchResults,
        request=memory.MemorySearch, params=(STORE,), errors=(*BODY, 404),
        description="Each hit is the memory as retrieve shows it (view=full) with its `score`.",
    ),
    Operation(
        "post", "/v1/memory_stores/{memory_store_id}/memories", "createMemory", "Create a memory", TAG, memory.Memory,
        request=memory.MemoryCreate, params=(STORE, _view("basic")), errors=(*WRITE, 403, 404),
        description=(
            "A path another memory of the store has is a 409 `memory_path_conflict_error`; an archived "
            "store refuses new memories (400). " + SYNCED
        ),
    ),
    Operation(
        "get", "/v1/memory_stores/{memory_store_id}/memories", "listMemories", "List memories by path", TAG,
        memory.MemoryPage, params=(STORE, *MEMORY_LIST), errors=(400, 403, 404), description=SYNCED,
    ),
    Operation(
        "get", "/v1/memory_stores/{memory_store_id}/memories/{memory_id}", "getMemory", "Retrieve a memory", TAG,
        memory.Memory, params=(*MEMORY, _view("full")), errors=(400, 403, 404), description=SYNCED,
    ),
    Operation(
        "post", "/v1/memory_stores/{memory_store_id}/memories/{memory_id}", "updateMemory",
        "Update a memory's content or path (a new version)", TAG, memory.Memory, request=memory.MemoryUpdate,
        request_optional=True, params=(*MEMORY, _view("basic")), errors=(*WRITE, 403, 404),
        description=(
            "A `precondition` that does not hold is a 409 `memory_precondition_failed_error`; a path another "
            "memory has is a 409 `memory_path_conflict_error`. Nothing changed: no new version. " + SYNCED
        ),
    ),
    Operation(
        "delete", "/v1/memory_stores/{memory_store_id}/memories/{memory_id}", "deleteMemory", "Delete a memory", TAG,
        memory.MemoryDeleted, params=(*MEMORY, EXPECTED), errors=(400, 403, 409, 404), description=SYNCED,
    ),
    Operation(
        "get", "/v1/memory_stores/{memory_store_id}/memory_versions", "listMemoryVersions",
        "List memory versions, newest first", TAG, memory.MemoryVersionPage, params=(STORE, *VERSION_LIST),
        errors=(400, 404),
    ),
    Operation(
        "get", "/v1/memory_stores/{memory_store_id}/memory_versions/{memory_version_id}", "getMemoryVersion",
        "Retrieve a memory version", TAG, memory.MemoryVersion, params=(*VERSION, _view("full")), errors=(400, 404),
    ),
    Operation(
        "post", "/v1/memory_stores/{memory_store_id}/memory_versions/{memory_version_id}/redact",
        "redactMemoryVersion", "Redact a memory version (its content is destroyed)", TAG, memory.MemoryVersion,
        params=VERSION, errors=(400, 409, 404),
        description=(
            "Clears the version's content, path, size and hash for good. The version that holds a memory's "
            "current content cannot be redacted (400): write new content first."
        ),
    ),
)
