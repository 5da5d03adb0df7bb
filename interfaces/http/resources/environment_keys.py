"""/v1/environments/{environment_id}/keys: issue (the key shown once), list, revoke."""

from __future__ import annotations

import falcon

from application.environment_keys import EnvironmentKeyService
from interfaces.http.common import ReadYourWrites, list_query, parse, principal, run
from interfaces.http.schemas import EnvironmentKeyCreate
from projections.queries import ReadModels


class EnvironmentKeysResource:
    """Routes: ``/v1/environments/{environment_id}/keys`` and, by suffix, ``/{key_id}`` (item)."""

    def __init__(self, keys: EnvironmentKeyService, lists: ReadModels, written: ReadYourWrites) -> None:
        self._keys = keys
        self._lists = lists
        self._written = written

    async def on_post(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, environment_id: str) -> None:
        body = await parse(req, EnvironmentKeyCreate, optional=True)
        written, plaintext = await run(self._keys.create, principal(req), environment_id, body.name)
        await self._written.answer(resp, written)
        # Only this response carries the key: it is added here, after everything stored.
        resp.media = {**written.view, "key": plaintext}

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, environment_id: str) -> None:
        who = principal(req)
        query = list_query(req)
        await run(self._keys.check_environment, who, environment_id)
        page = await run(self._lists.environment_keys, who.tenant_id, environment_id, query)
        resp.media = page.envelope()

    async def on_delete_item(
        self, req: falcon.asgi.Request, resp: falcon.asgi.Response, environment_id: str, key_id: str
    ) -> None:
        await self._written.answer(resp, await run(self._keys.revoke, principal(req), environment_id, key_id))
