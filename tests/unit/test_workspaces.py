"""Workspaces and the keys bound to them: selection by header, who may change what, and a
key made inactive or archived (or whose workspace was archived) refused on its next use."""

from __future__ import annotations

import pytest

from application.api_keys import ApiKeyService, keyed_hash
from application.errors import Forbidden, NotFound, Unauthorized
from application.tenancy import Principal, WorkspaceNotFound, select_workspace
from application.workspaces import WorkspaceService
from domain.api_keys import ApiKey
from domain.errors import InvalidState
from infra.event_store import EventsourcingEventStore

ADMIN_KEY = "agentry-" + "a" * 43
ORG_ADMIN = Principal("default", "apikey_admin", organization_role="admin")


def _keys(store: EventsourcingEventStore) -> tuple[ApiKeyService, WorkspaceService, dict[str, object]]:
    workspaces = WorkspaceService(store)
    streams: dict[str, object] = {}
    keys = ApiKeyService(store, keyed_hash("s" * 32), workspaces, lambda key_id: streams.get(key_id))  # type: ignore[arg-type, return-value]
    return keys, workspaces, streams


def test_without_the_header_a_principal_keeps_its_workspace() -> None:
    who = Principal("wrkspc_a", "k", workspaces=frozenset({"wrkspc_a"}))
    assert select_workspace(who, None, lambda w: True) is who
    assert select_workspace(who, "wrkspc_a", lambda w: True) is who


def test_a_bound_key_cannot_select_another_workspace_and_the_refusal_is_a_404() -> None:
    who = Principal("wrkspc_a", "k", role="member", workspaces=frozenset({"wrkspc_a"}))
    with pytest.raises(WorkspaceNotFound) as refused:
        select_workspace(who, "wrkspc_b", lambda w: True)
    assert isinstance(refused.value, NotFound)


def test_an_organization_admin_selects_any_live_workspace_as_its_admin() -> None:
    chosen = select_workspace(ORG_ADMIN, "wrkspc_b", lambda w: w == "wrkspc_b")
    assert (chosen.tenant_id, chosen.role, chosen.organization_admin) == ("wrkspc_b", "admin", True)
    with pytest.raises(WorkspaceNotFound):
        select_workspace(ORG_ADMIN, "wrkspc_gone", lambda w: False)


def test_only_an_organization_admin_creates_and_archives_workspaces(store: EventsourcingEventStore) -> None:
    workspaces = WorkspaceService(store)
    created = workspaces.create(ORG_ADMIN, {"name": "Research"}).view
    assert created["id"].startswith("wrkspc_") and created["type"] == "workspace"
    workspace_admin = Principal(created["id"], "k", role="admin", workspaces=frozenset({created["id"]}))
    with pytest.raises(Forbidden):
        workspaces.create(workspace_admin, {"name": "Mine"})
    with pytest.raises(Forbidden):
        workspaces.archive(workspace_admin, created["id"])
    assert workspaces.update(workspace_admin, created["id"], {"name": "Renamed"}).view["name"] == "Renamed"
    member = Principal(created["id"], "k", role="member", workspaces=frozenset({created["id"]}))
    with pytest.raises(Forbidden):
        workspaces.update(member, created["id"], {"name": "No"})
    outsider = Principal("default", "k", role="admin", workspaces=frozenset({"default"}))
    with pytest.raises(NotFound):
        workspaces.retrieve(outsider, created["id"])
    assert workspaces.archive(ORG_ADMIN, created["id"]).view["archived_at"] is not None
    assert not workspaces.selectable(created["id"]) and not workspaces.is_live(created["id"])


def test_a_tenant_from_before_workspaces_stays_usable_but_not_selectable(store: EventsourcingEventStore) -> None:
    workspaces = WorkspaceService(store)
    assert workspaces.is_live("tenant9") and not workspaces.selectable("tenant9")
    workspaces.create_named("tenant9", name="tenant9")
    assert workspaces.selectable("tenant9")


