"""The Session aggregate. Its stream *is* the session's public event log.

Each public session event type (``user.message``, ``session.status_idle``, …) is recorded as
its own past-tense domain event carrying ``seq`` — the event's position in the public log
(1, 2, 3, …). Lifecycle events (Started, Updated, Archived) sit in the same
stream but are not part of the public log, so they carry no ``seq``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from hashlib import sha256
from typing import Any, ClassVar
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.agents import merge_definition
from domain.errors import Archived, InvalidState
from domain.ids import stream_id
from domain.stamps import Stamped

# What a client may send: every ``user.*`` event and ``system.message``.
CLIENT_EVENT_TYPES = frozenset(
    {
        "user.message",
        "user.interrupt",
        "user.tool_confirmation",
        "user.tool_result",
        "user.custom_tool_result",
        "user.define_outcome",
        "system.message",
    }
)


class PublicEvent(Aggregate.Event):
    """Base of every event that appears in the session's public event log."""

    public_type: ClassVar[str]
    # The session status this event leaves behind, for the events that change it: the
    # aggregate, the projections and the list filters all read it here.
    status_after: ClassVar[str | None] = None
    seq: int
    event_id: str
    payload: dict[str, Any]

    def apply(self, aggregate: Session) -> None:
        aggregate.last_seq = self.seq
        aggregate.event_count += 1
        if self.status_after is not None:
            aggregate.status = self.status_after


class UserMessageSent(PublicEvent):
    public_type = "user.message"

    def apply(self, aggregate: Session) -> None:
        super().apply(aggregate)
        aggregate.last_user_message_seq = self.seq
        aggregate.pending_work = True
        # A message sent while tool calls await the client moves on without them: the
        # transcript answers each with a synthetic error result. Calls the environment's
        # worker is running stay: their results come, and the next request sees the message.
        aggregate.blockers = {key: kind for key, kind in aggregate.blockers.items() if kind == WORKER_RESULT}
        aggregate.confirmations = {}
        aggregate.mcp_calls = _started_only(aggregate.mcp_calls)


class UserInterrupted(PublicEvent):
    public_type = "user.interrupt"

    def apply(self, aggregate: Session) -> None:
        super().apply(aggregate)
        # Only a turn in progress has something to interrupt; the runtime clears the flag
        # once it acted on it (InterruptHandled), or the session went idle.
        if aggregate.status in ("running", "rescheduling"):
            aggregate.interrupt_requested = True
        aggregate.last_interrupt_seq = self.seq
        if aggregate.status == "running" and WORKER_RESULT in aggregate.blockers.values():
            # The turn waits for a worker with no driver running: one must act on this.
            aggregate.pending_work = True
        aggregate.blockers = {}
        aggregate.confirmations = {}
        aggregate.mcp_calls = _started_only(aggregate.mcp_calls)


class UserToolConfirmationSent(PublicEvent):
    public_type = "user.tool_confirmation"

    def apply(self, aggregate: Session) -> None:
        super().apply(aggregate)
        tool_use_id = self.payload["tool_use_id"]
        if aggregate.blockers.get(tool_use_id) == WORKER_CONFIRMATION and self.payload["result"] == "allow":
            # The environment's worker saw the allow on the stream and runs the call now.
            aggregate.blockers = {**aggregate.blockers, tool_use_id: WORKER_RESULT}
            return
        aggregate.confirmations = {
            **aggregate.confirmations,
            tool_use_id: {"result": self.payload["result"], "deny_message": self.payload.get("deny_message")},
        }
        aggregate.resolve_blocker(tool_use_id)


class UserCustomToolResultSent(PublicEvent):
    public_type = "user.custom_tool_result"

    def apply(self, aggregate: Session) -> None:
        super().apply(aggregate)
        aggregate.resolve_blocker(self.payload["custom_tool_use_id"])


class UserToolResultSent(PublicEvent):
    public_type = "user.tool_result"

    def apply(self, aggregate: Session) -> None:
        super().apply(aggregate)
        aggregate.resolve_blocker(self.payload["tool_use_id"])


class UserOutcomeDefined(PublicEvent):
    public_type = "user.define_outcome"

    def apply(self, aggregate: Session) -> None:
        super().apply(aggregate)
        aggregate.last_user_message_seq = self.seq
        aggregate.pending_work = True
        aggregate.outcome = {
            "outcome_id": self.payload.get("outcome_id"),
            "description": self.payload.get("description"),
            "rubric": self.payload.get("rubric"),
            "max_iterations": self.payload.get("max_iterations") or DEFAULT_OUTCOME_ITERATIONS,
            "iteration": 0,
            "since_seq": self.seq,
            "acknowledging": False,
        }


class SystemMessageSent(PublicEvent):
    public_type = "system.message"


class AgentMessageSent(PublicEvent):
    public_type = "agent.message"


class AgentThoughtRecorded(PublicEvent):
    public_type = "agent.thinking"


