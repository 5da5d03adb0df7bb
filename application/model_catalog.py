"""The models a tenant can name on the OpenAI-compatible surface: every live agent and every
model card, listed for ``GET /v1/models`` and resolved for a completion's ``model``.

A ``model`` is an agent's id, ``agent:<name>`` (a live agent of exactly that name), or a model
card's ``model_id``; an agent is tried first, so a card whose handle happens to read like one
of those stays reachable only when no agent matches. Resolving reads the aggregates (current
in every process); listing reads the read models."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from application.agents import AgentService
from application.errors import Invalid, NotFound, UnknownModel
from application.model_cards import ModelCardService
from application.ports import ModelIndex
from application.tenancy import Principal
from application.views import AGENT_OWNER, CatalogEntry, iso, model_view
from domain.ids import looks_like

NAMED_AGENT = "agent:"
# A list without ``limit`` answers every model up to this many (the anthropic API's own cap).
MOST_MODELS = 1000


@dataclass(frozen=True)
class ModelChoice:
    kind: Literal["agent", "card"]
    agent_id: str | None = None  # kind == "agent"
    model_id: str | None = None  # kind == "card": the card's model_id
    model_card_id: str | None = None


class ModelCatalog:
    def __init__(self, agents: AgentService, model_cards: ModelCardService, index: ModelIndex) -> None:
        self._agents = agents
        self._model_cards = model_cards
        self._index = index

    def resolve(self, who: Principal, model: str) -> ModelChoice:
        return self._find(who, model)[0]

    def retrieve(self, who: Principal, model: str) -> dict[str, Any]:
        return model_view(self._find(who, model)[1])

    def list(self, who: Principal, limit: int | None, after_id: str | None, before_id: str | None) -> dict[str, Any]:
        """Newest first, paged as the anthropic API pages models: ``after_id`` continues past
        the ``last_id`` of a page, ``before_id`` goes back from its ``first_id``."""
        size = min(limit or MOST_MODELS, MOST_MODELS)
        after = self._cursor(who, "after_id", after_id)
        before = self._cursor(who, "before_id", before_id)
        entries, more = self._index.model_catalog(who.tenant_id, size, after, before)
        data = [model_view(entry) for entry in entries]
        return {
            "object": "list",
            "data": data,
            "has_more": more,
            "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None,
        }

    def _cursor(self, who: Principal, name: str, entry_id: str | None) -> tuple[str, str] | None:
        if entry_id is None:
            return None
        key = self._index.catalog_key(who.tenant_id, entry_id)
        if key is None:
            raise Invalid(f"{name} {entry_id!r} is not a model of this list: pass an id a page of GET /v1/models gave")
        return key

    def _find(self, who: Principal, model: str) -> tuple[ModelChoice, CatalogEntry]:
        found = None
        if model.startswith(NAMED_AGENT):
            ids = self._index.agent_ids_named(who.tenant_id, model.removeprefix(NAMED_AGENT), 2)
            if len(ids) > 1:
                raise Invalid(f"model {model!r} names more than one agent: use the agent's id (GET /v1/models lists them)")
            found = self._agent(who, ids[0]) if ids else None
        elif looks_like("agent", model):
            found = self._agent(who, model)
        found = found or self._card(who, model)
        if found is None:
            raise UnknownModel(f"model {model!r} is not an agent or model card of yours: list them with GET /v1/models")
        return found

    def _agent(self, who: Principal, agent_id: str) -> tuple[ModelChoice, CatalogEntry] | None:
        try:
            agent = self._agents.retrieve(who, agent_id)
        except NotFound:
            return None
        if agent["archived_at"] is not None:
            return None
        entry = CatalogEntry(agent_id, agent.get("name") or agent_id, AGENT_OWNER, agent["created_at"])
        return ModelChoice("agent", agent_id=agent_id), entry

    def _card(self, who: Principal, model_id: str) -> tuple[ModelChoice, CatalogEntry] | None:
        card = self._model_cards.live_card(who.tenant_id, model_id)
        if card is None:
            return None
        created_at = iso(card.created_on)
        assert created_at is not None
        choice = ModelChoice("card", model_id=card.model_id, model_card_id=card.model_card_id)
        return choice, CatalogEntry(card.model_id, card.model_id, card.provider, created_at)