def test_a_key_made_inactive_is_refused_at_once_and_may_be_made_active_again(store: EventsourcingEventStore) -> None:
    keys, workspaces, streams = _keys(store)
    keys.issue(ADMIN_KEY, name="bootstrap", organization_role="admin")
    key = keys.create(ORG_ADMIN, {"name": "ci", "role": "member"})
    plaintext = key.view["key"]
    assert keys.authenticate(plaintext).role == "member"
    streams[key.view["id"]] = _stream_of(store, key.view["id"])
    assert keys.update(ORG_ADMIN, key.view["id"], {"status": "inactive"}).view["status"] == "inactive"
    with pytest.raises(Unauthorized):
        keys.authenticate(plaintext)
    keys.update(ORG_ADMIN, key.view["id"], {"status": "active", "role": "admin", "name": "ci2"})
    assert keys.authenticate(plaintext).role == "admin"
    keys.update(ORG_ADMIN, key.view["id"], {"status": "archived"})
    with pytest.raises(InvalidState):
        keys.update(ORG_ADMIN, key.view["id"], {"status": "active"})
    with pytest.raises(Unauthorized):
        keys.authenticate(plaintext)


def test_archiving_a_workspace_stops_its_keys(store: EventsourcingEventStore) -> None:
    keys, workspaces, _ = _keys(store)
    workspace = workspaces.create(ORG_ADMIN, {"name": "Temp"}).view["id"]
    plaintext = keys.create(ORG_ADMIN, {"name": "k", "workspace_id": workspace}).view["key"]
    assert keys.authenticate(plaintext).tenant_id == workspace
    workspaces.archive(ORG_ADMIN, workspace)
    with pytest.raises(Unauthorized):
        keys.authenticate(plaintext)


def test_a_member_cannot_manage_keys_and_a_workspace_admin_only_its_own(store: EventsourcingEventStore) -> None:
    keys, workspaces, _ = _keys(store)
    a = workspaces.create(ORG_ADMIN, {"name": "A"}).view["id"]
    b = workspaces.create(ORG_ADMIN, {"name": "B"}).view["id"]
    admin_a = keys.authenticate(keys.create(ORG_ADMIN, {"name": "a", "workspace_id": a, "role": "admin"}).view["key"])
    member_a = keys.authenticate(keys.create(ORG_ADMIN, {"name": "m", "workspace_id": a}).view["key"])
    assert keys.create(admin_a, {"name": "more"}).view["scope"] == {"type": "workspace", "workspace_id": a}
    with pytest.raises(Forbidden):
        keys.create(member_a, {"name": "no"})
    with pytest.raises(NotFound):
        keys.create(admin_a, {"name": "no", "workspace_id": b})


def test_the_bootstrap_key_becomes_an_organization_admin_when_issued_again(store: EventsourcingEventStore) -> None:
    keys, _, _ = _keys(store)
    assert not keys.issue(ADMIN_KEY, name="bootstrap").organization_admin
    keys.ensure_admin_key(ADMIN_KEY, None)
    who = keys.authenticate(ADMIN_KEY)
    assert who.organization_admin and who.workspaces is None and who.tenant_id == "default"


def _stream_of(store: EventsourcingEventStore, key_id: str) -> object:
    for notification in store.notifications(0, 10_000):
        if notification.topic.startswith("domain.api_keys:ApiKey.Issued"):
            aggregate = store.load(notification.originator_id)
            if isinstance(aggregate, ApiKey) and aggregate.key_id == key_id:
                return notification.originator_id
    raise AssertionError(key_id)


def test_no_workspace_admin_can_change_an_organization_admins_key(store: EventsourcingEventStore) -> None:
    keys, _, streams = _keys(store)
    root = keys.issue(ADMIN_KEY, name="bootstrap", organization_role="admin")
    streams[root.key_id] = _stream_of(store, root.key_id)
    default_admin = keys.authenticate(keys.create(ORG_ADMIN, {"name": "ws admin", "role": "admin"}).view["key"])
    for change in ({"status": "archived"}, {"status": "inactive"}, {"role": "member"}, {"name": "mine"}):
        with pytest.raises(Forbidden):
            keys.update(default_admin, root.key_id, change)
    assert keys.authenticate(ADMIN_KEY).organization_admin  # still the organization's
    assert keys.update(ORG_ADMIN, root.key_id, {"name": "renamed"}).view["name"] == "renamed"
