"""`agentry serve --workers N`: N API processes answering on one port.

This process binds the listening socket once and hands it to N `agentry serve` children, each
of which builds its own platform and accepts from the shared socket (the kernel gives each
new connection to whichever child accepts first, so a busy child takes fewer). What must not
run N times is already fenced across processes on PostgreSQL, as it is for API processes on
several hosts: projections and the task follower claim each batch by moving their position;
turns are driven under session leases; webhooks are delivered by the one process that holds
their advisory lock; work items carry leases in the database; tails wake on LISTEN/NOTIFY.

Children start one at a time (each says when it is ready), so creating tables and the
bootstrap key never race. A child that dies is started again; its turns are taken up by
another process once their leases run out. SIGTERM or SIGINT stops every child gracefully.
"""

from __future__ import annotations

import logging
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time

from interfaces.bootstrap import Settings

log = logging.getLogger("agentry")

# How long a child may take from its start to serving (the first one creates the tables).
READY_TIMEOUT_SECONDS = 120.0
# A child stopped with SIGTERM ends its streams and closes its platform within this.
STOP_TIMEOUT_SECONDS = 30.0
READY = b"ready\n"


def listening_socket(host: str, port: int, backlog: int = 2048) -> socket.socket:
    """Bound and listening here, inherited by every child (uvicorn's default backlog)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(backlog)
    sock.set_inheritable(True)
    return sock


class ApiProcesses:
    def __init__(self, settings: Settings, host: str, port: int) -> None:
        self._count = settings.workers
        self._host = host
        self._port = port
        self._stop = threading.Event()
        self._listener = listening_socket(host, port)
        self._children: list[subprocess.Popen[bytes] | None] = [None] * self._count

    @property
    def pids(self) -> list[int]:
        return [child.pid for child in self._children if child is not None]

    def stop(self, *_: object) -> None:
        self._stop.set()

    def run(self) -> int:
        try:
            for index in range(self._count):
                child = self._start(index)
                if child is None:
                    if not self._stop.is_set():
                        log.error("API process %d did not start; stopping", index)
                        return 1
                    return 0
            log.info("%d API processes listening on http://%s:%d (pids %s)", self._count, self._host, self._port, self.pids)
            while not self._stop.wait(0.5):
                for index, child in enumerate(self._children):
                    if child is not None and child.poll() is not None and not self._stop.is_set():
                        log.warning("API process %d (pid %d) ended with %s; starting another", index, child.pid, child.returncode)
                        if self._start(index) is None and not self._stop.is_set():
                            self._stop.wait(1.0)  # a child that cannot start: try again, not in a tight loop
            return 0
        finally:
            self._stop_children()
            self._listener.close()

    def _start(self, index: int) -> subprocess.Popen[bytes] | None:
        """Starts child ``index`` and waits until it serves; None if it ended first."""
        read_end, write_end = os.pipe()
        command = [
            sys.executable, "-m", "interfaces.cli.main", "serve", "--host", self._host, "--port", str(self._port),
            "--listen-fd", str(self._listener.fileno()), "--ready-fd", str(write_end), "--process-index", str(index),
        ]  # fmt: skip
        try:
            child = subprocess.Popen(command, pass_fds=(self._listener.fileno(), write_end))
        finally:
            os.close(write_end)
        self._children[index] = child
        try:
            if _ready(read_end, child, self._stop):
                return child
        finally:
            os.close(read_end)
        if child.poll() is None:
            _stop_child(child)
        return None

    def _stop_children(self) -> None:
        alive = [child for child in self._children if child is not None and child.poll() is None]
        for child in alive:
            child.terminate()
        for child in alive:
            _stop_child(child)


def _ready(read_end: int, child: subprocess.Popen[bytes], stop: threading.Event) -> bool:
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    said = b""
    while not stop.is_set() and time.monotonic() < deadline:
        readable, _, _ = select.select([read_end], [], [], 0.5)
        if readable:
            chunk = os.read(read_end, 64)
            if not chunk:
                return False  # the child ended (or closed its end) without saying it was ready
            said += chunk
            if said.endswith(READY):
                return True
        elif child.poll() is not None:
            return False
    return False


def _stop_child(child: subprocess.Popen[bytes]) -> None:
    if child.poll() is None:
        child.terminate()
    try:
        child.wait(STOP_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait(5)


def supervise(settings: Settings, host: str, port: int) -> int:
    try:
        processes = ApiProcesses(settings, host, port)
    except OSError as error:
        print(f"agentry: cannot listen on {host}:{port}: {error.strerror or error}", file=sys.stderr)
        return 1
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, processes.stop)
    code = processes.run()
    log.info("agentry stopped cleanly" if code == 0 else "agentry stopped")
    return code


def announce_ready(ready_fd: int) -> None:
    """In a child: tells the parent this process serves (its platform is started)."""
    os.write(ready_fd, READY)
    os.close(ready_fd)


def end_with_parent() -> None:
    """In a child: a parent that vanished (SIGKILL) leaves no child serving on its own."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="agentry-parent-watch", daemon=True).start()
