"""The two parts of an environment's `cloud` config a sandbox obeys, and the rules their
values follow, read from the shapes the SDK sends (`BetaUnrestrictedNetwork` /
`BetaLimitedNetwork` and `BetaPackages`, as models or plain dicts).

One rule set: the HTTP edge refuses a value these rules refuse (a 400 naming the field), so
a sandbox never meets one it would have to refuse when a session starts; the sandbox parses
with the same rules for what was stored before they existed."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

MANAGERS = ("apt", "cargo", "gem", "go", "npm", "pip")

# A package is handed to its manager as one argument: no option (a leading "-" would let
# the environment's config pass `--index-url` or `-e`), no whitespace, no control characters.
_PACKAGE = re.compile(r"^[^\s\-][^\s\x00-\x1f\x7f]{0,299}$")

# What the egress proxy compares a requested host with: a DNS name (underscores allowed, as
# some service names have them), optionally "*." for its subdomains, optionally a final
# dot. No scheme, port, path or whitespace: such an entry would never match any request.
_LABEL = r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?"
_HOST = re.compile(rf"^(?:\*\.)?{_LABEL}(?:\.{_LABEL})*\.?$", re.IGNORECASE)


def package_problem(name: object) -> str | None:
    """Why `name` is not a package entry, or None."""
    if not isinstance(name, str) or not _PACKAGE.match(name):
        return f"{name!r} is not a package name (one argument: no leading '-', no whitespace or control characters)"
    return None


def host_problem(host: object) -> str | None:
    """Why `host` is not an `allowed_hosts` entry, or None."""
    if isinstance(host, str) and len(host) <= 254 and (_HOST.match(host) or _is_ip(host)):
        return None
    return f"{host!r} is not a host name (e.g. 'api.example.com' or '*.example.com'; no scheme, port, path or spaces)"


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def check_package(manager: str, name: object) -> str:
    if problem := package_problem(name):
        raise ValueError(f"packages.{manager}: {problem}")
    assert isinstance(name, str)
    return name


def check_host(host: object) -> str:
    if problem := host_problem(host):
        raise ValueError(f"networking.allowed_hosts: {problem}")
    assert isinstance(host, str)
    return host


def _as_mapping(value: Any, what: str) -> Mapping[str, Any]:
    if hasattr(value, "model_dump"):
        value = value.model_dump(exclude_none=True)
    if not isinstance(value, Mapping):
        raise ValueError(f"{what} must be an object, got {type(value).__name__}")
    return value


@dataclass(frozen=True)
class Networking:
    """Off unless told otherwise. `unrestricted` still never reaches the host's loopback or
    other non-public addresses (the sandbox's egress guard sees to that)."""

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
            if isinstance(hosts, str | bytes) or not isinstance(hosts, list | tuple):
                raise ValueError("networking.allowed_hosts must be a list of host names")
            return cls(
                allowed_hosts=tuple(check_host(h).lower().rstrip(".") for h in hosts),
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
            if isinstance(names, str | bytes) or not isinstance(names, list | tuple):
                raise ValueError(f"packages.{manager} must be a list")
            if names:
                lists[manager] = tuple(check_package(manager, name) for name in names)
        return cls(lists)
