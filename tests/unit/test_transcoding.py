"""The event store's JSON transcoder against client data shaped like its own type tags."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import uuid4

from eventsourcing.persistence import DatetimeAsISO, UUIDAsHex

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
