"""The Vault aggregate's rules, without I/O: it records only sealed secrets, one active
credential per MCP server URL, at most 20, a fixed type and identity, archive cascades."""

from __future__ import annotations

from typing import Any

import pytest

from domain.errors import Archived, InvalidState
from domain.vaults import MAX_CREDENTIALS, ImmutableField, TooManyCredentials, UrlTaken, Vault


def bearer(url: str = "https://mcp.test/a") -> dict[str, Any]:
    return {"type": "static_bearer", "mcp_server_url": url}


def vault() -> Vault:
    return Vault(vault_id="vlt_a", tenant_id="t", display_name="v", metadata={})


def test_a_second_active_credential_for_a_url_is_refused_until_the_first_is_archived() -> None:
    v = vault()
    v.add_credential("vcrd_1", None, {}, bearer(), {"token": "sealed"})
    with pytest.raises(UrlTaken):
        v.add_credential("vcrd_2", None, {}, bearer(), {"token": "sealed"})
    v.archive_credential("vcrd_1")
    v.add_credential("vcrd_2", None, {}, bearer(), {"token": "sealed"})


def test_at_most_twenty_credentials() -> None:
    v = vault()
    for n in range(MAX_CREDENTIALS):
        v.add_credential(f"vcrd_{n}", None, {}, bearer(f"https://mcp.test/{n}"), {"token": "sealed"})
    with pytest.raises(TooManyCredentials):
        v.add_credential("vcrd_x", None, {}, bearer("https://mcp.test/x"), {"token": "sealed"})


def test_a_clear_secret_is_never_recorded() -> None:
    with pytest.raises(InvalidState):
        vault().add_credential("vcrd_1", None, {}, {**bearer(), "token": "clear"}, {})


def test_type_and_identity_cannot_change() -> None:
    v = vault()
    v.add_credential("vcrd_1", None, {}, bearer(), {"token": "sealed"})
    for auth in ({"type": "mcp_oauth", "mcp_server_url": "https://mcp.test/a"}, bearer("https://mcp.test/b")):
        with pytest.raises(ImmutableField):
            v.update_credential("vcrd_1", None, None, auth, {"token": "sealed"})
    assert v.update_credential("vcrd_1", None, None, bearer(), {"token": "sealed"}) is False
    assert v.update_credential("vcrd_1", None, None, bearer(), {"token": "resealed"}) is True


def test_archiving_the_vault_archives_its_credentials_and_freezes_it() -> None:
    v = vault()
    v.add_credential("vcrd_1", None, {}, bearer(), {"token": "sealed"})
    v.archive()
    assert v.credentials["vcrd_1"].archived_at == v.archived_at
    with pytest.raises(Archived):
        v.add_credential("vcrd_2", None, {}, bearer("https://mcp.test/b"), {"token": "sealed"})
    v.delete_credential("vcrd_1")
    v.delete()
    assert v.deleted and v.credential_ids_ever == ["vcrd_1"]
