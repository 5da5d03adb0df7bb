"""Session resources as the SDK's response types require them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from anthropic.types.beta.sessions import BetaManagedAgentsSessionResource
from pydantic import TypeAdapter

from application.errors import Invalid
from application.session_resources import repository_name, stamp, stamp_all

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


def test_repository_name() -> None:
    assert repository_name("https://github.com/acme/tools.git") == "tools"
    assert repository_name("https://github.com/acme/tools/") == "tools"
