"""The safety net under the turn signals: every few seconds, sessions that owe a turn and
that no live lease holds are offered to this process's dispatcher. It is how a turn left by
a dead process is taken up (once its lease expired), and how a signal lost in transit (a
dropped LISTEN connection, a message sent while the last driver was letting go) is made up."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable

log = logging.getLogger("agentry.runtime")


class TurnSweeper:
    def __init__(self, candidates: Callable[[], Iterable[str]], offer: Callable[[str], None], interval: float) -> None:
        self._candidates = candidates
        self._offer = offer
        self._interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="agentry-sweep", daemon=True)
        self._thread.start()

    def sweep(self) -> int:
        """Offers every candidate once; returns how many there were."""
        count = 0
        for session_id in self._candidates():
            self._offer(session_id)
            count += 1
        return count

    def _run(self) -> None:
        while True:
            try:
                self.sweep()
            except Exception as error:  # the database may be away for a while: try again next round
                log.warning("turn sweep failed (%s); retrying in %.1f s", type(error).__name__, self._interval)
            if self._stop.wait(self._interval):
                return

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
