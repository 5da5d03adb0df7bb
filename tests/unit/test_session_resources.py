"""Session resources as the SDK's response types require them, and the Session aggregate's
rules and events for the resources attached, rotated and removed after the start."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from anthropic.types.beta.sessions import BetaManagedAgentsSessionResource
from pydantic import TypeAdapter

from application.errors import Invalid
from application.session_resources import repository_name, stamp, stamp_all
from domain.errors import Archived, InvalidState
from domain.sessions import Session

MOMENT = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
LATER = MOMENT + timedelta(hours=1)
RESOURCE = TypeAdapter(BetaManagedAgentsSessionResource)
FILE = {"file_id": "file_011CNha8iCJcU1wXNR6q4V8w", "type": "file", "mount_path": "/uploads/receipt.pdf"}
REPOSITORY = {"type": "github_repository", "url": "https://github.com/acme/tools.git", "authorization_token": "ghp_secret"}
MEMORY = {"type": "memory_store", "memory_store_id": "memstore_01"}


def counter() -> Any:
    minted = iter(range(1, 100))
    return lambda prefix: f"{prefix}_{next(minted):02d}"


def test_a_file_gets_an_id_and_its_times_and_keeps_its_mount_path() -> None:
    stamped = stamp(FILE, MOMENT, counter())
    assert stamped.resource == {
        "id": "sesrsc_01",
        **FILE,
        "created_at": "2026-11-30T12:00:00.000000Z",
        "updated_at": "2026-11-30T12:00:00.000000Z",
    }
    assert stamped.secrets == {}
    RESOURCE.validate_python(stamped.resource)


def test_ids_are_minted_with_the_session_resource_prefix() -> None:
    assert stamp(FILE, MOMENT).resource["id"].startswith("sesrsc_")


@pytest.mark.parametrize(
    ("sent", "mount_path"),
    [
        ({"type": "file", "file_id": "file_01"}, "/mnt/session/uploads/file_01"),
        ({"type": "file", "file_id": "file_01", "mount_path": None}, "/mnt/session/uploads/file_01"),
        ({"type": "github_repository", "url": "https://github.com/acme/tools"}, "/workspace/tools"),
        ({"type": "github_repository", "url": "https://github.com/acme/tools.git/"}, "/workspace/tools"),
    ],
)
def test_an_omitted_mount_path_takes_the_documented_default(sent: dict[str, Any], mount_path: str) -> None:
    resource = stamp(sent, MOMENT).resource
    assert resource["mount_path"] == mount_path
    RESOURCE.validate_python(resource)


def test_a_repository_token_is_split_off_and_never_kept() -> None:
    stamped = stamp({**REPOSITORY, "checkout": {"type": "branch", "name": "main"}}, MOMENT)
    assert "authorization_token" not in stamped.resource
    assert "ghp_secret" not in repr(stamped.resource)
    assert stamped.secrets == {"authorization_token": "ghp_secret"}
    assert stamped.resource["checkout"] == {"type": "branch", "name": "main"}
    RESOURCE.validate_python(stamped.resource)


def test_a_memory_store_defaults_to_read_write() -> None:
    resource = stamp(MEMORY, MOMENT).resource
    assert resource["access"] == "read_write"
    RESOURCE.validate_python(resource)


def test_a_memory_store_snapshots_its_name_and_mounts_by_it() -> None:
    looked_up: list[str] = []

    def lookup(memory_store_id: str) -> tuple[str, str]:
        looked_up.append(memory_store_id)
        return "User Preferences!", "What the user likes"

    resource = stamp({**MEMORY, "instructions": "Be brief."}, MOMENT, lookup=lookup).resource
    assert looked_up == ["memstore_01"]
    assert resource["name"] == "User Preferences!" and resource["description"] == "What the user likes"
    assert resource["mount_path"] == "/mnt/memory/user-preferences" and resource["instructions"] == "Be brief."
    RESOURCE.validate_python(resource)
    # A name without a letter or digit mounts by the store's id.
    assert stamp(MEMORY, MOMENT, lookup=lambda _: ("!!", "")).resource["mount_path"] == "/mnt/memory/memstore-01"


def test_two_stores_of_one_slug_mount_apart_and_one_store_mounts_once() -> None:
    names = {"memstore_a": "Notes", "memstore_b": "notes", "memstore_c": "NOTES"}
    stamped = stamp_all(
        [{"type": "memory_store", "memory_store_id": store} for store in names], MOMENT, lookup=lambda store: (names[store], "")
    )
    assert [entry.resource["mount_path"] for entry in stamped] == ["/mnt/memory/notes", "/mnt/memory/notes-2", "/mnt/memory/notes-3"]
    with pytest.raises(InvalidState):
        stamp_all([MEMORY, MEMORY], MOMENT, lookup=lambda store: ("Notes", ""))


def test_server_fields_a_client_sends_are_replaced() -> None:
    sent = {**FILE, "id": "sesrsc_mine", "created_at": "1999-01-01T00:00:00Z"}
    resource = stamp(sent, MOMENT, counter()).resource
    assert resource["id"] == "sesrsc_01"
    assert resource["created_at"] == "2026-11-30T12:00:00.000000Z"


@pytest.mark.parametrize(
    "sent",
    [
        "file_01",
        {"type": "folder"},
        {"file_id": "file_01"},
        {"type": "file"},
        {"type": "file", "file_id": ""},
        {"type": "github_repository"},
        {"type": "memory_store", "memory_store_id": 7},
    ],
)
def test_a_resource_without_its_type_or_key_field_is_invalid(sent: Any) -> None:
    with pytest.raises(Invalid):
        stamp(sent, MOMENT)


def test_stamp_all_keeps_the_order_and_mints_one_id_each() -> None:
    stamped = stamp_all([FILE, REPOSITORY, MEMORY], MOMENT, counter())
    assert [entry.resource["id"] for entry in stamped] == ["sesrsc_01", "sesrsc_02", "sesrsc_03"]
    assert [entry.resource["type"] for entry in stamped] == ["file", "github_repository", "memory_store"]
    assert stamp_all(None, MOMENT) == []


def test_a_session_with_stamped_resources_passes_strict_validation() -> None:
    from anthropic.types.beta import BetaManagedAgentsSession

    resources = [entry.resource for entry in stamp_all([FILE, REPOSITORY, MEMORY], MOMENT)]
    BetaManagedAgentsSession.model_validate(
        {
            "id": "sesn_01",
            "type": "session",
            "status": "idle",
            "environment_id": "env_01",
            "created_at": "2026-01-01T00:00:00Z",
            "updated_at": "2026-01-01T00:00:00Z",
            "agent": {
                "id": "agent_01",
                "type": "agent",
                "name": "demo",
                "version": 1,
                "model": {"id": "claude-opus-4-7"},
                "execution_identity": {"type": "service_account"},
                "mcp_servers": [],
                "skills": [],
                "tools": [],
            },
            "metadata": {},
            "outcome_evaluations": [],
            "resources": resources,
            "stats": {},
            "usage": {},
            "vault_ids": [],
        }
    )


def test_repository_name() -> None:
    assert repository_name("https://github.com/acme/tools.git") == "tools"
    assert repository_name("https://github.com/acme/tools/") == "tools"


# -- the Session aggregate's resource events ----------------------------------------------


def new_session(resources: list[dict[str, Any]] | None = None) -> Session:
    details = {"resources": resources} if resources is not None else {}
    return Session(session_id="sesn_resources01", tenant_id="t", agent={"id": "agent_1", "version": 1}, environment_id="env_1", details=details)


def replayed(session: Session) -> Session:
    """The aggregate as a later load builds it from its events."""
    rebuilt = None
    for event in session.collect_events():
        rebuilt = event.mutate(rebuilt)
    assert isinstance(rebuilt, Session)
    return rebuilt


def test_resources_are_added_rotated_and_removed_by_their_own_events() -> None:
    mint = counter()
    file, repository = (stamp(sent, MOMENT, mint).resource for sent in (FILE, REPOSITORY))
    session = new_session([file])
    session.add_resource(repository)
    session.rotate_resource_token(repository["id"])
    session.remove_resource(file["id"])
    events = session.collect_events()
    assert [type(event).__name__ for event in events] == ["Started", "ResourceAdded", "ResourceTokenRotated", "ResourceRemoved"]
    rotated_at = events[2].timestamp.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert session.resources == [{**repository, "updated_at": rotated_at}]
    assert rotated_at > repository["created_at"] == session.resources[0]["created_at"]
    assert "ghp_secret" not in repr([vars(event) for event in events])

    again = new_session([file])
    again.add_resource(repository)
    again.rotate_resource_token(repository["id"])
    again.remove_resource(file["id"])
    assert replayed(again).details == again.details


def test_only_a_repository_has_a_token_to_rotate() -> None:
    memory = stamp(MEMORY, MOMENT).resource
    session = new_session([memory])
    with pytest.raises(InvalidState, match="github_repository"):
        session.rotate_resource_token(memory["id"])
    with pytest.raises(InvalidState):
        session.remove_resource("sesrsc_unknown")


def test_resources_change_only_on_an_open_session() -> None:
    terminated = new_session()
    terminated.record("session.status_terminated", "sevt_1", {})
    with pytest.raises(InvalidState, match="terminated"):
        terminated.add_resource(stamp(FILE, MOMENT).resource)
    archived = new_session([stamp(FILE, MOMENT).resource])
    archived.archive()
    with pytest.raises(Archived):
        archived.remove_resource(archived.resources[0]["id"])


@pytest.mark.parametrize(
    ("held", "sent"),
    [
        ([FILE], {**FILE, "file_id": "file_other"}),  # the same mount path
        ([REPOSITORY], {"type": "file", "file_id": "f", "mount_path": "/workspace/tools"}),
        ([MEMORY], {**MEMORY, "access": "read_only"}),  # the same store twice
        ([{"type": "memory_store", "memory_store_id": f"memstore_{n}"} for n in range(8)], {"type": "memory_store", "memory_store_id": "memstore_9"}),
        ([{"type": "file", "file_id": f"file_{n}"} for n in range(500)], {"type": "file", "file_id": "file_500"}),
    ],
)
def test_a_resource_that_cannot_live_beside_the_others_is_refused(held: list[dict[str, Any]], sent: dict[str, Any]) -> None:
    session = new_session([entry.resource for entry in stamp_all(held, MOMENT)])
    with pytest.raises(InvalidState):
        session.add_resource(stamp(sent, MOMENT).resource)
    # A session is created under the same rules.
    with pytest.raises(InvalidState):
        stamp_all([*held, sent], MOMENT)


def test_the_last_resource_a_session_may_hold() -> None:
    many = [{"type": "github_repository", "url": f"https://github.com/acme/r{n}"} for n in range(1000)]
    session = new_session([entry.resource for entry in stamp_all(many[:999], MOMENT)])
    session.add_resource(stamp(many[999], MOMENT).resource)
    with pytest.raises(InvalidState, match="at most 1000"):
        session.add_resource(stamp({"type": "github_repository", "url": "https://github.com/acme/one-more"}, MOMENT).resource)
