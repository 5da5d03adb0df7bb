"""/v1/vaults and /v1/vaults/{vault_id}/credentials, as ``client.beta.vaults`` and
``client.beta.vaults.credentials`` call them."""

from __future__ import annotations

from dataclasses import replace

import falcon

from application.vaults import VaultService
from interfaces.http.common import ReadYourWrites, list_query, parse, principal, run
from interfaces.http.schemas import CredentialCreate, CredentialUpdate, VaultCreate, VaultUpdate
from projections.queries import ListQuery, ReadModels

# The SDK documents 100 as the largest page of vaults and of credentials.
MOST_PER_PAGE = 100


def _list_query(req: falcon.asgi.Request) -> ListQuery:
    query = list_query(req)
    return replace(query, limit=min(query.limit, MOST_PER_PAGE))


class VaultsResource:
    """Routes: ``/v1/vaults`` and, by suffix, ``/{vault_id}`` (item), ``/archive``."""

    def __init__(self, vaults: VaultService, lists: ReadModels, written: ReadYourWrites) -> None:
        self._vaults = vaults
        self._lists = lists
        self._written = written

    async def on_post(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        body = await parse(req, VaultCreate)
        await self._written.answer(resp, await run(self._vaults.create, principal(req), body.given()))

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        query = _list_query(req)
        page = await run(self._lists.vaults, principal(req).tenant_id, query)
        resp.media = page.envelope()

    async def on_get_item(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, vault_id: str) -> None:
        resp.media = await run(self._vaults.retrieve, principal(req), vault_id)

    async def on_post_item(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, vault_id: str) -> None:
        body = await parse(req, VaultUpdate, optional=True)
        await self._written.answer(resp, await run(self._vaults.update, principal(req), vault_id, body.given()))

    async def on_delete_item(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, vault_id: str) -> None:
        await self._written.answer(resp, await run(self._vaults.delete, principal(req), vault_id))

    async def on_post_archive(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, vault_id: str) -> None:
        await self._written.answer(resp, await run(self._vaults.archive, principal(req), vault_id))


class VaultCredentialsResource:
    """Routes: ``/v1/vaults/{vault_id}/credentials`` and, by suffix, ``/{credential_id}``
    (item), ``/archive``, ``/mcp_oauth_validate``."""

    def __init__(self, vaults: VaultService, lists: ReadModels, written: ReadYourWrites) -> None:
        self._vaults = vaults
        self._lists = lists
        self._written = written

    async def on_post(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, vault_id: str) -> None:
        body = await parse(req, CredentialCreate)
        await self._written.answer(resp, await run(self._vaults.create_credential, principal(req), vault_id, body.given()))

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, vault_id: str) -> None:
        who = principal(req)
        query = _list_query(req)
        await run(self._vaults.check_vault, who, vault_id)
        page = await run(self._lists.vault_credentials, who.tenant_id, vault_id, query)
        resp.media = page.envelope()

    async def on_get_item(
        self, req: falcon.asgi.Request, resp: falcon.asgi.Response, vault_id: str, credential_id: str
    ) -> None:
        resp.media = await run(self._vaults.retrieve_credential, principal(req), vault_id, credential_id)

    async def on_post_item(
        self, req: falcon.asgi.Request, resp: falcon.asgi.Response, vault_id: str, credential_id: str
    ) -> None:
        body = await parse(req, CredentialUpdate, optional=True)
        written = await run(self._vaults.update_credential, principal(req), vault_id, credential_id, body.given())
        await self._written.answer(resp, written)

    async def on_delete_item(
        self, req: falcon.asgi.Request, resp: falcon.asgi.Response, vault_id: str, credential_id: str
    ) -> None:
        written = await run(self._vaults.delete_credential, principal(req), vault_id, credential_id)
        await self._written.answer(resp, written)

    async def on_post_archive(
        self, req: falcon.asgi.Request, resp: falcon.asgi.Response, vault_id: str, credential_id: str
    ) -> None:
        written = await run(self._vaults.archive_credential, principal(req), vault_id, credential_id)
        await self._written.answer(resp, written)

    async def on_post_mcp_oauth_validate(
        self, req: falcon.asgi.Request, resp: falcon.asgi.Response, vault_id: str, credential_id: str
    ) -> None:
        resp.media = await run(self._vaults.validate, principal(req), vault_id, credential_id)
