"""Real objects behind the placeholders of the SDK's generated tests (see rewrite.py).

Each test gets fresh objects, created on first mention through the plain HTTP API (not the
SDK under test): a test that archives or deletes its object cannot disturb another, and
the object the test names twice is the same object both times. Page tokens are only
positions, valid for the whole run, so each resource's is fetched once.

To serve a new resource's tests: add its id prefix to ``CREATORS`` (or, for an object that
lives inside another, such as a session's resource, to ``NESTED``) and, if its list takes a
``page``, its listing to ``PAGE_SOURCES``. Where a resource's tests mean more by a kind than
``CREATORS`` makes (the work queue's environment holds work), ``IN_RESOURCE`` says so.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

import anthropic
import httpx

MODEL = "claude-opus-4-7"
BUDGET = {"type": "limit", "max_list_cost": {"amount": "2500", "currency": "USD"}}
# How long setup waits for the server to queue the work a session asked for.
QUEUE_WAIT_SECONDS = 30.0


def _post(
    http: httpx.Client, path: str, body: dict[str, Any] | None, headers: dict[str, str] | None = None
) -> dict[str, Any]:
    response = http.post(path, json=body, headers=headers)
    if response.status_code >= 300:
        raise RuntimeError(f"conformance setup: POST {path} → {response.status_code} {response.text[:300]}")
    return response.json()


def _get(http: httpx.Client, path: str, headers: dict[str, str] | None = None, **params: Any) -> Any:
    response = http.get(path, params=params, headers=headers)
    if response.status_code >= 300:
        raise RuntimeError(f"conformance setup: GET {path} → {response.status_code} {response.text[:300]}")
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


def _vault(http: httpx.Client) -> str:
    return _post(http, "/v1/vaults", {"display_name": "conformance vault"})["id"]


def _credential(http: httpx.Client, vault_id: str) -> str:
    # mcp_oauth with client_secret_basic refresh settings: the kind the SDK's all-params update
    # changes. Its server is a closed local port, so mcp_oauth_validate answers at once.
    auth = {
        "type": "mcp_oauth",
        "mcp_server_url": "http://127.0.0.1:9/mcp",
        "access_token": "conformance-access-token",
        "refresh": {
            "client_id": "conformance",
            "refresh_token": "conformance-refresh-token",
            "token_endpoint": "http://127.0.0.1:9/token",
            "token_endpoint_auth": {"type": "client_secret_basic", "client_secret": "conformance-secret"},
        },
    }
    return _post(http, f"/v1/vaults/{vault_id}/credentials", {"auth": auth})["id"]


# -- memory stores ------------------------------------------------------------------------------
# A test's memory holds this content, so the hash the rewrite puts in its preconditions holds.
MEMORY_CONTENT = "content"
MEMORY_CONTENT_SHA256 = hashlib.sha256(MEMORY_CONTENT.encode()).hexdigest()


def _memory_store(http: httpx.Client) -> str:
    return _post(http, "/v1/memory_stores", {"name": "conformance memory"})["id"]


def _memory(http: httpx.Client, store_id: str) -> str:
    return _post(http, f"/v1/memory_stores/{store_id}/memories", {"path": f"/{uuid.uuid4().hex}.md", "content": MEMORY_CONTENT})["id"]


def _memory_version(http: httpx.Client, store_id: str) -> str:
    """A version that is not its memory's current one (the current one cannot be redacted)."""
    memory = _post(http, f"/v1/memory_stores/{store_id}/memories", {"path": f"/{uuid.uuid4().hex}.md", "content": "first"})
    _post(http, f"/v1/memory_stores/{store_id}/memories/{memory['id']}", {"content": "second"})
    return str(memory["memory_version_id"])


def _memories_listing(kind: str) -> Callable[[httpx.Client], str]:
    def listing(http: httpx.Client) -> str:
        store_id = _memory_store(http)
        _memory(http, store_id)
        _memory(http, store_id)
        return f"/v1/memory_stores/{store_id}/{kind}"

    return listing


def _credentials_listing(http: httpx.Client) -> str:
    vault_id = _vault(http)
    body = {"auth": {"type": "static_bearer", "mcp_server_url": "http://127.0.0.1:9/other", "token": "conformance-token"}}
    _credential(http, vault_id)
    _post(http, f"/v1/vaults/{vault_id}/credentials", body)
    return f"/v1/vaults/{vault_id}/credentials"


# -- the work queue ----------------------------------------------------------------------------
# A work item exists only once a session's agent calls a built-in tool. The agents below run on
# ``tool_model``: a model card the harness aims at a fake provider that calls ``bash`` (conftest).