class AgentToolUseRequested(PublicEvent):
    public_type = "agent.tool_use"

    def apply(self, aggregate: Session) -> None:
        super().apply(aggregate)
        if self.payload.get("evaluated_permission") == "ask":
            aggregate.blockers = {**aggregate.blockers, self.event_id: CONFIRMATION}


class AgentToolResultReceived(PublicEvent):
    public_type = "agent.tool_result"

    def apply(self, aggregate: Session) -> None:
        super().apply(aggregate)
        aggregate.confirmations = {
            key: value for key, value in aggregate.confirmations.items() if key != self.payload.get("tool_use_id")
        }
        aggregate.resolve_blocker(str(self.payload.get("tool_use_id")))


class AgentMcpToolUseRequested(PublicEvent):
    public_type = "agent.mcp_tool_use"

    def apply(self, aggregate: Session) -> None:
        super().apply(aggregate)
        if self.payload.get("evaluated_permission") == "ask":
            aggregate.blockers = {**aggregate.blockers, self.event_id: CONFIRMATION}
        # What the runtime needs to make the call once it may (the server's own tool name).
        aggregate.mcp_calls = {
            **aggregate.mcp_calls,
            self.event_id: {
                "state": MCP_WAITING,
                "server": self.payload.get("mcp_server_name"),
                "name": self.payload.get("name"),
                "input": self.payload.get("input") or {},
            },
        }


class AgentMcpToolResultReceived(PublicEvent):
    public_type = "agent.mcp_tool_result"

    def apply(self, aggregate: Session) -> None:
        super().apply(aggregate)
        aggregate.confirmations = {
            key: value
            for key, value in aggregate.confirmations.items()
            if key != self.payload.get("mcp_tool_use_id")
        }
        tool_use_id = str(self.payload.get("mcp_tool_use_id"))
        aggregate.mcp_calls = {key: value for key, value in aggregate.mcp_calls.items() if key != tool_use_id}
        aggregate.resolve_blocker(tool_use_id)


class AgentCustomToolUseRequested(PublicEvent):
    public_type = "agent.custom_tool_use"

    def apply(self, aggregate: Session) -> None:
        super().apply(aggregate)
        aggregate.blockers = {**aggregate.blockers, self.event_id: CUSTOM_RESULT}


class ModelRequestStarted(PublicEvent):
    public_type = "span.model_request_start"

    def apply(self, aggregate: Session) -> None:
        super().apply(aggregate)
        aggregate.open_span = self.event_id
        aggregate.last_request_seq = self.seq


class ModelRequestEnded(PublicEvent):
    public_type = "span.model_request_end"

    def apply(self, aggregate: Session) -> None:
        super().apply(aggregate)
        aggregate.open_span = None
        usage = self.payload.get("model_usage") or {}
        totals = dict(aggregate.usage_tokens)
        for name in TOKEN_FIELDS:
            totals[name] = totals.get(name, 0) + int(usage.get(name) or 0)
        aggregate.usage_tokens = totals


class SessionUsageReported(PublicEvent):
    public_type = "session.usage"


class OutcomeEvaluationStarted(PublicEvent):
    public_type = "span.outcome_evaluation_start"


class OutcomeEvaluationOngoing(PublicEvent):
    public_type = "span.outcome_evaluation_ongoing"


class OutcomeEvaluationEnded(PublicEvent):
    """A grader's verdict. ``needs_revision`` and ``max_iterations_reached`` owe the agent
    another turn (a revision, or one final acknowledgment); the others close the outcome."""

    public_type = "span.outcome_evaluation_end"

    def apply(self, aggregate: Session) -> None:
        super().apply(aggregate)
        outcome = aggregate.outcome or {}
        result = self.payload.get("result")
        aggregate.outcome_evaluations = [
            *aggregate.outcome_evaluations,
            {
                "type": "outcome_evaluation",
                "outcome_id": self.payload.get("outcome_id"),
                "description": outcome.get("description"),
                "iteration": self.payload.get("iteration"),
                "result": result,
                "explanation": self.payload.get("explanation"),
                "completed_at": self.timestamp.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            },
        ]
        usage = self.payload.get("usage") or {}
        aggregate.usage_tokens = {
            name: aggregate.usage_tokens.get(name, 0) + int(usage.get(name) or 0) for name in TOKEN_FIELDS
        }
        if result == "needs_revision":
            aggregate.outcome = {**outcome, "iteration": outcome.get("iteration", 0) + 1}
        elif result == "max_iterations_reached":
            aggregate.outcome = {**outcome, "acknowledging": True}
        else:
            aggregate.outcome = None


class SessionBecameRunning(PublicEvent):
    public_type = "session.status_running"
    status_after = "running"

    def apply(self, aggregate: Session) -> None:
        super().apply(aggregate)
        if aggregate.running_since is None:
            aggregate.running_since = self.timestamp


class SessionBecameIdle(PublicEvent):
    public_type = "session.status_idle"
    status_after = "idle"

    def apply(self, aggregate: Session) -> None:
        super().apply(aggregate)
        aggregate.stop_reason = self.payload.get("stop_reason")
        aggregate.pending_work = False
        aggregate.interrupt_requested = False
        aggregate.stop_running(self.timestamp)
        if (aggregate.stop_reason or {}).get("type") != "requires_action":
            # An idle session holds no worker (a worker waiting for a confirmation stays).
            aggregate.work_id = None


