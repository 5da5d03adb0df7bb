"""Who is calling: the workspace every read and write is scoped to.

``tenant_id`` is the workspace the request acts in (tenants became workspaces; the first one
keeps the id ``default``). An API key is bound to one workspace; a person (a login) reaches
the workspaces they are a member of; an organization admin reaches every workspace and picks
one with the ``anthropic-workspace-id`` header."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from application.errors import NotFound

ORGANIZATION_ADMIN = "admin"


@dataclass(frozen=True)
class Principal:
    tenant_id: str
    key_id: str
    # In the selected workspace: "admin" or "member" (or a worker's role).
    role: str = "admin"
    # Set when a person calls with a login token rather than an API key.
    user_id: str | None = None
    # "admin" may manage workspaces, users, invites and every key; None otherwise.
    organization_role: str | None = None
    # The workspaces this caller may select; None means every one (organization admins).
    workspaces: frozenset[str] | None = None

    @property
    def organization_admin(self) -> bool:
        return self.organization_role == ORGANIZATION_ADMIN


WORKSPACE_HEADER = "anthropic-workspace-id"


class WorkspaceNotFound(NotFound):
    """The workspace named is not one the caller may select (or does not exist)."""

    def __init__(self, workspace_id: str) -> None:
        super().__init__(f"workspace {workspace_id[:64]!r} not found")


def select_workspace(who: Principal, requested: str | None, is_live: Callable[[str], bool]) -> Principal:
    """The caller scoped to the workspace the ``anthropic-workspace-id`` header names (or,
    without the header, to its own). A workspace outside the caller's reach, unknown or
    archived is the same refusal, so workspace ids cannot be probed. An organization admin
    may select any live workspace and acts there as its admin; a key bound to a workspace
    may send only that one."""
    if not requested or requested == who.tenant_id:
        return who
    if who.workspaces is not None and requested not in who.workspaces:
        raise WorkspaceNotFound(requested)
    if not is_live(requested):
        raise WorkspaceNotFound(requested)
    role = "admin" if who.organization_admin else who.role
    return replace(who, tenant_id=requested, role=role)
