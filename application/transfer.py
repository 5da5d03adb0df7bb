"""A workspace's event history out of one event store and into another (``agentry export`` /
``agentry import``), ids and versions kept.

What a stream belongs to is read off its first event: every aggregate's first event names its
workspace as ``tenant_id`` (``workspace_id`` for a workspace's own streams), as the activity
feed reads it too. An export is one pass of the notification log up to the head it found at
the start, so it is a consistent cut; its events come in the source's global order, which an
import keeps (each stream's versions in order, and every stream after the streams it was
created alongside).

Some streams never travel (``NOT_EXPORTED``): API keys and environment worker keys are stored
as keyed hashes of this instance's secret, so they would not authenticate anywhere else; a
webhook endpoint would be sent the whole imported history again, and its signing secret
could not be opened. Sealed secrets inside events that do travel (model-card keys, vault
credentials, memory contents, TOTP seeds) stay ciphertext: their data keys live in this
instance's key table and are not exported, so the target cannot open them (they must be
entered again there) — unless the export carries them (``DataKeys``), wrapped under a key
derived from a passphrase the operator gives both commands.

One kind of state does not travel byte for byte: a session's start (and, in its first schema,
its updates) stored before repository tokens became write-only keeps them in clear; the
loaded session never shows them (the upcast drops them), so neither does the file
(``scrubbed``). An import writes, and compares against what the target holds, states in that
scrubbed form, so a re-import into the exporting store still finds its streams identical."""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol
from uuid import UUID

import orjson

from domain.sessions import WRITE_ONLY_RESOURCE_FIELDS

FORMAT = "agentry-events"
FORMAT_VERSION = 1

# Modules whose aggregates never leave their store (see the module's docstring).
NOT_EXPORTED = ("domain.api_keys:", "domain.environment_keys:", "domain.webhooks:")
NOT_EXPORTED_NOTE = [
    "API keys and environment worker keys (hashed under this instance's key secret): issue new ones",
    "webhook endpoints (they would be sent the imported history; signing secrets cannot be opened): create them again",
    "data keys of sealed secrets (model-card API keys and headers, vault credentials, memory contents, "
    "TOTP seeds): the events travel as ciphertext the target cannot open; enter those secrets again",
    "file, skill and document bytes (kept in the blob store, not in events)",
]

# Events per read of the log and per write of an import.
BATCH = 1000


class TransferError(Exception):
    """An export or import refused, in one line."""


@dataclass(frozen=True)
class RawEvent:
    """A stored event as it is stored: nothing decoded, so it is copied byte for byte."""

    stream_id: UUID
    version: int
    topic: str
    state: bytes


# A sealed secret as it sits in a stored state: ``"v1.<key id: 16 base64url>.<ciphertext>"``.
SEALED = re.compile(rb'"v1\.([A-Za-z0-9_-]{16})\.[A-Za-z0-9_-]+"')


def sealed_key_ids(state: bytes) -> set[str]:
    """The data keys the sealed values in a stored state were sealed under."""
    if b'"v1.' not in state:
        return set()
    return {match.decode("ascii") for match in SEALED.findall(state)}


class DataKeys(Protocol):
    """Sealed secrets' data keys carried with an export (``--with-secrets``), wrapped under a
    key derived from a passphrase the operator gives both commands; never in clear."""

    def export_keys(self, key_ids: Collection[str], passphrase: str) -> dict[str, Any]: ...

    def import_keys(self, section: dict[str, Any], passphrase: str, write: bool = True) -> int:
        """Checks all (raising ``TransferError``), then stores the missing ones; how many."""
        ...


class RawEventLog(Protocol):
    """The event store below the aggregates: the global log read as stored, and appends of
    stored events that keep their stream ids and versions."""

    def max_notification_id(self) -> int: ...

    def notifications(self, after: int, limit: int) -> Sequence[Any]:
        """Rows with ``id``, ``originator_id``, ``originator_version``, ``topic``, ``state``."""
        ...

    def stream_version(self, stream_id: UUID) -> int:
        """The stream's last version (0: no such stream)."""
        ...

    def stored_rows(self, stream_id: UUID) -> Sequence[tuple[int, str, bytes]]:
        """(version, topic, state) of every event of the stream, oldest first."""
        ...

    def check_decodes(self, event: RawEvent) -> None:
        """Raises ``TransferError`` unless this store's mapper decodes ``event`` into one of
        the domain's event classes with every field it declares: what the aggregates and the
        read models will read it as."""
        ...

    def append_raw(self, events: Sequence[RawEvent]) -> Sequence[int]:
        """All of ``events`` in one transaction, or none (``application.errors.Conflict``
        when a stream version is taken)."""
        ...

    @property
    def kind(self) -> str:
        """``sqlite`` or ``postgresql``: what an export's header names as its source's store."""
        ...


Progress = Callable[[int], None]


def _no_progress(_: int) -> None:
    return None


def workspace_of(state: bytes) -> str | None:
    """The workspace a stream's first event names (None: it names none)."""
    try:
        data = orjson.loads(state)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(data, dict):
        return None
    for key in ("tenant_id", "workspace_id"):
        value = data.get(key)
        if isinstance(value, str) and value:
            return value
    return None