tool_model: str | None = None
# environment id → the key its worker holds (made with each work environment, for the run)
worker_keys: dict[str, str] = {}
TOOLSET = {"type": "agent_toolset_20260401"}
RUN_A_TOOL = {"type": "user.message", "content": [{"type": "text", "text": "run a command"}]}


def _tool_agent(http: httpx.Client) -> str:
    if tool_model is None:
        raise RuntimeError("conformance setup: no tool-calling model (the conftest's tool_model fixture sets it)")
    return _post(http, "/v1/agents", {"name": "conformance tool agent", "model": tool_model, "tools": [TOOLSET]})["id"]


def _queue_work(http: httpx.Client, environment_id: str, depth: int) -> None:
    """A session on the environment whose agent calls ``bash``: the item it asks for is queued
    once the turn ran (the queue then holds ``depth`` unclaimed items)."""
    session_id = _post(http, "/v1/sessions", {"agent": _tool_agent(http), "environment_id": environment_id})["id"]
    _post(http, f"/v1/sessions/{session_id}/events", {"events": [RUN_A_TOOL]})
    deadline = time.monotonic() + QUEUE_WAIT_SECONDS
    while _get(http, f"/v1/environments/{environment_id}/work/stats")["depth"] < depth:
        if time.monotonic() > deadline:
            events = _get(http, f"/v1/sessions/{session_id}/events", limit=50)["data"]
            raise RuntimeError(
                f"conformance setup: session {session_id}'s tool call queued no work in {QUEUE_WAIT_SECONDS:g} s; "
                f"its events: {[event['type'] for event in events]}"
            )
        time.sleep(0.02)


def _work_environment(http: httpx.Client, items: int = 1) -> str:
    """A self-hosted environment (the kind whose workers run outside Agentry, as the SDK's
    work API is for), a key for its worker, and ``items`` queued work items."""
    body = {"name": "conformance work queue", "config": {"type": "self_hosted"}}
    environment_id = _post(http, "/v1/environments", body)["id"]
    key = _post(http, f"/v1/environments/{environment_id}/keys", {"name": "conformance worker"})["key"]
    worker_keys[environment_id] = key
    for depth in range(1, items + 1):
        _queue_work(http, environment_id, depth)
    return environment_id


def _as_worker(environment_id: str) -> dict[str, str]:
    # The key's form tells the server it is an environment key, in whichever header it comes.
    return {"x-api-key": worker_keys[environment_id]}


def _claimed_work(http: httpx.Client, environment_id: str) -> str:
    """The environment's queued item, claimed and acknowledged by its worker: the state a
    worker's item is in whenever it calls about it (acknowledge again, heartbeat, stop)."""
    base = f"/v1/environments/{environment_id}/work"
    work = _get(http, f"{base}/poll", _as_worker(environment_id), block_ms=999)
    if work is None:
        raise RuntimeError(f"conformance setup: {base}/poll found no item in a queue that held one")
    _post(http, f"{base}/{work['id']}/ack", None, _as_worker(environment_id))
    return str(work["id"])


# -- people ------------------------------------------------------------------------------------


def _invite(http: httpx.Client) -> str:
    return _post(http, "/v1/organizations/invites", {"email": f"{uuid.uuid4().hex}@example.com", "role": "user"})["id"]


def _invitee(http: httpx.Client) -> str:
    """An address no one was invited by yet (an email with a pending invite is refused)."""
    return f"{uuid.uuid4().hex}@example.com"


def _user(http: httpx.Client) -> str:
    """A person of the organization (an invite accepted): a member of the default workspace."""
    invite = _post(http, "/v1/organizations/invites", {"email": f"{uuid.uuid4().hex}@example.com", "role": "user"})
    return str(_post(http, "/v1/auth/invites/accept", {"token": invite["token"], "password": "conformance"})["id"])


def _outsider(http: httpx.Client) -> str:
    """A person in no workspace yet (one a test adds to a workspace)."""
    user_id = _user(http)
    response = http.delete(f"/v1/organizations/workspaces/default/members/{user_id}")
    if response.status_code != 200:
        raise RuntimeError(f"conformance setup: could not take {user_id} out of default: {response.text[:300]}")
    return user_id


def _workspace(http: httpx.Client) -> str:
    return str(_post(http, "/v1/organizations/workspaces", {"name": "conformance"})["id"])


def _api_key(http: httpx.Client) -> str:
    return str(_post(http, "/v1/organizations/api_keys", {"name": "conformance"})["id"])


