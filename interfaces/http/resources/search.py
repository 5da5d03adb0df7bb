"""``GET /v1/search``: global search over what the caller's workspace holds."""

from __future__ import annotations

import falcon
import falcon.asgi

from application.global_search import GlobalSearch
from interfaces.http.common import int_param, principal, run

MAX_QUERY = 512


class SearchResource:
    def __init__(self, search: GlobalSearch) -> None:
        self._search = search

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        who = principal(req)
        query = (req.get_param("q") or "").strip()
        if not query:
            raise falcon.HTTPBadRequest(description="query parameter q is required (what to look for)")
        if len(query) > MAX_QUERY:
            raise falcon.HTTPBadRequest(description=f"query parameter q is longer than {MAX_QUERY} characters")
        limit = int_param(req, "limit", 20, 1, 100) or 20
        kinds = [kind.strip() for kind in (req.get_param("types") or "").split(",") if kind.strip()]
        unknown = [kind for kind in kinds if kind not in self._search.kinds]
        if unknown:
            raise falcon.HTTPBadRequest(
                description=f"query parameter types: unknown kind {unknown[0]!r}; one of {', '.join(self._search.kinds)}"
            )
        results = await run(self._search.search, (who.tenant_id,), query, limit, kinds)
        resp.media = {"data": results}


def add_search_routes(app: falcon.asgi.App, search: GlobalSearch) -> None:
    app.add_route("/v1/search", SearchResource(search))
