"""The model card aggregates: a handle is held by one live card at a time, and a
``*-compatible`` provider cannot be left without a base URL."""

from __future__ import annotations

from typing import Any

import pytest

from domain.errors import Taken
from domain.model_cards import MissingBaseUrl, ModelCard, ModelHandle, check_target, handle_stream_id


def new_card(**fields: Any) -> ModelCard:
    values: dict[str, Any] = {
        "model_card_id": "mcard_aaaaaaaaaaaaaaaaaaaaaaaa",
        "tenant_id": "t",
        "model_id": "fast",
        "provider": "ant",
        "model": "claude",
        "base_url": None,
        "sealed_api_key": "sealed",
        "api_key_preview": "abcd",
        "header_names": [],
        "sealed_headers": None,
        "probe": {"ok": True},
    }
    return ModelCard(**(values | fields))


def test_a_handle_is_held_by_one_card_until_released() -> None:
    handle = ModelHandle(tenant_id="t", model_id="fast", model_card_id="mcard_one")
    assert handle.claim("mcard_one") is False  # already its own: nothing to record
    with pytest.raises(Taken, match="mcard_one"):
        handle.claim("mcard_two")
    assert handle.release("mcard_two") is False  # only the holder releases it
    assert handle.release("mcard_one") is True and handle.holder is None
    assert handle.claim("mcard_two") is True and handle.holder == "mcard_two"
    assert [type(event).__name__ for event in handle.collect_events()] == ["Claimed", "Released", "Reclaimed"]


def test_a_handle_stream_is_per_tenant_and_unambiguous() -> None:
    assert handle_stream_id("t", "fast") == ModelHandle(tenant_id="t", model_id="fast", model_card_id="m").id
    assert handle_stream_id("t", "fast") != handle_stream_id("u", "fast")
    assert handle_stream_id("a/b", "c") != handle_stream_id("a", "b/c")


def test_a_compatible_provider_needs_a_base_url() -> None:
    with pytest.raises(MissingBaseUrl):
        check_target("oai-compatible", None)
    card = new_card(provider="ant-compatible", base_url="http://gateway")
    with pytest.raises(MissingBaseUrl):
        card.retarget("fast", "ant-compatible", "claude", None)
    assert card.retarget("fast", "ant", "claude", None) is True
    assert card.retarget("fast", "ant", "claude", None) is False


def test_a_deleted_card_records_its_deletion_once() -> None:
    card = new_card()
    assert card.delete() is True and card.deleted_at is not None
    assert card.delete() is False
