"""What a work item's token (``Authorization: Bearer agentry_wtok_…``) is good for beyond
its own session's routes: the calls the official SDK's environment worker makes with it while
it serves that session.

- the memories of a memory store attached to the session (list, retrieve, create, update,
  delete: the worker syncs ``/mnt/memory/<slug>`` through them). A write is recorded with
  the session as its actor; a write to a store attached ``read_only`` is a 403;
- the versions (retrieve, content) of a skill the session's agent names: the worker
  downloads them into ``{workdir}/skills/<name>``;
- the metadata and content of a file attached to the session (Agentry's own workers
  mount them; the SDK's does not).

Anything else of the tenant is a 404 to that token: its existence is not leaked. An API key
keeps its usual access and actor; an environment key stays refused (the SDK's worker says
these routes reject it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import falcon

from application.errors import Forbidden, NotFound
from application.memory import session_actor
from application.sessions import PLATFORM_WORKER_ROLE, WORKER_ROLE, SessionService
from application.tenancy import Principal
from application.work_queue import WorkCredential
from domain.memory import Actor
from interfaces.http.common import principal, run


@dataclass(frozen=True)
class MemoryCaller:
    """Who calls a memories route, and the actor its writes record (None: the caller's own)."""

    who: Principal
    actor: Actor | None = None


class WorkerAccess:
    def __init__(self, sessions: SessionService) -> None:
        self._sessions = sessions

    async def memory(self, req: falcon.asgi.Request, memory_store_id: str, write: bool = False) -> MemoryCaller:
        token = req.context.principal
        if not isinstance(token, WorkCredential):
            return MemoryCaller(principal(req))
        who, session = await self._session(token)
        attached = next(
            (
                resource
                for resource in session.get("resources") or []
                if resource.get("type") == "memory_store" and resource.get("memory_store_id") == memory_store_id
            ),
            None,
        )
        if attached is None:
            raise NotFound(f"memory store {memory_store_id!r} not found")
        if write and attached.get("access") == "read_only":
            raise Forbidden(f"memory store {memory_store_id} is attached to session {token.session_id} read-only")
        return MemoryCaller(who, session_actor(token.session_id))

    async def skill(self, req: falcon.asgi.Request, skill_id: str) -> Principal:
        token = req.context.principal
        if not isinstance(token, WorkCredential):
            return principal(req)
        who, session = await self._session(token)
        skills = (session.get("agent") or {}).get("skills") or []
        if not any(skill.get("skill_id") == skill_id for skill in skills):
            raise NotFound(f"skill {skill_id!r} not found")
        return who

    async def file(self, req: falcon.asgi.Request, file_id: str) -> Principal:
        token = req.context.principal
        if not isinstance(token, WorkCredential):
            return principal(req)
        who, session = await self._session(token)
        resources = session.get("resources") or []
        if not any(resource.get("type") == "file" and resource.get("file_id") == file_id for resource in resources):
            raise NotFound(f"file {file_id!r} not found")
        return who

    async def _session(self, token: WorkCredential) -> tuple[Principal, dict[str, Any]]:
        role = PLATFORM_WORKER_ROLE if token.hosting == "cloud" else WORKER_ROLE
        who = Principal(token.tenant_id, token.work_id, role=role)
        return who, await run(self._sessions.retrieve, who, token.session_id)