def travels(topic: str) -> bool:
    return not topic.startswith(NOT_EXPORTED)


# Events whose first schema kept a resource as the client sent it, write-only values included.
RESOURCE_CARRIERS = ("domain.sessions:Session.Started", "domain.sessions:Session.Updated")


def scrubbed(topic: str, state: bytes) -> bytes:
    """``state`` without the write-only values (a repository's ``authorization_token``) that
    old session events keep in their resources; the very bytes when it has none."""
    if topic not in RESOURCE_CARRIERS or not any(name.encode() in state for name in WRITE_ONLY_RESOURCE_FIELDS):
        return state
    try:
        data = orjson.loads(state)
    except orjson.JSONDecodeError:
        return state
    details = data.get("details") if isinstance(data, dict) else None
    if not isinstance(details, dict) or not isinstance(details.get("resources"), list):
        return state
    resources = details["resources"]
    kept = [
        {key: value for key, value in resource.items() if key not in WRITE_ONLY_RESOURCE_FIELDS}
        if isinstance(resource, dict) else resource
        for resource in resources
    ]  # fmt: skip
    if kept == resources:
        return state
    return orjson.dumps({**data, "details": {**details, "resources": kept}})


def _fingerprint(topic: str, state: bytes) -> bytes:
    return hashlib.sha256(topic.encode() + b"\x00" + scrubbed(topic, state)).digest()


# -- the file's lines ----------------------------------------------------------------------------


def event_line(event: RawEvent, position: int) -> bytes:
    """One event as a JSON line. The state is its stored JSON text, kept as a string so the
    bytes come back exactly (a re-encoded object might not: key order, number spelling)."""
    line: dict[str, Any] = {
        "stream_id": str(event.stream_id),
        "version": event.version,
        "topic": event.topic,
        "position": position,
    }
    try:
        line["state"] = event.state.decode("utf-8")
    except UnicodeDecodeError:
        line["state_b64"] = base64.b64encode(event.state).decode("ascii")
    return orjson.dumps(line) + b"\n"


def parse_event_line(raw: bytes, number: int) -> RawEvent:
    where = f"line {number}"
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise TransferError(f"{where}: not JSON ({error})") from None
    if not isinstance(data, dict):
        raise TransferError(f"{where}: not an event object")
    try:
        stream_id = UUID(str(data["stream_id"]))
        version = data["version"]
        topic = data["topic"]
        if "state" in data and isinstance(data["state"], str):
            state = data["state"].encode("utf-8")
        else:
            state = base64.b64decode(str(data["state_b64"]), validate=True)
    except (KeyError, ValueError, binascii.Error) as error:
        raise TransferError(f"{where}: not an event ({type(error).__name__}: {error})") from None
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise TransferError(f"{where}: version must be a positive integer")
    if not isinstance(topic, str) or ":" not in topic:
        raise TransferError(f"{where}: topic must be a 'module:Class' string")
    return RawEvent(stream_id, version, topic, state)


def header(
    source: dict[str, Any], workspace: str | None, summary: ExportSummary, data_keys: dict[str, Any] | None = None
) -> dict[str, Any]:
    found = {
        "data_keys": data_keys,
        "not_exported": NOT_EXPORTED_NOTE if data_keys is None else NOT_EXPORTED_NOTE[:2] + NOT_EXPORTED_NOTE[3:],
    }
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "source": source,
        "workspace": workspace,
        "position": summary.position,
        "events": summary.events,
        "streams": summary.streams,
        "types": dict(sorted(summary.types.items())),
        "skipped_streams": summary.skipped_streams,
        **found,
    }


