"""`agentry sandbox-worker` in its own process, as an operator (or `agentry serve`) starts it."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support.child_process import ChildProcess
from tests.support.server import SANDBOX_WORKER_KEY

__all__ = ["SANDBOX_WORKER_KEY", "SandboxWorkerProcess", "sandbox_worker"]
READY = "sandbox worker polling"


class SandboxWorkerProcess(ChildProcess):
    def __init__(self, api: str, root: Path, slots: int = 8) -> None:
        env = {
            **os.environ,
            "AGENTRY_SANDBOX_WORKER_KEY": SANDBOX_WORKER_KEY,
            "AGENTRY_SANDBOX_ROOT": str(root),
            "PYTHONUNBUFFERED": "1",
        }
        env.pop("AGENTRY_DATABASE_URL", None)
        command = [sys.executable, "-m", "interfaces.cli.main", "sandbox-worker", "--api", api, "--slots", str(slots)]
        super().__init__(command, env, READY, "the sandbox worker")

    def stop(self, grace: float = 20) -> int:
        return super().stop(grace)


@contextmanager
def sandbox_worker(api: str, root: Path, slots: int = 8) -> Iterator[SandboxWorkerProcess]:
    worker = SandboxWorkerProcess(api, root, slots)
    try:
        worker.wait_ready()
        yield worker
    finally:
        worker.stop()
