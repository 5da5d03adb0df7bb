"""Use cases of the environments context: templates sessions run in."""

from __future__ import annotations

from typing import Any

from domain.environments import Environment
from domain.errors import Archived, InvalidState

from application.errors import Invalid
from application.ids import new_id
from application.loading import load_owned
from application.ports import EventStore
from application.retry import retry_on_race
from application.tenancy import Principal
from application.views import environment_view

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


class EnvironmentService:
    def __init__(self, store: EventStore) -> None:
        self._store = store

    def create(self, who: Principal, fields: dict[str, Any]) -> tuple[dict[str, Any], int | None]:
        definition = {
            "description": None,
            "metadata": {},
            "scope": None,
            **fields,
            "config": complete_config(fields.get("config")),
        }
        environment = Environment(
            environment_id=new_id("env"), tenant_id=who.tenant_id, definition=definition
        )
        position = self._store.save(environment)
        return render(environment), position

    def retrieve(self, who: Principal, environment_id: str) -> dict[str, Any]:
        return render(self.load(who, environment_id))

    def update(
        self, who: Principal, environment_id: str, changes: dict[str, Any]
    ) -> tuple[dict[str, Any], int | None]:
        if "config" in changes:
            changes = {**changes, "config": complete_config(changes["config"])}

        def attempt() -> tuple[dict[str, Any], int | None]:
            environment = self.load(who, environment_id)
            try:
                environment.update(changes)
            except (Archived, InvalidState) as error:
                raise Invalid(str(error)) from error
            return render(environment), self._store.save(environment)

        return retry_on_race(attempt, key=environment_id)

    def archive(self, who: Principal, environment_id: str) -> tuple[dict[str, Any], int | None]:
        def attempt() -> tuple[dict[str, Any], int | None]:
            environment = self.load(who, environment_id)
            environment.archive()
            return render(environment), self._store.save(environment)

        return retry_on_race(attempt, key=environment_id)

    def load(self, who: Principal, environment_id: str) -> Environment:
        return load_owned(self._store, who, Environment, "env", "environment", environment_id)
