"""The Session aggregate. Its stream *is* the session's public event log.

Each public session event type (``user.message``, ``session.status_idle``, …) is recorded as
its own past-tense domain event carrying ``seq`` — the event's position in the public log
(1, 2, 3, …). Lifecycle events (Started, Updated, Archived) sit in the same
stream but are not part of the public log, so they carry no ``seq``.
"""

from __future__ import annotations

from datetime import datetime, timezone
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
    seq: int
    event_id: str
    payload: dict[str, Any]

    def apply(self, aggregate: "Session") -> None:
        aggregate.last_seq = self.seq
        aggregate.event_count += 1


class UserMessageSent(PublicEvent):
    public_type = "user.message"

    def apply(self, aggregate: "Session") -> None:
        super().apply(aggregate)
        aggregate.last_user_message_seq = self.seq


class UserInterrupted(PublicEvent):
    public_type = "user.interrupt"

    def apply(self, aggregate: "Session") -> None:
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

    def apply(self, aggregate: "Session") -> None:
        super().apply(aggregate)
        aggregate.status = "running"
        aggregate.interrupt_requested = False


class SessionBecameIdle(PublicEvent):
    public_type = "session.status_idle"

    def apply(self, aggregate: "Session") -> None:
        super().apply(aggregate)
        aggregate.status = "idle"
        aggregate.stop_reason = self.payload.get("stop_reason")
        aggregate.last_idle_seq = self.seq


class SessionWasRescheduled(PublicEvent):
    public_type = "session.status_rescheduled"

    def apply(self, aggregate: "Session") -> None:
        super().apply(aggregate)
        aggregate.status = "rescheduling"


class SessionWasTerminated(PublicEvent):
    public_type = "session.status_terminated"

    def apply(self, aggregate: "Session") -> None:
        super().apply(aggregate)
        aggregate.status = "terminated"


class SessionErrorOccurred(PublicEvent):
    public_type = "session.error"


class SessionWasDeleted(PublicEvent):
    public_type = "session.deleted"

    def apply(self, aggregate: "Session") -> None:
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
            # A v1 resource had no id: derive one from the stream and the resource's
            # position, so every load (and every process) gives it the same id; it came
            # into being with the session.
            resources = state["details"].get("resources")
            if not resources:
                return
            moment = state["timestamp"]
            stamp = moment if isinstance(moment, str) else moment.astimezone(timezone.utc).strftime(
                "%Y-%m-%dT%H:%M:%S.%fZ"
            )
            upcast = []
            for index, resource in enumerate(resources):
                digest = sha256(f"{state['originator_id']}/{index}".encode()).hexdigest()[:24]
                upcast.append({"id": f"sesrsc_{digest}", "created_at": stamp, "updated_at": stamp, **resource})
            state["details"] = {**state["details"], "resources": upcast}

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

    @event("TurnAnswered")
    def _record_turn_answered(self, reply_seq: int) -> None:
        self.answered_seq = reply_seq

    # -- lifecycle --------------------------------------------------------------------

    def update(self, changes: dict[str, Any]) -> bool:
        self._ensure_open()
        details = merge_definition(self.details, changes)
        if details == self.details:
            return False
        self._record_update(details=details)
        return True

    @event("Updated")
    def _record_update(self, details: dict[str, Any]) -> None:
        self.details = details

    def archive(self) -> bool:
        if self.deleted:
            raise InvalidState(f"session {self.session_id} is deleted")
        if self.archived_at is not None:
            return False
        self._record_archive()
        return True

    @event("Archived")
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
