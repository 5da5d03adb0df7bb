"""Runs the pinned `anthropic` SDK's own generated API tests against a live Agentry.

The fixtures below stand in for the SDK's ``tests/conftest.py`` (which also needs its
snapshot tooling): ``client`` is parametrized with the strictness of response validation
(``False`` loose, ``True`` strict), ``async_client`` with that or ``{"http_client":
"aiohttp"}``, exactly as there. They point at ``TEST_API_BASE_URL`` — a real uvicorn serving
Agentry, started here — with that server's API key in place of the SDK's dummy one. The work
queue's tests also get a model that calls a tool (``tool_calling_model``): their items exist
only once an agent did.

Settings (environment):
- ``AGENTRY_CONFORMANCE_BACKEND``: ``sqlite`` (default) or ``postgres`` (a fresh database on
  the test PostgreSQL).
- ``TEST_API_BASE_URL`` + ``AGENTRY_CONFORMANCE_API_KEY``: run against that server instead.

At the end of the run: passed / failed per resource and mode.
"""

from __future__ import annotations

import fcntl
import importlib.util
import inspect
import os
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import pytest
import pytest_asyncio

import tests
from tests.conformance import real_objects
from tests.conformance.sdk_source import (
    GENERATED,
    MODULE_RESOURCE,
    SDK_VERSION,
    SdkTestsUnavailable,
    generate,
    sdist,
)
from tests.conformance.tool_model import tool_model
from tests.support.server import running_server

# Resources whose tests' objects exist only once an agent called a tool.
# (The row reports page only through rows of usage: a model must have answered.)
# A test that answers its own request with a respx mock (a skill version's download) checks the
# SDK against that mock, never the server; tests/e2e/test_skills.py downloads from Agentry.
MOCKED = "answered by the SDK test's own respx mock, not the server"
NEEDS_TOOL_CALLS = frozenset({"environments.work", "organization.analytics.usage", "organization.analytics.cost"})


def _cache_dir(config: pytest.Config) -> Path:
    cache = getattr(config, "cache", None)  # absent under -p no:cacheprovider
    if cache is not None:
        return cache.mkdir("anthropic-sdist")
    return Path(sys.prefix) / "agentry-conformance-cache"


