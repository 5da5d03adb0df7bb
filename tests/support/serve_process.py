"""A real `agentry serve` process, as an operator starts it."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]


def start_serve(env: dict[str, str]) -> tuple[subprocess.Popen[str], str]:
    """Starts `agentry serve` with ``env`` (its port from ``AGENTRY_PORT``) and returns the
    process, its output piped, and its base URL once ``/healthz`` answers. The caller stops it."""
    server = subprocess.Popen(
        [sys.executable, "-m", "interfaces.cli.main", "serve"], cwd=ROOT, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    base = f"http://127.0.0.1:{env['AGENTRY_PORT']}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{base}/healthz").status_code == 200:
                return server, base
        except httpx.TransportError:
            pass
        if time.monotonic() >= deadline or server.poll() is not None:
            server.kill()
            raise AssertionError("the server did not start:\n" + server.communicate()[0])
        time.sleep(0.1)
