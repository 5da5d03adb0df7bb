"""Progress of long commands on stderr: a bar with rate and ETA at a terminal, an occasional
plain line otherwise (a log file or CI keeps a trace without a carriage-return mess), nothing
with ``--quiet``. Standard output stays for results, so ``--json`` and pipes are untouched."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

BAR_WIDTH = 28
# A terminal is redrawn at most this often; a plain stream gets a line at most this often.
REDRAW_SECONDS = 0.1
LINE_SECONDS = 10.0


def format_count(value: float) -> str:
    """1234 → ``1.2k``, 5_600_000 → ``5.6M``; below a thousand as is."""
    for limit, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= limit:
            return f"{value / limit:.1f}{suffix}"
    return f"{value:.0f}"


def format_duration(seconds: float | None) -> str:
    """``0:07``, ``12:05``, ``1:02:03``; ``?`` when unknown."""
    if seconds is None or seconds != seconds or seconds < 0 or seconds == float("inf"):
        return "?"
    whole = int(round(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def rate_and_eta(done: int, total: int | None, elapsed: float) -> tuple[float | None, float | None]:
    """Units per second over the whole run so far, and the seconds left at that rate."""
    if elapsed <= 0 or done <= 0:
        return None, None
    rate = done / elapsed
    if total is None:
        return rate, None
    return rate, max(total - done, 0) / rate


def format_bar(label: str, done: int, total: int | None, elapsed: float, unit: str = "events", width: int = BAR_WIDTH) -> str:
    """``label [#######.......]  42% 4.2k/10.0k events  1.3k/s  ETA 0:04``."""
    rate, eta = rate_and_eta(done, total, elapsed)
    speed = f"{format_count(rate)}/s" if rate is not None else "–/s"
    if total:
        fraction = min(max(done / total, 0.0), 1.0)
        filled = int(fraction * width)
        bar = "#" * filled + "." * (width - filled)
        left = "done" if done >= total else f"ETA {format_duration(eta)}"
        return f"{label} [{bar}] {fraction * 100:3.0f}% {format_count(done)}/{format_count(total)} {unit}  {speed}  {left}"
    return f"{label} {format_count(done)} {unit}  {speed}  {format_duration(elapsed)}"


def format_line(label: str, done: int, total: int | None, elapsed: float, unit: str = "events") -> str:
    """The plain-stream form: one self-contained line."""
    rate, eta = rate_and_eta(done, total, elapsed)
    parts = [f"{label}: {done}" + (f" of {total}" if total else "") + f" {unit}"]
    if rate is not None:
        parts.append(f"{rate:.0f}/s")
    if total and done < total:
        parts.append(f"about {format_duration(eta)} left")
    return ", ".join(parts)


class Progress:
    """``update(done)`` with an absolute count, as often as wanted; ``finish()`` once."""

    def __init__(
        self,
        label: str,
        total: int | None,
        *,
        stream: TextIO,
        mode: str,
        unit: str = "events",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if mode not in ("bar", "lines", "off"):
            raise ValueError(f"unknown progress mode {mode!r}")
        self.label = label
        self.total = total
        self.unit = unit
        self.mode = mode
        self._stream = stream
        self._clock = clock
        self._started = clock()
        self._shown_at = self._started
        self._done = 0
        self._drawn = False

    def update(self, done: int) -> None:
        self._done = done
        if self.mode == "off":
            return
        now = self._clock()
        every = REDRAW_SECONDS if self.mode == "bar" else LINE_SECONDS
        if now - self._shown_at < every:
            return
        self._shown_at = now
        self._show(now)

    def _show(self, now: float) -> None:
        elapsed = now - self._started
        if self.mode == "bar":
            text = format_bar(self.label, self._done, self.total, elapsed, self.unit)
            # Clears what a longer earlier line left behind.
            self._stream.write("\r" + text + "\x1b[K")
            self._drawn = True
        else:
            self._stream.write(format_line(self.label, self._done, self.total, elapsed, self.unit) + "\n")
        self._stream.flush()

    def finish(self, complete: bool = True) -> None:
        """Ends the bar's line; ``complete=False`` for work that stopped short (shown as is)."""
        if self.mode == "bar":
            if complete and self.total is not None:
                self._done = max(self._done, self.total)
            self._show(self._clock())
            self._stream.write("\n")
            self._stream.flush()


def progress(label: str, total: int | None, *, quiet: bool = False, unit: str = "events", stream: TextIO | None = None) -> Progress:
    """A bar when ``stream`` (stderr) is a terminal, occasional lines when not, nothing when
    ``quiet``."""
    stream = stream or sys.stderr
    if quiet:
        mode = "off"
    elif stream.isatty():
        mode = "bar"
    else:
        mode = "lines"
    return Progress(label, total, stream=stream, mode=mode, unit=unit)
