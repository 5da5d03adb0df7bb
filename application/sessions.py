"""Use cases of the sessions context: start sessions on a pinned agent version, change them,
and accept client events. Reads of the public log are ``application.session_log``'s."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from application.agents import AgentService, normalize_changes
from application.commands import Alongside, Commands, Kind, Written
from application.environments import EnvironmentService
from application.errors import Forbidden, Invalid
from application.files import FileService, check_file_resources
from application.ids import new_id
from application.memory import MemoryService
from application.ports import EventStore
from application.session_resources import (
    StoreLookup,
    removal_marker,
    resource_of,
    stamp,
    stamp_all,
    unique_mount_path,
)
from application.tenancy import Principal
from application.vaults import usable_vaults
from application.views import session_event_view, session_view
from application.work_queue import hosting_of, released_item
from domain.sessions import CLIENT_EVENT_TYPES, PublicEvent, Session

# Assigned by the server; a client-sent value is dropped, never stored.
WORKER_ROLE = "worker"  # a Principal standing for a work item's worker (its sessions_token)
PLATFORM_WORKER_ROLE = "platform_worker"  # … when that worker is Agentry's own (cloud)
SERVER_FIELDS = frozenset({"type", "id", "seq", "processed_at", "outcome_id"})
OVERRIDABLE = ("model", "system", "tools", "mcp_servers", "skills")


def render(session: Session) -> dict[str, Any]:
    return session_view(
        session.session_id,
        session.agent,
        session.environment_id,
        session.details,
        session.status,
        session.created_on,
        session.modified_on,
        session.archived_at,
        usage=session.usage(),
        outcome_evaluations=session.outcome_evaluations,
        active_seconds=round(session.active_seconds, 3),
    )


SESSIONS: Kind[Session] = Kind(Session, "sesn", "session", gone=lambda session: session.deleted)


def deleted_marker(session: Session) -> dict[str, Any]:
    return {"id": session.session_id, "type": "session_deleted"}


class SessionService:
    def __init__(
        self,
        store: EventStore,
        agents: AgentService,
        environments: EnvironmentService,
        on_user_turn: Callable[[str], None] = lambda session_id: None,
        on_interrupt: Callable[[str], None] = lambda session_id: None,
        files: FileService | None = None,
        memory: MemoryService | None = None,
    ) -> None:
        self._files = files
        self._memory = memory
        self._agents = agents
        self._environments = environments
        self._on_user_turn = on_user_turn
        self._on_interrupt = on_interrupt
        self._store = store
        self._commands = Commands(store, SESSIONS, render)

    def create(self, who: Principal, fields: dict[str, Any]) -> Written:
        session = self.new(who, fields)
        written = self._commands.create(session)
        self.begin(session)
        return written

    def with_events(self, who: Principal, session_id: str, events: list[dict[str, Any]]) -> Session:
        """The caller's session with ``events`` accepted, not yet saved (for a caller that saves
        it with another aggregate, in one append); ``begin`` it once saved."""
        session = self._commands.load(who, session_id)
        self._accept(session, events)
        return session

    def begin(self, session: Session) -> None:
        """After a session changed by ``new`` or ``with_events`` is saved: the turn its events
        ask for, or the interrupt of the one in progress."""
        if session.interrupt_requested:
            self._on_interrupt(session.session_id)
        if session.wants_turn:
            self._on_user_turn(session.session_id)

    def new(self, who: Principal, fields: dict[str, Any]) -> Session:
        """A session as ``create`` makes it, not yet saved (for a caller that saves it along
        with another aggregate, in one append); ``begin`` it once saved."""
        agent_ref = fields["agent"]
        overrides: dict[str, Any] = {}
        if isinstance(agent_ref, str):
            agent_id, agent_version = agent_ref, None
        else:
            agent_id, agent_version = agent_ref["id"], agent_ref.get("version")
            if agent_ref.get("type") == "agent_with_overrides":
                # A null field overrides nothing: the agent's own value stands.
                overrides = {key: agent_ref[key] for key in OVERRIDABLE if agent_ref.get(key) is not None}
        pinned = self._agents.pinned(who, agent_id, agent_version)
        if overrides:
            pinned = {**pinned, **normalize_changes(overrides)}
        environment = self._environments.load(who, fields["environment_id"])
        if environment.archived_at is not None:
            raise Invalid(f"environment {environment.environment_id} is archived")
        if fields.get("vault_ids"):
            fields = {**fields, "vault_ids": usable_vaults(self._store, who, fields["vault_ids"])}
        details = {
            key: fields.get(key)
            for key in ("title", "metadata", "resources", "vault_ids", "budget")
            if fields.get(key) is not None
        }
        if details.get("resources"):
            # Write-only tokens are split off here and, until a cipher holds them, dropped.
            now = datetime.now(UTC)
            stamped = stamp_all(details["resources"], now, lookup=self._store_lookup(who))
            details["resources"] = [entry.resource for entry in stamped]
            check_file_resources(self._files, who, details["resources"])
        session = Session(
            session_id=new_id("sesn"),
            tenant_id=who.tenant_id,
            agent=pinned,
            environment_id=environment.environment_id,
            details=details,
        )
        self._accept(session, fields.get("initial_events") or [])
        return session

    def retrieve(self, who: Principal, session_id: str) -> dict[str, Any]:
        return self._commands.view(who, session_id)

    def update(self, who: Principal, session_id: str, changes: dict[str, Any]) -> Written:
        changes = dict(changes)
        if changes.get("agent") is not None:
            changes["agent"] = normalize_changes(changes["agent"])
        if changes.get("vault_ids"):
            changes["vault_ids"] = usable_vaults(self._store, who, changes["vault_ids"])
        resumed = False

        def change(session: Session) -> bool:
            nonlocal resumed
            changed = session.update(changes)
            # A raised (or removed) budget resumes the turn it stopped.
            resumed = session.start_turn(new_id("sevt"), span_id=new_id("sevt"))
            return changed or resumed

        written = self._commands.change(who, session_id, change)
        if resumed:
            self._on_user_turn(session_id)
        return written

    def archive(self, who: Principal, session_id: str) -> Written:
        return self._commands.change(who, session_id, self._releasing(Session.archive))

    def delete(self, who: Principal, session_id: str) -> Written:
        return self._commands.change(
            who, session_id, self._releasing(lambda session: session.delete(new_id("sevt"))), render=deleted_marker
        )

    # -- resources (``/v1/sessions/{id}/resources``; the list is a read model's) ----------

    def add_resource(self, who: Principal, session_id: str, sent: dict[str, Any]) -> Written:
        """Attaches one resource. It is stamped once, before the first attempt, so a retried
        race records the same id. As at create, a write-only token is split off and, until a
        cipher holds it, dropped."""
        stamped = stamp(sent, datetime.now(UTC), lookup=self._store_lookup(who)).resource
        resource = stamped

        def attach(session: Session) -> None:
            nonlocal resource
            resource = unique_mount_path(session.resources, stamped)
            session.add_resource(resource)
            # After the session's own checks (mount path, caps), so those answer first.
            check_file_resources(self._files, who, [resource])

        return self._commands.change(
            who,
            session_id,
            attach,
            render=lambda session: resource_of(session, resource["id"]),
        )

    def _store_lookup(self, who: Principal) -> StoreLookup | None:
        if self._memory is None:
            return None
        memory = self._memory
        return lambda memory_store_id: memory.attachable(who, memory_store_id)

    def resource(self, who: Principal, session_id: str, resource_id: str) -> dict[str, Any]:
        return resource_of(self._commands.load(who, session_id), resource_id)

    def rotate_resource_token(
        self, who: Principal, session_id: str, resource_id: str, authorization_token: str
    ) -> Written:
        """Records that a repository's token was replaced. The token itself is write-only and,
        as at create, dropped until a cipher holds it: no event or read ever carries it."""
        del authorization_token

        def rotate(session: Session) -> None:
            resource_of(session, resource_id)  # another session's resource is a 404
            session.rotate_resource_token(resource_id)

        return self._commands.change(
            who, session_id, rotate, render=lambda session: resource_of(session, resource_id)
        )

    def remove_resource(self, who: Principal, session_id: str, resource_id: str) -> Written:
        def remove(session: Session) -> None:
            resource_of(session, resource_id)
            session.remove_resource(resource_id)

        return self._commands.change(
            who, session_id, remove, render=lambda session: removal_marker(resource_id)
        )

    def send(
        self, who: Principal, session_id: str, events: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        """Records the client's events in one atomic append; the runtime takes the turn.
        A race with another append (the runtime's, another client's) is retried on the
        fresh stream, so the events land after it, all together, exactly once."""

        if who.role in (WORKER_ROLE, PLATFORM_WORKER_ROLE) and any(sent["type"] != "user.tool_result" for sent in events):
            raise Forbidden("a work item's token sends only user.tool_result, for the calls its worker runs")
        recorded: list[dict[str, Any]] = []
        wants_turn = False
        # An interrupt recorded while no turn runs has nothing in flight to abort (a turn
        # started later begins after it in the log): no signal to whoever drives the session.
        was_turning = False

        def accept(session: Session) -> None:
            nonlocal wants_turn, was_turning
            was_turning = session.status in ("running", "rescheduling")
            recorded[:] = self._accept(session, events, self._results_by_platform(who, session, events))
            wants_turn = session.wants_turn

        self._commands.change(who, session_id, self._releasing(accept))
        if was_turning and any(event["type"] == "user.interrupt" for event in events):
            self._on_interrupt(session_id)
        if wants_turn:
            self._on_user_turn(session_id)
        return recorded

    def _releasing(self, command: Callable[[Session], object]) -> Callable[[Session], Alongside | None]:
        """``command``, and when it lets the session's work item go (deleted, or idle after
        an interrupt), the item asked to stop in the same append."""

        def run(session: Session) -> Alongside | None:
            holding = session.work_id
            command(session)
            released = released_item(self._store, holding, session)
            return Alongside((released,)) if released is not None else None

        return run

    def _results_by_platform(self, who: Principal, session: Session, events: list[dict[str, Any]]) -> bool:
        """Whether the ``user.tool_result`` events sent are Agentry's own worker's results
        (recorded as ``agent.tool_result``): on a ``cloud`` environment, where only the
        platform runs tools. On ``self_hosted`` they are the client's own worker's."""
        if not any(sent["type"] == "user.tool_result" for sent in events):
            return False
        if hosting_of(self._store, session.environment_id) == "self_hosted":
            return False
        if who.role != PLATFORM_WORKER_ROLE:
            raise Invalid(
                "user.tool_result is only valid on self_hosted environments; on a cloud environment "
                "Agentry's own workers run the agent's tools"
            )
        return True

    def _accept(
        self, session: Session, events: list[dict[str, Any]], results_by_platform: bool = False
    ) -> list[dict[str, Any]]:
        _check_system_message(events)
        recorded = []
        blockers_before = dict(session.blockers)
        for sent in events:
            payload = {key: value for key, value in sent.items() if key not in SERVER_FIELDS}
            if sent["type"] == "user.define_outcome":
                # Later outcome evaluations refer to it, so the server mints it.
                payload["outcome_id"] = new_id("outc")
            session.check_client_event(sent["type"], payload)
            if sent["type"] == "user.interrupt" and session.status == "running":
                # Calls a worker is running end now, with a result, so no worker (reading
                # the log for unanswered calls) ever runs them later.
                session.cancel_worker_calls(new_id, "The tool call was cancelled: the user interrupted the turn.")
            if sent["type"] == "user.tool_result" and results_by_platform:
                session.record("agent.tool_result", new_id("sevt"), payload)
            else:
                session.accept_user_event(sent["type"], new_id("sevt"), payload)
        for pending in session.pending_events:
            if isinstance(pending, PublicEvent) and (
                pending.public_type in CLIENT_EVENT_TYPES or (results_by_platform and pending.public_type == "agent.tool_result")
            ):
                recorded.append(session_event_view(pending))
        if session.start_turn(new_id("sevt"), span_id=new_id("sevt")):
            return recorded
        if session.resume_for_worker(new_id("sevt")):
            return recorded
        if blockers_before and session.status == "idle" and session.blockers != blockers_before:
            if session.blockers:
                # Fewer than all blocking calls answered: idle again, with the remainder.
                session.requires_action_again(new_id("sevt"))
            elif not session.pending_work:
                # An interrupt let the waiting calls go: the turn is over.
                session.go_idle(new_id("sevt"), {"type": "end_turn"})
        return recorded


# What a system.message may accompany (it is sent with, and right after, one of these).
SYSTEM_MESSAGE_FOLLOWS = ("user.message", "user.tool_result", "user.custom_tool_result")


def _check_system_message(events: list[dict[str, Any]]) -> None:
    """At most one ``system.message`` per request, last, right after the event it accompanies."""
    positions = [index for index, sent in enumerate(events) if sent["type"] == "system.message"]
    if not positions:
        return
    if len(positions) > 1:
        raise Invalid("at most one system.message may be sent per request")
    index = positions[0]
    if index != len(events) - 1:
        raise Invalid("a system.message must be the last event of the request")
    if index == 0 or events[index - 1]["type"] not in SYSTEM_MESSAGE_FOLLOWS:
        raise Invalid(
            "a system.message must directly follow the " + " / ".join(SYSTEM_MESSAGE_FOLLOWS) + " it accompanies"
        )
