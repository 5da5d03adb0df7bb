"""What every multipart upload route needs of a form part."""

from __future__ import annotations

import falcon
import falcon.asgi.multipart


def part_headers(part: falcon.asgi.multipart.BodyPart) -> tuple[str | None, str | None, str]:
    """The part's name, filename and type; headers that are not text are a 400, not a 500."""
    try:
        return part.name, part.filename, part.content_type
    except (UnicodeDecodeError, ValueError):
        raise falcon.HTTPBadRequest(description="a form part's headers are not readable text") from None
