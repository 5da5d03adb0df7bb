"""The two parts of an environment's `cloud` config a sandbox obeys, read from the shapes the
SDK sends (`BetaUnrestrictedNetwork` / `BetaLimitedNetwork` and `BetaPackages`, as models or
plain dicts). Anything else is refused here rather than half-understood later."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

MANAGERS = ("apt", "cargo", "gem", "go", "npm", "pip")

# A package is handed to its manager as one argument: no option (a leading "-" would let
# the environment's config pass `--index-url` or `-e`), no whitespace, no control characters.
_PACKAGE = re.compile(r"^[^\s\-][^\s\x00-\x1f]{0,299}$")


def _as_mapping(value: Any, what: str) -> Mapping[str, Any]:
    if hasattr(value, "model_dump"):
        value = value.model_dump(exclude_none=True)
    if not isinstance(value, Mapping):
        raise ValueError(f"{what} must be an object, got {type(value).__name__}")
    return value


@dataclass(frozen=True)
class Networking:
    """Off unless told otherwise. `unrestricted` still never reaches the host's loopback or
    other non-public addresses (see `egress.EgressGuard`)."""

    allow_all: bool = False
    allowed_hosts: tuple[str, ...] = ()
    allow_package_managers: bool = False

    @property
    def off(self) -> bool:
        return not (self.allow_all or self.allowed_hosts or self.allow_package_managers)

    @classmethod
    def parse(cls, value: Any) -> Networking:
        if value is None:
            return cls()
        raw = _as_mapping(value, "networking")
        kind = raw.get("type")
        if kind == "unrestricted":
            return cls(allow_all=True)
        if kind == "limited":
            hosts = raw.get("allowed_hosts") or []
            if isinstance(hosts, str) or not all(isinstance(h, str) and h.strip() for h in hosts):
                raise ValueError("networking.allowed_hosts must be a list of host names")
            return cls(
                allowed_hosts=tuple(h.strip().lower().rstrip(".") for h in hosts),
                allow_package_managers=bool(raw.get("allow_package_managers")),
            )
        raise ValueError(f"networking.type must be 'unrestricted' or 'limited', got {kind!r}")


@dataclass(frozen=True)
class Packages:
    by_manager: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return any(self.by_manager.values())

    def of(self, manager: str) -> tuple[str, ...]:
        return self.by_manager.get(manager, ())

    @classmethod
    def parse(cls, value: Any) -> Packages:
        if value is None:
            return cls()
        raw = _as_mapping(value, "packages")
        lists: dict[str, tuple[str, ...]] = {}
        for manager in MANAGERS:
            names = raw.get(manager) or []
            if isinstance(names, str):
                raise ValueError(f"packages.{manager} must be a list")
            for name in names:
                if not isinstance(name, str) or not _PACKAGE.match(name):
                    raise ValueError(f"packages.{manager}: {name!r} is not a package name")
            if names:
                lists[manager] = tuple(names)
        return cls(lists)
