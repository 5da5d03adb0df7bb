"""What the file service decides without storage: the name and type a file is kept under,
and the File aggregate's expiry and delete."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from application.errors import Invalid
from application.files import stored_filename, stored_mime_type
from domain.files import File, expiry

MOMENT = datetime(2026, 12, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("sent", "mime_type", "kept"),
    [
        ("report.pdf", "application/pdf", "report.pdf"),
        ("notes/2026/q4.txt", "text/plain", "q4.txt"),
        ("C:\\Users\\me\\chart.png", "image/png", "chart.png"),
        ("", "text/plain", "unnamed.txt"),
        (None, "application/json", "unnamed.json"),
        ("dir/", "image/png", "unnamed.png"),
        ("..", "application/x-unknown-kind", "unnamed"),
        ("line\nbreak.txt", "text/plain", "linebreak.txt"),
    ],
)
def test_only_the_last_path_component_is_kept(sent: str | None, mime_type: str, kept: str) -> None:
    assert stored_filename(sent, mime_type) == kept


def test_a_name_longer_than_255_characters_is_refused() -> None:
    with pytest.raises(Invalid):
        stored_filename("a" * 256, "text/plain")


def test_the_type_is_the_parts_own_or_else_the_names() -> None:
    assert stored_mime_type("image/png", "x.txt") == "image/png"
    assert stored_mime_type("application/octet-stream", "data.csv") == "text/csv"
    assert stored_mime_type(None, "noextension") == "application/octet-stream"


def test_a_file_expires_at_its_moment_and_is_deleted_once() -> None:
    file = File(
        file_id="file_abcdefgh12345678", tenant_id="t", filename="a.txt", mime_type="text/plain", size_bytes=1,
        sha256="0" * 64, downloadable=True, expires_at=expiry(MOMENT, 3600), scope=None,
    )  # fmt: skip
    assert not file.expired(MOMENT + timedelta(minutes=59))
    assert file.expired(MOMENT + timedelta(hours=1))
    assert file.delete() and not file.delete()
    assert [type(event).__name__ for event in file.collect_events()] == ["Uploaded", "Deleted"]
    assert expiry(MOMENT, None) is None


def test_a_type_that_is_not_a_media_type_is_not_kept() -> None:
    assert stored_mime_type("text/plain; charset=utf-8", "a.txt") == "text/plain; charset=utf-8"
    assert stored_mime_type("text/plain\x7f", "a.txt") == "text/plain"
    assert stored_mime_type("not a type", "a.json") == "application/json"
    assert stored_mime_type("text/é", None) == "application/octet-stream"
