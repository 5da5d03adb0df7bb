"""The Inbox: a reader's read marks, recorded once each, and kept only above the position up
to which everything is read."""

from __future__ import annotations

from domain.notifications import Inbox, inbox_stream_id


def _inbox() -> Inbox:
    return Inbox(tenant_id="t1", reader="user:user_bo")


def test_an_inbox_stream_is_one_per_workspace_and_reader() -> None:
    assert _inbox().id == inbox_stream_id("t1", "user:user_bo")
    assert len({inbox_stream_id("t1", "a"), inbox_stream_id("t2", "a"), inbox_stream_id("t1", "b")}) == 3
    # The pair is kept apart unambiguously, whatever the ids hold.
    assert inbox_stream_id('t1", "a', "b") != inbox_stream_id("t1", 'a", "b')


def test_marks_are_recorded_once_and_only_for_what_is_unread() -> None:
    inbox = _inbox()
    assert inbox.mark_read({"ntf_a": 5, "ntf_b": 7}) is True
    assert inbox.mark_read({"ntf_a": 5}) is False, "already read"
    assert inbox.mark_read({"ntf_a": 5, "ntf_c": 9}) is True
    recorded = [event for event in inbox.collect_events() if isinstance(event, Inbox.NotificationsRead)]
    assert [event.notifications for event in recorded] == [{"ntf_a": 5, "ntf_b": 7}, {"ntf_c": 9}]


def test_all_read_covers_what_lies_at_or_below_it_and_drops_those_marks() -> None:
    inbox = _inbox()
    inbox.mark_read({"ntf_a": 5, "ntf_c": 9})
    assert inbox.mark_all_read(7) is True
    assert inbox.read == {"ntf_c": 9} and inbox.up_to == 7
    assert inbox.is_read("ntf_unmarked", 6) and not inbox.is_read("ntf_unmarked", 8)
    assert inbox.mark_read({"ntf_b": 3}) is False, "below the watermark: read already"
    assert inbox.mark_all_read(7) is False and inbox.mark_all_read(2) is False, "never backwards"
    assert inbox.mark_all_read(9) is True and inbox.read == {}
