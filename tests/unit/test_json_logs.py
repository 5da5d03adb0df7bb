"""Log lines: JSON objects off a terminal, readable lines on one, structured fields in both."""

from __future__ import annotations

import io
import logging
import os
from collections.abc import Iterator

import orjson
import pytest

from infra.settings import Settings, SettingsError
from interfaces.logs import JsonFormatter, TextFormatter, configure_logging, wants_json


@pytest.fixture
def restored_root() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)


def record(message: str = "GET %s %d", *args: object, fields: dict[str, object] | None = None) -> logging.LogRecord:
    made = logging.LogRecord("agentry.access", logging.INFO, __file__, 1, message, args or ("/v1/agents", 200), None)
    if fields is not None:
        made.fields = fields
    return made


def test_a_json_line_holds_the_message_and_the_fields_at_the_top_level() -> None:
    line = JsonFormatter().format(record(fields={"route": "/v1/agents", "status": 200, "request_id": "req_1", "message": "x"}))
    entry = orjson.loads(line)
    assert entry["message"] == "GET /v1/agents 200"
    assert (entry["level"], entry["logger"], entry["route"], entry["status"], entry["request_id"]) == (
        "info", "agentry.access", "/v1/agents", 200, "req_1",
    )  # fmt: skip
    assert entry["field_message"] == "x"  # a field never overwrites the record's own keys
    assert entry["time"].endswith("Z") and entry["pid"] == os.getpid()


def test_an_exception_stays_on_its_one_line() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        failed = logging.LogRecord("agentry", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    line = JsonFormatter().format(failed)
    assert "\n" not in line
    assert "ValueError: boom" in orjson.loads(line)["exception"]


def test_a_text_line_appends_the_fields() -> None:
    line = TextFormatter().format(record(fields={"route": "/v1/agents", "status": 200}))
    assert line.endswith("agentry.access: GET /v1/agents 200  route=/v1/agents status=200")


def test_json_unless_the_stream_is_a_terminal_or_the_setting_says_otherwise() -> None:
    assert wants_json("auto", io.StringIO())
    leader, follower = os.openpty()
    try:
        with open(follower, "w", closefd=False) as terminal:
            assert not wants_json("auto", terminal)
            assert wants_json("json", terminal)
        assert not wants_json("text", io.StringIO())
    finally:
        os.close(leader)
        os.close(follower)


def test_configure_logging_sends_every_logger_through_one_formatter(restored_root: None) -> None:
    stream = io.StringIO()
    configure_logging("info", "auto", stream=stream)
    logging.getLogger("agentry.projections").info("batch", extra={"fields": {"step": "projection_batch", "events": 3}})
    logging.getLogger("uvicorn.error").info("Started server process")
    logging.getLogger("agentry").debug("not at info")
    entries = [orjson.loads(line) for line in stream.getvalue().splitlines()]
    assert [(e["logger"], e.get("step")) for e in entries] == [("agentry.projections", "projection_batch"), ("uvicorn.error", None)]


def test_the_log_format_setting_is_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENTRY_LOG_FORMAT", "JSON")
    assert Settings.from_env().log_format == "json"
    monkeypatch.setenv("AGENTRY_LOG_FORMAT", "xml")
    with pytest.raises(SettingsError, match="AGENTRY_LOG_FORMAT"):
        Settings.from_env()
    monkeypatch.setenv("AGENTRY_LOG_FORMAT", "text")
    monkeypatch.setenv("AGENTRY_METRICS_REQUIRE_KEY", "maybe")
    with pytest.raises(SettingsError, match="AGENTRY_METRICS_REQUIRE_KEY"):
        Settings.from_env()


def test_model_names_get_at_most_a_bounded_number_of_series() -> None:
    from prometheus_client.parser import text_string_to_metric_families

    from infra.metrics import MAX_MODEL_LABELS, PrometheusTelemetry

    telemetry = PrometheusTelemetry()
    for n in range(MAX_MODEL_LABELS + 40):
        telemetry.usage(f"model-{n}", 10, 1, 0)
    telemetry.usage("x" * 300, 10, 1, 0)
    data, _ = telemetry.exposition()
    models = {
        sample.labels["model"]
        for family in text_string_to_metric_families(data.decode())
        for sample in family.samples
        if sample.name == "agentry_model_tokens_total"
    }
    assert len(models) == MAX_MODEL_LABELS + 1 and "other" in models and "model-0" in models
    other = [
        sample.value
        for family in text_string_to_metric_families(data.decode())
        for sample in family.samples
        if sample.name == "agentry_model_tokens_total" and sample.labels == {"model": "other", "direction": "input"}
    ]
    assert other == [10 * 41]  # the 40 later names and the over-long one, still counted
