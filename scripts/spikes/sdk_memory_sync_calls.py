"""Spike: which HTTP calls the official SDK's memory sync makes (SessionMemoryStores, the code
EnvironmentWorker runs for a session with memory stores), recorded through an httpx
MockTransport. Run: /work/main/.venv/bin/python scripts/spikes/sdk_memory_sync_calls.py"""

from __future__ import annotations

import asyncio
import hashlib
import json
import tempfile
from pathlib import Path
from typing import Any

import anthropic
import httpx2 as httpx
from anthropic._models import construct_type
from anthropic.lib.environments._worker import _copy_client_with_bearer_auth
from anthropic.lib.tools._memories import SessionMemoryStores
from anthropic.types.beta import BetaManagedAgentsSession

STORE = "memstore_1"
memories: dict[str, dict[str, object]] = {}
calls: list[str] = []


def _memory(mem_id: str, path: str, content: str, full: bool) -> dict[str, object]:
    sha = hashlib.sha256(content.encode()).hexdigest()
    return {
        "id": mem_id, "type": "memory", "memory_store_id": STORE, "path": path, "content_sha256": sha,
        "content_size_bytes": len(content.encode()), "memory_version_id": f"memver_{mem_id}",
        "created_at": "2026-12-01T00:00:00Z", "updated_at": "2026-12-01T00:00:00Z",
        "content": content if full else None,
    }


def handler(request: httpx.Request) -> httpx.Response:
    body: Any = json.loads(request.content) if request.content else None
    h = request.headers
    calls.append(
        f"{request.method} {request.url.path}?{request.url.query.decode()} "
        f"auth={h.get('authorization', '')[:20]}… beta={h.get('anthropic-beta')} helper={h.get('x-stainless-helper')} "
        f"body={json.dumps(body) if body else ''}"
    )
    base = f"/v1/memory_stores/{STORE}/memories"
    if request.method == "GET" and request.url.path == base:
        full = request.url.params.get("view") == "full"
        data = [_memory(i, m["path"], m["content"], full) for i, m in memories.items()]  # type: ignore[arg-type]
        return httpx.Response(200, json={"data": data, "next_page": None})
    if request.method == "POST" and request.url.path == base:
        mem_id = f"mem_{len(memories) + 1}"
        memories[mem_id] = {"path": body["path"], "content": body["content"]}
        return httpx.Response(200, json=_memory(mem_id, body["path"], body["content"], True))
    if request.method == "POST" and request.url.path.startswith(base + "/"):
        mem_id = request.url.path.rsplit("/", 1)[1]
        memories[mem_id]["content"] = body["content"]
        return httpx.Response(200, json=_memory(mem_id, str(memories[mem_id]["path"]), body["content"], True))
    return httpx.Response(404, json={"type": "error", "error": {"type": "not_found_error", "message": "no"}})


async def main() -> None:
    memories["mem_0"] = {"path": "/prefs.md", "content": "likes tea\n"}
    root = Path(tempfile.mkdtemp()) / "mnt" / "memory" / "prefs"
    client = anthropic.AsyncAnthropic(
        api_key="unused", base_url="http://agentry.test", http_client=httpx.AsyncClient(transport=httpx.MockTransport(handler))
    )
    worker_client = _copy_client_with_bearer_auth(client, auth_token="agentry_wtok_1.work_x.sig", helper="environments-worker")
    session = construct_type(type_=BetaManagedAgentsSession, value={
        "id": "sesn_1", "resources": [{"type": "memory_store", "memory_store_id": STORE, "access": "read_write",
                                        "mount_path": str(root), "name": "Prefs"}],
        "agent": {"skills": []},
    })
    stores = SessionMemoryStores(worker_client, workdir="/tmp", sync_interval=5.0)
    await stores.download(session)  # type: ignore[arg-type]
    print("after download:", sorted(p.name for p in root.iterdir()))
    (root / "prefs.md").write_text("likes green tea\n")
    (root / "notes").mkdir()
    (root / "notes" / "new.md").write_text("a new memory\n")
    await stores.finish()
    await stores.flush_writes()
    await stores.dispose()
    print("folder left after dispose:", root.exists())
    print("\n".join(calls))


asyncio.run(main())
