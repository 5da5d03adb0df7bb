"""Settings and small adapters of turns across processes that need no database."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from infra.pg_previews import encode_previews
from infra.pg_signals import MAX_PAYLOAD_BYTES
from infra.settings import Settings, SettingsError
from interfaces.bootstrap import build, build_worker


def test_turns_mode_is_checked() -> None:
    assert Settings().turns == "in-process"
    with pytest.raises(SettingsError, match="AGENTRY_TURNS"):
        Settings(turns="elsewhere")


def test_the_worker_and_workers_mode_need_postgresql(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="`agentry worker` needs AGENTRY_DATABASE_URL"):
        build_worker(Settings(data_dir=tmp_path))
    with pytest.raises(SettingsError, match="AGENTRY_TURNS=workers needs AGENTRY_DATABASE_URL"):
        build(Settings(data_dir=tmp_path, turns="workers"))
    assert not (tmp_path / "events.sqlite3").exists()  # refused before anything was made


def test_a_preview_too_large_for_one_notify_is_split_and_reassembles() -> None:
    text = "é" * 9000 + "end"  # two bytes a character: well over one payload
    frame = {"type": "event_delta", "event_id": "sevt_1", "delta": {"type": "content_delta", "content": {"type": "text", "text": text}, "index": 0}}
    payloads = encode_previews("origin", "default", "sesn_1", "agent.message", frame)
    assert len(payloads) > 1
    assert all(len(payload.encode()) <= MAX_PAYLOAD_BYTES for payload in payloads)
    decoded = [json.loads(payload) for payload in payloads]
    assert "".join(d["f"]["delta"]["content"]["text"] for d in decoded) == text
    assert all(d["f"]["event_id"] == "sevt_1" and d["s"] == "sesn_1" for d in decoded)


def test_a_small_preview_is_one_payload_and_an_oversized_start_is_dropped() -> None:
    start = {"type": "event_start", "event": {"type": "agent.message", "id": "sevt_2"}}
    assert len(encode_previews("o", "t", "s", "agent.message", start)) == 1
    huge = {"type": "event_start", "event": {"type": "agent.message", "id": "x" * 9000}}
    assert encode_previews("o", "t", "s", "agent.message", huge) == []
