"""The Session aggregate. Its stream *is* the session's public event log.

Each public session event type (``user.message``, ``session.status_idle``, …) is recorded as
its own past-tense domain event carrying ``seq`` — the event's position in the public log
(1, 2, 3, …). Lifecycle events (Started, Updated, Archived) sit in the same
stream but are not part of the public log, so they carry no ``seq``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from hashlib import sha256
from typing import Any, ClassVar
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.agents import merge_definition
from domain.errors import Archived, InvalidState
from domain.ids import stream_id

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


class UserInterrupted(PublicEvent):
    public_type = "user.interrupt"

    def apply(self, aggregate: Session) -> None:
        super().apply(aggregate)
        aggregate.interrupt_requested = True


class UserToolConfirmationSent(PublicEvent):
    public_type = "user.tool_confirmation"


class UserCustomToolResultSent(PublicEvent):
    public_type = "user.custom_tool_result"


class UserToolResultSent(PublicEvent):
    public_type = "user.tool_result"


class UserOutcomeDefined(PublicEvent):
    public_type = "user.define_outcome"


class SystemMessageSent(PublicEvent):
    public_type = "system.message"


class AgentMessageSent(PublicEvent):
    public_type = "agent.message"


class AgentThoughtRecorded(PublicEvent):
    public_type = "agent.thinking"


class AgentToolUseRequested(PublicEvent):
    public_type = "agent.tool_use"


class AgentToolResultReceived(PublicEvent):
    public_type = "agent.tool_result"


class AgentCustomToolUseRequested(PublicEvent):
    public_type = "agent.custom_tool_use"


class SessionBecameRunning(PublicEvent):
    public_type = "session.status_running"
    status_after = "running"

    def apply(self, aggregate: Session) -> None:
        super().apply(aggregate)
        aggregate.interrupt_requested = False


class SessionBecameIdle(PublicEvent):
    public_type = "session.status_idle"
    status_after = "idle"

    def apply(self, aggregate: Session) -> None:
        super().apply(aggregate)
        aggregate.stop_reason = self.payload.get("stop_reason")
        aggregate.last_idle_seq = self.seq


class SessionWasRescheduled(PublicEvent):
    public_type = "session.status_rescheduled"
    status_after = "rescheduling"


class SessionWasTerminated(PublicEvent):
    public_type = "session.status_terminated"
    status_after = "terminated"


class SessionErrorOccurred(PublicEvent):
    public_type = "session.error"


class SessionWasDeleted(PublicEvent):
    public_type = "session.deleted"

    def apply(self, aggregate: Session) -> None:
        super().apply(aggregate)
        aggregate.deleted = True


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
        reply_seq: int

    class Archived(Aggregate.Event):
        pass

    # Snapshots taken before resources had ids hold them without: give them the same ids
    # the v1 ``Started`` upcast gives (both derive them from the stream).
    class_version = 2

    @staticmethod
    def upcast_v1_v2(state: dict[str, Any]) -> None:
        state["details"] = with_resource_ids(
            state["details"], str(stream_id(state["session_id"])), state["_created_on"]
        )

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
        self.last_idle_seq = 0
        self.answered_seq = 0
        self.event_count = 0
        self.interrupt_requested = False
        self.archived_at: datetime | None = None
        self.deleted = False

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

    def start_turn(self, event_id: str) -> bool:
        """Marks the session ``running`` as soon as a user message awaits a reply, in the
        same append as that message: a crash before the runtime picks the turn up then
        still leaves a ``running`` session for start-up to resume, never a silent one."""
        if not self.awaits_reply or self.status == "running":
            return False
        self.record("session.status_running", event_id, {})
        return True

    @property
    def awaits_reply(self) -> bool:
        """A user message arrived after the agent last went idle."""
        return (
            not self.deleted
            and self.status != "terminated"
            and self.last_user_message_seq > self.last_idle_seq
        )

    def answered(self, reply_seq: int) -> bool:
        """The turn for the user message at ``reply_seq`` has already been answered."""
        return self.answered_seq >= reply_seq

    def answer(
        self,
        reply_seq: int,
        outcome: list[tuple[str, str, dict[str, Any]]],
        idle_event_id: str,
    ) -> bool:
        """Records a turn's outcome (``(type, event_id, payload)`` each) for the user message
        at ``reply_seq``, at most once. The session goes idle only if no newer user message
        arrived during the turn: that one is still unanswered, so the session stays running."""
        if self.answered(reply_seq):
            return False
        for event_type, event_id, payload in outcome:
            self.record(event_type, event_id, payload)
        self._record_turn_answered(reply_seq=reply_seq)
        if self.last_user_message_seq <= reply_seq:
            self.record("session.status_idle", idle_event_id, {"stop_reason": {"type": "end_turn"}})
        return True

    @event(TurnAnswered)
    def _record_turn_answered(self, reply_seq: int) -> None:
        self.answered_seq = reply_seq

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
        self.details = {**self.details, **details}

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
        self.archived_at = self.modified_on

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

    def _ensure_open(self) -> None:
        if self.deleted:
            raise InvalidState(f"session {self.session_id} is deleted")
        if self.archived_at is not None:
            raise Archived(f"session {self.session_id} is archived")
