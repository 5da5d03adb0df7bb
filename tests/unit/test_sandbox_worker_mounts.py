"""The sandbox worker's rewrite of one session's answer: memory stores mount under the
sandbox's /mnt on the host, nothing else changes, and a store mounted anywhere else is made
unmountable (the SDK then fails the item) rather than written elsewhere on the host."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import anthropic
import httpx2

from interfaces.cli.sandbox_worker import _MountedAt

MOUNTS = Path("/srv/sandboxes/sesn_a/mnt")
SESSION = {
    "id": "sesn_a",
    "type": "session",
    "resources": [
        {"type": "memory_store", "memory_store_id": "memstore_1", "mount_path": "/mnt/memory/prefs"},
        {"type": "memory_store", "memory_store_id": "memstore_2", "mount_path": "/etc/cron.d"},
        {"type": "memory_store", "memory_store_id": "memstore_3", "mount_path": "/mnt/memory/../../etc"},
        {"type": "memory_store", "memory_store_id": "memstore_4"},
        {"type": "file", "file_id": "file_1", "mount_path": "/mnt/session/uploads/file_1"},
    ],
}


def _server(request: httpx2.Request) -> httpx2.Response:
    body = gzip.compress(json.dumps(SESSION).encode())
    return httpx2.Response(200, headers={"content-encoding": "gzip", "content-type": "application/json"}, content=body)


async def test_only_the_sessions_memory_mounts_move_under_the_sandbox() -> None:
    transport = _MountedAt(httpx2.MockTransport(_server), "sesn_a", MOUNTS)
    async with httpx2.AsyncClient(transport=transport, base_url="http://api") as http:
        answer = (await http.get("/v1/sessions/sesn_a")).json()
        other = (await http.get("/v1/sessions/sesn_b")).json()
        posted = (await http.post("/v1/sessions/sesn_a")).json()
    paths = [resource.get("mount_path") for resource in answer["resources"]]
    assert paths[0] == "/srv/sandboxes/sesn_a/mnt/memory/prefs"
    assert all(path.startswith("unmountable") for path in paths[1:4])
    assert paths[4] == "/mnt/session/uploads/file_1"
    assert other == posted == SESSION


def test_the_sdk_refuses_an_unmountable_path() -> None:
    from anthropic.lib.tools._file_store import FileStore

    assert not FileStore.is_path_legal("unmountable in the sandbox: /etc/cron.d")
    assert FileStore.is_path_legal("/srv/sandboxes/sesn_a/mnt/memory/prefs")
    assert anthropic.__version__ == "2.14.0"
