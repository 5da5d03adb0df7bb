"""Session resources as the SDK's response types require them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from anthropic.types.beta.sessions import BetaManagedAgentsSessionResource
from pydantic import TypeAdapter

from application.errors import Invalid, NotFound
from application.session_resources import (
    completed,
    deleted_view,
    find,
    repository_name,
    rotate_token,
    stamp,
    stamp_all,
    without,
)

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
    assert "mount_path" not in resource
    RESOURCE.validate_python(resource)


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


class TestUpdatePath:
    def resources(self) -> list[dict[str, Any]]:
        return [entry.resource for entry in stamp_all([FILE, REPOSITORY], MOMENT, counter())]

    def test_find_and_without(self) -> None:
        resources = self.resources()
        assert find(resources, "sesrsc_02")["type"] == "github_repository"
        assert [resource["id"] for resource in without(resources, "sesrsc_01")] == ["sesrsc_02"]
        with pytest.raises(NotFound):
            find(resources, "sesrsc_99")
        with pytest.raises(NotFound):
            without(resources, "sesrsc_99")

    def test_rotating_a_repository_token_touches_only_updated_at(self) -> None:
        repository = self.resources()[1]
        rotated = rotate_token(repository, "ghp_new", LATER)
        assert rotated.resource == {**repository, "updated_at": "2026-11-30T13:00:00.000000Z"}
        assert rotated.secrets == {"authorization_token": "ghp_new"}
        RESOURCE.validate_python(rotated.resource)

    def test_only_a_repository_token_can_be_rotated(self) -> None:
        with pytest.raises(Invalid):
            rotate_token(self.resources()[0], "ghp_new", LATER)
        with pytest.raises(Invalid):
            rotate_token(self.resources()[1], "", LATER)

    def test_deleted_view(self) -> None:
        assert deleted_view("sesrsc_01") == {"id": "sesrsc_01", "type": "session_resource_deleted"}


class TestResourcesStoredAsSent:
    def test_are_completed_with_the_same_id_on_every_read(self) -> None:
        stored = [FILE, REPOSITORY]
        first = completed(stored, "sesn_01", MOMENT)
        assert first == completed(stored, "sesn_01", MOMENT)
        assert first[0]["id"] != first[1]["id"]
        assert first[0]["id"] != completed(stored, "sesn_02", MOMENT)[0]["id"]
        assert all(resource["id"].startswith("sesrsc_") and len(resource["id"]) == 31 for resource in first)
        assert "authorization_token" not in first[1]
        for resource in first:
            assert resource["created_at"] == resource["updated_at"] == "2026-11-30T12:00:00.000000Z"
            RESOURCE.validate_python(resource)

    def test_stamped_ones_pass_unchanged(self) -> None:
        stamped = stamp(FILE, MOMENT).resource
        assert completed([stamped], "sesn_01", LATER) == [stamped]


def test_repository_name() -> None:
    assert repository_name("https://github.com/acme/tools.git") == "tools"
    assert repository_name("https://github.com/acme/tools/") == "tools"