def _webhook_endpoint(http: httpx.Client) -> str:
    # Kinds Agentry never sends, at a closed local port: nothing is ever delivered.
    body = {"enabled_events": ["user_profile.program_status_updated"], "url": "http://127.0.0.1:9/webhooks"}
    return str(_post(http, "/v1/organizations/webhooks", body)["id"])


# -- skills --------------------------------------------------------------------------------

# skill id → its name (a new version's SKILL.md must name the skill as its first upload did)
skill_names: dict[str, str] = {}


def _skill_upload(name: str) -> list[tuple[str, tuple[str, bytes, str]]]:
    return [("files[]", (f"{name}/SKILL.md", f"---\nname: {name}\ndescription: conformance\n---\n".encode(), "text/markdown"))]


def _skill(http: httpx.Client) -> str:
    """A skill with two versions: a test that deletes ``latest`` leaves it its other one."""
    name = f"conformance-{uuid.uuid4().hex[:12]}"
    response = http.post("/v1/skills", files=_skill_upload(name))
    if response.status_code >= 300:
        raise RuntimeError(f"conformance setup: POST /v1/skills → {response.status_code} {response.text[:300]}")
    skill_id = str(response.json()["id"])
    if http.post(f"/v1/skills/{skill_id}/versions", files=_skill_upload(name)).status_code >= 300:
        raise RuntimeError(f"conformance setup: could not add a version to {skill_id}")
    skill_names[skill_id] = name
    return skill_id


def real_skill_files() -> list[tuple[str, bytes, str]]:
    """The files of an upload: a SKILL.md in the folder of the test's skill (a new version's),
    else of a fresh name (a new skill's: names are unique)."""
    named = [skill_names[real] for placeholder, real in _objects().created.items() if placeholder.startswith("skill_")]
    name = named[-1] if named else f"conformance-{uuid.uuid4().hex[:12]}"
    return [file for _, file in _skill_upload(name)]
def _file(http: httpx.Client) -> str:
    # The bytes the SDK's download tests expect (their mocked answer): ``{"foo": "bar"}``.
    response = http.post("/v1/files", files={"file": ("conformance.json", b'{"foo": "bar"}', "application/json")})
    if response.status_code >= 300:
        raise RuntimeError(f"conformance setup: POST /v1/files → {response.status_code} {response.text[:300]}")
    return str(response.json()["id"])


# id prefix → how to make a real object of that kind
CREATORS: dict[str, Callable[[httpx.Client], str]] = {
    "agent": _agent,
    "model": _agent,  # an agent is a model (GET /v1/models lists it, by its id)
    "env": _environment,
    "sesn": _session,
    "vlt": _vault,
    "user": _user,
    "invite": _invite,
    "invitee": _invitee,  # not an id: a fresh address to invite
    "outsider": _outsider,
    "wrkspc": _workspace,
    "home": lambda http: "default",  # where every other creator makes its objects
    "apikey": _api_key,
    "whep": _webhook_endpoint,
    "skill": _skill,
    "memstore": _memory_store,
    "file": _file,
}

# id prefix of an object that lives inside another → (the container's prefix, how to make one
# in it). The container is the test's own object of that kind (a generated test names one).
NESTED: dict[str, tuple[str, Callable[[httpx.Client, str], str]]] = {
    "sesrsc": ("sesn", _session_resource),
    "work": ("env", _claimed_work),
    "vcrd": ("vlt", _credential),
    "mem": ("memstore", _memory),
    "memver": ("memstore", _memory_version),
}

# resource → kinds its tests mean more by than CREATORS makes. The work queue's tests name the
# environment whose queue they work on: one with an item in it (a poll hands it out, a list
# shows it; a test that names an item gets that one, claimed).
IN_RESOURCE: dict[str, dict[str, Callable[[httpx.Client], str]]] = {
    "environments.work": {"env": _work_environment},
    # A workspace's members are the default workspace's people (the ones ``user`` makes).
    "organization.workspaces.members": {"wrkspc": lambda http: "default"},
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
    _post(http, f"/v1/sessions/{session_id}/resources", {"type": "file", "file_id": _file(http)})
    return f"/v1/sessions/{session_id}/resources"


def _work_items(http: httpx.Client) -> tuple[str, dict[str, str]]:
    environment_id = _work_environment(http, items=2)
    return f"/v1/environments/{environment_id}/work", _as_worker(environment_id)  # only its worker lists


# -- usage -------------------------------------------------------------------------------------

BUCKETS = "starting_at=2026-01-01T00:00:00Z&ending_at=2026-01-03T00:00:00Z"  # two days: two buckets


def _usage_rows(report: str) -> Callable[[httpx.Client], str]:
    """A row report (``usage`` or ``cost``) over two sessions whose model answered, grouped by
    session: two rows."""
    return lambda http: _sessions_with_usage(http, f"/v1/organizations/analytics/{report}")


def _sessions_with_usage(http: httpx.Client, report: str) -> str:
    for _ in range(2):
        session_id = _post(http, "/v1/sessions", {"agent": _tool_agent(http), "environment_id": _environment(http)})["id"]
        _post(http, f"/v1/sessions/{session_id}/events", {"events": [RUN_A_TOOL]})
    since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 86_400))
    query = {"starting_at": since, "group_by[]": "session_id"}
    deadline = time.monotonic() + QUEUE_WAIT_SECONDS
    while len(_get(http, report, **query)["data"]) < 2:
        if time.monotonic() > deadline:
            raise RuntimeError(f"conformance setup: no usage of two sessions in {QUEUE_WAIT_SECONDS:g} s")
        time.sleep(0.05)
    return str(httpx.URL(report, params=query))


