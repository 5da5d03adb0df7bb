"""The official SDK's environment worker, unchanged, in its own process: as a customer runs
it next to their self-hosted environment.

``python -m tests.support.environment_worker BASE_URL ENVIRONMENT_ID ENVIRONMENT_KEY WORKDIR [MEMORY_SYNC_SECONDS]``

Without ``MEMORY_SYNC_SECONDS`` the worker's memory sync is off (the SDK's ``None``); with it,
the worker mounts the session's memory stores and syncs them at that interval.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support.child_process import ChildProcess


async def _serve(
    base_url: str, environment_id: str, environment_key: str, workdir: str, memory_sync_interval: float | None = None
) -> None:
    import anthropic

    # No API key: the worker's calls carry only its environment key or its items' tokens.
    client = anthropic.AsyncAnthropic(base_url=base_url, api_key="not-used-by-the-worker", max_retries=2)
    worker = client.beta.environments.work.worker(
        environment_id=environment_id,
        environment_key=environment_key,
        workdir=workdir,
        memory_sync_interval=memory_sync_interval,
        max_idle=5,
    )
    print("worker polling", flush=True)
    await worker.run()


class WorkerProcess(ChildProcess):
    def __init__(
        self, base_url: str, environment_id: str, environment_key: str, workdir: Path, memory_sync_interval: float | None = None
    ) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "tests.support.environment_worker", base_url, environment_id, environment_key, str(workdir)]
        if memory_sync_interval is not None:
            command.append(str(memory_sync_interval))
        super().__init__(command, {**os.environ, "PYTHONUNBUFFERED": "1"}, "worker polling", "the environment worker")


@contextmanager
def environment_worker(
    base_url: str, environment_id: str, environment_key: str, workdir: Path, memory_sync_interval: float | None = None
) -> Iterator[WorkerProcess]:
    worker = WorkerProcess(base_url, environment_id, environment_key, workdir, memory_sync_interval)
    try:
        worker.wait_ready()
        yield worker
    finally:
        worker.stop()


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    base_url, environment_id, environment_key, workdir = sys.argv[1:5]
    interval = float(sys.argv[5]) if len(sys.argv) > 5 else None
    try:
        asyncio.run(_serve(base_url, environment_id, environment_key, workdir, interval))
    except KeyboardInterrupt:
        pass
