"""/v1/model_cards: create, list (``provider`` filter), retrieve, update, delete."""

from __future__ import annotations

import falcon

from application.model_cards import ModelCardService
from application.ports import PROVIDER_KINDS
from interfaces.http.common import ReadYourWrites, list_query, optional_choice_param, parse, principal, run
from interfaces.http.schemas import ModelCardCreate, ModelCardUpdate
from projections.queries import ReadModels


class ModelCardsResource:
    """Routes: ``/v1/model_cards`` and, by suffix, ``/{model_card_id}`` (item)."""

    def __init__(self, model_cards: ModelCardService, lists: ReadModels, written: ReadYourWrites) -> None:
        self._model_cards = model_cards
        self._lists = lists
        self._written = written

    async def on_post(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        body = await parse(req, ModelCardCreate)
        await self._written.answer(resp, await run(self._model_cards.create, principal(req), body.given()))

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        provider = optional_choice_param(req, "provider", PROVIDER_KINDS)
        page = await run(self._lists.model_cards, principal(req).tenant_id, list_query(req), provider)
        resp.media = page.envelope()

    async def on_get_item(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, model_card_id: str) -> None:
        resp.media = await run(self._model_cards.retrieve, principal(req), model_card_id)

    async def on_post_item(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, model_card_id: str) -> None:
        body = await parse(req, ModelCardUpdate)
        written = await run(self._model_cards.update, principal(req), model_card_id, body.given())
        await self._written.answer(resp, written)

    async def on_delete_item(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, model_card_id: str) -> None:
        await self._written.answer(resp, await run(self._model_cards.delete, principal(req), model_card_id))