def _twice(create: Callable[[httpx.Client], str], path: str) -> Callable[[httpx.Client], str]:
    def listing(http: httpx.Client) -> str:
        create(http)
        create(http)
        return path

    return listing


# resource (as the SDK names it: client.beta.<resource>.list) → a listing with a second page:
# its path, and the headers to read it with when an API key may not.
PAGE_SOURCES: dict[str, Callable[[httpx.Client], str | tuple[str, dict[str, str]]]] = {
    "organization.rate_limits": lambda http: "/v1/organizations/rate_limits",
    # A position in the entries, the same for every workspace: the inherited ones are two.
    "organization.workspaces.rate_limits": lambda http: "/v1/organizations/workspaces/default/rate_limits?include_inherited=true",
    "agents": _twice(_agent, "/v1/agents"),
    "agents.versions": _agent_versions,
    "environments": _twice(_environment, "/v1/environments"),
    "environments.work": _work_items,
    "sessions": _twice(_session, "/v1/sessions"),
    "sessions.events": _session_events,
    "sessions.resources": _session_resources,
    "vaults": _twice(_vault, "/v1/vaults"),
    "vaults.credentials": _credentials_listing,
    "memory_stores": _twice(_memory_store, "/v1/memory_stores"),
    "memory_stores.memories": _memories_listing("memories"),
    "memory_stores.memory_versions": _memories_listing("memory_versions"),
    "files": _twice(_file, "/v1/files"),
    "organization.analytics.usage_report": lambda http: f"/v1/organizations/analytics/usage_report?{BUCKETS}",
    "organization.analytics.cost_report": lambda http: f"/v1/organizations/analytics/cost_report?{BUCKETS}",
    "organization.analytics.usage": _usage_rows("usage"),
    "organization.analytics.cost": _usage_rows("cost"),
    "skills": _twice(_skill, "/v1/skills"),
    "skills.versions": lambda http: f"/v1/skills/{_skill(http)}/versions",
}


class RealObjects:
    """The objects of one test, keyed by the placeholder that stands for each."""

    def __init__(self, http: httpx.Client, page_tokens: dict[str, str], resource: str | None = None) -> None:
        self._http = http
        self._page_tokens = page_tokens
        self._creators = {**CREATORS, **IN_RESOURCE.get(resource or "", {})}
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
                self._ids[placeholder] = self._unnamed.pop(kind, None) or self._creators[kind](self._http)
        return self._ids[placeholder]

    def _container(self, kind: str) -> str:
        """The test's object of ``kind``: the one it named, else one made now and kept for the
        placeholder the test names next (tests name an item's id before its container's)."""
        named = [real for placeholder, real in self._ids.items() if placeholder.split("_", 1)[0] == kind]
        if named:
            return named[-1]
        if kind not in self._unnamed:
            self._unnamed[kind] = self._creators[kind](self._http)
        return self._unnamed[kind]

    def worker_key(self) -> str:
        """The key of the test's environment's worker."""
        return worker_keys[self._container("env")]

    def page_for(self, resource: str) -> str:
        if resource not in self._page_tokens:
            source = PAGE_SOURCES[resource](self._http)
            path, headers = (source, None) if isinstance(source, str) else source
            response = self._http.get(httpx.URL(path).copy_merge_params({"limit": 1}), headers=headers)
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


Client = TypeVar("Client", anthropic.Anthropic, anthropic.AsyncAnthropic)


def worker_client(client: Client) -> Client:
    """``client`` as the worker of the test's environment holds it: the same client in the
    same mode, authenticated by the environment's key instead of the API key."""
    worker = client.with_options(auth_token=_objects().worker_key())
    # copy() leaves strictness at its default: keep the mode under test.
    worker._strict_response_validation = client._strict_response_validation
    return worker
