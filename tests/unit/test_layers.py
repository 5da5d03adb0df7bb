"""The layer rules of docs/architecture.md, read from the imports themselves."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def imported_modules(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def importers_of(package: str, layers: tuple[str, ...]) -> list[str]:
    return sorted(
        str(path.relative_to(ROOT))
        for layer in layers
        for path in (ROOT / layer).rglob("*.py")
        if any(name == package or name.startswith(package + ".") for name in imported_modules(path))
    )


def test_only_the_composition_root_imports_infra() -> None:
    assert importers_of("infra", ("domain", "application", "projections", "interfaces")) == ["interfaces/bootstrap.py"]


def test_the_domain_imports_no_other_layer() -> None:
    for layer in ("application", "projections", "interfaces", "infra"):
        assert importers_of(layer, ("domain",)) == [], layer
