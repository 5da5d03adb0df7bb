"""The progress display of long commands: its numbers, its bar, and where it writes."""

from __future__ import annotations

import io

from interfaces.cli.progress import (
    LINE_SECONDS,
    Progress,
    format_bar,
    format_count,
    format_duration,
    format_line,
    progress,
    rate_and_eta,
)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_counts_and_durations_read_short() -> None:
    assert [format_count(n) for n in (0, 999, 1000, 1234, 56_000, 5_600_000, 2_000_000_000)] == [
        "0", "999", "1.0k", "1.2k", "56.0k", "5.6M", "2.0G"
    ]  # fmt: skip
    assert [format_duration(s) for s in (0, 7.4, 65, 725, 3723)] == ["0:00", "0:07", "1:05", "12:05", "1:02:03"]
    assert format_duration(None) == format_duration(float("inf")) == format_duration(-1) == "?"


def test_rate_and_eta_are_the_average_so_far() -> None:
    assert rate_and_eta(0, 100, 5.0) == (None, None)
    assert rate_and_eta(25, 100, 5.0) == (5.0, 15.0)
    assert rate_and_eta(25, None, 5.0) == (5.0, None)
    assert rate_and_eta(150, 100, 5.0) == (30.0, 0.0)


def test_the_bar_shows_share_counts_rate_and_eta() -> None:
    line = format_bar("import", 2500, 10_000, 2.0, width=10)
    assert line == "import [##........]  25% 2.5k/10.0k events  1.2k/s  ETA 0:06"
    assert format_bar("import", 10_000, 10_000, 4.0, width=10).endswith("2.5k/s  done")
    assert format_bar("export", 0, 10, 0.0, width=4) == "export [....]   0% 0/10 events  –/s  ETA ?"
    assert format_bar("scan", 3000, None, 3.0) == "scan 3.0k events  1.0k/s  0:03"


def test_a_plain_line_says_the_same_in_words() -> None:
    assert format_line("rebuild", 500, 2000, 10.0) == "rebuild: 500 of 2000 events, 50/s, about 0:30 left"
    assert format_line("rebuild", 2000, 2000, 10.0) == "rebuild: 2000 of 2000 events, 200/s"


def test_at_a_terminal_the_bar_is_redrawn_in_place_and_ends_with_a_newline() -> None:
    clock, out = Clock(), Terminal()
    bar = Progress("export", 100, stream=out, mode="bar", clock=clock)
    bar.update(10)  # too soon after the start to draw
    assert out.getvalue() == ""
    clock.now += 1
    bar.update(50)
    clock.now += 1
    bar.finish()
    drawn = out.getvalue()
    assert drawn.startswith("\rexport [") and drawn.count("\r") == 2 and drawn.endswith("done\x1b[K\n")
    assert " 50% 50/100 events" in drawn and "100% 100/100 events" in drawn


def test_elsewhere_an_occasional_line_and_quiet_means_nothing() -> None:
    clock, out = Clock(), io.StringIO()
    lines = Progress("import", 1000, stream=out, mode="lines", clock=clock)
    for done in range(0, 1000, 10):
        clock.now += 0.5
        lines.update(done)
    lines.finish()
    written = out.getvalue().splitlines()
    assert len(written) == 100 * 0.5 / LINE_SECONDS  # one per LINE_SECONDS of the 50 s
    assert all(line.startswith("import: ") and "\r" not in line for line in written)

    assert progress("x", 10, stream=Terminal()).mode == "bar"
    assert progress("x", 10, stream=io.StringIO()).mode == "lines"
    quiet = io.StringIO()
    silent = progress("x", 10, quiet=True, stream=quiet)
    silent.update(5)
    silent.finish()
    assert silent.mode == "off" and quiet.getvalue() == ""


def test_work_that_stopped_short_is_shown_where_it_stopped() -> None:
    clock, out = Clock(), Terminal()
    bar = Progress("import", 100, stream=out, mode="bar", clock=clock)
    clock.now += 1
    bar.update(40)
    bar.finish(complete=False)
    assert out.getvalue().count(" 40% 40/100 events") == 2 and "100%" not in out.getvalue()
