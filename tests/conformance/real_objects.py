"""Real objects behind the placeholders of the SDK's generated tests (see rewrite.py).

Each test gets fresh objects, created on first mention through the plain HTTP API (not the
SDK under test): a test that archives or deletes its object cannot disturb another, and
the object the test names twice is the same object both times. Page tokens are only
positions, valid for the whole run, so each resource's is fetched once.

To serve a new resource's tests: add its id prefix to ``CREATORS`` (or, for an object that
lives inside another, such as a session's resource, to ``NESTED``) and, if its list takes a
``page``, its listing to ``PAGE_SOURCES``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

MODEL = "claude-opus-4-7"
BUDGET = {"type": "limit", "max_list_cost": {"amount": "2500", "currency": "USD"}}


def _post(http: httpx.Client, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = http.post(path, json=body)
    if response.status_code >= 300:
        raise RuntimeError(f"conformance setup: POST {path} → {response.status_code} {response.text[:300]}")
    return response.json()


def _agent(http: httpx.Client) -> str:
    return _post(http, "/v1/agents", {"name": "conformance agent", "model": MODEL})["id"]


def _environment(http: httpx.Client) -> str:
    return _post(http, "/v1/environments", {"name": "conformance environment"})["id"]


def _session(http: httpx.Client) -> str:
    # With a budget, as the SDK's all-params create makes one: its all-params update
    # replaces the budget, which the API allows only on a session created with one.
    body = {"agent": _agent(http), "environment_id": _environment(http), "budget": BUDGET}
    return _post(http, "/v1/sessions", body)["id"]


def _session_resource(http: httpx.Client, session_id: str) -> str:
    # A repository: the one kind whose token the SDK's update test can rotate.
    body = {"type": "github_repository", "url": "https://github.com/acme/conformance.git"}
    return _post(http, f"/v1/sessions/{session_id}/resources", body)["id"]


# id prefix → how to make a real object of that kind
CREATORS: dict[str, Callable[[httpx.Client], str]] = {
    "agent": _agent,
    "env": _environment,
    "sesn": _session,
}

# id prefix of an object that lives inside another → (the container's prefix, how to make one
# in it). The container is the test's own object of that kind (a generated test names one).
NESTED: dict[str, tuple[str, Callable[[httpx.Client, str], str]]] = {
    "sesrsc": ("sesn", _session_resource),
}

# Every kind the rewrite turns into real objects.
REAL_KINDS = frozenset(CREATORS) | frozenset(NESTED)


def _agent_versions(http: httpx.Client) -> str:
    agent_id = _agent(http)
    _post(http, f"/v1/agents/{agent_id}", {"version": 1, "description": "second version"})
    return f"/v1/agents/{agent_id}/versions"


def _session_events(http: httpx.Client) -> str:
    session_id = _session(http)
    message = {"type": "user.message", "content": [{"type": "text", "text": "note"}]}
    note = {"type": "system.message", "content": [{"type": "text", "text": "note"}]}
    _post(http, f"/v1/sessions/{session_id}/events", {"events": [message, note]})
    return f"/v1/sessions/{session_id}/events"


def _session_resources(http: httpx.Client) -> str:
    session_id = _session(http)
    _session_resource(http, session_id)
    _post(http, f"/v1/sessions/{session_id}/resources", {"type": "file", "file_id": "file_conformance"})
    return f"/v1/sessions/{session_id}/resources"


def _twice(create: Callable[[httpx.Client], str], path: str) -> Callable[[httpx.Client], str]:
    def listing(http: httpx.Client) -> str:
        create(http)
        create(http)
        return path

    return listing


# resource (as the SDK names it: client.beta.<resource>.list) → a listing with a second page
PAGE_SOURCES: dict[str, Callable[[httpx.Client], str]] = {
    "agents": _twice(_agent, "/v1/agents"),
    "agents.versions": _agent_versions,
    "environments": _twice(_environment, "/v1/environments"),
    "sessions": _twice(_session, "/v1/sessions"),
    "sessions.events": _session_events,
    "sessions.resources": _session_resources,
}


class RealObjects:
    """The objects of one test, keyed by the placeholder that stands for each."""

    def __init__(self, http: httpx.Client, page_tokens: dict[str, str]) -> None:
        self._http = http
        self._page_tokens = page_tokens
        self._ids: dict[str, str] = {}
        self._unnamed: dict[str, str] = {}  # containers made before the test named them

    def id_for(self, placeholder: str) -> str:
        if placeholder not in self._ids:
            kind = placeholder.split("_", 1)[0]
            if kind in NESTED:
                container, create = NESTED[kind]
                self._ids[placeholder] = create(self._http, self._container(container))
            else:
                # A container made first (for an object inside it) is the one the test names.
                self._ids[placeholder] = self._unnamed.pop(kind, None) or CREATORS[kind](self._http)
        return self._ids[placeholder]

    def _container(self, kind: str) -> str:
        """The test's object of ``kind``: the one it named, else one made now and kept for the
        placeholder the test names next (tests name an item's id before its container's)."""
        named = [real for placeholder, real in self._ids.items() if placeholder.split("_", 1)[0] == kind]
        if named:
            return named[-1]
        if kind not in self._unnamed:
            self._unnamed[kind] = CREATORS[kind](self._http)
        return self._unnamed[kind]

    def page_for(self, resource: str) -> str:
        if resource not in self._page_tokens:
            path = PAGE_SOURCES[resource](self._http)
            response = self._http.get(path, params={"limit": 1})
            token = response.json().get("next_page") if response.status_code == 200 else None
            if not token:
                raise RuntimeError(f"conformance setup: GET {path}?limit=1 gave no next_page: {response.text[:300]}")
            self._page_tokens[resource] = token
        return self._page_tokens[resource]

    @property
    def created(self) -> dict[str, str]:
        return dict(self._ids)


current: RealObjects | None = None


def _objects() -> RealObjects:
    if current is None:
        raise RuntimeError("real_id/real_page are only usable inside a conformance test")
    return current


def real_id(placeholder: str) -> str:
    return _objects().id_for(placeholder)


def real_page(resource: str) -> str:
    return _objects().page_for(resource)
