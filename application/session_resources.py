"""Session resources (files, GitHub repositories, memory stores mounted into a session) in
the form the API answers with.

A client sends a resource's configuration; the SDK's response types
(``BetaManagedAgentsFileResource``, ``…GitHubRepositoryResource``, ``…MemoryStoreResource``)
also require the server's ``id``, ``created_at``, ``updated_at`` and a concrete
``mount_path``. Those are fixed here once, when the resource is attached, so every later
read shows the same id. A repository's ``authorization_token`` is write-only: it is split
off for the caller to encrypt and never stays in the resource that is stored and answered.
No I/O: the caller passes the moment and, if it likes, the id source, and for a memory store
a lookup of the store's name and description (``StoreLookup``).

A memory store mounts at ``/mnt/memory/<slug of its name>``: the SDK's environment worker
takes ``mount_path`` verbatim as the folder it syncs the store into, and the system prompt
names the same path. Two stores whose names give one slug get ``-2``, ``-3``, … in the order
attached, so each session's mount paths stay distinct.

Resources attached later take the same path (``stamp``) and are recorded on the Session
aggregate by its own events (``ResourceAdded``, ``ResourceTokenRotated``, ``ResourceRemoved``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from application.errors import Invalid, NotFound
from application.ids import new_id
from application.views import iso
from domain.memory import mount_slug
from domain.sessions import WRITE_ONLY_RESOURCE_FIELDS, Session, check_new_resource

ID_PREFIX = "sesrsc"
WRITE_ONLY = WRITE_ONLY_RESOURCE_FIELDS
MEMORY_MOUNTS = "/mnt/memory"
# A memory store's (name, description), snapshotted at attach time; raises for a store the
# caller may not attach (unknown → NotFound, archived → Invalid).
StoreLookup = Callable[[str], tuple[str, str]]


@dataclass(frozen=True)
class Stamped:
    """A resource ready to store and answer with, and the write-only values sent with it."""

    resource: dict[str, Any]
    secrets: dict[str, str] = field(default_factory=dict)


def _required_text(sent: dict[str, Any], key: str) -> str:
    value = sent.get(key)
    if not isinstance(value, str) or not value:
        raise Invalid(f"a {sent.get('type')} resource needs {key}")
    return value


def repository_name(url: str) -> str:
    """``https://github.com/acme/tools.git`` → ``tools``."""
    name = url.rstrip("/").rsplit("/", 1)[-1]
    return name.removesuffix(".git") or "repository"


def _default_mount_path(resource: dict[str, Any]) -> str | None:
    if resource["type"] == "file":
        return f"/mnt/session/uploads/{resource['file_id']}"
    if resource["type"] == "github_repository":
        return f"/workspace/{repository_name(resource['url'])}"
    # A memory store's path comes from its name (``_memory_store``).
    return None


def memory_mount_path(name: str, memory_store_id: str) -> str:
    slug = mount_slug(name).strip("-") or mount_slug(memory_store_id).strip("-")
    return f"{MEMORY_MOUNTS}/{slug}"


def _memory_store(configuration: dict[str, Any], lookup: StoreLookup | None) -> None:
    store_id = configuration["memory_store_id"]
    name, description = lookup(store_id) if lookup is not None else (store_id, "")
    configuration["name"] = name
    configuration["description"] = description
    configuration["mount_path"] = memory_mount_path(name, store_id)


def unique_mount_path(held: list[dict[str, Any]], resource: dict[str, Any]) -> dict[str, Any]:
    """``resource`` with a memory store's mount path made distinct from those ``held``
    (``-2``, ``-3``, …); any other resource as it is (a taken path is refused for it)."""
    path = resource.get("mount_path")
    if resource.get("type") != "memory_store" or not isinstance(path, str):
        return resource
    taken = {str(other.get("mount_path")).rstrip("/") for other in held if other.get("mount_path")}
    candidate, suffix = path, 2
    while candidate in taken:
        candidate, suffix = f"{path}-{suffix}", suffix + 1
    return resource if candidate == path else {**resource, "mount_path": candidate}


def _configuration(sent: Any, lookup: StoreLookup | None = None) -> dict[str, Any]:
    if not isinstance(sent, dict):
        raise Invalid("a session resource must be an object")
    kind = sent.get("type")
    if kind == "file":
        _required_text(sent, "file_id")
    elif kind == "github_repository":
        _required_text(sent, "url")
    elif kind == "memory_store":
        _required_text(sent, "memory_store_id")
    else:
        raise Invalid("a session resource's type must be file, github_repository or memory_store")
    configuration = {key: value for key, value in sent.items() if key not in WRITE_ONLY}
    for server_field in ("id", "created_at", "updated_at"):
        configuration.pop(server_field, None)
    if configuration.get("mount_path") is None:
        default = _default_mount_path(configuration)
        if default is None:
            configuration.pop("mount_path", None)
        else:
            configuration["mount_path"] = default
    if kind == "memory_store":
        if configuration.get("access") is None:
            configuration["access"] = "read_write"
        _memory_store(configuration, lookup)
    return configuration


def stamp(
    sent: Any, moment: datetime, mint: Callable[[str], str] = new_id, lookup: StoreLookup | None = None
) -> Stamped:
    """One resource as attached at ``moment``."""
    configuration = _configuration(sent, lookup)
    stamp_time = iso(moment)
    resource = {"id": mint(ID_PREFIX), **configuration, "created_at": stamp_time, "updated_at": stamp_time}
    secrets = {key: sent[key] for key in WRITE_ONLY if isinstance(sent.get(key), str)}
    return Stamped(resource, secrets)


def stamp_all(
    sent: list[Any] | None, moment: datetime, mint: Callable[[str], str] = new_id, lookup: StoreLookup | None = None
) -> list[Stamped]:
    """The resources a session is created with, in the order sent, held to the same rules as
    one added later (caps, one resource per mount path, each memory store once)."""
    stamped: list[Stamped] = []
    for resource in sent or []:
        entry = stamp(resource, moment, mint, lookup)
        held = [earlier.resource for earlier in stamped]
        entry = Stamped(unique_mount_path(held, entry.resource), entry.secrets)
        check_new_resource(held, entry.resource)
        stamped.append(entry)
    return stamped


def resource_of(session: Session, resource_id: str) -> dict[str, Any]:
    """One of the session's resources as the API answers with it; any other id is a 404."""
    resource = session.resource(resource_id)
    if resource is None:
        raise NotFound(f"session resource {resource_id!r} not found in session {session.session_id}")
    return resource


def removal_marker(resource_id: str) -> dict[str, Any]:
    return {"id": resource_id, "type": "session_resource_deleted"}
