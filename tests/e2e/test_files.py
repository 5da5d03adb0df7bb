"""Files through the official SDK (``client.beta.files``) on a real server, SQLite and
PostgreSQL: upload (bytes and a named tuple), metadata, download, list (paged, by ids, by
scope), delete; shared bytes kept while another file names them; the size cap's 413, bad
multipart's 400; expiry; sessions mounting only files their caller has."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import anthropic
import httpx
import pytest

from application.api_keys import generate_key
from application.files import FileExpired, FileService
from application.tenancy import Principal
from domain.ids import stream_id
from tests.support.server import RunningServer

NO_BETA = {"anthropic-beta": ""}


def caller(server: RunningServer) -> Principal:
    return server.platform.services.api_keys.authenticate(server.api_key)


def assert_refused(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["type"] == "error" and body["error"]["message"], body
    return body


def test_upload_retrieve_download_list_and_delete(client: anthropic.Anthropic, http: httpx.Client) -> None:
    files = client.beta.files
    report = files.upload(file=("notes/2026/report.txt", b"quarterly numbers\n", "text/plain"))
    assert report.id.startswith("file_") and report.type == "file"
    assert report.filename == "report.txt" and report.mime_type == "text/plain"
    assert report.size_bytes == len(b"quarterly numbers\n") and report.downloadable is True
    assert report.expires_at is None and report.scope is None
    raw = files.upload(file=b"\x00\x01binary\xff")
    assert raw.size_bytes == 9 and raw.filename

    assert files.retrieve_metadata(report.id) == report
    assert files.download(report.id).read() == b"quarterly numbers\n"
    assert files.download(raw.id).read() == b"\x00\x01binary\xff"
    # No beta header is needed: plain HTTP without one works the same.
    plain = http.get(f"/v1/files/{report.id}/content")
    assert plain.status_code == 200 and plain.content == b"quarterly numbers\n"
    assert plain.headers["content-type"].startswith("text/plain")

    third = files.upload(file=("c.json", b'{"a": 1}', "application/json"))
    first_page = files.list(limit=2)
    assert [f.id for f in first_page.data] == [third.id, raw.id] and first_page.next_page
    assert [f.id for f in files.list(limit=2)] == [third.id, raw.id, report.id]  # auto-paging
    chosen = files.list(ids=[report.id, third.id, "file_doesnotexist00000000"])
    assert {f.id for f in chosen.data} == {report.id, third.id} and chosen.next_page is None

    deleted = files.delete(raw.id)
    assert deleted.id == raw.id and deleted.type == "file_deleted"
    with pytest.raises(anthropic.NotFoundError):
        files.retrieve_metadata(raw.id)
    with pytest.raises(anthropic.NotFoundError):
        files.download(raw.id)
    with pytest.raises(anthropic.NotFoundError):
        files.delete(raw.id)
    assert raw.id not in {f.id for f in files.list(limit=100)}


def test_a_blob_shared_by_two_files_outlives_the_first_delete(client: anthropic.Anthropic, server: RunningServer) -> None:
    files = client.beta.files
    one = files.upload(file=("one.txt", b"same bytes", "text/plain"))
    two = files.upload(file=("two.txt", b"same bytes", "text/plain"))
    blobs = server.platform.services.files._blobs
    key = server.platform.store.load(stream_id(one.id)).sha256
    files.delete(one.id)
    assert files.download(two.id).read() == b"same bytes" and blobs.exists(key)
    files.delete(two.id)
    assert not blobs.exists(key)


def test_filenames_types_and_expiry(client: anthropic.Anthropic, http: httpx.Client, server: RunningServer) -> None:
    files = client.beta.files
    unnamed = http.post("/v1/files", files={"file": ("", b"hello", "text/plain")})
    assert unnamed.status_code == 200, unnamed.text
    assert unnamed.json()["filename"] == "unnamed.txt"
    windows = files.upload(file=("C:\\Users\\me\\chart.png", b"\x89PNG", "image/png"))
    assert windows.filename == "chart.png" and windows.mime_type == "image/png"
    guessed = http.post("/v1/files", files={"file": ("data.csv", b"a,b\n", "application/octet-stream")})
    assert guessed.json()["mime_type"] == "text/csv"

    soon = files.upload(file=("soon.txt", b"short-lived", "text/plain"), expires_in_seconds=3600)
    assert soon.expires_at is not None
    assert timedelta(minutes=59) < soon.expires_at - soon.created_at <= timedelta(hours=1, seconds=5)
    # Two hours on, the same store and blobs answer 404 file_expired for its bytes.
    later = FileService(
        server.platform.store, server.platform.services.files._blobs, server.platform.services.file_lists,
        now=lambda: datetime.now(UTC) + timedelta(hours=2),
    )  # fmt: skip
    with pytest.raises(FileExpired):
        later.download(caller(server), soon.id)
    assert files.download(soon.id).read() == b"short-lived"  # still within its hour

    for bad in ("59", "7776001", "soon"):
        assert_refused(http.post("/v1/files", files={"file": ("x.txt", b"x")}, data={"expires_in_seconds": bad}), 400)


def test_expired_download_is_a_404_with_its_error_code(server: RunningServer, http: httpx.Client) -> None:
    """Through HTTP: a file whose expiry has passed (written with a clock in the past)."""
    past = FileService(
        server.platform.store, server.platform.services.files._blobs, server.platform.services.file_lists,
        now=lambda: datetime.now(UTC) - timedelta(hours=2),
    )  # fmt: skip
    written = past.upload(caller(server), b"old", "old.txt", "text/plain", expires_in_seconds=3600)
    body = assert_refused(http.get(f"/v1/files/{written.view['id']}/content"), 404)
    assert body["error"]["details"]["error_code"] == "file_expired"
    assert http.get(f"/v1/files/{written.view['id']}").status_code == 200  # metadata stays


def test_scope_filter(server: RunningServer, client: anthropic.Anthropic) -> None:
    service = server.platform.services.files
    scoped = service.upload(caller(server), b"out", "out.txt", "text/plain", scope={"type": "session", "id": "sesn_abcdefgh12345678"})
    server.platform.services.wait_for_projections(scoped.position, 5)
    client.beta.files.upload(file=("loose.txt", b"in", "text/plain"))
    listed = client.beta.files.list(scope_id="sesn_abcdefgh12345678")
    assert [f.id for f in listed.data] == [scoped.view["id"]]
    assert listed.data[0].scope is not None and listed.data[0].scope.id == "sesn_abcdefgh12345678"
    # The list is a projection: rebuilt from the log, it is the same list.
    before = [f.model_dump() for f in client.beta.files.list(limit=100)]
    server.platform.projections.rebuild("files")
    assert [f.model_dump() for f in client.beta.files.list(limit=100)] == before


@pytest.mark.server_settings(file_max_bytes=1024)
def test_the_size_cap_and_bad_multipart(client: anthropic.Anthropic, http: httpx.Client) -> None:
    assert client.beta.files.upload(file=("fits.bin", b"x" * 1024)).size_bytes == 1024
    with pytest.raises(anthropic.APIStatusError) as refused:
        client.beta.files.upload(file=("big.bin", b"x" * 1025))
    assert refused.value.status_code == 413
    body = assert_refused(http.post("/v1/files", files={"file": ("big.bin", b"x" * 200_000)}), 413)
    assert "larger than" in body["error"]["message"]
    # Malformed multipart, no file part, not multipart at all.
    broken = http.post(
        "/v1/files", content=b"--zz\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\nunterminated",
        headers={"content-type": "multipart/form-data; boundary=zz"},
    )  # fmt: skip
    assert_refused(broken, 400)
    for headers in (b"Content-Type: text/\xc3\xa9", b"Content-Type: text/\xff"):
        unreadable = http.post(
            "/v1/files",
            content=b"--zz\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\n" + headers
            + b"\r\n\r\nbytes\r\n--zz--\r\n",
            headers={"content-type": "multipart/form-data; boundary=zz"},
        )  # fmt: skip
        assert unreadable.status_code in (200, 400), unreadable.text
        if unreadable.status_code == 200:
            assert unreadable.json()["mime_type"] == "text/plain"
    odd_name = http.post(
        "/v1/files",
        content=b"--zz\r\nContent-Disposition: form-data; name=\"file\"; filename=\"\xff\xfe.txt\"\r\n\r\nx\r\n--zz--\r\n",
        headers={"content-type": "multipart/form-data; boundary=zz"},
    )  # fmt: skip
    assert odd_name.status_code in (200, 400), odd_name.text
    assert_refused(http.post("/v1/files", data={"other": "x"}, files={"note": ("n.txt", b"n")}), 400)
    assert_refused(http.post("/v1/files", json={"file": "x"}), 415)
    assert_refused(http.get("/v1/files", params={"page": "garbage"}), 400)
    assert_refused(http.get("/v1/files", params=[("ids[]", f"file_{n:012d}") for n in range(101)]), 400)


def test_sessions_mount_only_their_callers_files(client: anthropic.Anthropic, server: RunningServer) -> None:
    mine = client.beta.files.upload(file=("mine.txt", b"mine", "text/plain"))
    key = generate_key()
    server.platform.services.api_keys.issue(key, name="other", tenant_id="other-tenant")
    with anthropic.Anthropic(base_url=server.base_url, api_key=key, max_retries=0, timeout=20) as stranger:
        theirs = stranger.beta.files.upload(file=("theirs.txt", b"theirs", "text/plain"))
        with pytest.raises(anthropic.NotFoundError):
            stranger.beta.files.retrieve_metadata(mine.id)
        assert mine.id not in {f.id for f in stranger.beta.files.list(ids=[mine.id, theirs.id]).data}
    agent = client.beta.agents.create(name="mounter", model="claude-opus-4-7")
    environment = client.beta.environments.create(name="mounts")
    session = client.beta.sessions.create(
        agent=agent.id, environment_id=environment.id, resources=[{"type": "file", "file_id": mine.id}]
    )
    for missing in (theirs.id, "file_doesnotexist00000000"):
        with pytest.raises(anthropic.NotFoundError):
            client.beta.sessions.create(
                agent=agent.id, environment_id=environment.id, resources=[{"type": "file", "file_id": missing}]
            )
        with pytest.raises(anthropic.NotFoundError):
            client.beta.sessions.resources.add(session.id, type="file", file_id=missing)
    added = client.beta.sessions.resources.add(session.id, type="file", file_id=mine.id, mount_path="/data/mine.txt")
    assert added.file_id == mine.id
