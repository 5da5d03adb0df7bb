"""``agentry sandbox-worker``: Agentry's own environment worker for ``cloud`` environments.

It claims work items of every cloud environment from the API (``GET /v1/work/poll``, with
the sandbox worker key) and serves each with the official SDK's ``EnvironmentWorker`` —
heartbeats, the session tool runner, skills, the final stop — whose tools run inside a
bubblewrap sandbox of that session (``infra.sandbox``, wired in by
``interfaces.bootstrap.build_sandbox_worker`` as ``Sandboxes``). It is a client of the API:
it never opens the event store, so N of them on any machines pull from one queue.

A session's sandbox outlives its work item for ``KEEP_SECONDS``, so the next turn of the
same session, if this process claims it, finds ``/workspace`` as the last one left it.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

import anthropic
import httpx

log = logging.getLogger("agentry.sandbox_worker")

POLL_BLOCK_MS = 999
KEEP_SECONDS = 600.0
READY = "sandbox worker polling"


def sessions_token(secret: str) -> str:
    import orjson

    return str(orjson.loads(base64.urlsafe_b64decode(secret + "=" * (-len(secret) % 4)))["sessions_token"])


class WorkerSandbox(Protocol):
    """One session's sandbox, as the worker uses it."""

    @property
    def workdir(self) -> Path: ...

    async def call(self, tool: str, arguments: Mapping[str, Any]) -> Any: ...

    async def close(self) -> None: ...


S = TypeVar("S", bound=WorkerSandbox)


@dataclass(frozen=True)
class Sandboxes(Generic[S]):
    """What the composition root hands the worker: how to open a session's sandbox under a
    root from its environment's ``cloud`` config, the SDK tools bound to one, and which
    exceptions mean it could not start (told to the session, not logged as a defect)."""

    open: Callable[[Path, str, Mapping[str, Any]], Awaitable[S]]
    tools: Callable[[S], list[Any]]
    start_failures: tuple[type[Exception], ...]


@dataclass
class _Kept:
    sandbox: WorkerSandbox
    until: float = 0.0
    busy: bool = True