def check_header(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise TransferError(f"not an Agentry export (its first line is no {FORMAT!r} header)")
    version = data.get("format_version")
    if isinstance(version, int) and not isinstance(version, bool) and version > FORMAT_VERSION:
        source = data.get("source")
        written_by = source.get("agentry") if isinstance(source, dict) else None
        by = f" (written by Agentry {written_by})" if isinstance(written_by, str) else ""
        raise TransferError(
            f"export format version {version}{by} is newer than this Agentry reads ({FORMAT_VERSION}): upgrade it first"
        )
    if version != FORMAT_VERSION:
        raise TransferError(f"export format version {version!r} is not one this Agentry reads ({FORMAT_VERSION})")
    if not isinstance(data.get("events"), int):
        raise TransferError("the header has no event count")
    return data


# -- export ----------------------------------------------------------------------------------


@dataclass
class ExportSummary:
    position: int = 0  # the source's log head the export is a cut at
    events: int = 0
    streams: int = 0
    skipped_streams: int = 0  # of the workspace, but of a kind that does not travel
    types: dict[str, int] = field(default_factory=dict)  # streams per aggregate type


def _aggregate_type(topic: str) -> str:
    name = topic.split(":", 1)[1]
    return name.split(".", 1)[0] if "." in name else topic.split(":", 1)[0].rsplit(".", 1)[-1]


def export_events(
    log: RawEventLog,
    workspace: str | None,
    summary: ExportSummary,
    progress: Progress = _no_progress,
    batch: int = BATCH,
    sealed: set[str] | None = None,
) -> Iterator[bytes]:
    """The lines of every event of ``workspace``'s streams (every workspace's with None), in
    the global order, up to the head found now; ``summary`` is filled as they come, and
    ``sealed`` (when given) with the data-key ids of the sealed values they carry."""
    head = log.max_notification_id()
    summary.position = head
    chosen: set[UUID] = set()
    after = 0
    while after < head:
        rows = log.notifications(after, min(batch, head - after))
        if not rows:
            break
        for row in rows:
            if row.id > head:
                break
            stream = UUID(str(row.originator_id))
            if row.originator_version == 1:
                if workspace is None or workspace_of(row.state) == workspace:
                    if travels(row.topic):
                        chosen.add(stream)
                        summary.streams += 1
                        kind = _aggregate_type(row.topic)
                        summary.types[kind] = summary.types.get(kind, 0) + 1
                    else:
                        summary.skipped_streams += 1
            if stream in chosen:
                summary.events += 1
                state = scrubbed(row.topic, bytes(row.state))
                if sealed is not None:
                    sealed.update(sealed_key_ids(state))
                yield event_line(RawEvent(stream, row.originator_version, row.topic, state), row.id)
        after = rows[-1].id
        progress(min(after, head))


# -- import ----------------------------------------------------------------------------------


@dataclass
class ImportPlan:
    """What an import would write, checked against the target before anything is."""

    events: int = 0  # in the file
    streams: int = 0
    to_write: int = 0
    already_present: int = 0  # identical events the target holds (a re-import)
    present_streams: dict[UUID, int] = field(default_factory=dict)  # stream → the target's version


def plan_import(log: RawEventLog, events: Callable[[], Iterable[RawEvent]], expected: int) -> ImportPlan:
    """Checks the file's events hang together (each stream 1, 2, 3 … in order), that this
    store decodes every one of them into a domain event (else its read models would stop at
    the first it cannot), and against the target: a stream the target already holds must
    hold a prefix of the file's stream, byte for byte (``scrubbed``; a re-import, or one cut
    short), else the import is refused before any write. ``events`` is called once or twice
    (the second pass only when streams overlap)."""
    plan = ImportPlan()
    last: dict[UUID, int] = {}
    for event in events():
        plan.events += 1
        want = last.get(event.stream_id, 0) + 1
        if event.version != want:
            raise TransferError(
                f"event {plan.events}: stream {event.stream_id} version {event.version} where {want} was due"
            )
        # Checked before decoding: resolving a topic imports its module.
        if not event.topic.startswith("domain.") or not travels(event.topic):
            raise TransferError(f"event {plan.events}: {event.topic!r} is not an event an export carries")
        try:
            log.check_decodes(event)
        except TransferError as error:
            raise TransferError(f"event {plan.events} ({event.topic}) does not decode here: {error}") from None
        last[event.stream_id] = event.version
    if plan.events != expected:
        raise TransferError(f"the file holds {plan.events} events where its header says {expected}: is it cut short?")
    plan.streams = len(last)
    for stream in last:
        version = log.stream_version(stream)
        if version:
            if version > last[stream]:
                raise TransferError(
                    f"stream {stream} is already in this store with more events than the export ({version} > {last[stream]})"
                )
            plan.present_streams[stream] = version
    if plan.present_streams:
        # Only a digest per stored event is kept: a stream may be long.
        stored: dict[UUID, dict[int, bytes]] = {}
        for event in events():
            have = plan.present_streams.get(event.stream_id, 0)
            if event.version > have:
                continue
            rows = stored.get(event.stream_id)
            if rows is None:
                rows = stored[event.stream_id] = {v: _fingerprint(t, bytes(s)) for v, t, s in log.stored_rows(event.stream_id)}
            if rows.get(event.version) != _fingerprint(event.topic, event.state):
                raise TransferError(
                    f"stream {event.stream_id} ({_aggregate_type(event.topic)}) is already in this store and its "
                    f"version {event.version} differs from the export's: nothing was imported"
                )
            plan.already_present += 1
    plan.to_write = plan.events - plan.already_present
    return plan


def import_events(
    log: RawEventLog,
    events: Iterable[RawEvent],
    plan: ImportPlan,
    progress: Progress = _no_progress,
    batch: int = BATCH,
) -> int:
    """Appends the events ``plan`` found missing, in the file's order, ``batch`` per
    transaction; returns how many were written. Should a writer take a version meanwhile,
    the batch is refused whole (``Conflict``) and what came before stays: a second run
    skips that and goes on."""
    written = 0
    pending: list[RawEvent] = []
    for event in events:
        if event.version <= plan.present_streams.get(event.stream_id, 0):
            continue
        pending.append(RawEvent(event.stream_id, event.version, event.topic, scrubbed(event.topic, event.state)))
        if len(pending) >= batch:
            log.append_raw(pending)
            written += len(pending)
            pending = []
            progress(written)
    if pending:
        log.append_raw(pending)
        written += len(pending)
        progress(written)
    return written
