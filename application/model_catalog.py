"""TEMPORARY stand-in (the helper's version replaces it at merge)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from application.commands import load_as
from application.errors import UnknownModel
from application.ports import EventStore
from application.tenancy import Principal
from domain.agents import Agent
from domain.ids import stream_id
from domain.model_cards import ModelHandle, handle_stream_id


@dataclass(frozen=True)
class ModelChoice:
    kind: Literal["agent", "card"]
    agent_id: str | None = None
    model_id: str | None = None
    model_card_id: str | None = None


class ModelCatalog:
    def __init__(self, store: EventStore, read_models) -> None:  # noqa: ANN001
        self._store = store
        self._read = read_models

    def resolve(self, who: Principal, model: str) -> ModelChoice:
        if model.startswith("agent:"):
            from projections.queries import ListQuery

            page = self._read.agents(who.tenant_id, ListQuery(limit=1000))
            named = [doc for doc in page.data if doc["name"] == model[6:]]
            if named:
                return ModelChoice("agent", agent_id=named[0]["id"])
        elif model.startswith("agent_"):
            try:
                agent = load_as(self._store, stream_id(model), Agent)
            except Exception:  # noqa: BLE001
                agent = None
            if agent is not None and agent.tenant_id == who.tenant_id:
                return ModelChoice("agent", agent_id=model)
        handle = load_as(self._store, handle_stream_id(who.tenant_id, model), ModelHandle)
        if handle is not None and handle.holder:
            return ModelChoice("card", model_id=model, model_card_id=handle.holder)
        raise UnknownModel(f"model {model!r} not found: list them with GET /v1/models")