class SessionWasRescheduled(PublicEvent):
    public_type = "session.status_rescheduled"
    status_after = "rescheduling"


class SessionWasTerminated(PublicEvent):
    public_type = "session.status_terminated"
    status_after = "terminated"

    def apply(self, aggregate: Session) -> None:
        super().apply(aggregate)
        aggregate.pending_work = False
        aggregate.blockers = {}
        aggregate.stop_running(self.timestamp)
        aggregate.work_id = None


class SessionErrorOccurred(PublicEvent):
    public_type = "session.error"


class SessionWasDeleted(PublicEvent):
    public_type = "session.deleted"

    def apply(self, aggregate: Session) -> None:
        super().apply(aggregate)
        aggregate.deleted = True
        aggregate.work_id = None


DEFAULT_OUTCOME_ITERATIONS = 3

# What a blocking tool call waits for (``Session.blockers``): the client's answer to a custom
# tool, the user's confirmation of a call the server runs itself, of a call the environment's
# worker runs, or that worker's result.
CUSTOM_RESULT = "custom_result"
CONFIRMATION = "confirmation"
WORKER_CONFIRMATION = "worker_confirmation"
WORKER_RESULT = "tool_result"
# Where an MCP call stands (``Session.mcp_calls``): recorded, not started (it may wait for a
# confirmation); started by a driver (at most once: a started call is never made again).
MCP_WAITING = "waiting"
MCP_STARTED = "started"
TOKEN_FIELDS = ("input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens")


EVENT_CLASS_BY_TYPE: dict[str, type[PublicEvent]] = {
    cls.public_type: cls
    for cls in (
        UserMessageSent,
        UserInterrupted,
        UserToolConfirmationSent,
        UserToolResultSent,
        UserCustomToolResultSent,
        UserOutcomeDefined,
        SystemMessageSent,
        AgentMessageSent,
        AgentThoughtRecorded,
        AgentToolUseRequested,
        AgentToolResultReceived,
        AgentCustomToolUseRequested,
        AgentMcpToolUseRequested,
        AgentMcpToolResultReceived,
        ModelRequestStarted,
        ModelRequestEnded,
        SessionUsageReported,
        OutcomeEvaluationStarted,
        OutcomeEvaluationOngoing,
        OutcomeEvaluationEnded,
        SessionBecameRunning,
        SessionBecameIdle,
        SessionWasRescheduled,
        SessionWasTerminated,
        SessionErrorOccurred,
    )
}


# Values a client sends with a resource that are never kept in it (a repository's token).
WRITE_ONLY_RESOURCE_FIELDS = ("authorization_token",)


def with_resource_ids(details: dict[str, Any], stream: str, moment: datetime | str) -> dict[str, Any]:
    """``details`` as v2 keeps them: every resource with an id and times, none with a
    write-only value. One stored before (as sent) gets an id derived from its stream and
    position, so every load in every process gives it the same one, the session's own start
    as its times, and loses the token v1 kept in clear."""
    resources = details.get("resources")
    if not resources:
        return details
    stamp = moment if isinstance(moment, str) else moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    completed = []
    for index, resource in enumerate(resources):
        resource = {key: value for key, value in resource.items() if key not in WRITE_ONLY_RESOURCE_FIELDS}
        if "id" not in resource:
            digest = sha256(f"{stream}/{index}".encode()).hexdigest()[:24]
            resource = {"id": f"sesrsc_{digest}", "created_at": stamp, "updated_at": stamp, **resource}
        completed.append(resource)
    return {**details, "resources": completed}


# What one session may hold: the documented caps (500 files, 8 memory stores) and, over all
# kinds, one list page (1000), so listing without a ``limit`` shows every resource.
RESOURCE_CAPS = {"file": 500, "memory_store": 8}
MAX_RESOURCES = 1000


def check_new_resource(resources: list[dict[str, Any]], resource: dict[str, Any]) -> None:
    """Refuses a resource that cannot be mounted beside ``resources``: one past a cap, one on a
    mount path another resource holds, a memory store attached twice."""
    if len(resources) >= MAX_RESOURCES:
        raise InvalidState(f"a session holds at most {MAX_RESOURCES} resources")
    kind = resource.get("type")
    cap = RESOURCE_CAPS.get(str(kind))
    if cap is not None and sum(1 for held in resources if held.get("type") == kind) >= cap:
        raise InvalidState(f"a session holds at most {cap} {kind} resources")
    path = resource.get("mount_path")
    if path is not None and any(held.get("mount_path") == path for held in resources):
        raise InvalidState(f"mount path {path!r} is taken by another resource of this session")
    store = resource.get("memory_store_id")
    if kind == "memory_store" and any(
        held.get("type") == "memory_store" and held.get("memory_store_id") == store for held in resources
    ):
        raise InvalidState(f"memory store {store!r} is already attached to this session")


