"""The uvicorn server that serves the API, with a shutdown that ends open event streams."""

from __future__ import annotations

import signal
import socket
from collections.abc import Callable, Sequence
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


def serve_until_signalled(
    config: uvicorn.Config, on_shutdown: Callable[[], None], sockets: Sequence[socket.socket] | None = None
) -> None:
    """Runs until SIGINT/SIGTERM and returns normally after a graceful shutdown. ``sockets``:
    listening sockets already bound (by `agentry serve --workers N`, shared by its N processes)
    instead of the config's host and port.

    uvicorn raises the signal again once it has shut down; under the default handler SIGTERM
    would then kill the process before the caller could close what it opened."""
    signal.signal(signal.SIGTERM, _exit_cleanly)
    StreamEndingServer(config, on_shutdown).run(sockets=list(sockets) if sockets is not None else None)


def _exit_cleanly(signum: int, frame: object) -> None:
    raise SystemExit(0)
