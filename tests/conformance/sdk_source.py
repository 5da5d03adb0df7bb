"""Obtains the pinned `anthropic` release's own generated API tests and prepares them to run
against Agentry.

The tests ship only in the source distribution. It is downloaded once with pip into a cache
directory and reused; without it (no cache, no index) the run fails loudly rather than
silently testing less. From it, the tests of the resources Agentry serves (``RESOURCES``)
are written, rewritten by rewrite.py, into ``sdk_tests/`` next to this file (not versioned),
with the SDK's ``tests/utils.py`` beside them and ``REWRITES.txt`` listing every edit made.
"""

from __future__ import annotations

import subprocess
import sys
import tarfile
from pathlib import Path

from tests.conformance.real_objects import REAL_KINDS
from tests.conformance.rewrite import rewrite

HERE = Path(__file__).parent
SDK_VERSION = (HERE / "SDK_VERSION").read_text().strip()
GENERATED = HERE / "sdk_tests"
BETA = "api_resources/beta"

# Resource (as the SDK names it) → its generated test module under tests/api_resources/beta.
# A resource Agentry starts to serve joins with one line here (and its id prefix in
# real_objects.CREATORS or NESTED when other tests name its objects).
RESOURCES: dict[str, str] = {
    "agents": "test_agents.py",
    "agents.versions": "agents/test_versions.py",
    "environments": "test_environments.py",
    "environments.work": "environments/test_work.py",
    "models": "test_models.py",
    "organization.rate_limits": "organization/test_rate_limits.py",
    "sessions": "test_sessions.py",
    "sessions.events": "sessions/test_events.py",
    "sessions.resources": "sessions/test_resources.py",
    "vaults": "test_vaults.py",
    "vaults.credentials": "vaults/test_credentials.py",
    "memory_stores": "test_memory_stores.py",
    "memory_stores.memories": "memory_stores/test_memories.py",
    "memory_stores.memory_versions": "memory_stores/test_memory_versions.py",
    "files": "test_files.py",
    "organization": "test_organization.py",
    "organization.users": "organization/test_users.py",
    "organization.invites": "organization/test_invites.py",
    "organization.workspaces.members": "organization/workspaces/test_members.py",
    "organization.workspaces.rate_limits": "organization/workspaces/test_rate_limits.py",
    "organization.workspaces": "organization/test_workspaces.py",
    "organization.api_keys": "organization/test_api_keys.py",
    "organization.analytics.usage_report": "organization/analytics/test_usage_report.py",
    "organization.analytics.cost_report": "organization/analytics/test_cost_report.py",
    "organization.analytics.usage": "organization/analytics/test_usage.py",
    "organization.analytics.cost": "organization/analytics/test_cost.py",
    "organization.webhooks": "organization/test_webhooks.py",
    "skills": "test_skills.py",
    "skills.versions": "skills/test_versions.py",
}

# A generated module's resolved path → its resource (how the conftest and the summary tell
# which resource a test belongs to).
MODULE_RESOURCE: dict[Path, str] = {(GENERATED / BETA / module).resolve(): name for name, module in RESOURCES.items()}

# The SDK's client flavours its generated tests run with (the summary's columns).
MODES = ("sync-loose", "sync-strict", "async-loose", "async-strict", "async-aiohttp")


class SdkTestsUnavailable(RuntimeError):
    pass


def sdist(cache_dir: Path) -> Path:
    """The cached sdist of ``anthropic==SDK_VERSION``, downloaded on first use."""
    target = cache_dir / f"anthropic-{SDK_VERSION}.tar.gz"
    if target.is_file():
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:",
        "--dest", str(cache_dir), f"anthropic=={SDK_VERSION}",
    ]  # fmt: skip
    result = subprocess.run(command, check=False, capture_output=True, text=True, timeout=600)
    if result.returncode != 0 or not target.is_file():
        raise SdkTestsUnavailable(
            f"could not download the anthropic=={SDK_VERSION} sdist into {cache_dir} "
            f"(needed for tests/conformance):\n{result.stderr[-2000:]}"
        )
    return target


def _write(path: Path, text: str) -> None:
    """Writes only what changed, so unchanged modules keep their bytecode cache."""
    if not path.is_file() or path.read_text() != text:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def generate(archive: Path, out: Path = GENERATED) -> dict[str, Path]:
    """Writes the rewritten tests; returns resource → generated module path."""
    root = f"anthropic-{SDK_VERSION}/tests"
    wanted: dict[str, str] = {}  # path under out → text
    report: list[str] = []
    modules: dict[str, Path] = {}
    with tarfile.open(archive) as tar:

        def member(relative: str) -> str:
            handle = tar.extractfile(f"{root}/{relative}")
            if handle is None:
                raise SdkTestsUnavailable(f"{archive.name} has no tests/{relative}")
            return handle.read().decode()

        try:
            wanted["utils.py"] = member("utils.py")
            for resource, module in RESOURCES.items():
                relative = f"{BETA}/{module}"
                parts = relative.split("/")
                for depth in range(1, len(parts)):
                    package = "/".join(parts[:depth]) + "/__init__.py"
                    wanted.setdefault(package, member(package))
                text, edits = rewrite(member(relative), REAL_KINDS)
                wanted[relative] = text
                modules[resource] = out / relative
                report += [f"{relative}:{edit}" for edit in edits]
        except KeyError as missing:
            raise SdkTestsUnavailable(f"{archive.name} lacks {missing}") from None
    wanted["__init__.py"] = ""
    wanted["REWRITES.txt"] = (
        f"Edits made by tests/conformance/rewrite.py to the tests of anthropic=={SDK_VERSION}\n"
        + "".join(line + "\n" for line in report)
    )
    for relative, text in wanted.items():
        _write(out / relative, text)
    for stale in out.rglob("*.py"):
        if stale.relative_to(out).as_posix() not in wanted:
            stale.unlink()
    return modules
