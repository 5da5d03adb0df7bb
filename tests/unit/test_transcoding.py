"""The event store's JSON transcoder against client data shaped like its own type tags."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import uuid4

import pytest
from eventsourcing.persistence import DatetimeAsISO, DecimalAsStr, JSONTranscoder, UUIDAsHex

from infra.transcoding import SafeJSONTranscoder


def test_event_state_that_looks_like_a_transcoder_tag_round_trips_unchanged() -> None:
    transcoder = SafeJSONTranscoder()
    transcoder.register(DatetimeAsISO())
    transcoder.register(UUIDAsHex())
    state = {
        "timestamp": datetime.now(UTC),
        "id": uuid4(),
        "payload": {
            "forged": {"_type_": "uuid_hex", "_data_": {"_type_": "nope", "_data_": [1]}},
            "list": [{"_type_": 1, "_data_": 2}, {"_type_": 1}],
        },
    }
    assert transcoder.decode(transcoder.encode(state)) == state
    plain = {"payload": {"a": [1, {"b": 2}]}}
    assert transcoder.decode(transcoder.encode(plain)) == plain


def _transcoder() -> SafeJSONTranscoder:
    transcoder = SafeJSONTranscoder()
    for transcoding in (DatetimeAsISO(), UUIDAsHex(), DecimalAsStr()):
        transcoder.register(transcoding)
    return transcoder


@pytest.mark.parametrize(
    "stored",
    [
        b'{"timestamp":{"_type_":"datetime_iso","_data_":"2026-01-01T00:00:00+00:00"},"payload":{"a":[1,{"b":null}]}}',
        b'{"timestamp":{"_type_":"datetime_iso","_data_":"2026-01-01T00:00:00+00:00"},'
        b'"id":{"_type_":"uuid_hex","_data_":"00000000000000000000000000000001"},"cost":{"_type_":"decimal_str","_data_":"1.50"}}',
        # a tag below the top level, client text that spells the tag key, a top-level tag
        b'{"timestamp":{"_type_":"datetime_iso","_data_":"2026-01-01T00:00:00+00:00"},"n":{"when":{"_type_":"decimal_str","_data_":"2"}}}',
        b'{"timestamp":{"_type_":"datetime_iso","_data_":"2026-01-01T00:00:00+00:00"},"text":"ends with \\"_type_"}',
        b'{"_type_":"decimal_str","_data_":"3"}',
        # what orjson refuses or reads differently: NaN, a huge integer, a lone surrogate, duplicate keys
        b'{"a":NaN,"b":123456789012345678901234567890,"c":"\\ud800","d":1,"d":2}',
        b'[1,{"_type_":"decimal_str","_data_":"4"}]',
        b'{"a":1.5e308,"b":-0.0,"c":"\\u00e9\\u2028"}',
    ],
)
def test_the_fast_decode_gives_what_the_stdlib_decoder_gives(stored: bytes) -> None:
    transcoder = _transcoder()
    expected = JSONTranscoder.decode(transcoder, stored)  # the per-object hook, on every value
    decoded = transcoder.decode(stored)
    assert repr(decoded) == repr(expected)
    assert type(decoded) is type(expected)
