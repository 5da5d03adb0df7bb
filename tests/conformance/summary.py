"""The conformance run's table: passed / failed per resource and mode.

A plugin of its own (``-p tests.conformance.summary`` in pyproject's addopts) rather than
part of the conformance conftest: with ``pytest -n`` the tests run in worker processes and
only their reports reach the controlling process, which never loads that conftest — so the
counting reads reports (``pytest_runtest_logreport`` runs where the summary is printed), not
items."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.conformance.sdk_source import MODES, MODULE_RESOURCE, RESOURCES, SDK_VERSION

# (resource, mode, outcome) → tests; one plugin instance per process.
_results: Counter[tuple[str, str, str]] = Counter()
_rootdir = Path(__file__).resolve().parents[2]  # node ids are relative to pytest's rootdir


def resource_of(nodeid: str) -> str | None:
    """The SDK resource whose generated module holds this test, if any."""
    return MODULE_RESOURCE.get((_rootdir / nodeid.split("::", 1)[0]).resolve())


def mode_of(nodeid: str) -> str:
    """``sync-…`` / ``async-…`` by the test's class, then its parameters' id (``default`` without)."""
    base, bracket, rest = nodeid.partition("[")  # an id may hold "::" itself
    parts = base.split("::")
    flavour = "async" if len(parts) > 2 and parts[-2].startswith("TestAsync") else "sync"
    variant = rest[:-1] if bracket else "default"
    return f"{flavour}-{variant}"


def pytest_configure(config: pytest.Config) -> None:
    global _rootdir
    _rootdir = config.rootpath


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    # A test counts once: by its call, or by a setup that did not pass, or a failed teardown.
    counted = report.when == "call" or (report.when == "setup" and not report.passed) or report.failed
    resource = resource_of(report.nodeid) if counted else None
    if resource is not None:
        _results[(resource, mode_of(report.nodeid), report.outcome)] += 1


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    results = _results
    if not results:
        return
    write = terminalreporter.write_line
    terminalreporter.section(f"anthropic {SDK_VERSION} generated tests against Agentry")
    modes = [mode for mode in MODES if any(key[1] == mode for key in results)]
    width = max(len(name) for name in ("resource", *RESOURCES)) + 2
    write(f"{'resource':<{width}}" + "".join(f"{mode:>16}" for mode in modes) + f"{'total':>14}")
    totals: Counter[str] = Counter()
    for resource in RESOURCES:
        cells, passed, failed = [], 0, 0
        for mode in modes:
            ok, bad = results[(resource, mode, "passed")], results[(resource, mode, "failed")]
            passed, failed = passed + ok, failed + bad
            cells.append(f"{ok:>10} / {bad:<3}")
        totals["passed"] += passed
        totals["failed"] += failed
        write(f"{resource:<{width}}" + "".join(cells) + f"{passed:>8} / {failed:<3}")
    skipped = sum(count for (_, _, outcome), count in results.items() if outcome == "skipped")
    write(f"passed / failed: {totals['passed']} / {totals['failed']}" + (f", skipped {skipped}" if skipped else ""))
