"""Use cases of workspaces (``client.beta.organization.workspaces``): create, read, update,
archive, and the check every request makes of the workspace it selects.

Who may do what: an organization admin creates and archives workspaces and reaches all of
them; a workspace admin may update its own workspace; anyone else reads the workspaces they
reach and gets a 403 on changes. A workspace outside the caller's reach is a 404, the same as
one that does not exist."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from application.commands import Written, load_as
from application.errors import Forbidden, Invalid
from application.ids import new_id
from application.ports import EventStore
from application.retry import retry_on_race
from application.tenancy import Principal, WorkspaceNotFound
from application.views import DEFAULT_WORKSPACE_COLOR, workspace_view
from domain.ids import stream_id
from domain.workspaces import DEFAULT_WORKSPACE, Workspace

WORKSPACE_PREFIX = "wrkspc"
# The default workspace has no stream; it is as old as the organization.
DEFAULT_CREATED_AT = datetime(2026, 1, 1, tzinfo=UTC)
DEFAULT_VIEW = workspace_view(DEFAULT_WORKSPACE, "Default Workspace", DEFAULT_WORKSPACE_COLOR, {}, DEFAULT_CREATED_AT, None)


def render(workspace: Workspace) -> dict[str, Any]:
    return workspace_view(
        workspace.workspace_id,
        workspace.name,
        workspace.display_color,
        workspace.tags,
        workspace.created_on,
        workspace.archived_at,
    )


def reaches(who: Principal, workspace_id: str) -> bool:
    return who.workspaces is None or workspace_id in who.workspaces


def require_organization_admin(who: Principal, doing: str) -> None:
    if not who.organization_admin:
        raise Forbidden(f"only an organization admin may {doing}")


class WorkspaceService:
    def __init__(self, store: EventStore) -> None:
        self._store = store

    def is_live(self, workspace_id: str) -> bool:
        """Whether a key bound to this workspace may act: a tenant from before workspaces
        (no stream, no ``wrkspc_`` id) stays live; a workspace stream decides otherwise."""
        if workspace_id == DEFAULT_WORKSPACE:
            return True
        workspace = self._find(workspace_id)
        if workspace is None:
            return not workspace_id.startswith(WORKSPACE_PREFIX + "_")
        return workspace.live

    def selectable(self, workspace_id: str) -> bool:
        """Whether the ``anthropic-workspace-id`` header may name it: a live workspace that
        exists (a bare legacy tenant id is not one: ``agentry keys create`` records it)."""
        if workspace_id == DEFAULT_WORKSPACE:
            return True
        workspace = self._find(workspace_id)
        return workspace is not None and workspace.live

    def _find(self, workspace_id: str) -> Workspace | None:
        if not workspace_id or len(workspace_id) > 64:
            return None
        return load_as(self._store, stream_id(workspace_id), Workspace)

    def _load(self, workspace_id: str) -> Workspace:
        workspace = self._find(workspace_id)
        if workspace is None:
            raise WorkspaceNotFound(workspace_id)
        return workspace

    def _change(self, workspace_id: str, command: Callable[[Workspace], object]) -> Written:
        def attempt() -> Written:
            workspace = self._load(workspace_id)
            command(workspace)
            return Written(render(workspace), self._store.save(workspace))

        return retry_on_race(attempt, key=workspace_id)

    def create(self, who: Principal, fields: dict[str, Any]) -> Written:
        require_organization_admin(who, "create workspaces")
        workspace = Workspace(
            workspace_id=new_id(WORKSPACE_PREFIX),
            name=fields["name"],
            display_color=fields.get("display_color") or DEFAULT_WORKSPACE_COLOR,
            tags=fields.get("tags") or {},
        )
        return Written(render(workspace), self._store.save(workspace))

    def create_named(self, workspace_id: str, name: str) -> None:
        """A workspace with a chosen id (``agentry keys create --tenant X`` of a new X)."""
        if workspace_id != DEFAULT_WORKSPACE and self._find(workspace_id) is None:
            self._store.save(Workspace(workspace_id=workspace_id, name=name, display_color=DEFAULT_WORKSPACE_COLOR, tags={}))

    def retrieve(self, who: Principal, workspace_id: str) -> dict[str, Any]:
        self._check_reach(who, workspace_id)
        if workspace_id == DEFAULT_WORKSPACE:
            return dict(DEFAULT_VIEW)
        return render(self._load(workspace_id))

    def update(self, who: Principal, workspace_id: str, fields: dict[str, Any]) -> Written:
        self._check_reach(who, workspace_id)
        if not (who.organization_admin or (who.role == "admin" and who.tenant_id == workspace_id)):
            raise Forbidden("only an admin of this workspace or of the organization may update it")
        if workspace_id == DEFAULT_WORKSPACE:
            raise Invalid("the default workspace cannot be changed")

        def change(workspace: Workspace) -> None:
            tags = dict(workspace.tags)
            for key, value in (fields.get("tags") or {}).items():
                if value is None:
                    tags.pop(key, None)
                else:
                    tags[key] = value
            workspace.update(
                fields.get("name") or workspace.name, fields.get("display_color") or workspace.display_color, tags
            )

        return self._change(workspace_id, change)

    def archive(self, who: Principal, workspace_id: str) -> Written:
        self._check_reach(who, workspace_id)
        require_organization_admin(who, "archive workspaces")
        if workspace_id == DEFAULT_WORKSPACE:
            raise Invalid("the default workspace cannot be archived")
        return self._change(workspace_id, Workspace.archive)

    @staticmethod
    def _check_reach(who: Principal, workspace_id: str) -> None:
        if not reaches(who, workspace_id):
            raise WorkspaceNotFound(workspace_id)