class Session(Aggregate):
    @staticmethod
    def create_id(session_id: str, **_: Any) -> UUID:
        return stream_id(session_id)

    class Started(Aggregate.Created):
        """Schema v2: each ``details.resources`` entry carries ``id``, ``created_at`` and
        ``updated_at``. Stored v1 events are upcast on load."""

        class_version = 2
        session_id: str
        tenant_id: str
        agent: dict[str, Any]
        environment_id: str
        details: dict[str, Any]

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["details"] = with_resource_ids(state["details"], str(state["originator_id"]), state["timestamp"])

    class Updated(Aggregate.Event):
        """Schema v2: ``details`` never carries ``resources`` (they change by their own
        events). A v1 event carried a copy of them, without ids: dropped on load, so the
        resources the session started with (ids included) stand."""

        class_version = 2
        details: dict[str, Any]

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["details"] = {key: value for key, value in state["details"].items() if key != "resources"}

    class AgentReconfigured(Aggregate.Event):
        agent: dict[str, Any]

    class TurnAnswered(Aggregate.Event):
        """Kept so streams written before the runtime loop still load; it changes nothing
        now (the loop records each request's output once by its span instead)."""

        reply_seq: int

    class ThinkingKept(Aggregate.Event):
        """The thinking text and signature behind an ``agent.thinking`` event: the provider
        needs them replayed, the public log never shows them, so they sit beside it."""

        event_id: str
        block: dict[str, Any]

    class RequestCosted(Aggregate.Event):
        """What a model request cost at list price (micro-USD), and whether the model had
        a price at all (a budget cannot measure one that has none)."""

        span_id: str
        cost_micros: int
        priced: bool

    class InterruptHandled(Aggregate.Event):
        """The runtime acted on an interrupt: the input at ``flushed`` (sent before the
        interrupt, seen by no model request) is never processed."""

        flushed: list[int]

    class CompletionOptionsChosen(Aggregate.Event):
        """What an OpenAI-style chat completion asked of the turns it starts (sampling, token
        cap, the caller's own function tools): request options, not conversation, so they
        sit beside the public log."""

        options: dict[str, Any]

    class Archived(Stamped):
        stamp = "archived_at"

    # Snapshots taken before resources had ids hold them without: give them the same ids
    # the v1 ``Started`` upcast gives (both derive them from the stream). v3 adds the
    # runtime's state, empty for snapshots taken before it; v4 the work item, v5 the
    # completion options, v6 the MCP calls.
    class_version = 6

    @staticmethod
    def upcast_v1_v2(state: dict[str, Any]) -> None:
        state["details"] = with_resource_ids(
            state["details"], str(stream_id(state["session_id"])), state["_created_on"]
        )

    @staticmethod
    def upcast_v2_v3(state: dict[str, Any]) -> None:
        for name, value in _runtime_state().items():
            state.setdefault(name, value)
        # Before the loop, a session was owed a turn exactly when a message awaited a reply.
        state["pending_work"] = (
            not state.get("deleted") and state.get("status") != "terminated"
            and state.get("last_user_message_seq", 0) > state.get("last_idle_seq", 0)
        )

    @staticmethod
    def upcast_v3_v4(state: dict[str, Any]) -> None:
        state.setdefault("work_id", None)

    @staticmethod
    def upcast_v4_v5(state: dict[str, Any]) -> None:
        state.setdefault("completion_options", {})

    @staticmethod
    def upcast_v5_v6(state: dict[str, Any]) -> None:
        state.setdefault("mcp_calls", {})

    @event("Started")
    def __init__(
        self,
        session_id: str,
        tenant_id: str,
        agent: dict[str, Any],
        environment_id: str,
        details: dict[str, Any],
    ) -> None:
        self.session_id = session_id
        self.tenant_id = tenant_id
        self.agent = agent
        self.environment_id = environment_id
        self.details = details
        self.status = "idle"
        self.stop_reason: dict[str, Any] | None = None
        self.last_seq = 0
        self.last_user_message_seq = 0
        self.event_count = 0
        self.interrupt_requested = False
        self.archived_at: datetime | None = None
        self.deleted = False
        # The runtime's part (``_runtime_state`` gives snapshots taken before it the same).
        self.pending_work = False
        self.blockers: dict[str, str] = {}  # blocking tool-use id → what it waits for (CUSTOM_RESULT, …)
        self.confirmations: dict[str, dict[str, Any]] = {}  # answered, not yet acted on
        self.open_span: str | None = None
        self.last_request_seq = 0
        self.last_interrupt_seq = 0
        self.usage_tokens: dict[str, int] = {}
        self.cost_micros = 0
        self.unpriced_requests = 0
        self.active_seconds = 0.0
        self.running_since: datetime | None = None
        self.outcome: dict[str, Any] | None = None  # the outcome being worked towards
        self.outcome_evaluations: list[dict[str, Any]] = []
        self.work_id: str | None = None  # the work item whose worker runs this session's tools
        self.completion_options: dict[str, Any] = {}  # a chat completion's: CompletionOptionsChosen
        # MCP calls without a result: tool-use id → {state, server, name, input}.
        self.mcp_calls: dict[str, dict[str, Any]] = {}

    # -- public event log -------------------------------------------------------------

    def record(self, event_type: str, event_id: str, payload: dict[str, Any]) -> int:
        """Append one public event; returns its ``seq``."""
        self._ensure_open()
        cls = EVENT_CLASS_BY_TYPE.get(event_type)
        if cls is None:
            raise InvalidState(f"unknown session event type {event_type!r}")
        if self.status == "terminated":
            raise InvalidState(f"session {self.session_id} is terminated")
        seq = self.last_seq + 1
        self.trigger_event(cls, seq=seq, event_id=event_id, payload=payload)
        return seq

    def accept_user_event(self, event_type: str, event_id: str, payload: dict[str, Any]) -> int:
        """A client-sent event: only ``user.*`` types and ``system.message`` may come from outside."""
        if event_type not in CLIENT_EVENT_TYPES:
            raise InvalidState(f"clients may not send events of type {event_type!r}")
        return self.record(event_type, event_id, payload)

    def start_turn(self, event_id: str, span_id: str | None = None) -> bool:
        """Marks the session ``running`` as soon as it owes a turn, in the same append as
        the event that made it so: a crash before the runtime picks the turn up then still
        leaves a ``running`` session for start-up to resume, never a silent one. With
        ``span_id`` the turn's first model request span opens in that append too, which
        spares the runtime a write before its first request (the span then also covers
        the moments the turn waited for a driver)."""
        if not self.wants_turn or self.status in ("running", "rescheduling"):
            return False  # a turn is in progress (rescheduling: its driver is backing off)
        self.record("session.status_running", event_id, {})
        if span_id is not None and self.open_span is None:
            self.begin_request(span_id)
        return True

    @property
    def wants_turn(self) -> bool:
        """Input awaits the agent and no tool call awaits the client."""
        return (
            self.pending_work
            and not self.blockers
            and not self.deleted
            and self.archived_at is None
            and self.status != "terminated"
        )

    @property
    def has_unread_input(self) -> bool:
        """A user message arrived after the last model request began: the next one must see it."""
        return self.last_user_message_seq > self.last_request_seq

    def resolve_blocker(self, tool_use_id: str) -> None:
        """Called by the events that answer a blocking tool call; the last answer lets the
        turn go on with no new user message."""
        remaining = {key: kind for key, kind in self.blockers.items() if key != tool_use_id}
        if remaining != self.blockers:
            self.blockers = remaining
            if not remaining:
                self.pending_work = True

    def check_client_event(self, event_type: str, payload: dict[str, Any]) -> None:
        """Refuses an answer to a tool call that is not waiting for one."""
        if event_type == "user.custom_tool_result":
            wanted, key = CUSTOM_RESULT, payload.get("custom_tool_use_id")
        elif event_type == "user.tool_confirmation":
            wanted, key = CONFIRMATION, payload.get("tool_use_id")
        elif event_type == "user.tool_result":
            wanted, key = WORKER_RESULT, payload.get("tool_use_id")
        else:
            return
        waiting = self.blockers.get(str(key))
        if waiting != wanted and not (wanted == CONFIRMATION and waiting == WORKER_CONFIRMATION):
            raise InvalidState(f"{event_type}: no tool call {key!r} is waiting for it in this session")

    def requires_action_again(self, event_id: str) -> bool:
        """Answering fewer than all blocking calls re-emits idle with the remainder."""
        if self.client_blockers and self.status == "idle":
            self.record("session.status_idle", event_id, requires_action(self.client_blockers))
            return True
        return False

    @property
    def client_blockers(self) -> list[str]:
        """The blocking calls that wait for the client (``requires_action`` lists them);
        the others wait for the environment's worker."""
        return [key for key, kind in self.blockers.items() if kind != WORKER_RESULT]

    def resume_for_worker(self, event_id: str) -> bool:
        """An idle session whose every blocking call is now the worker's to answer (a
        confirmation allowed it) is running again while the worker runs them."""
        if self.status == "idle" and self.blockers and not self.client_blockers:
            self.record("session.status_running", event_id, {})
            return True
        return False

    def fail_worker_calls(self, event_id: str, message: str, new_event_id: Callable[[str], str]) -> bool:
        """The environment's worker could not serve the session (its sandbox did not start):
        a ``session.error`` saying why, and an error result for each call it would have run
        (or was holding for the user's confirmation), so the turn goes on. False when the
        session records nothing more."""
        if self.status == "terminated" or self.deleted or self.archived_at is not None:
            return False
        error = {"type": "unknown_error", "message": message, "retry_status": {"type": "exhausted"}}
        self.record("session.error", event_id, {"error": error})
        self.cancel_worker_calls(new_event_id, message)
        self.release_work()
        return True

    def cancel_worker_calls(
        self, new_event_id: Callable[[str], str], message: str, kinds: tuple[str, ...] = (WORKER_RESULT, WORKER_CONFIRMATION)
    ) -> None:
        """Ends every call the environment's worker runs (or, by default, also waits to
        run) with an error result saying why."""
        for tool_use_id, kind in list(self.blockers.items()):
            if kind in kinds:
                self.record("agent.tool_result", new_event_id("sevt"), tool_error(tool_use_id, message))

    def abandon_worker_calls(self, new_event_id: Callable[[str], str], message: str) -> None:
        """No worker will answer the calls it was running: each ends in an error result, and
        the next call asks for a worker afresh (the runtime stops this item if still live)."""
        self.cancel_worker_calls(new_event_id, message, kinds=(WORKER_RESULT,))
        self.release_work()

    def release_work(self) -> None:
        """Lets the session's work item go (its worker vanished or could not start)."""
        if self.work_id is not None:
            self._release_work()

    @event("WorkReleased")
    def _release_work(self) -> None:
        self.work_id = None

    def start_mcp_calls(self, tool_use_ids: list[str]) -> list[str]:
        """Marks the MCP calls a driver is about to make (before it makes them, so a driver
        that dies meanwhile leaves them marked: the next one ends them with an error rather
        than making them twice). Returns the ids that were waiting, in the order given."""
        waiting = [key for key in tool_use_ids if (self.mcp_calls.get(key) or {}).get("state") == MCP_WAITING]
        if waiting:
            self._start_mcp_calls(tool_use_ids=waiting)
        return waiting

    @event("McpCallsStarted")
    def _start_mcp_calls(self, tool_use_ids: list[str]) -> None:
        calls = dict(self.mcp_calls)
        for key in tool_use_ids:
            calls[key] = {**calls[key], "state": MCP_STARTED}
        self.mcp_calls = calls

    @property
    def started_mcp_calls(self) -> list[str]:
        """MCP calls started and not answered (a driver that saw them start ran them to a result)."""
        return [key for key, call in self.mcp_calls.items() if call.get("state") == MCP_STARTED]

    def route_to_worker(self, running: list[str], asking: list[str], new_work_id: str | None) -> None:
        """Built-in calls the environment's worker answers: ``running`` now, ``asking``
        once allowed; ``new_work_id`` when this is the call that asks for a worker."""
        if not running and not asking:
            return
        if new_work_id is None and self.work_id is None:
            raise InvalidState(f"session {self.session_id} has no work item for its worker's calls")
        self._route_to_worker(running=running, asking=asking, work_id=new_work_id)

    @event("ToolsRouted")
    def _route_to_worker(self, running: list[str], asking: list[str], work_id: str | None) -> None:
        blockers = dict(self.blockers)
        blockers.update(dict.fromkeys(running, WORKER_RESULT))
        blockers.update(dict.fromkeys(asking, WORKER_CONFIRMATION))
        self.blockers = blockers
        if work_id is not None:
            self.work_id = work_id

    def begin_request(self, event_id: str) -> None:
        if self.open_span is not None:
            raise InvalidState(f"model request {self.open_span} is still open")
        self.record("span.model_request_start", event_id, {})

    def finish_request(
        self,
        span_id: str,
        outputs: list[tuple[str, str, dict[str, Any]]],
        end_event_id: str,
        end_payload: dict[str, Any],
        thinking: dict[str, dict[str, Any]],
        cost_micros: int,
        priced: bool,
    ) -> bool:
        """Records a model request's output, once: a request another worker already closed
        (this one lost its lease) records nothing."""
        if self.open_span != span_id:
            return False
        for event_type, event_id, payload in outputs:
            self.record(event_type, event_id, payload)
            if event_id in thinking:
                self._keep_thinking(event_id=event_id, block=thinking[event_id])
        self.record("span.model_request_end", end_event_id, {"model_request_start_id": span_id, **end_payload})
        self._record_cost(span_id=span_id, cost_micros=cost_micros, priced=priced)
        return True

    def close_request(self, end_event_id: str, is_error: bool) -> bool:
        """Closes the open span with no output (aborted, failed, or left by a dead worker)."""
        if self.open_span is None:
            return False
        self.record(
            "span.model_request_end",
            end_event_id,
            {"model_request_start_id": self.open_span, "model_usage": dict.fromkeys(TOKEN_FIELDS, 0), "is_error": is_error},
        )
        return True

    def handle_interrupt(self) -> bool:
        """Drops the input sent before the interrupt that no model request saw; True when
        input sent after it is still owed a turn (the user redirected the agent)."""
        flushed = list(range(self.last_request_seq + 1, self.last_interrupt_seq))
        self._handle_interrupt(flushed=flushed)
        return self.last_user_message_seq > self.last_interrupt_seq

    @property
    def outcome_to_grade(self) -> dict[str, Any] | None:
        """The outcome a finished turn is graded against (none once it is acknowledged)."""
        if self.outcome is None or self.outcome.get("acknowledging"):
            return None
        return self.outcome

    def close_acknowledged_outcome(self) -> None:
        """The final acknowledgment turn after max iterations ran: the outcome is done."""
        if self.outcome is not None and self.outcome.get("acknowledging"):
            self._close_outcome()

    @event("OutcomeClosed")
    def _close_outcome(self) -> None:
        self.outcome = None

    def go_idle(self, event_id: str, stop_reason: dict[str, Any], stop_details: dict[str, Any] | None = None) -> None:
        payload: dict[str, Any] = {"stop_reason": stop_reason}
        if stop_details is not None:
            payload["stop_details"] = stop_details
        self.record("session.status_idle", event_id, payload)

    @property
    def over_budget(self) -> bool:
        """The tracked list cost reached the budget, or a model without a list price was
        used (which a budget cannot measure)."""
        budget = self.details.get("budget")
        if not budget:
            return False
        if self.unpriced_requests:
            return True
        cents = int(budget.get("max_list_cost", {}).get("amount", "0"))
        return self.cost_micros >= cents * 10_000

    def usage(self) -> dict[str, Any]:
        """The session's ``usage`` as the API shows it."""
        usage: dict[str, Any] = {name: self.usage_tokens.get(name, 0) for name in TOKEN_FIELDS if name != "cache_creation_input_tokens"}
        usage["cache_creation"] = {
            "ephemeral_5m_input_tokens": self.usage_tokens.get("cache_creation_input_tokens", 0),
            "ephemeral_1h_input_tokens": 0,
        }
        usage["list_cost"] = {"amount": str(self.cost_micros // 10_000), "currency": "USD"}
        usage["active_seconds"] = round(self.active_seconds, 3)
        return usage

    def stop_running(self, moment: datetime) -> None:
        if self.running_since is not None:
            self.active_seconds += max(0.0, (moment - self.running_since).total_seconds())
            self.running_since = None

    @event(ThinkingKept)
    def _keep_thinking(self, event_id: str, block: dict[str, Any]) -> None:
        pass

    def record_cost(self, span_id: str, cost_micros: int, priced: bool) -> None:
        self._record_cost(span_id=span_id, cost_micros=cost_micros, priced=priced)

    @event(RequestCosted)
    def _record_cost(self, span_id: str, cost_micros: int, priced: bool) -> None:
        self.cost_micros += cost_micros
        if not priced:
            self.unpriced_requests += 1

    def choose_completion_options(self, options: dict[str, Any]) -> None:
        """``temperature``, ``stop``, ``max_tokens`` and ``tools`` (custom tools offered beside
        the agent's own) for the turns from here on."""
        self._ensure_open()
        if options != self.completion_options:
            self._choose_completion_options(options=options)

    @event(CompletionOptionsChosen)
    def _choose_completion_options(self, options: dict[str, Any]) -> None:
        self.completion_options = options

    @event(InterruptHandled)
    def _handle_interrupt(self, flushed: list[int]) -> None:
        self.interrupt_requested = False

    # -- lifecycle --------------------------------------------------------------------

    def update(self, changes: dict[str, Any]) -> bool:
        """Patches title, metadata and budget; ``agent`` replaces the pinned agent's
        ``tools`` and ``mcp_servers`` (the only fields that may change mid-session)."""
        self._ensure_open()
        changes = dict(changes)
        agent_changes = changes.pop("agent", None)
        if "budget" in changes:
            self._check_budget(changes["budget"])
        changed = False
        if agent_changes:
            if self.status == "running":
                raise InvalidState(
                    f"session {self.session_id} is running; its agent can change only between turns"
                )
            agent = {**self.agent, **agent_changes}
            if agent != self.agent:
                self._record_agent_reconfiguration(agent=agent)
                changed = True
        details = merge_definition(self.details, changes)
        if details != self.details:
            self._record_update(details={key: value for key, value in details.items() if key != "resources"})
            changed = True
        return changed

    def _check_budget(self, budget: dict[str, Any] | None) -> None:
        if self.status == "terminated":
            raise InvalidState(f"session {self.session_id} is terminated; its budget cannot change")
        if budget is not None and self.details.get("budget") is None:
            # A budget is fixed at creation: it may be replaced or removed, never added.
            raise InvalidState(
                "budget_create_only: a budget can only be set when the session is created, "
                "and a removed budget cannot be added again"
            )

    @event(Updated)
    def _record_update(self, details: dict[str, Any]) -> None:
        budget_changed = details.get("budget") != self.details.get("budget")
        self.details = {**self.details, **details}
        if budget_changed and self.status == "idle" and (self.stop_reason or {}).get("type") == "budget_reached":
            # Raising (or removing) the cap resumes the turn it stopped.
            self.pending_work = True

    @event(AgentReconfigured)
    def _record_agent_reconfiguration(self, agent: dict[str, Any]) -> None:
        self.agent = agent

    def archive(self) -> bool:
        if self.deleted:
            raise InvalidState(f"session {self.session_id} is deleted")
        if self.archived_at is not None:
            return False
        self._record_archive()
        return True

    @event(Archived)
    def _record_archive(self) -> None:
        self.work_id = None  # an archived session records nothing more: no worker waits on it

    def delete(self, event_id: str) -> bool:
        """Deletion is recorded as the public ``session.deleted`` event, so live tails see it."""
        if self.deleted:
            return False
        if self.status == "running":
            raise InvalidState(
                f"session {self.session_id} is running; interrupt it before deleting it"
            )
        self.trigger_event(SessionWasDeleted, seq=self.last_seq + 1, event_id=event_id, payload={})
        return True

    # -- resources (``/v1/sessions/{id}/resources``) -----------------------------------------
    # ``details["resources"]`` stays the one list every read shows; after the start it changes
    # by these events only (``Updated`` never carries it).

    class ResourceAdded(Aggregate.Event):
        """A resource attached after the start, as stored and answered: id and times stamped,
        no write-only value."""

        resource: dict[str, Any]

        def changed(self, resources: list[dict[str, Any]]) -> list[dict[str, Any]]:
            """The session's resources after this event (the sessions read model applies it too)."""
            return [*resources, self.resource]

        def apply(self, aggregate: Session) -> None:
            aggregate.details = {**aggregate.details, "resources": self.changed(aggregate.resources)}

    class ResourceTokenRotated(Aggregate.Event):
        """A repository's authorization token was replaced, and its ``updated_at`` moved to
        this event's time. The token is write-only: it is not in the event."""

        resource_id: str

        def changed(self, resources: list[dict[str, Any]]) -> list[dict[str, Any]]:
            stamp = self.timestamp.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            return [{**held, "updated_at": stamp} if held.get("id") == self.resource_id else held for held in resources]

        def apply(self, aggregate: Session) -> None:
            aggregate.details = {**aggregate.details, "resources": self.changed(aggregate.resources)}

    class ResourceRemoved(Aggregate.Event):
        resource_id: str

        def changed(self, resources: list[dict[str, Any]]) -> list[dict[str, Any]]:
            return [held for held in resources if held.get("id") != self.resource_id]

        def apply(self, aggregate: Session) -> None:
            aggregate.details = {**aggregate.details, "resources": self.changed(aggregate.resources)}

    @property
    def resources(self) -> list[dict[str, Any]]:
        return list(self.details.get("resources") or [])

    def resource(self, resource_id: str) -> dict[str, Any] | None:
        return next((held for held in self.resources if held.get("id") == resource_id), None)

    def add_resource(self, resource: dict[str, Any]) -> None:
        self._ensure_resources_can_change()
        check_new_resource(self.resources, resource)
        self.trigger_event(self.ResourceAdded, resource=resource)

    def rotate_resource_token(self, resource_id: str) -> None:
        self._ensure_resources_can_change()
        resource = self._held_resource(resource_id)
        if resource.get("type") != "github_repository":
            raise InvalidState(
                f"resource {resource_id} is a {resource.get('type')}: only github_repository "
                "resources have an authorization token to rotate"
            )
        self.trigger_event(self.ResourceTokenRotated, resource_id=resource_id)

    def remove_resource(self, resource_id: str) -> None:
        self._ensure_resources_can_change()
        self._held_resource(resource_id)
        self.trigger_event(self.ResourceRemoved, resource_id=resource_id)

    def _held_resource(self, resource_id: str) -> dict[str, Any]:
        resource = self.resource(resource_id)
        if resource is None:
            raise InvalidState(f"session {self.session_id} has no resource {resource_id!r}")
        return resource

    def _ensure_resources_can_change(self) -> None:
        self._ensure_open()
        if self.status == "terminated":
            raise InvalidState(f"session {self.session_id} is terminated; its resources cannot change")

    def _ensure_open(self) -> None:
        if self.deleted:
            raise InvalidState(f"session {self.session_id} is deleted")
        if self.archived_at is not None:
            raise Archived(f"session {self.session_id} is archived")


def _started_only(calls: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The MCP calls a driver is making: a call still waiting for its confirmation is dropped
    with the confirmation (the transcript answers it as unanswered)."""
    return {key: call for key, call in calls.items() if call.get("state") == MCP_STARTED}


def tool_error(tool_use_id: str, text: str) -> dict[str, Any]:
    """The payload of an ``agent.tool_result`` that reports why a call did not run."""
    return {"tool_use_id": tool_use_id, "content": [{"type": "text", "text": text}], "is_error": True}


def requires_action(event_ids: list[str]) -> dict[str, Any]:
    return {"stop_reason": {"type": "requires_action", "event_ids": event_ids}}


def _runtime_state() -> dict[str, Any]:
    """The runtime's part of a session, as a new session starts it."""
    return {
        "pending_work": False,
        "blockers": {},  # blocking tool-use event id → what it waits for
        "confirmations": {},  # tool-use event id → {result, deny_message}, not yet acted on
        "open_span": None,
        "last_request_seq": 0,
        "last_interrupt_seq": 0,
        "usage_tokens": {},
        "cost_micros": 0,
        "unpriced_requests": 0,
        "active_seconds": 0.0,
        "running_since": None,
        "outcome": None,
        "outcome_evaluations": [],
        "work_id": None,
        "completion_options": {},
        "mcp_calls": {},
    }
