"""The S3-compatible blob store against a real S3 protocol server on a local port (moto's
server: real HTTP, path-style buckets, S3's XML answers), and the whole file API on top of it.

moto does not verify SigV4 signatures, so the signing itself is checked against botocore's
signer (``test_the_signature_is_the_one_botocore_computes``)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime

import anthropic
import pytest

from application.ports import BlobMissing
from infra.s3_blob_store import S3BlobStore, sign
from tests.support.postgres import free_port
from tests.support.server import running_server

moto_server = pytest.importorskip("moto.server")
BUCKET = "agentry-blobs"


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    port = free_port()
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def store(s3_endpoint: str) -> Iterator[S3BlobStore]:
    blobs = S3BlobStore(s3_endpoint, BUCKET, "agentry-test", "agentry-test-secret", prefix="files/")
    blobs.ensure_bucket()
    yield blobs
    blobs.close()


def test_put_get_exists_delete(store: S3BlobStore) -> None:
    data = b"\x00bytes kept in S3\xff" * 1000
    key = store.put(data)
    assert key == hashlib.sha256(data).hexdigest()
    assert store.exists(key) and store.get(key) == data
    assert store.put(data) == key  # idempotent
    store.delete(key)
    store.delete(key)  # idempotent
    assert not store.exists(key)
    with pytest.raises(BlobMissing):
        store.get(key)
    with pytest.raises(BlobMissing):
        store.get("../not-a-key")
    assert not store.exists("not-a-key")


def test_the_file_api_on_s3(s3_endpoint: str, tmp_path) -> None:  # noqa: ANN001
    settings = {
        "blob_store": "s3", "s3_endpoint": s3_endpoint, "s3_bucket": BUCKET, "s3_prefix": "e2e/",
        "s3_access_key_id": "agentry-test", "s3_secret_access_key": "agentry-test-secret",
    }  # fmt: skip
    with running_server(tmp_path / "data", **settings) as server:
        client = anthropic.Anthropic(base_url=server.base_url, api_key=server.api_key, max_retries=0, timeout=20)
        uploaded = client.beta.files.upload(file=("s3.txt", b"stored in S3", "text/plain"))
        assert client.beta.files.download(uploaded.id).read() == b"stored in S3"
        assert not (tmp_path / "data" / "blobs").exists() or not any((tmp_path / "data" / "blobs").rglob("*"))
        client.beta.files.delete(uploaded.id)
        blobs = S3BlobStore(s3_endpoint, BUCKET, "agentry-test", "agentry-test-secret", prefix="e2e/files/")
        assert not blobs.exists(hashlib.sha256(b"stored in S3").hexdigest())


def test_the_signature_is_the_one_botocore_computes() -> None:
    """botocore's own SigV4 signer (AWS's reference implementation in Python) signs the same
    request to the same signature."""
    auth_module = pytest.importorskip("botocore.auth")
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    moment = datetime(2013, 5, 24, 1, 2, 3, tzinfo=UTC)
    payload = hashlib.sha256(b"abc").hexdigest()
    path = f"/bucket/files/{payload}"
    ours = sign("PUT", "127.0.0.1:9000", path, payload, moment, "eu-west-3", "AKID", "SECRET")
    request = AWSRequest(
        method="PUT", url=f"http://127.0.0.1:9000{path}", data=b"abc",
        headers={"x-amz-content-sha256": payload, "x-amz-date": ours["x-amz-date"]},
    )  # fmt: skip
    request.context["timestamp"] = ours["x-amz-date"]
    signer = auth_module.S3SigV4Auth(Credentials("AKID", "SECRET"), "s3", "eu-west-3")
    expected = signer.signature(signer.string_to_sign(request, signer.canonical_request(request)), request)
    assert ours["authorization"] == (
        "AWS4-HMAC-SHA256 Credential=AKID/20130524/eu-west-3/s3/aws4_request, "
        f"SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature={expected}"
    )
