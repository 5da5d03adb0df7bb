"""The official SDK's environment worker, unchanged, in its own process: as a customer runs
it next to their self-hosted environment.

``python -m tests.support.environment_worker BASE_URL ENVIRONMENT_ID ENVIRONMENT_KEY WORKDIR``
"""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support.serve_process import ROOT


async def _serve(base_url: str, environment_id: str, environment_key: str, workdir: str) -> None:
    import anthropic

    # No API key: the worker's calls carry only its environment key or its items' tokens.
    client = anthropic.AsyncAnthropic(base_url=base_url, api_key="not-used-by-the-worker", max_retries=2)
    worker = client.beta.environments.work.worker(
        environment_id=environment_id,
        environment_key=environment_key,
        workdir=workdir,
        memory_sync_interval=None,
        max_idle=5,
    )
    print("worker polling", flush=True)
    await worker.run()


class WorkerProcess:
    def __init__(self, base_url: str, environment_id: str, environment_key: str, workdir: Path) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.support.environment_worker", base_url, environment_id, environment_key, str(workdir)],
            cwd=ROOT, env={**os.environ, "PYTHONUNBUFFERED": "1"},
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while not any("worker polling" in line for line in self.lines):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("the environment worker did not start:\n" + self.output)
            time.sleep(0.05)

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(10)
        self._reader.join(5)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self._reader.join(5)


@contextmanager
def environment_worker(base_url: str, environment_id: str, environment_key: str, workdir: Path) -> Iterator[WorkerProcess]:
    worker = WorkerProcess(base_url, environment_id, environment_key, workdir)
    try:
        worker.wait_ready()
        yield worker
    finally:
        worker.stop()


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    base_url, environment_id, environment_key, workdir = sys.argv[1:5]
    try:
        asyncio.run(_serve(base_url, environment_id, environment_key, workdir))
    except KeyboardInterrupt:
        pass
