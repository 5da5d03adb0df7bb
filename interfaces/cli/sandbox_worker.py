"""``agentry sandbox-worker``: Agentry's own environment worker for ``cloud`` environments.

It claims work items of every cloud environment from the API (``GET /v1/work/poll``, with
the sandbox worker key) and serves each with the official SDK's ``EnvironmentWorker`` —
heartbeats, the session tool runner, skills, the final stop — whose tools run inside a
bubblewrap sandbox of that session (``infra.sandbox``, wired in by
``interfaces.bootstrap.build_sandbox_worker`` as ``Sandboxes``). It is a client of the API:
it never opens the event store, so N of them on any machines pull from one queue.

A session's sandbox outlives its work item for ``KEEP_SECONDS``, so the next turn of the
same session, if this process claims it, finds ``/workspace`` as the last one left it. One
item of a session is served at a time (the SDK mounts its memory stores afresh per item).

Mounts (docs/design/runtime-mounts.md): the SDK's memory sync is on, and mounts each store at
the ``mount_path`` it reads from ``GET /v1/sessions/{id}``; that one response is rewritten on
its way in so ``/mnt/memory/<slug>`` names the sandbox's ``/mnt`` on the host (``_MountedAt``).
The session's file resources are downloaded with the item's token before the SDK starts, and
the trees the SDK wrote as root (writable stores, read-only stores, skills) are handed to the
session's uid once it has (its ``tools=`` callback runs after both downloads)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

import anthropic
import httpx
import httpx2  # the SDK's own HTTP package: its client takes nothing else

log = logging.getLogger("agentry.sandbox_worker")

POLL_BLOCK_MS = 999
KEEP_SECONDS = 600.0
READY = "sandbox worker polling"
# The SDK syncs the memory stores after a tool call when this long has passed (5 s at least),
# and always when the item ends.
MEMORY_SYNC_SECONDS = 10.0
SESSIONS_BETA = {"anthropic-beta": "managed-agents-2026-04-01"}


def sessions_token(secret: str) -> str:
    import orjson

    return str(orjson.loads(base64.urlsafe_b64decode(secret + "=" * (-len(secret) % 4)))["sessions_token"])


class WorkerSandbox(Protocol):
    """One session's sandbox, as the worker uses it."""

    @property
    def workdir(self) -> Path: ...

    @property
    def mounts(self) -> Path:
        """The host directory that is /mnt inside."""
        ...

    async def prepare_mounts(self, files: Mapping[str, str], fetch: Callable[[str], Awaitable[bytes]]) -> list[str]: ...

    def share(self, writable: Sequence[Path] = (), readable: Sequence[Path] = ()) -> None: ...

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
    users: int = 1
    serving: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def busy(self) -> bool:
        return self.users > 0


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
        self._opening: dict[str, asyncio.Future[_Kept]] = {}
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
                opening = list(self._opening.values())
                for future in opening:
                    future.cancel()  # Sandbox.create closes what it had made when cancelled
                await asyncio.gather(*opening, return_exceptions=True)
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
            raise SystemExit(
                f"the API refused this worker's key ({response.status_code}): check AGENTRY_SANDBOX_WORKER_KEY"
            )
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
        # No heartbeat of this worker's own until the SDK's: its first one expects none (a
        # 412 otherwise). A lease that runs out meanwhile (a slow sandbox start) only costs
        # the item if another poll claims it first; that claim then waits for this sandbox.
        try:
            kept = await self._sandbox_for(session_id, (item.get("environment") or {}).get("config") or {})
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
            # One item of the session at a time: its previous one may still be winding down
            # here (until its next heartbeat, then its memory flush).
            async with kept.serving:
                await self._handle(http, item, kept.sandbox, as_item)
        finally:
            kept.users -= 1
            if not kept.busy:
                kept.until = time.monotonic() + KEEP_SECONDS
            await self._expire_kept()

    async def _handle(
        self, http: httpx.AsyncClient, item: dict[str, Any], sandbox: WorkerSandbox, as_item: dict[str, str]
    ) -> None:
        work_id, environment_id, session_id = item["id"], item["environment_id"], item["data"]["id"]
        try:
            await self._mount_files(http, session_id, sandbox, as_item)
        except Exception:  # the session is served without them rather than not at all
            log.exception("session %s: its file resources could not be mounted", session_id)
        try:
            async with httpx2.AsyncClient(
                transport=_MountedAt(httpx2.AsyncHTTPTransport(), session_id, sandbox.mounts), timeout=None
            ) as transport:
                client = anthropic.AsyncAnthropic(
                    base_url=self.base_url, api_key="unused", max_retries=2, http_client=transport
                )
                worker = client.beta.environments.work.worker(
                    workdir=sandbox.workdir,
                    tools=lambda context: self._tools(sandbox, context),
                    memory_sync_interval=MEMORY_SYNC_SECONDS,
                    worker_id=self.worker_id,
                )
                await worker.handle_item(
                    work_id=work_id, environment_id=environment_id, session_id=session_id, work_secret=item["secret"]
                )
        except Exception:
            log.exception("session %s: serving work %s failed", session_id, work_id)
        finally:
            sandbox.share()  # the item's stores and skills are gone (the SDK removed them)
            # The session stopped: every process it started goes (a bash restart clears the
            # whole sandbox); its files stay for its next turn.
            with contextlib.suppress(Exception):
                await sandbox.call("bash", {"restart": True})

    def _tools(self, sandbox: WorkerSandbox, context: Any) -> list[Any]:
        """The SDK's `tools=` callback: it runs after the SDK downloaded the skills into
        ``{workdir}/skills`` and the memory stores into their folders, as root and 0700."""
        read_only = [Path(root) for root in context.read_only_roots]
        writable = [Path(root) for root in context.allowed_roots if Path(root) not in read_only]
        skills = Path(context.workdir) / "skills"
        sandbox.share(writable=writable, readable=[*read_only, *([skills] if skills.is_dir() else [])])
        return self.sandboxes.tools(sandbox)

    async def _mount_files(
        self, http: httpx.AsyncClient, session_id: str, sandbox: WorkerSandbox, as_item: dict[str, str]
    ) -> None:
        """The session's file resources at their mount paths (the SDK's worker has no code
        for them). A file that cannot be had is left out and logged; the agent finds it missing."""
        response = await http.get(f"/v1/sessions/{session_id}", headers={**as_item, **SESSIONS_BETA})
        response.raise_for_status()
        files = {
            str(resource["mount_path"]): str(resource["file_id"])
            for resource in response.json().get("resources") or []
            if resource.get("type") == "file" and resource.get("mount_path")
        }

        async def fetch(file_id: str) -> bytes:
            content = await http.get(f"/v1/files/{file_id}/content", headers=as_item)
            content.raise_for_status()
            return content.content

        for problem in await sandbox.prepare_mounts(files, fetch):
            log.warning("session %s: a file resource is not mounted: %s", session_id, problem)

    async def _sandbox_for(self, session_id: str, config: dict[str, Any]) -> _Kept:
        """The session's kept sandbox, or a new one; an item of a session whose sandbox is
        still being opened here waits for that one (an area per session per machine)."""
        kept = self._kept.get(session_id)
        if kept is None:
            opening = self._opening.get(session_id)
            if opening is None:
                opening = self._opening[session_id] = asyncio.ensure_future(self._open(session_id, config))
                opening.add_done_callback(lambda _done: self._opening.pop(session_id, None))
                kept = await asyncio.shield(opening)
                return kept
            kept = await asyncio.shield(opening)
        # Also while the session's previous item is still winding down here.
        kept.users += 1
        return kept

    async def _open(self, session_id: str, config: dict[str, Any]) -> _Kept:
        sandbox = await self.sandboxes.open(self.root, session_id, config)
        kept = self._kept[session_id] = _Kept(sandbox)
        return kept

    async def _expire_kept(self) -> None:
        now = time.monotonic()
        for session_id, kept in list(self._kept.items()):
            if not kept.busy and kept.until < now:
                self._kept.pop(session_id, None)
                with contextlib.suppress(Exception):
                    await kept.sandbox.close()


