"""/v1/models: the agents and model cards a tenant can name, in a body both SDKs read (the
``openai`` SDK's ``models.list`` / ``retrieve`` and the ``anthropic`` SDK's, paging included)."""

from __future__ import annotations

import falcon

from application.model_catalog import ModelCatalog
from interfaces.http.common import int_param, principal, run


class ModelsResource:
    """Routes: ``/v1/models`` and, by suffix, ``/{model_id:path}`` (item): a card's
    ``model_id`` may hold a slash (``org/model``), which arrives decoded."""

    def __init__(self, catalog: ModelCatalog) -> None:
        self._catalog = catalog

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        limit = int_param(req, "limit", None, 1, 2**31)
        after_id = req.get_param("after_id") or None
        before_id = req.get_param("before_id") or None
        resp.media = await run(self._catalog.list, principal(req), limit, after_id, before_id)

    async def on_get_item(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, model_id: str) -> None:
        resp.media = await run(self._catalog.retrieve, principal(req), model_id)
