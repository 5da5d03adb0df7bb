"""The blob store's production adapter: any S3-compatible object store (AWS S3, MinIO, R2,
Ceph, …), spoken to with plain HTTP and AWS Signature Version 4, path-style
(``<endpoint>/<bucket>/<prefix><sha256>``), so no cloud SDK is needed.

Objects are named by the SHA-256 of their bytes, which is also the payload hash SigV4 signs:
the store checks what it received against it, so a blob is never stored wrong."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime
from urllib.parse import quote, urlsplit

import httpx

from application.errors import Unavailable
from application.ports import BlobMissing
from infra.blob_store import KEY

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


class S3Error(Unavailable):
    """The object store answered something other than success or "no such key"."""


class S3BlobStore:
    def __init__(
        self,
        endpoint: str,
        bucket: str,
        access_key_id: str,
        secret_access_key: str,
        region: str = "us-east-1",
        prefix: str = "",
        timeout: float = 60.0,
    ) -> None:
        parts = urlsplit(endpoint)
        self._origin = f"{parts.scheme}://{parts.netloc}"
        self._host = parts.netloc
        self._base_path = parts.path.rstrip("/")
        self._bucket = bucket
        self._access_key_id = access_key_id
        self._secret = secret_access_key
        self._region = region
        self._prefix = prefix
        self._client = httpx.Client(timeout=timeout)

    def close(self) -> None:
        self._client.close()

    # -- the port ----------------------------------------------------------------------

    def put(self, data: bytes) -> str:
        key = hashlib.sha256(data).hexdigest()
        if self.exists(key):
            return key
        # httpx sends ``bytes`` only (an upload arrives as a bytearray).
        response = self._send("PUT", key, data if isinstance(data, bytes) else bytes(data), key)
        if response.status_code != 200:
            raise S3Error(f"S3 PUT answered {response.status_code}")
        return key

    def get(self, key: str) -> bytes:
        self._check(key)
        response = self._send("GET", key)
        if response.status_code == 404:
            raise BlobMissing(key)
        if response.status_code != 200:
            raise S3Error(f"S3 GET answered {response.status_code}")
        return response.content

    def exists(self, key: str) -> bool:
        if not KEY.fullmatch(key):
            return False
        response = self._send("HEAD", key)
        if response.status_code in (200, 404):
            return response.status_code == 200
        raise S3Error(f"S3 HEAD answered {response.status_code}")

    def delete(self, key: str) -> None:
        if not KEY.fullmatch(key):
            return
        response = self._send("DELETE", key)
        if response.status_code not in (200, 204, 404):
            raise S3Error(f"S3 DELETE answered {response.status_code}")

    def ensure_bucket(self) -> None:
        """Creates the bucket when it is missing (for a fresh MinIO or a test server)."""
        path = f"{self._base_path}/{quote(self._bucket)}"
        if self._request("HEAD", path, b"", EMPTY_SHA256).status_code == 200:
            return
        response = self._request("PUT", path, b"", EMPTY_SHA256)
        if response.status_code not in (200, 409):
            raise S3Error(f"S3 bucket creation answered {response.status_code}")

    # -- signing -----------------------------------------------------------------------

    @staticmethod
    def _check(key: str) -> None:
        if not KEY.fullmatch(key):
            raise BlobMissing(key)

    def _send(self, method: str, key: str, body: bytes = b"", payload_sha256: str = EMPTY_SHA256) -> httpx.Response:
        path = f"{self._base_path}/{quote(self._bucket)}/{quote(self._prefix + key)}"
        return self._request(method, path, body, payload_sha256)

    def _request(self, method: str, path: str, body: bytes, payload_sha256: str) -> httpx.Response:
        now = datetime.now(UTC)
        headers = sign(
            method, self._host, path, payload_sha256, now, self._region, self._access_key_id, self._secret
        )
        return self._client.request(method, self._origin + path, content=body, headers=headers)


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def sign(
    method: str, host: str, path: str, payload_sha256: str, now: datetime, region: str, access_key_id: str, secret: str
) -> dict[str, str]:
    """The headers of a SigV4-signed request without a query string (``path`` already
    percent-encoded, as S3 wants it: each segment once)."""
    stamp = now.strftime("%Y%m%dT%H%M%SZ")
    day = stamp[:8]
    headers = {"host": host, "x-amz-content-sha256": payload_sha256, "x-amz-date": stamp}
    signed = ";".join(sorted(headers))
    canonical = "\n".join(
        [method, path, "", *(f"{name}:{headers[name]}" for name in sorted(headers)), "", signed, payload_sha256]
    )
    scope = f"{day}/{region}/s3/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", stamp, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    key = _hmac(_hmac(_hmac(_hmac(f"AWS4{secret}".encode(), day), region), "s3"), "aws4_request")
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    headers["authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={access_key_id}/{scope}, SignedHeaders={signed}, Signature={signature}"
    )
    del headers["host"]  # httpx sends it from the URL
    return headers
