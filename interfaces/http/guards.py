"""Refuses, once at the edge, text that PostgreSQL cannot hold in a ``text`` parameter.

Ids, filters and page tokens end up as query parameters of read-model lookups. PostgreSQL
text cannot contain NUL, so a NUL reaching a query is a driver error (a 500) on PostgreSQL
while SQLite answers quietly. Path and query string are checked here, so both stores answer
the same 400 (the strings inside a page token are checked where tokens are decoded,
``projections.queries.decode_token``). NUL is the only such character that can
arrive: percent-decoding turns bytes that are not UTF-8 (an encoded lone surrogate, say) into
U+FFFD, and the JSON decoder refuses an escaped lone surrogate.

JSON bodies need no such check: a NUL in a name or a message is escaped (``\\u0000``) in the
JSON the event store records and in the read models' ``json`` columns, and comes back as sent.
"""

from __future__ import annotations

import falcon
import falcon.asgi


def unstorable(text: str) -> bool:
    return "\x00" in text


class RefuseUnstorableText:
    """Falcon middleware: a 400 for a NUL in the path or a query parameter."""

    async def process_request(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        if unstorable(req.path):
            raise falcon.HTTPBadRequest(description="the path contains a NUL character")
        for name, value in req.params.items():
            values = value if isinstance(value, list) else [value]
            if unstorable(name) or any(unstorable(item) for item in values):
                raise falcon.HTTPBadRequest(
                    description=f"query parameter {name[:64]!r} contains a NUL character"
                )