@dataclass
class SandboxWorker:
    base_url: str
    worker_key: str
    root: Path
    sandboxes: Sandboxes[Any]
    slots: int = 8
    worker_id: str = field(default_factory=lambda: f"{socket.gethostname()}-sandbox-{uuid.uuid4().hex[:8]}")

    def __post_init__(self) -> None:
        self._kept: dict[str, _Kept] = {}
        self._stopping = asyncio.Event()

    async def run(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        os.chmod(self.root, 0o711)  # each session's uid must reach its own directory
        free = asyncio.Semaphore(self.slots)
        async with httpx.AsyncClient(base_url=self.base_url, timeout=30) as http:
            print(READY, flush=True)
            tasks: set[asyncio.Task[None]] = set()
            try:
                while not self._stopping.is_set():
                    if not await self._slot(free):
                        break
                    item = await self._poll(http)
                    if item is None:
                        free.release()
                        await self._expire_kept()
                        continue
                    task = asyncio.create_task(self._serve(http, item))
                    tasks.add(task)

                    def finished(done: asyncio.Task[None]) -> None:
                        tasks.discard(done)
                        free.release()

                    task.add_done_callback(finished)
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                for kept in list(self._kept.values()):
                    await kept.sandbox.close()

    def stop(self) -> None:
        self._stopping.set()

    async def _slot(self, free: asyncio.Semaphore) -> bool:
        """Waits for a free slot, or for the signal to stop (then False)."""
        acquire = asyncio.ensure_future(free.acquire())
        stopping = asyncio.ensure_future(self._stopping.wait())
        await asyncio.wait({acquire, stopping}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if acquire.done():
            return not self._stopping.is_set()
        acquire.cancel()
        return False

    async def _poll(self, http: httpx.AsyncClient) -> dict[str, Any] | None:
        try:
            response = await http.get(
                "/v1/work/poll",
                params={"block_ms": POLL_BLOCK_MS},
                headers={"authorization": f"Bearer {self.worker_key}", "anthropic-worker-id": self.worker_id},
            )
        except httpx.HTTPError as error:
            log.warning("poll failed (%s); retrying", type(error).__name__)
            await asyncio.sleep(1)
            return None
        if response.status_code in (401, 403):
            raise SystemExit(f"the API refused this worker's key ({response.status_code}): check AGENTRY_SANDBOX_WORKER_KEY")
        if response.status_code != 200:
            log.warning("poll answered %s; retrying", response.status_code)
            await asyncio.sleep(1)
            return None
        item: dict[str, Any] | None = response.json()
        return item

    async def _serve(self, http: httpx.AsyncClient, item: dict[str, Any]) -> None:
        work_id, environment_id = item["id"], item["environment_id"]
        session_id = item["data"]["id"]
        token = sessions_token(item["secret"])
        as_item = {"authorization": f"Bearer {token}"}
        base = f"/v1/environments/{environment_id}/work/{work_id}"
        if (await http.post(f"{base}/ack", headers=as_item)).status_code != 200:
            return  # taken over meanwhile: the queue hands it out again
        try:
            sandbox = await self._sandbox_for(session_id, (item.get("environment") or {}).get("config") or {})
        except self.sandboxes.start_failures as failure:
            log.warning("session %s: its sandbox did not start: %s", session_id, failure)
            await http.post(f"{base}/stop", headers=as_item, json={"force": True, "error": _start_failure(failure)})
            return
        except Exception as failure:  # never leave an acknowledged item unserved and unstopped
            log.exception("session %s: its sandbox did not start", session_id)
            message = _start_failure(RuntimeError(f"the worker failed ({type(failure).__name__})"))
            await http.post(f"{base}/stop", headers=as_item, json={"force": True, "error": message})
            return
        try:
            client = anthropic.AsyncAnthropic(base_url=self.base_url, api_key="unused", max_retries=2)
            worker = client.beta.environments.work.worker(
                workdir=sandbox.workdir,
                tools=lambda context: self.sandboxes.tools(sandbox),
                memory_sync_interval=None,
                worker_id=self.worker_id,
            )
            await worker.handle_item(
                work_id=work_id, environment_id=environment_id, session_id=session_id, work_secret=item["secret"]
            )
        except Exception:
            log.exception("session %s: serving work %s failed", session_id, work_id)
        finally:
            # The session stopped: every process it started goes (a bash restart clears the
            # whole sandbox); its files stay for its next turn.
            with contextlib.suppress(Exception):
                await sandbox.call("bash", {"restart": True})
            kept = self._kept.get(session_id)
            if kept is not None:
                kept.busy = False
                kept.until = time.monotonic() + KEEP_SECONDS
            await self._expire_kept()

    async def _sandbox_for(self, session_id: str, config: dict[str, Any]) -> WorkerSandbox:
        kept = self._kept.get(session_id)
        if kept is not None:
            # Also while the session's previous item is still winding down here (until its
            # next heartbeat): one sandbox per session, its calls taken one at a time.
            kept.busy = True
            return kept.sandbox
        sandbox = await self.sandboxes.open(self.root, session_id, config)
        self._kept[session_id] = _Kept(sandbox)
        return sandbox

    async def _expire_kept(self) -> None:
        now = time.monotonic()
        for session_id, kept in list(self._kept.items()):
            if not kept.busy and kept.until < now:
                self._kept.pop(session_id, None)
                with contextlib.suppress(Exception):
                    await kept.sandbox.close()


def _start_failure(failure: Exception) -> str:
    return f"The environment's sandbox could not start, so the agent's tools did not run: {failure}"


def run_sandbox_worker(worker: SandboxWorker) -> int:
    loop = asyncio.new_event_loop()
    import signal

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, worker.stop)
    try:
        loop.run_until_complete(worker.run())
    finally:
        loop.close()
    return 0
