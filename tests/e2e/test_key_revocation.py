"""Two API processes on one PostgreSQL: a key made inactive, archived, or whose workspace was
archived through one process is refused by the other on the very next request (no process
keeps a verified key), and a role change made through one holds on the other at once."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.support.server import running_server


def test_a_change_to_a_key_through_one_process_holds_on_the_next_request_to_another(postgres_url: str, tmp_path: Path) -> None:
    with running_server(tmp_path / "a", postgres_url) as a, running_server(tmp_path / "b", postgres_url) as b:
        with httpx.Client(base_url=a.base_url, headers={"x-api-key": a.api_key}, timeout=20) as admin:
            workspace = admin.post("/v1/organizations/workspaces", json={"name": "two"}).json()["id"]
            made = admin.post("/v1/organizations/api_keys", json={"name": "k", "workspace_id": workspace}).json()
            second = admin.post("/v1/organizations/api_keys", json={"name": "k2", "workspace_id": workspace}).json()
            with httpx.Client(base_url=b.base_url, timeout=20) as other:

                def status(key: str) -> int:
                    return other.get("/v1/agents", headers={"x-api-key": key}).status_code

                def rename(key: str) -> int:
                    path = f"/v1/organizations/workspaces/{workspace}"
                    return other.post(path, json={"name": "x"}, headers={"x-api-key": key}).status_code

                # Warm: the other process has verified the key (a cache would now hold it).
                for _ in range(3):
                    assert status(made["key"]) == 200
                assert rename(made["key"]) == 403, "a member may not update its workspace"

                admin.post(f"/v1/organizations/api_keys/{made['id']}", json={"role": "admin"}).raise_for_status()
                assert rename(made["key"]) == 200, "the role change holds at once on the other process"

                admin.post(f"/v1/organizations/api_keys/{made['id']}", json={"status": "inactive"}).raise_for_status()
                assert status(made["key"]) == 401
                admin.post(f"/v1/organizations/api_keys/{made['id']}", json={"status": "active"}).raise_for_status()
                assert status(made["key"]) == 200
                admin.post(f"/v1/organizations/api_keys/{made['id']}", json={"status": "archived"}).raise_for_status()
                assert status(made["key"]) == 401

                assert status(second["key"]) == 200
                admin.post(f"/v1/organizations/workspaces/{workspace}/archive").raise_for_status()
                assert status(second["key"]) == 401, "an archived workspace's keys stop at once"
