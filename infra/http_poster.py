"""The ``HttpPoster`` port over httpx: one short POST, no redirects followed, nothing
logged (the request carries a credential's bearer)."""

from __future__ import annotations

import httpx

from application.ports import HttpReply, HttpUnreachable

# Enough of a body to report on; a larger answer is cut (the report says so).
MAX_BODY_BYTES = 64 * 1024


class HttpxPoster:
    def post(self, url: str, headers: dict[str, str], body: bytes, timeout: float) -> HttpReply:
        try:
            with httpx.Client(timeout=timeout, follow_redirects=False, trust_env=False) as client:
                with client.stream("POST", url, headers=headers, content=body) as response:
                    content_type = response.headers.get("content-type", "")
                    if 200 <= response.status_code < 300 and "event-stream" in content_type:
                        # A streamed answer may stay open: its status is all a check needs.
                        return HttpReply(response.status_code, content_type, "")
                    raw = b""
                    for chunk in response.iter_bytes():
                        raw += chunk
                        if len(raw) > MAX_BODY_BYTES:
                            break
                    return HttpReply(
                        status_code=response.status_code,
                        content_type=content_type,
                        body=raw[:MAX_BODY_BYTES].decode("utf-8", errors="replace"),
                    )
        except (httpx.HTTPError, ValueError) as error:
            raise HttpUnreachable(type(error).__name__) from None