def _register_sdk_utils() -> None:
    """The generated tests import ``tests.utils`` — the SDK's, not a module of ours."""
    spec = importlib.util.spec_from_file_location("tests.utils", GENERATED / "utils.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["tests.utils"] = module
    spec.loader.exec_module(module)
    tests.utils = module  # type: ignore[attr-defined]


def pytest_configure(config: pytest.Config) -> None:
    # Runs as this conftest loads, before its folder is listed: the tests exist when
    # collection looks for them.
    if anthropic.__version__ != SDK_VERSION:
        raise pytest.UsageError(
            f"tests/conformance/SDK_VERSION says {SDK_VERSION} but anthropic {anthropic.__version__} "
            "is installed; move the pin in pyproject.toml and SDK_VERSION together"
        )
    cache = _cache_dir(config)
    cache.mkdir(parents=True, exist_ok=True)
    # With `pytest -n` every worker gets here at once: one downloads and writes the tests, the
    # others wait and then find them written (a module half written is never imported).
    with (cache / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            generate(sdist(cache))
        except SdkTestsUnavailable as error:
            raise pytest.UsageError(str(error)) from None
    _register_sdk_utils()


def _is_sdk_test(item: pytest.Item) -> bool:
    return item.path.resolve() in MODULE_RESOURCE


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # As the SDK's conftest does: every async test runs on the session's event loop.
    for item in items:
        if _is_sdk_test(item) and inspect.iscoroutinefunction(getattr(item, "function", None)):
            item.add_marker(pytest.mark.asyncio(loop_scope="session"), append=False)
        mocked = _is_sdk_test(item) and "respx_mock" in getattr(item, "fixturenames", ())
        # A file download reaches the server (``respx_mock`` below); a skill zip cannot be the
        # mock's ``{"foo": "bar"}``, so that test stays the SDK's own.
        if mocked and str(MODULE_RESOURCE.get(item.path.resolve(), "")).startswith("skills"):
            item.add_marker(pytest.mark.skip(reason=MOCKED))


# -- the server and the clients ------------------------------------------------------------


@pytest.fixture(scope="session", autouse=True)
def without_ambient_environment() -> Iterator[None]:
    """As in the SDK: the machine's ANTHROPIC_* settings must not change a result."""
    with pytest.MonkeyPatch.context() as patch:
        for name in list(os.environ):
            if name.startswith(("ANTHROPIC_", "AWS_")):
                patch.delenv(name)
        yield


@pytest.fixture(scope="session")
def api_target(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """(base URL, API key) of the Agentry under test; TEST_API_BASE_URL points at it."""
    external = os.environ.get("TEST_API_BASE_URL")
    if external:
        yield external, os.environ["AGENTRY_CONFORMANCE_API_KEY"]
        return
    backend = os.environ.get("AGENTRY_CONFORMANCE_BACKEND", "sqlite")
    database_url = ""
    if backend == "postgres":
        database_url = _fresh_postgres(request)
    elif backend != "sqlite":
        raise pytest.UsageError(f"AGENTRY_CONFORMANCE_BACKEND must be sqlite or postgres, not {backend!r}")
    data_dir = tmp_path_factory.mktemp("conformance")
    # Each people test accepts an invite of its own: well past the 60 sign-ins a minute one
    # address may make (tests/e2e/test_rate_limits.py shows that limit).
    with running_server(data_dir, database_url, rate_limit_login_rpm=0) as server, pytest.MonkeyPatch.context() as patch:
        patch.setenv("TEST_API_BASE_URL", server.base_url)
        yield server.base_url, server.api_key


def _fresh_postgres(request: pytest.FixtureRequest) -> str:
    from tests.support.postgres import fresh_database

    databases = fresh_database(request.getfixturevalue("postgres_server_url"))
    url = databases.__enter__()
    request.addfinalizer(lambda: databases.__exit__(None, None, None))
    return url


@pytest.fixture(scope="session")
def client(request: pytest.FixtureRequest, api_target: tuple[str, str]) -> Iterator[anthropic.Anthropic]:
    strict = getattr(request, "param", True)
    if not isinstance(strict, bool):
        raise TypeError(f"Unexpected fixture parameter type {type(strict)}, expected {bool}")
    base_url, api_key = api_target
    with anthropic.Anthropic(base_url=base_url, api_key=api_key, _strict_response_validation=strict) as sdk:
        yield sdk


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def async_client(
    request: pytest.FixtureRequest, api_target: tuple[str, str]
) -> AsyncIterator[anthropic.AsyncAnthropic]:
    param = getattr(request, "param", True)
    strict = True
    http_client: Any = None
    if isinstance(param, bool):
        strict = param
    elif isinstance(param, dict):
        strict = param.get("strict", True)
        if param.get("http_client", "httpx") == "aiohttp":
            http_client = anthropic.DefaultAioHttpClient()
    else:
        raise TypeError(f"Unexpected fixture parameter type {type(param)}, expected bool or dict")
    base_url, api_key = api_target
    async with anthropic.AsyncAnthropic(
        base_url=base_url, api_key=api_key, _strict_response_validation=strict, http_client=http_client
    ) as sdk:
        yield sdk


@pytest.fixture(scope="session")
def setup_http(api_target: tuple[str, str]) -> Iterator[httpx.Client]:
    base_url, api_key = api_target
    with httpx.Client(base_url=base_url, headers={"x-api-key": api_key}, timeout=30) as http:
        yield http


@pytest.fixture(scope="session")
def page_tokens() -> dict[str, str]:
    return {}


@pytest.fixture(scope="session")
def tool_calling_model(setup_http: httpx.Client) -> Iterator[str]:
    """The model the work queue's agents run on (tool_model.py), made when first needed."""
    with tool_model(setup_http) as model_id:
        real_objects.tool_model = model_id
        yield model_id
        real_objects.tool_model = None


@pytest.fixture(autouse=True)
def real_objects_of_this_test(
    request: pytest.FixtureRequest, setup_http: httpx.Client, page_tokens: dict[str, str]
) -> Iterator[None]:
    resource = MODULE_RESOURCE.get(request.node.path.resolve())
    if resource in NEEDS_TOOL_CALLS:
        request.getfixturevalue("tool_calling_model")
    real_objects.current = real_objects.RealObjects(setup_http, page_tokens, resource)
    yield
    real_objects.current = None


class _NoServerMock:
    """Stands in for respx's ``respx_mock``. The SDK's download tests declare a mocked route
    (its answer ``{"foo": "bar"}``) because their own mock server cannot send bytes; here the
    server is real, so the route is accepted and ignored, the call reaches Agentry, and the
    file it downloads holds those very bytes (``real_objects._file``)."""

    def __getattr__(self, name: str) -> _NoServerMock:
        return self

    def __call__(self, *args: Any, **kwargs: Any) -> _NoServerMock:
        return self


@pytest.fixture
def respx_mock() -> _NoServerMock:
    return _NoServerMock()
