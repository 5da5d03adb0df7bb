"""The export file's lines and header, and which streams travel (application.transfer)."""

from __future__ import annotations

from uuid import uuid4

import orjson
import pytest

from application.transfer import (
    FORMAT,
    FORMAT_VERSION,
    RawEvent,
    TransferError,
    check_header,
    event_line,
    parse_event_line,
    sealed_key_ids,
    travels,
    workspace_of,
)


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


@pytest.mark.parametrize(
    ("line", "says"),
    [
        (b"not json", "line 7: not JSON"),
        (b"[1]", "not an event object"),
        (b'{"stream_id": "nope", "version": 1, "topic": "a:B", "state": "{}"}', "not an event"),
        (b'{"stream_id": "%s", "version": 0, "topic": "a:B", "state": "{}"}' % str(uuid4()).encode(), "positive"),
        (b'{"stream_id": "%s", "version": true, "topic": "a:B", "state": "{}"}' % str(uuid4()).encode(), "positive"),
        (b'{"stream_id": "%s", "version": 1, "topic": "nope", "state": "{}"}' % str(uuid4()).encode(), "topic"),
        (b'{"stream_id": "%s", "version": 1, "topic": "a:B"}' % str(uuid4()).encode(), "not an event"),
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
