"""OpenAI-style chat completions as session turns (spec §F.2).

A completion is a turn like any other: its messages become the session's events, the runtime
takes the turn (the agent's system prompt, model and tools; or, for a model card, the model
alone), and the reply is read back from the session's log (``application.chat_replies``).

- ``model`` names an agent (its id, ``agent:<name>``) or a model card's ``model_id``;
  ``app_id`` (Helix's way) names the agent whatever ``model`` says.
- Without a session to continue, every completion starts a session and records the whole
  conversation it was sent: ``system``/``developer`` → ``system.message``, ``user`` →
  ``user.message``, ``assistant`` → ``agent.message`` and one ``agent.custom_tool_use`` per
  tool call, ``tool`` → ``user.custom_tool_result``.
- Continuing a session (its id in the ``Agentry-Session-Id`` header), the conversation up to
  the request's last ``assistant`` message is the session's own: only the messages after it
  are recorded, and a ``tool`` message there answers one of the session's pending calls.
- Sampling (``temperature``, ``stop``), the token cap and the request's own functions are the
  session's completion options for the turns from then on; they are not conversation.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from application.agents import AgentService
from application.commands import Commands, load_as
from application.environments import DEFAULT_CONFIG, EnvironmentService
from application.errors import Conflict, Invalid, NotFound
from application.ids import new_id
from application.model_catalog import ModelCatalog, ModelChoice
from application.ports import EventStore
from application.runtime.tools import toolbox
from application.sessions import SESSIONS, render
from application.tenancy import Principal
from domain.environments import Environment
from domain.ids import stream_id
from domain.sessions import CUSTOM_RESULT, Session

SOURCE = "chat_completions"
_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


@dataclass(frozen=True)
class ChatTurn:
    """Where the reply will be recorded: the session's events after ``after_seq``."""

    session_id: str
    after_seq: int


# Archiving the tenant's chat environment moves completions on to the next one.
ENVIRONMENT_GENERATIONS = 64


def chat_environment_id(tenant_id: str, generation: int = 0) -> str:
    """The tenant's environment for completions that name none: one per tenant at a time,
    found by its id (derived from the tenant), so concurrent first completions make one."""
    number = int.from_bytes(hashlib.sha256(f"chat-completions/{tenant_id}/{generation}".encode()).digest(), "big")
    digits = []
    for _ in range(24):
        number, digit = divmod(number, 62)
        digits.append(_BASE62[digit])
    return "env_" + "".join(digits)


def card_agent(choice: ModelChoice) -> dict[str, Any]:
    """The agent a plain proxied completion's session pins: the model card's model, no
    system prompt and no tools of its own."""
    return {
        "type": "agent",
        "id": choice.model_card_id,
        "name": choice.model_id,
        "description": f"Plain completions of {choice.model_id} through its model card",
        "model": {"id": choice.model_id},
        "system": None,
        "tools": [],
        "mcp_servers": [],
        "skills": [],
        "multiagent": None,
        "execution_identity": {"type": "service_account"},
        "version": 1,
    }


