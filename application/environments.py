"""Use cases of the environments context: templates sessions run in."""

from __future__ import annotations

from typing import Any

from application.commands import Commands, Kind, Written
from application.ids import new_id
from application.ports import EventStore
from application.tenancy import Principal
from application.views import environment_view
from domain.environments import Environment

DEFAULT_CONFIG: dict[str, Any] = {
    "type": "cloud",
    "networking": {"type": "unrestricted"},
    "packages": {"type": "packages", "apt": [], "cargo": [], "gem": [], "go": [], "npm": [], "pip": []},
}


def complete_config(config: dict[str, Any] | None) -> dict[str, Any]:
    if not config:
        return DEFAULT_CONFIG
    if config.get("type", "cloud") != "cloud":
        return config
    return {
        "type": "cloud",
        "networking": config.get("networking") or DEFAULT_CONFIG["networking"],
        "packages": {
            **DEFAULT_CONFIG["packages"],
            **{name: value for name, value in (config.get("packages") or {}).items() if value is not None},
        },
    }


def render(environment: Environment) -> dict[str, Any]:
    return environment_view(
        environment.environment_id,
        environment.definition,
        environment.created_on,
        environment.modified_on,
        environment.archived_at,
    )


ENVIRONMENTS: Kind[Environment] = Kind(Environment, "env", "environment")


class EnvironmentService:
    def __init__(self, store: EventStore) -> None:
        self._commands = Commands(store, ENVIRONMENTS, render)

    def create(self, who: Principal, fields: dict[str, Any], environment_id: str | None = None) -> Written:
        definition = {
            "description": None,
            "metadata": {},
            "scope": None,
            **fields,
            "config": complete_config(fields.get("config")),
        }
        return self._commands.create(
            Environment(environment_id=environment_id or new_id("env"), tenant_id=who.tenant_id, definition=definition)
        )

    def retrieve(self, who: Principal, environment_id: str) -> dict[str, Any]:
        return self._commands.view(who, environment_id)

    def update(self, who: Principal, environment_id: str, changes: dict[str, Any]) -> Written:
        if "config" in changes:
            changes = {**changes, "config": complete_config(changes["config"])}
        return self._commands.change(who, environment_id, lambda environment: environment.update(changes))

    def archive(self, who: Principal, environment_id: str) -> Written:
        return self._commands.change(who, environment_id, Environment.archive)

    def delete(self, who: Principal, environment_id: str) -> Written:
        """Environments are never erased: deleting archives it, so history stays replayable."""
        return self._commands.change(
            who, environment_id, Environment.archive, render=lambda env: {"id": env.environment_id, "type": "environment_deleted"}
        )

    def load(self, who: Principal, environment_id: str) -> Environment:
        return self._commands.load(who, environment_id)
