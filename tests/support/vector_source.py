"""A small vector source for the vector projection's tests: an agent's description is
indexed in the ``test_agents`` collection (its name and tenant in the payload), replaced
when the agent is updated and dropped when it is archived. Production sources (memories,
knowledge bases) follow the same shape."""

from __future__ import annotations

from typing import Any

from application.ports import IndexText, UnindexWhere, VectorChange
from domain.agents import Agent

COLLECTION = "test_agents"


def agent_descriptions(event: Any) -> list[VectorChange]:
    if isinstance(event, Agent.Created):
        return [_index(event, event.tenant_id, event.agent_id, event.definition)]
    if isinstance(event, Agent.Updated):
        agent = str(event.originator_id)
        return [
            UnindexWhere(COLLECTION, {"stream": agent}),
            _index(event, str(event.definition.get("tenant_id", "")), "", event.definition),
        ]
    if isinstance(event, Agent.Archived):
        return [UnindexWhere(COLLECTION, {"stream": str(event.originator_id)})]
    return []


agent_descriptions.event_classes = (Agent.Created, Agent.Updated, Agent.Archived)  # type: ignore[attr-defined]


def _index(event: Any, tenant_id: str, agent_id: str, definition: dict[str, Any]) -> IndexText:
    return IndexText(
        collection=COLLECTION,
        key=f"{event.originator_id}:{event.originator_version}",
        text=str(definition.get("description", "")),
        payload={
            "tenant_id": tenant_id or str(definition.get("tenant_id", "")),
            "stream": str(event.originator_id),
            "name": str(definition.get("name", "")),
        },
    )


def agent(agent_id: str, tenant_id: str, name: str, description: str) -> Agent:
    # The tenant also rides in the definition, so an update's event (which carries only the
    # definition) can name it.
    return Agent(
        agent_id=agent_id,
        tenant_id=tenant_id,
        definition={"name": name, "description": description, "tenant_id": tenant_id},
    )