class _MountedAt(httpx2.AsyncBaseTransport):
    """Rewrites one session's ``GET /v1/sessions/{id}`` answer as the SDK's worker reads it:
    each memory store's ``mount_path`` ``/mnt/...`` becomes the same path under `mounts`, the
    host directory bound at /mnt in the session's sandbox, where the SDK then makes, syncs and
    removes the store's folder. A memory store mounted anywhere else is made unmountable (the
    SDK fails the item) rather than written somewhere on the host."""

    def __init__(self, inner: httpx2.AsyncBaseTransport, session_id: str, mounts: Path) -> None:
        self._inner = inner
        self._session_path = f"/v1/sessions/{session_id}"
        self._mounts = mounts

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        response = await self._inner.handle_async_request(request)
        if request.method != "GET" or request.url.path != self._session_path or response.status_code != 200:
            return response
        body = await response.aread()  # decoded: the headers that described the encoding go
        headers = [
            (name, value)
            for name, value in response.headers.multi_items()
            if name.lower() not in ("content-length", "content-encoding", "transfer-encoding")
        ]
        return httpx2.Response(
            response.status_code,
            headers=headers,
            content=self._rewrite(body),
            request=request,
            extensions={key: value for key, value in response.extensions.items() if key != "network_stream"},
        )

    def _rewrite(self, body: bytes) -> bytes:
        import orjson

        try:
            session = orjson.loads(body)
        except orjson.JSONDecodeError:
            return body
        for resource in session.get("resources") or []:
            if resource.get("type") != "memory_store":
                continue
            # Without one the SDK would mount under the workdir, a tree the uid owns.
            inside = resource.get("mount_path")
            if isinstance(inside, str) and inside.startswith("/mnt/memory/") and ".." not in inside.split("/"):
                resource["mount_path"] = str(self._mounts) + inside.removeprefix("/mnt")
            else:
                resource["mount_path"] = f"unmountable in the sandbox: {inside}"
        return orjson.dumps(session)

    async def aclose(self) -> None:
        await self._inner.aclose()


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