def request_tools(tools: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """The request's functions as custom tools (the caller runs them)."""
    custom = []
    for tool in tools or []:
        function = tool["function"]
        custom.append(
            {
                "type": "custom",
                "name": function["name"],
                "description": function.get("description") or "",
                "input_schema": function.get("parameters") or {"type": "object", "properties": {}},
            }
        )
    return custom


def completion_options(body: dict[str, Any]) -> dict[str, Any]:
    options: dict[str, Any] = {}
    if body.get("temperature") is not None:
        options["temperature"] = body["temperature"]
    stop = body.get("stop")
    if stop:
        options["stop"] = [stop] if isinstance(stop, str) else list(stop)
    cap = body.get("max_completion_tokens") or body.get("max_tokens")
    if cap:
        options["max_tokens"] = cap
    tools = request_tools(body.get("tools")) if body.get("tool_choice") != "none" else []
    if tools:
        options["tools"] = tools
    return options


def _text(content: Any, where: str) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    parts = []
    for part in content:
        if part.get("type") == "text":
            parts.append(part.get("text") or "")
        elif part.get("type") == "refusal":
            parts.append(part.get("refusal") or "")
        else:
            raise Invalid(f"{where}: content parts of type {part.get('type')!r} are not accepted here; send text")
    return "".join(parts)


IMAGE_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp")


def _image_source(url: str, where: str) -> dict[str, Any]:
    if url.startswith(("https://", "http://")):
        return {"type": "url", "url": url}
    if not url.startswith("data:"):
        raise Invalid(f"{where}: an image_url must be an http(s) URL or a base64 data URL")
    header, _, data = url[5:].partition(",")
    media_type, _, encoding = header.partition(";")
    if encoding != "base64" or not data:
        raise Invalid(f"{where}: an image data URL must be base64 (data:image/png;base64,…)")
    if media_type not in IMAGE_TYPES:
        raise Invalid(f"{where}: images must be one of {', '.join(IMAGE_TYPES)}, not {media_type or 'untyped'!r}")
    try:
        base64.b64decode(data, validate=True)
    except ValueError:
        raise Invalid(f"{where}: the image data URL holds no valid base64") from None
    return {"type": "base64", "media_type": media_type, "data": data}


def _user_content(content: Any, where: str) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    if isinstance(content, str):
        if content:
            blocks.append({"type": "text", "text": content})
    else:
        for index, part in enumerate(content or []):
            kind = part.get("type")
            if kind == "text":
                if part.get("text"):
                    blocks.append({"type": "text", "text": part["text"]})
            elif kind == "image_url":
                blocks.append({"type": "image", "source": _image_source(part["image_url"]["url"], f"{where}[{index}]")})
            else:
                raise Invalid(f"{where}[{index}]: content parts of type {kind!r} are not supported; send text or image_url")
    if not blocks:
        raise Invalid(f"{where}: a user message needs some content")
    return blocks


def _arguments(arguments: str, where: str) -> dict[str, Any]:
    try:
        parsed = orjson.loads(arguments) if arguments.strip() else {}
    except orjson.JSONDecodeError:
        raise Invalid(f"{where}: function.arguments must be a JSON object") from None
    if not isinstance(parsed, dict):
        raise Invalid(f"{where}: function.arguments must be a JSON object")
    return parsed


class ChatCompletions:
    def __init__(
        self,
        store: EventStore,
        catalog: ModelCatalog,
        agents: AgentService,
        environments: EnvironmentService,
        on_user_turn: Callable[[str], None],
    ) -> None:
        self._store = store
        self._catalog = catalog
        self._agents = agents
        self._environments = environments
        self._on_user_turn = on_user_turn
        self._commands = Commands(store, SESSIONS, render)

    def start(
        self,
        who: Principal,
        body: dict[str, Any],
        session_id: str | None = None,
        app_id: str | None = None,
        environment_id: str | None = None,
    ) -> ChatTurn:
        """Records the completion's messages and options; the runtime takes the turn."""
        messages = body["messages"]
        last = messages[-1]["role"]
        if last not in ("user", "tool"):
            raise Invalid(f"messages: the last message must be from the user or a tool, not {last!r}")
        options = completion_options(body)
        if session_id:
            turn = self._continue(who, session_id, messages, options)
        else:
            turn = self._begin(who, body["model"], app_id, environment_id, messages, options)
        self._on_user_turn(turn.session_id)
        return turn

    # -- a new session ----------------------------------------------------------------------

    def _begin(
        self,
        who: Principal,
        model: str,
        app_id: str | None,
        environment_id: str | None,
        messages: list[dict[str, Any]],
        options: dict[str, Any],
    ) -> ChatTurn:
        choice = self._catalog.resolve(who, app_id or model)
        if app_id and choice.kind != "agent":
            raise NotFound(f"app_id {app_id!r} names no agent")
        if choice.kind == "agent":
            agent = self._agents.pinned(who, choice.agent_id or "", None)
        else:
            agent = card_agent(choice)
        self._check_tool_names(agent, options)
        environment = self._environment(who, environment_id)
        session = Session(
            session_id=new_id("sesn"),
            tenant_id=who.tenant_id,
            agent=agent,
            environment_id=environment,
            details={"title": f"Chat completion: {app_id or model}"[:200], "metadata": {"source": SOURCE}},
        )
        session.choose_completion_options(options)
        self._record(session, messages, {})
        self._commands.create(session)
        return ChatTurn(session.session_id, session.last_seq)

    def _environment(self, who: Principal, environment_id: str | None) -> str:
        if environment_id:
            environment = self._environments.load(who, environment_id)
            if environment.archived_at is not None:
                raise Invalid(f"environment {environment_id} is archived")
            return environment.environment_id
        for generation in range(ENVIRONMENT_GENERATIONS):
            default = chat_environment_id(who.tenant_id, generation)
            existing = load_as(self._store, stream_id(default), Environment)
            if existing is None:
                existing = self._make_environment(who, default)
            if existing.archived_at is None:
                return default
        raise Invalid("every chat completions environment of this tenant is archived; name one with Agentry-Environment-Id")

    def _make_environment(self, who: Principal, environment_id: str) -> Environment:
        definition = {
            "name": "chat-completions",
            "description": "Made by Agentry for chat completions that name no environment (Agentry-Environment-Id).",
            "metadata": {},
            "scope": None,
            "config": DEFAULT_CONFIG,
        }
        made = Environment(environment_id=environment_id, tenant_id=who.tenant_id, definition=definition)
        try:
            self._store.save(made)
        except Conflict:
            # Another completion made it first: use that one.
            found = load_as(self._store, stream_id(environment_id), Environment)
            assert found is not None
            return found
        return made

    # -- an existing session ----------------------------------------------------------------

    def _continue(
        self, who: Principal, session_id: str, messages: list[dict[str, Any]], options: dict[str, Any]
    ) -> ChatTurn:
        last_assistant = max((i for i, m in enumerate(messages) if m["role"] == "assistant"), default=-1)
        tail = messages[last_assistant + 1 :]
        offset = last_assistant + 1

        turns: list[ChatTurn] = []  # the attempt that was saved (a lost race runs it again)

        def record(session: Session) -> None:
            if session.archived_at is not None:
                raise Invalid(f"session {session_id} is archived")
            if session.status in ("running", "rescheduling"):
                raise Conflict(f"session {session_id} is still taking a turn; wait for it to go idle", retryable=False)
            if session.status == "terminated":
                raise Invalid(f"session {session_id} is terminated")
            if "tools" not in options and session.completion_options.get("tools"):
                # The transcript holds calls of those functions: a provider wants them defined.
                options["tools"] = session.completion_options["tools"]
            self._check_tool_names(session.agent, options)
            pending = {key for key, kind in session.blockers.items() if kind == CUSTOM_RESULT}
            others = sorted(key for key, kind in session.blockers.items() if kind != CUSTOM_RESULT)
            if others and any(message["role"] == "tool" for message in tail):
                raise Conflict(
                    f"session {session_id} also waits for tool confirmations ({', '.join(others)}): answer them "
                    f"with POST /v1/sessions/{session_id}/events (user.tool_confirmation), then send the tool results",
                    retryable=False,
                )
            session.choose_completion_options(options)
            self._record(session, tail, {key: key for key in pending}, offset)
            turns[:] = [ChatTurn(session.session_id, session.last_seq)]

        self._commands.change(who, session_id, record)
        return turns[0]

    # -- recording --------------------------------------------------------------------------

    @staticmethod
    def _check_tool_names(agent: dict[str, Any], options: dict[str, Any]) -> None:
        own = set(toolbox(agent).routes)  # built-in and custom alike: one name, one route
        names = [tool["name"] for tool in options.get("tools") or []]
        clash = sorted(own.intersection(names))
        if clash:
            raise Invalid(f"tools: {clash[0]!r} is one of the agent's own tools; name the function differently")
        if len(set(names)) != len(names):
            raise Invalid("tools: function names must be unique")

    @staticmethod
    def _record(session: Session, messages: list[dict[str, Any]], calls: dict[str, str], offset: int = 0) -> None:
        """The messages as the session's events, in order. ``calls`` maps a tool call id the
        caller knows to the ``agent.custom_tool_use`` event it answers."""
        answered: set[str] = set()
        for index, message in enumerate(messages, start=offset):
            where = f"messages[{index}]"
            role = message["role"]
            if role in ("system", "developer"):
                text = _text(message.get("content"), f"{where}.content")
                if text.strip():
                    session.accept_user_event("system.message", new_id("sevt"), {"content": [{"type": "text", "text": text}]})
            elif role == "user":
                content = _user_content(message.get("content"), f"{where}.content")
                session.accept_user_event("user.message", new_id("sevt"), {"content": content})
            elif role == "assistant":
                text = _text(message.get("content"), f"{where}.content")
                if text:
                    session.record("agent.message", new_id("sevt"), {"content": [{"type": "text", "text": text}]})
                for number, call in enumerate(message.get("tool_calls") or []):
                    if call["id"] in calls:
                        raise Invalid(f"{where}.tool_calls[{number}].id: {call['id']!r} is used by another tool call")
                    event_id = new_id("sevt")
                    arguments = _arguments(call["function"]["arguments"], f"{where}.tool_calls[{number}]")
                    session.record("agent.custom_tool_use", event_id, {"name": call["function"]["name"], "input": arguments})
                    calls[call["id"]] = event_id
            else:  # tool
                call_id = message["tool_call_id"]
                use_id = calls.get(call_id)
                if use_id is None or use_id in answered:
                    raise Invalid(f"{where}.tool_call_id: {call_id!r} answers no tool call awaiting a result")
                answered.add(use_id)
                text = _text(message.get("content"), f"{where}.content")
                session.accept_user_event(
                    "user.custom_tool_result",
                    new_id("sevt"),
                    {"custom_tool_use_id": use_id, "content": [{"type": "text", "text": text or "(no output)"}]},
                )
        waiting = [call_id for call_id, use_id in calls.items() if session.blockers.get(use_id) == CUSTOM_RESULT]
        if waiting:
            raise Invalid(f"messages: the tool call {waiting[0]!r} has no tool message with its result")
        if not session.start_turn(new_id("sevt"), span_id=new_id("sevt")):
            # Nothing for the agent to answer yet: a reply would never come.
            open_calls = ", ".join(sorted(session.blockers)) or "none"
            raise Conflict(
                f"session {session.session_id} cannot take a turn: it waits for the results or confirmations of "
                f"tool calls {open_calls}; send the results (or a new user message)",
                retryable=False,
            )
