"""The turn loop (spec §A): model requests, tool calls, confirmations, interrupts, retries,
usage and budget, for one session driven by one worker at a time.

Every step is a load → decide → save on the session, retried on a race, so a turn's events
land exactly once. A model request's output is recorded only while its span is still the
open one: a worker that lost its lease (another closed the span and asked again) records
nothing, so one provider request never leaves two answers in the log.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, Protocol

from application.commands import load_as
from application.errors import Conflict
from application.ids import new_id
from application.ports import (
    EventStore,
    McpCallOutcome,
    McpCancelled,
    ModelProvider,
    ModelResponse,
    ModelUsage,
    ProviderCancelled,
    ProviderDelta,
    ProviderError,
    ProviderTarget,
    SecretUnavailable,
    TextDelta,
    ThinkingStarted,
)
from application.retry import retry_on_race
from application.runtime import knowledge, system_prompt
from application.runtime.dispatch import CancelToken
from application.runtime.knowledge import KnowledgeBaseNote, KnowledgeSearcher, SkillCatalogue, SkillNote
from application.runtime.mcp import McpFailure, McpTools
from application.runtime.models import ModelResolver, missing_provider_message
from application.runtime.outcomes import Verdict, grading_request, read_verdict
from application.runtime.pricing import cost_micros
from application.runtime.tools import NOT_RUN, WORKER_TOOLS, Toolbox, evaluation, mcp_toolsets, toolbox
from application.runtime.transcript import TranscriptCache
from application.work_queue import WorkerWatch, hosting_of, new_work_item, released_item
from domain.errors import DomainError
from domain.ids import stream_id
from domain.sessions import WORKER_RESULT, Session, requires_action, tool_error
from domain.work_items import WorkItem

log = logging.getLogger("agentry.runtime")

# Provider error kinds → session.error types (spec §A.5).
ERROR_TYPES = {
    "overloaded": "model_overloaded_error",
    "rate_limited": "model_rate_limited_error",
    "request_failed": "model_request_failed_error",
    "billing": "billing_error",
    "authentication": "model_request_failed_error",
    "configuration": "model_request_failed_error",
    "invalid_request": "model_request_failed_error",
}
MAX_RETRY_AFTER_SECONDS = 30.0
ALWAYS_ALLOW = {"type": "always_allow"}
# However the provider paces us, a turn gives up retrying within a minute.
MAX_RETRY_SECONDS = 55.0


class PreviewSink(Protocol):
    """Where streamed previews go (the live hub): never stored."""

    def preview(self, tenant_id: str, session_id: str, event_type: str, frame: dict[str, Any]) -> None: ...


class NoPreviews:
    def preview(self, tenant_id: str, session_id: str, event_type: str, frame: dict[str, Any]) -> None:
        pass


@dataclass(frozen=True)
class PromptNotes:
    """What the system prompt says of the agent's skills and knowledge bases, read once per
    turn (every request of a turn sends the same prompt)."""

    skills: tuple[SkillNote, ...] = ()
    knowledge: tuple[KnowledgeBaseNote, ...] = ()


@dataclass(frozen=True)
class TurnPolicy:
    retries: int = 5
    retry_base_seconds: float = 1.0
    max_model_requests: int = 50
    max_tokens: int = 8192


class _Stop(Exception):
    """The turn is over (idle, terminated, interrupted or handed to another worker)."""


class SessionRuntime:
    def __init__(
        self,
        store: EventStore,
        provider: ModelProvider,
        models: ModelResolver,
        previews: PreviewSink | None = None,
        policy: TurnPolicy | None = None,
        workers: WorkerWatch | None = None,
        on_queued: Callable[[], None] = lambda: None,
        mcp: McpTools | None = None,
        knowledge: KnowledgeSearcher | None = None,
        skills: SkillCatalogue | None = None,
    ) -> None:
        self._store = store
        self._provider = provider
        self._models = models
        self._previews = previews or NoPreviews()
        self._policy = policy or TurnPolicy()
        self._transcripts = TranscriptCache()
        self._workers = workers
        self._on_queued = on_queued
        self._mcp = mcp
        self._knowledge = knowledge
        self._skills = skills

    def take_turns(self, session_id: str, cancel: CancelToken | None = None) -> None:
        """Drives the session while it owes a turn."""
        cancel = cancel or CancelToken()
        while not cancel.cancelled:  # an interrupted turn hands over; the dispatcher starts afresh
            session = self._load(session_id)
            if session is not None and not session.wants_turn and self._worker_vanished(session):
                why = self._workers.vanished_message  # type: ignore[union-attr]
                self._write(session_id, partial(Session.abandon_worker_calls, new_event_id=new_id, message=why))
                continue
            if session is None or not session.wants_turn:
                return
            try:
                self._turn(session, cancel)
            except _Stop:
                return
            except Exception as failure:  # a defect must not leave the session running undriven
                log.exception("session %s: the turn failed", session_id)
                with contextlib.suppress(_Stop):
                    self._report_error(
                        session_id, "unknown_error", f"the turn failed inside Agentry ({type(failure).__name__})", "exhausted"
                    )
                return

    # -- one turn ----------------------------------------------------------------------

    def _turn(self, session: Session, cancel: CancelToken) -> None:
        session_id = session.session_id
        handle = (session.agent.get("model") or {}).get("id") or ""
        try:
            target = self._models.target_for(session.tenant_id, handle)
        except SecretUnavailable as unreadable:
            self._report_error(
                session_id, "model_request_failed_error", f"the model card for {handle!r} cannot be used: {unreadable}", "exhausted"
            )
            return
        if target is None:
            self._report_error(session_id, "model_request_failed_error", missing_provider_message(handle), "exhausted")
            return
        offered = toolbox(session.agent, session.completion_options.get("tools"), searchable=self._knowledge is not None)
        tools = self._with_mcp_tools(session, offered, cancel)
        notes = self._prompt_notes(session, tools)
        requests = 0
        current = session
        while True:
            # ``current`` is the session as this turn last saved it; an interrupt sent since
            # reaches this process as a cancellation (and other processes' drivers at their
            # next step).
            if not current.wants_turn:
                return
            if current.interrupt_requested or cancel.cancelled:
                self._interrupted(session_id, cancel)
                return
            if current.over_budget:
                self._write(session_id, self._budget_reached)
                return
            if requests >= self._policy.max_model_requests:
                self._report_error(
                    session_id,
                    "tool_use_limit_reached_error",
                    f"the turn made {requests} model requests, the most one turn may make",
                    "exhausted",
                )
                return
            if current.mcp_calls:
                current = self._settle_mcp_calls(current, cancel)
                if not current.wants_turn:
                    return
            requests += 1
            step, response, current = self._request(current, target, tools, notes, cancel)
            if current.started_mcp_calls:  # the calls this response made, allowed by policy
                current = self._make_mcp_calls(current, current.started_mcp_calls, cancel)
            if step != "grade":
                if step == "continue":
                    continue
                return  # done or blocked: idle was recorded with the step's output
            outcome = current.outcome_to_grade or {}
            if self._grade(current, target, outcome, cancel) in ("needs_revision", "max_iterations_reached"):
                current = self._require(session_id)
                continue  # a revision, or one final acknowledgment
            if self._write(session_id, partial(self._finish, response=response)):
                return
            current = self._require(session_id)  # a message arrived while the work was graded

    def _grade(self, session: Session, target: ProviderTarget, outcome: dict[str, Any], cancel: CancelToken) -> str:
        """One evaluation of the turn's work: its spans recorded, its verdict returned."""
        session_id = session.session_id
        start_id = new_id("sevt")
        iteration = outcome["iteration"]
        marker = {"outcome_id": outcome["outcome_id"], "iteration": iteration}
        self._write(session_id, lambda s: s.record("span.outcome_evaluation_start", start_id, marker))
        transcript = self._transcripts.get(session_id)
        transcript.feed(self._store.read_stream(stream_id(session_id), after_version=transcript.version))
        request = grading_request(outcome.get("rubric"), transcript.agent_text_since(outcome["since_seq"]))
        usage = ModelUsage()
        try:
            response = self._provider.stream(target, request, lambda delta: None, cancel)
            usage = response.usage
            verdict = read_verdict(response.content)
        except ProviderCancelled:
            verdict = Verdict("interrupted", "a user interrupt arrived during the evaluation")
        except ProviderError as error:
            verdict = Verdict("failed", f"the grader's request failed: {error.message}")
        result = verdict.result
        if result == "needs_revision" and iteration + 1 >= outcome["max_iterations"]:
            result = "max_iterations_reached"
        cost, priced = cost_micros(target.model, usage)
        end = {
            **marker,
            "outcome_evaluation_start_id": start_id,
            "result": result,
            "explanation": verdict.explanation,
            "usage": usage.as_dict(),
        }

        def record(current: Session) -> None:
            current.record("span.outcome_evaluation_end", new_id("sevt"), end)
            current.record_cost(start_id, cost, priced)

        self._write(session_id, record)
        if result == "interrupted":
            self._interrupted(session_id, cancel)
            raise _Stop
        return result

    @staticmethod
    def _budget_reached(session: Session) -> None:
        session.close_request(new_id("sevt"), is_error=False)
        session.go_idle(new_id("sevt"), {"type": "budget_reached"})

    @staticmethod
    def _finish(session: Session, response: ModelResponse) -> bool:
        """The turn's end: its usage so far, then idle — unless a message arrived that no
        request has seen (then the turn goes on to answer it: False)."""
        if session.has_unread_input:
            return False
        session.close_acknowledged_outcome()
        session.record(
            "session.usage",
            new_id("sevt"),
            {"usage": session.usage(), "budget": session.details.get("budget")},
        )
        if response.stop_reason == "refusal":
            session.go_idle(new_id("sevt"), {"type": "refusal"}, {"type": "refusal"})
        else:
            session.go_idle(new_id("sevt"), {"type": "end_turn"})
        return True

    @staticmethod
    def _open_request(session: Session, span_id: str) -> str:
        """Everything before a model request, in one write (or none): the session running,
        answered confirmations settled (a deny reaches the model as an error result with
        the user's message, an allow runs the tool), and a span to stream under. An open
        span is taken over: the append that started the turn opened it, or a driver that
        died opened it and never recorded its output. If that driver is alive after all,
        whichever of the two records first closes the span, and the other's output is
        dropped (``finish_request``). Returns the id of the span to stream under."""
        session.start_turn(new_id("sevt"))
        for tool_use_id, answer in list(session.confirmations.items()):
            if answer["result"] == "deny":
                text = "Denied: " + (answer.get("deny_message") or "Tool execution was denied by the user.")
            else:
                text = NOT_RUN.format(name="requested")
            if tool_use_id in session.mcp_calls:
                if answer["result"] != "deny":
                    text = "The MCP call was not made: this server runs no MCP calls."
                session.record("agent.mcp_tool_result", new_id("sevt"), mcp_tool_error(tool_use_id, text))
                continue
            session.record(
                "agent.tool_result",
                new_id("sevt"),
                tool_error(tool_use_id, text),
            )
        if session.status == "rescheduling":
            session.record("session.status_running", new_id("sevt"), {})
        if session.open_span is not None and not session.pending_events:
            return session.open_span
        # Results or a status recorded now must come before the request's span.
        session.close_request(new_id("sevt"), is_error=True)
        session.begin_request(span_id)
        return span_id

    # -- one model request, with retries -------------------------------------------------

    def _request(
        self, session: Session, target: ProviderTarget, tools: Toolbox, notes: PromptNotes, cancel: CancelToken
    ) -> tuple[str, ModelResponse, Session]:
        """One model request, retried as the policy says; returns what the turn does next
        (``continue``, ``grade``, ``done`` or ``blocked``), the response and the session as
        saved with it."""
        session_id = session.session_id
        attempt = 0
        waited = 0.0
        while True:
            span_id = self._write(session_id, partial(self._open_request, span_id=new_id("sevt")))
            transcript = self._transcripts.get(session_id)
            transcript.feed(self._store.read_stream(stream_id(session_id), after_version=transcript.version))
            options = session.completion_options
            request = transcript.request(
                system_prompt.compose(session.agent.get("system"), session.resources, notes.skills, notes.knowledge),
                tools.offered,
                options.get("max_tokens") or self._policy.max_tokens,
                options.get("temperature"),
                options.get("stop"),
            )
            ids = _PreviewIds()
            started = time.monotonic()
            try:
                response = self._provider.stream(
                    target, request, self._previewer(session, ids), cancel
                )
            except ProviderCancelled:
                self._interrupted(session_id, cancel)
                raise _Stop from None
            except ProviderError as error:
                log.warning(
                    "session %s: provider %s failed (%s, HTTP %s)", session_id, target.provider, error.kind, error.status
                )
                if error.kind == "invalid_request":
                    self._report_error(session_id, ERROR_TYPES[error.kind], error.message, "exhausted")
                    raise _Stop from None
                if not error.retryable:
                    self._report_error(session_id, ERROR_TYPES.get(error.kind, "unknown_error"), error.message, "terminal")
                    raise _Stop from None
                delay = self._policy.retry_base_seconds * 2**attempt
                if error.retry_after:
                    delay = max(delay, min(error.retry_after, MAX_RETRY_AFTER_SECONDS))
                if attempt >= self._policy.retries or waited + delay > MAX_RETRY_SECONDS:
                    self._report_error(session_id, ERROR_TYPES[error.kind], error.message, "exhausted")
                    raise _Stop from None
                self._report_error(session_id, ERROR_TYPES[error.kind], error.message, "retrying")
                waited += delay
                if cancel.wait(delay) or self._require(session_id).interrupt_requested:
                    self._interrupted(session_id, cancel)
                    raise _Stop from None
                attempt += 1
                continue
            log.debug("session %s: model request took %.3f s", session_id, time.monotonic() - started)
            step, saved = self._record_response(session, span_id, target, tools, response, ids)
            return step, response, saved

    def _previewer(self, session: Session, ids: _PreviewIds) -> Callable[[ProviderDelta], None]:
        tenant, session_id = session.tenant_id, session.session_id

        def on_delta(delta: ProviderDelta) -> None:
            if isinstance(delta, TextDelta):
                if not ids.message_started:
                    ids.message_started = True
                    self._previews.preview(
                        tenant, session_id, "agent.message",
                        {"type": "event_start", "event": {"type": "agent.message", "id": ids.message}},
                    )
                self._previews.preview(
                    tenant, session_id, "agent.message",
                    {
                        "type": "event_delta",
                        "event_id": ids.message,
                        "delta": {"type": "content_delta", "content": {"type": "text", "text": delta.text}, "index": delta.index},
                    },
                )
            elif isinstance(delta, ThinkingStarted):
                event_id = ids.thinking_id(ids.thinking_started)
                ids.thinking_started += 1
                self._previews.preview(
                    tenant, session_id, "agent.thinking",
                    {"type": "event_start", "event": {"type": "agent.thinking", "id": event_id}},
                )

        return on_delta

    def _record_response(
        self,
        session: Session,
        span_id: str,
        target: ProviderTarget,
        tools: Toolbox,
        response: ModelResponse,
        ids: _PreviewIds,
    ) -> tuple[str, Session]:
        session_id = session.session_id
        outputs: list[tuple[str, str, dict[str, Any]]] = []
        results: list[tuple[str, str, dict[str, Any]]] = []
        mcp_now: list[str] = []  # MCP calls this driver makes once the response is saved
        running: list[str] = []  # calls the environment's worker runs now
        asking: list[str] = []  # … once the user allows them
        thinking: dict[str, dict[str, Any]] = {}
        texts = [block["text"] for block in response.content if block.get("type") == "text" and block.get("text")]
        message_placed = False
        thinking_count = 0
        for block in response.content:
            kind = block.get("type")
            if kind in ("thinking", "redacted_thinking"):
                event_id = ids.thinking_id(thinking_count)
                thinking_count += 1
                thinking[event_id] = block
                outputs.append(("agent.thinking", event_id, {}))
            elif kind == "text":
                if texts and not message_placed:
                    message_placed = True
                    outputs.append(("agent.message", ids.message, {"content": [{"type": "text", "text": text} for text in texts]}))
            elif kind == "tool_use":
                use_id = new_id("sevt")
                name, tool_input = block.get("name", ""), block.get("input") or {}
                route = tools.route(name)
                if route.kind == "custom":
                    outputs.append(("agent.custom_tool_use", use_id, {"name": name, "input": tool_input}))
                elif route.kind == "mcp":
                    permission, why = evaluation(route.policy or {"type": "always_ask"})
                    payload = {
                        "mcp_server_name": route.server,
                        "name": route.tool,
                        "input": tool_input,
                        "evaluated_permission": permission,
                        "evaluation": why,
                    }
                    outputs.append(("agent.mcp_tool_use", use_id, payload))
                    if permission == "allow":
                        mcp_now.append(use_id)
                elif route.kind == "knowledge" and self._knowledge is not None:
                    # Read-only and quick (a local search): run now, recorded with the call.
                    allowed = {"name": name, "input": tool_input, "evaluated_permission": "allow", "evaluation": dict(ALWAYS_ALLOW)}
                    outputs.append(("agent.tool_use", use_id, allowed))
                    found = knowledge.run(self._knowledge, session.tenant_id, session.agent, tool_input)
                    payload = {"tool_use_id": use_id, "content": found.content, "is_error": found.is_error}
                    results.append(("agent.tool_result", new_id("sevt"), payload))
                elif route.kind == "builtin":
                    permission, why = evaluation(route.policy or {})
                    outputs.append(
                        ("agent.tool_use", use_id, {"name": name, "input": tool_input, "evaluated_permission": permission, "evaluation": why})
                    )
                    if name in WORKER_TOOLS:
                        (running if permission == "allow" else asking).append(use_id)
                    elif permission == "allow":
                        results.append(_error_result(use_id, NOT_RUN.format(name=name)))
                else:
                    outputs.append(("agent.tool_use", use_id, {"name": name, "input": tool_input, "evaluated_permission": "deny"}))
                    results.append(_error_result(use_id, f"The tool {name!r} is not available to this agent."))
        cost, priced = cost_micros(target.model, response.usage)
        end = {"model_usage": response.usage.as_dict(), "is_error": False}

        queued: list[WorkItem] = []

        def record(session: Session) -> str:
            queued.clear()
            if not session.finish_request(span_id, outputs, new_id("sevt"), end, thinking, cost, priced):
                return "lost"
            for event_type, event_id, payload in results:
                session.record(event_type, event_id, payload)
            session.start_mcp_calls(mcp_now)
            if (running or asking) and not self._holds_live_item(session):
                queued.append(new_work_item(session, hosting_of(self._store, session.environment_id)))
            session.route_to_worker(running, asking, queued[0].work_id if queued else None)
            if session.client_blockers:
                session.record("session.status_idle", new_id("sevt"), requires_action(session.client_blockers))
                return "blocked"
            if session.blockers:
                return "waiting"  # running, while the environment's worker runs the calls
            if results or mcp_now or session.has_unread_input:
                return "continue"
            if session.outcome_to_grade is not None and response.stop_reason != "refusal":
                return "grade"
            self._finish(session, response)
            return "done"

        step, saved = self._step(session_id, record, alongside=lambda: queued)
        if queued:
            self._on_queued()
        if step == "lost":
            log.warning("session %s: request %s was closed by another worker; its answer is dropped", session_id, span_id)
            raise _Stop
        return step, saved

    # -- the system prompt's notes ------------------------------------------------------

    def _prompt_notes(self, session: Session, tools: Toolbox) -> PromptNotes:
        """The skills (name and description of each pinned version) and the knowledge bases
        the prompt lists. A lookup that fails leaves its section out: a prompt without notes
        is better than no turn."""
        skills: list[SkillNote] = []
        if self._skills is not None:
            for skill in session.agent.get("skills") or []:
                try:
                    note = self._skills.describe(session.tenant_id, skill.get("skill_id", ""), skill.get("version"))
                except Exception:
                    log.exception("session %s: the skills could not be read for the prompt", session.session_id)
                    skills = []
                    break
                skills.append(note or SkillNote(str(skill.get("skill_id"))))
        bases: list[KnowledgeBaseNote] = []
        if self._knowledge is not None and tools.route(knowledge.TOOL_NAME).kind == "knowledge":
            entries = knowledge.attached(session.agent)
            try:
                live = self._knowledge.bases(session.tenant_id, [entry["knowledge_base_id"] for entry in entries])
            except Exception:
                log.exception("session %s: the knowledge bases could not be read for the prompt", session.session_id)
                live = {}
            for entry in entries:
                found = live.get(entry["knowledge_base_id"])
                if found is not None:
                    # The attachment's own description (why this agent has it) wins.
                    bases.append(KnowledgeBaseNote(found.knowledge_base_id, found.name, entry.get("description") or found.description))
        return PromptNotes(tuple(skills), tuple(bases))

    # -- MCP servers ----------------------------------------------------------------------

    def _with_mcp_tools(self, session: Session, tools: Toolbox, cancel: CancelToken) -> Toolbox:
        """``tools`` and the tools the agent's MCP servers list now (once per turn: every
        request of the turn offers the same list). A server out of reach is a non-blocking
        ``session.error``; the turn goes on without its tools."""
        if self._mcp is None or not mcp_toolsets(session.agent):
            return tools
        try:
            found = self._mcp.discover(session, cancel)
        except McpCancelled:
            self._interrupted(session.session_id, cancel)
            raise _Stop from None
        if found.failures:
            self._write(session.session_id, partial(self._note_mcp_failures, failures=found.failures))
        return tools.with_mcp(found.tools)

    @staticmethod
    def _note_mcp_failures(session: Session, failures: list[McpFailure]) -> None:
        """Records each failure as ``session.error`` without closing the span or changing the
        status: the next turn connects again (hence ``retrying``)."""
        session.start_turn(new_id("sevt"))
        for failure in failures:
            error = {
                "type": failure.error_type,
                "mcp_server_name": failure.server,
                "message": failure.message,
                "retry_status": {"type": "retrying"},
            }
            session.record("session.error", new_id("sevt"), {"error": error})

    def _settle_mcp_calls(self, session: Session, cancel: CancelToken) -> Session:
        """Before a request: calls a dead driver started end in an error result (whether they
        ran is unknown: never made twice); calls the user allowed are made now."""
        session_id = session.session_id
        orphans = session.started_mcp_calls
        if orphans:
            text = "The MCP call was interrupted by a restart of Agentry; it may or may not have run."

            def end(current: Session) -> None:
                for tool_use_id in current.started_mcp_calls:
                    current.record("agent.mcp_tool_result", new_id("sevt"), mcp_tool_error(tool_use_id, text))

            self._write(session_id, end)
        allowed = [key for key, answer in session.confirmations.items() if answer["result"] == "allow" and key in session.mcp_calls]
        if not allowed:
            return self._require(session_id)

        def start(current: Session) -> list[str]:
            current.start_turn(new_id("sevt"))
            return current.start_mcp_calls(allowed)

        started, current = self._step(session_id, start)
        return self._make_mcp_calls(current, started, cancel)

    def _make_mcp_calls(self, session: Session, tool_use_ids: list[str], cancel: CancelToken) -> Session:
        """Makes the started calls one at a time, in the model's order, each result in its own
        write (what ran survives an interrupt). An interrupt ends the call under way with an
        error result, then the turn."""
        session_id = session.session_id
        for tool_use_id in tool_use_ids:
            call = session.mcp_calls.get(tool_use_id)
            if call is None:
                continue
            failure: McpFailure | None = None
            if self._mcp is None:
                outcome = McpCallOutcome([{"type": "text", "text": "This server makes no MCP calls."}], True)
            else:
                try:
                    outcome, failure = self._mcp.call(session, call["server"], call["name"], call["input"], cancel)
                except McpCancelled:
                    if not cancel.shutting_down:
                        interrupted = mcp_tool_error(tool_use_id, "The call was interrupted.")

                        def note(current: Session, payload: dict[str, Any] = interrupted) -> None:
                            current.record("agent.mcp_tool_result", new_id("sevt"), payload)

                        self._write(session_id, note)
                    self._interrupted(session_id, cancel)
                    raise _Stop from None
            payload = {"mcp_tool_use_id": tool_use_id, "content": outcome.content, "is_error": outcome.is_error}

            def record(
                current: Session, key: str = tool_use_id, payload: dict[str, Any] = payload, failure: McpFailure | None = failure
            ) -> None:
                if key not in current.mcp_calls:
                    return  # answered meanwhile
                current.record("agent.mcp_tool_result", new_id("sevt"), payload)
                if failure is not None:
                    self._note_mcp_failures(current, [failure])

            _, session = self._step(session_id, record)
        return session

    # -- the environment's worker ---------------------------------------------------------

    def _worker_vanished(self, session: Session) -> bool:
        """The session waits for worker results that no live worker will send."""
        if self._workers is None or WORKER_RESULT not in session.blockers.values():
            return False
        return self._workers.vanished(session)

    def _holds_live_item(self, session: Session) -> bool:
        """The session's work item can still be served (a stopped one — its worker gave up
        on it — is replaced by a new one at the next call)."""
        if session.work_id is None:
            return False
        item = load_as(self._store, stream_id(session.work_id), WorkItem)
        return item is not None and item.live

    # -- endings -----------------------------------------------------------------------

    def _interrupted(self, session_id: str, cancel: CancelToken) -> None:
        if cancel.shutting_down:
            return  # left running: the next start takes the turn up again

        def stop(session: Session) -> None:
            session.close_request(new_id("sevt"), is_error=False)
            redirected = session.handle_interrupt()
            if not redirected and session.status != "idle":
                session.go_idle(new_id("sevt"), {"type": "end_turn"})

        self._write(session_id, stop)

    def _report_error(self, session_id: str, error_type: str, message: str, retry_status: str) -> None:
        """Closes the open span as failed and records ``session.error``, then what its
        ``retry_status`` promises (spec §A.5): ``retrying`` → rescheduled, ``exhausted`` →
        idle ``retries_exhausted``, ``terminal`` → terminated."""

        def report(session: Session) -> None:
            session.close_request(new_id("sevt"), is_error=True)
            session.record("session.error", new_id("sevt"), _error(error_type, message, retry_status))
            if retry_status == "retrying":
                session.record("session.status_rescheduled", new_id("sevt"), {})
            elif retry_status == "terminal":
                session.record("session.status_terminated", new_id("sevt"), {})
            else:
                session.go_idle(new_id("sevt"), {"type": "retries_exhausted"})

        self._write(session_id, report)

    # -- store -------------------------------------------------------------------------

    def _write(self, session_id: str, change: Callable[[Session], Any]) -> Any:
        return self._step(session_id, change)[0]

    def _step(
        self,
        session_id: str,
        change: Callable[[Session], Any],
        alongside: Callable[[], list[WorkItem]] = list,
    ) -> tuple[Any, Session]:
        """Load → change → save, retried on a race; the change's result and the session as
        saved. A session gone, archived or terminated meanwhile ends the turn. A change
        that lets the session's work item go asks the item to stop in the same append, as
        it saves the items ``alongside`` gives (a new one, for a first tool call)."""

        def attempt() -> tuple[Any, Session]:
            session = self._require(session_id)
            holding = session.work_id
            outcome = change(session)
            if session.pending_events:
                released = released_item(self._store, holding, session)
                self._store.save(session, *alongside(), *([released] if released else []))
            return outcome, session

        try:
            return retry_on_race(attempt, key=session_id)
        except Conflict:
            log.error("gave up appending to session %s: it kept changing under the turn", session_id)
            raise _Stop from None
        except DomainError as refusal:
            log.info("session %s no longer takes the turn: %s", session_id, refusal)
            raise _Stop from None

    def _require(self, session_id: str) -> Session:
        session = self._load(session_id)
        if session is None or session.deleted:
            raise _Stop
        return session

    def _load(self, session_id: str) -> Session | None:
        return load_as(self._store, stream_id(session_id), Session)


class _PreviewIds:
    """Ids minted when a preview starts, so the stored event carries the same one."""

    def __init__(self) -> None:
        self.message = new_id("sevt")
        self.message_started = False
        self.thinking_started = 0
        self._thinking: list[str] = []

    def thinking_id(self, index: int) -> str:
        while len(self._thinking) <= index:
            self._thinking.append(new_id("sevt"))
        return self._thinking[index]


def _error(error_type: str, message: str, retry_status: str) -> dict[str, Any]:
    return {"error": {"type": error_type, "message": message, "retry_status": {"type": retry_status}}}


def mcp_tool_error(tool_use_id: str, text: str) -> dict[str, Any]:
    """The payload of an ``agent.mcp_tool_result`` that reports why a call did not give one."""
    return {"mcp_tool_use_id": tool_use_id, "content": [{"type": "text", "text": text}], "is_error": True}


def _error_result(tool_use_id: str, text: str) -> tuple[str, str, dict[str, Any]]:
    return (
        "agent.tool_result",
        new_id("sevt"),
        tool_error(tool_use_id, text),
    )
