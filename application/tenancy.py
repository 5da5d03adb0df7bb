"""Who is calling: the workspace every read and write is scoped to.

``tenant_id`` is the workspace the request acts in (tenants became workspaces; the first one
keeps the id ``default``). An API key is bound to one workspace; a person (a login) reaches
the workspaces they are a member of; an organization admin reaches every workspace and picks
one with the ``anthropic-workspace-id`` header."""

from __future__ import annotations

from dataclasses import dataclass

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
