"""Installing an environment's packages when a session's sandbox starts.

Each manager runs inside the sandbox, as the session's uid, installing into the session's home
(`~/.local` and friends, inside the size cap) through the same egress rules as the tools — so
under `limited` networking the registries are reachable only with `allow_package_managers`.
A manager that is not installed on the worker is reported as `PackageManagerUnavailable`
naming it, a failed install as `PackageInstallFailed`; neither is ever skipped.

apt is the exception: installing system packages needs root on the worker, which a session
never gets. The worker's image must already have them; a listed package that is missing is
reported as `apt` being unavailable, with the names."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass, field

from domain.environment_config import Packages
from infra.sandbox.area import HOME
from infra.sandbox.errors import PackageManagerUnavailable


@dataclass(frozen=True)
class InstallStep:
    manager: str
    probe: list[str]
    """A command that fails when the manager cannot run here (its binary is checked first)."""
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)


def install_steps(packages: Packages) -> list[InstallStep]:
    local = f"{HOME}/.local"
    steps: list[InstallStep] = []
    if pip := packages.of("pip"):
        steps.append(
            InstallStep(
                "pip",
                ["python3", "-m", "pip", "--version"],
                ["python3", "-m", "pip", "install", "--user", "--no-input", "--no-warn-script-location", *pip],
            )
        )
    if npm := packages.of("npm"):
        steps.append(
            InstallStep("npm", ["npm", "--version"], ["npm", "install", "--global", "--prefix", local, *npm])
        )
    if cargo := packages.of("cargo"):
        steps.append(InstallStep("cargo", ["cargo", "--version"], ["cargo", "install", "--root", local, *cargo]))
    if gem := packages.of("gem"):
        steps.append(
            InstallStep(
                "gem",
                ["gem", "--version"],
                ["gem", "install", "--no-document", "--install-dir", f"{local}/gems", "--bindir", f"{local}/bin", *gem],
            )
        )
    for module in packages.of("go"):
        # `go install` wants a version; an unversioned entry means the latest, as for the others.
        target = module if "@" in module else f"{module}@latest"
        steps.append(InstallStep("go", ["go", "version"], ["go", "install", target]))
    return steps


def check_apt(names: tuple[str, ...]) -> None:
    """Raise unless every listed Debian package (`name` or `name=version`) is installed."""
    if not names:
        return
    query = shutil.which("dpkg-query")
    if query is None:
        raise PackageManagerUnavailable("apt", "this worker has no dpkg, so it cannot provide Debian packages")
    missing = []
    for spec in names:
        name, _, version = spec.partition("=")
        result = subprocess.run(
            [query, "-W", "-f=${Status}\t${Version}", "--", name], capture_output=True, text=True, check=False
        )
        status, _, installed = result.stdout.partition("\t")
        if result.returncode != 0 or not status.endswith(" installed") or (version and installed != version):
            missing.append(spec)
    if missing:
        raise PackageManagerUnavailable(
            "apt",
            "sessions cannot install system packages (that needs root on the worker) and this worker's image "
            f"lacks: {', '.join(missing)}",
        )
