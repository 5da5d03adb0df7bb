"""The uvicorn server that serves the API, with a shutdown that ends open event streams."""

from __future__ import annotations

import signal
from collections.abc import Callable
from typing import Any

import uvicorn


class StreamEndingServer(uvicorn.Server):
    """Tells open event streams to end as shutdown begins, so shutdown neither waits out its
    grace period nor cuts them off mid-response."""

    def __init__(self, config: uvicorn.Config, on_shutdown: Callable[[], None]) -> None:
        super().__init__(config)
        self._on_shutdown = on_shutdown

    async def shutdown(self, sockets: Any = None) -> None:
        self._on_shutdown()
        await super().shutdown(sockets)


def serve_until_signalled(config: uvicorn.Config, on_shutdown: Callable[[], None]) -> None:
    """Runs until SIGINT/SIGTERM and returns normally after a graceful shutdown.

    uvicorn raises the signal again once it has shut down; under the default handler SIGTERM
    would then kill the process before the caller could close what it opened."""
    signal.signal(signal.SIGTERM, _exit_cleanly)
    StreamEndingServer(config, on_shutdown).run()


def _exit_cleanly(signum: int, frame: object) -> None:
    raise SystemExit(0)
