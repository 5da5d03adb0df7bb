"""The export file's lines and header, which streams travel, and an import's checks against a real\nstore (application.transfer, infra.event_transfer)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from uuid import uuid4

import orjson
import pytest
from eventsourcing.persistence import StoredEvent

from application.transfer import (
    FORMAT,
    FORMAT_VERSION,
    ExportSummary,
    RawEvent,
    TransferError,
    check_header,
    event_line,
    export_events,
    import_events,
    parse_event_line,
    plan_import,
    scrubbed,
    sealed_key_ids,
    travels,
    workspace_of,
)
from domain.ids import stream_id
from infra.event_store import EventsourcingEventStore
from infra.event_transfer import StoredEventLog
from tests.unit.test_event_catalogue import _store, _v1_started_state


def test_an_event_line_gives_back_the_stored_bytes_exactly() -> None:
    # Spelled as no re-encoding would spell it: spaces, key order, an escaped tag-shaped key.
    state = b'{"z": 1, "a": [1.10, "caf\xc3\xa9"], "_type_\\u0000": {"x": null}, "tenant_id": "default"}'
    event = RawEvent(uuid4(), 3, "domain.agents:Agent.Updated", state)
    line = event_line(event, 42)
    assert line.endswith(b"\n") and orjson.loads(line)["position"] == 42
    assert parse_event_line(line, 2) == event


def test_state_that_is_not_text_travels_as_base64() -> None:
    event = RawEvent(uuid4(), 1, "domain.files:File.Uploaded", b"\xff\x00binary")
    line = event_line(event, 1)
    assert "state_b64" in orjson.loads(line)
    assert parse_event_line(line, 2) == event


# Fixed, not random: the parameters name the tests, and every pytest -n process must collect the same.
STREAM = b"5d1f8e36-64c2-4a7e-9f3b-2f0d1c9a7e41"


@pytest.mark.parametrize(
    ("line", "says"),
    [
        (b"not json", "line 7: not JSON"),
        (b"[1]", "not an event object"),
        (b'{"stream_id": "nope", "version": 1, "topic": "a:B", "state": "{}"}', "not an event"),
        (b'{"stream_id": "%s", "version": 0, "topic": "a:B", "state": "{}"}' % STREAM, "positive"),
        (b'{"stream_id": "%s", "version": true, "topic": "a:B", "state": "{}"}' % STREAM, "positive"),
        (b'{"stream_id": "%s", "version": 1, "topic": "nope", "state": "{}"}' % STREAM, "topic"),
        (b'{"stream_id": "%s", "version": 1, "topic": "a:B"}' % STREAM, "not an event"),
    ],
)
def test_a_bad_line_is_refused_with_its_number(line: bytes, says: str) -> None:
    with pytest.raises(TransferError, match=says):
        parse_event_line(line, 7)


def test_the_header_names_the_format_and_its_version() -> None:
    good = {"format": FORMAT, "format_version": FORMAT_VERSION, "events": 3}
    assert check_header(good) is good
    for bad, says in (
        (None, "not an Agentry export"),
        ({"format": "other"}, "not an Agentry export"),
        ({**good, "format_version": 99}, "format version 99"),
        ({**good, "events": "3"}, "event count"),
    ):
        with pytest.raises(TransferError, match=says):
            check_header(bad)


def test_a_stream_belongs_to_the_workspace_its_first_event_names() -> None:
    assert workspace_of(b'{"tenant_id": "wrkspc_a", "name": "x"}') == "wrkspc_a"
    assert workspace_of(b'{"workspace_id": "wrkspc_b"}') == "wrkspc_b"
    assert workspace_of(b'{"name": "x"}') is None
    assert workspace_of(b"[1]") is None and workspace_of(b"garbage") is None


def test_keys_and_webhooks_stay_home() -> None:
    assert not travels("domain.api_keys:ApiKey.Issued")
    assert not travels("domain.environment_keys:EnvironmentKey.Issued")
    assert not travels("domain.webhooks:WebhookEndpoint.Created")
    assert travels("domain.agents:Agent.Created") and travels("domain.sessions:UserMessageSent")


def test_the_data_keys_a_state_needs_are_read_off_its_sealed_values() -> None:
    state = b'{"sealed_api_key": "v1.AAAAAAAAAAAAAAAA.bm9uY2VhbmRjaXBoZXI", "x": "v1.short.zz", "y": "v1.BBBBBBBBBBBB-_BB.q"}'
    assert sealed_key_ids(state) == {"AAAAAAAAAAAAAAAA", "BBBBBBBBBBBB-_BB"}
    assert sealed_key_ids(b'{"text": "no secrets"}') == set()


def test_a_newer_format_is_refused_with_the_agentry_that_wrote_it() -> None:
    newer = {"format": FORMAT, "format_version": FORMAT_VERSION + 1, "events": 0, "source": {"agentry": "9.9.9"}}
    with pytest.raises(TransferError, match=r"version 2 \(written by Agentry 9\.9\.9\) is newer.*upgrade"):
        check_header(newer)


# -- against a real store ---------------------------------------------------------------------

TOKEN = "ghp_a-token-that-must-not-leave-the-store"
CREATED = datetime(2025, 6, 1, 9, 0, 0, tzinfo=UTC)


def _log(path: Path) -> tuple[EventsourcingEventStore, StoredEventLog]:
    path.mkdir(parents=True, exist_ok=True)
    store = _store(path)
    return store, StoredEventLog(store)


def _exported(log: StoredEventLog) -> list[RawEvent]:
    lines = list(export_events(log, "default", ExportSummary()))
    return [parse_event_line(line, number) for number, line in enumerate(lines, start=2)]


def _state(**fields: object) -> bytes:
    return orjson.dumps({"timestamp": {"_type_": "datetime_iso", "_data_": CREATED.isoformat()}, **fields})


@pytest.mark.parametrize(
    ("topic", "state", "says"),
    [
        ("domain.agents:Agent.NoSuchEvent", _state(tenant_id="default"), "does not decode"),
        ("domain.agents:Agent", _state(tenant_id="default"), "does not decode"),
        ("domain.agents:Agent.Created", _state(tenant_id="default"), "lacks originator_topic, agent_id, definition"),
        ("domain.agents:Agent.Created", b"{not json", "does not decode"),
        ("json:JSONDecoder", _state(tenant_id="default"), "not an event an export carries"),
        ("domain.api_keys:ApiKey.Issued", _state(tenant_id="default"), "not an event an export carries"),
    ],
)
def test_an_event_this_store_cannot_read_is_refused_before_any_write(
    tmp_path: Path, topic: str, state: bytes, says: str
) -> None:
    store, log = _log(tmp_path)
    events = [RawEvent(uuid4(), 1, topic, state)]
    with pytest.raises(TransferError, match=says) as refused:
        plan_import(log, lambda: events, 1)
    assert "\n" not in str(refused.value)
    assert log.max_notification_id() == 0
    store.close()


def test_an_old_session_start_leaves_its_repository_token_behind(tmp_path: Path) -> None:
    resources = [
        {"type": "github_repository", "url": "https://github.com/o/r", "authorization_token": TOKEN},
        {"type": "file", "file_id": "file_1"},
    ]
    session_id = "sesn_oldtokenexport1"
    source, source_log = _log(tmp_path / "source")
    source.app.recorder.insert_events(
        [StoredEvent(stream_id(session_id), 1, "domain.sessions:Session.Started", _v1_started_state(session_id, CREATED, resources))]
    )
    assert TOKEN.encode() in source_log.stored_rows(stream_id(session_id))[0][2]  # the store keeps it
    original = source.load(stream_id(session_id))

    events = _exported(source_log)
    assert len(events) == 1 and TOKEN.encode() not in events[0].state
    assert b"https://github.com/o/r" in events[0].state

    # Imported into a fresh store: the same session.
    target, target_log = _log(tmp_path / "target")
    plan = plan_import(target_log, lambda: events, 1)
    assert import_events(target_log, events, plan) == 1
    assert target.load(stream_id(session_id)).details == original.details
    # Re-imported into the store it came from, whose stored state still has the token: the same.
    again = plan_import(source_log, lambda: events, 1)
    assert again.already_present == 1 and again.to_write == 0
    # A file written before the token was left out carries it: it is not written on import.
    older = [RawEvent(e.stream_id, e.version, e.topic, source_log.stored_rows(e.stream_id)[0][2]) for e in events]
    other, other_log = _log(tmp_path / "other")
    import_events(other_log, older, plan_import(other_log, lambda: older, 1))
    assert TOKEN.encode() not in other_log.stored_rows(stream_id(session_id))[0][2]
    for store in (source, target, other):
        store.close()


def test_scrubbing_keeps_every_other_state_byte_for_byte() -> None:
    state = b'{"details": {"resources": [{"type": "file"}]}, "note": "authorization_token"}'
    assert scrubbed("domain.sessions:Session.Started", state) is state
    assert scrubbed("domain.agents:Agent.Created", b'{"authorization_token": "x"}') == b'{"authorization_token": "x"}'
    old_update = orjson.dumps({"details": {"resources": [{"type": "github_repository", "authorization_token": TOKEN}]}})
    assert TOKEN.encode() not in scrubbed("domain.sessions:Session.Updated", old_update)
