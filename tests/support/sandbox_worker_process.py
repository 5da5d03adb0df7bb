"""`agentry sandbox-worker` in its own process, as an operator (or `agentry serve`) starts it."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support.serve_process import ROOT
from tests.support.server import SANDBOX_WORKER_KEY

__all__ = ["SANDBOX_WORKER_KEY", "SandboxWorkerProcess", "sandbox_worker"]
READY = "sandbox worker polling"


class SandboxWorkerProcess:
    def __init__(self, api: str, root: Path, slots: int = 8) -> None:
        env = {
            **os.environ,
            "AGENTRY_SANDBOX_WORKER_KEY": SANDBOX_WORKER_KEY,
            "AGENTRY_SANDBOX_ROOT": str(root),
            "PYTHONUNBUFFERED": "1",
        }
        env.pop("AGENTRY_DATABASE_URL", None)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "interfaces.cli.main", "sandbox-worker", "--api", api, "--slots", str(slots)],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
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
        while not any(READY in line for line in self.lines):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("the sandbox worker did not start:\n" + self.output)
            time.sleep(0.05)

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self._reader.join(5)
        return self.process.returncode


@contextmanager
def sandbox_worker(api: str, root: Path, slots: int = 8) -> Iterator[SandboxWorkerProcess]:
    worker = SandboxWorkerProcess(api, root, slots)
    try:
        worker.wait_ready()
        yield worker
    finally:
        worker.stop()
