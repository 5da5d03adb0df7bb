"""A paced log follower: reads at once after a quiet spell, spaces its reads under a steady
stream of wake-ups, and is hurried past the pause by whoever waits on it."""

from __future__ import annotations

import threading
import time

from application.pacing import Pacer


def _timed_pause(pacer: Pacer, read: bool = False) -> float:
    """How long ``pause`` took, timed from before the read when ``read`` (a thread descheduled
    between the two must not make the wait look shorter than it was)."""
    started = time.monotonic()
    if read:
        pacer.reading()
    pacer.pause()
    return time.monotonic() - started


def test_a_wake_up_right_after_a_read_waits_out_the_gathering_time() -> None:
    pacer = Pacer(gather_seconds=0.3)
    assert 0.3 <= _timed_pause(pacer, read=True) < 2.0


def test_a_wake_up_after_a_quiet_spell_reads_at_once() -> None:
    pacer = Pacer(gather_seconds=0.3)
    assert _timed_pause(pacer) < 0.1  # never read yet
    pacer.reading()
    time.sleep(0.35)
    assert _timed_pause(pacer) < 0.1


def test_a_waiter_hurries_the_follower_past_its_pause_once() -> None:
    pacer = Pacer(gather_seconds=5.0)
    pacer.reading()
    threading.Timer(0.1, pacer.hurry).start()
    assert _timed_pause(pacer) < 2.0  # cut short, not five seconds
    pacer.hurry()  # before the pause: it does not wait at all
    assert _timed_pause(pacer) < 0.1

    short = Pacer(gather_seconds=0.3)
    short.hurry()
    assert _timed_pause(short) < 0.1
    # the hurry was used up: the next pause waits again
    assert _timed_pause(short, read=True) >= 0.3


def test_a_read_that_found_nothing_leaves_the_next_wake_up_unpaced() -> None:
    pacer = Pacer(gather_seconds=5.0)
    pacer.reading()
    pacer.found_nothing()  # e.g. the first read after start-up: the log was caught up already
    assert _timed_pause(pacer) < 0.1
    assert 0.3 <= _timed_pause(Pacer(gather_seconds=0.3), read=True)  # a read that found some: paced
