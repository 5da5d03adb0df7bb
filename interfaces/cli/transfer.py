"""``agentry export`` and ``agentry import``: a workspace's event history as a file that another
Agentry replays into its own store (the rules are in ``application.transfer``).

The file is JSON lines, gzip-compressed when its name ends in ``.gz`` (an import recognises
gzip by its first bytes): a header line (``format``, ``format_version``, ``source``,
``workspace``, ``position``, ``events``, ``streams``, ``types``, ``not_exported``), then one
line per event in the source's global order: ``stream_id``, ``version``, ``topic``,
``position`` (the source's notification id) and ``state`` (the stored JSON, as text)."""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import sys
import tempfile
import time
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, BinaryIO, cast

import orjson

from application.errors import Conflict
from application.transfer import (
    ExportSummary,
    RawEvent,
    TransferError,
    check_header,
    export_events,
    header,
    import_events,
    parse_event_line,
    plan_import,
)
from interfaces.cli.progress import progress

if TYPE_CHECKING:
    from interfaces.cli.processes import TransferStores

REFUSED = 2
# What a file that is not whole raises as it is read: gzip's own errors are OSErrors, a
# damaged deflate stream is a zlib.error.
UNREADABLE = (OSError, EOFError, zlib.error, TransferError)
PASSPHRASE = "AGENTRY_EXPORT_PASSPHRASE"
MIN_PASSPHRASE = 16


def _refuse(message: str) -> int:
    print(f"agentry: {message}", file=sys.stderr)
    return REFUSED


def _say(args: argparse.Namespace, text: str, to_stderr: bool = False) -> None:
    if not args.quiet:
        print(text, file=sys.stderr if to_stderr else sys.stdout, flush=True)


def _emit_json(data: dict[str, Any], to_stderr: bool = False) -> None:
    print(json.dumps(data, sort_keys=True), file=sys.stderr if to_stderr else sys.stdout, flush=True)


# -- export ----------------------------------------------------------------------------------


def _passphrase() -> str:
    # From the environment, never argv (a process list shows argv to every local user).
    return os.environ.get(PASSPHRASE, "")


def export_command(args: argparse.Namespace) -> int:
    from interfaces.bootstrap import build_transfer, data_key_transfer, load_settings

    workspace = None if args.all else args.workspace
    to_stdout = args.output == "-"
    passphrase = _passphrase()
    if args.with_secrets and len(passphrase) < MIN_PASSPHRASE:
        return _refuse(f"--with-secrets needs {PASSPHRASE} (at least {MIN_PASSPHRASE} characters) to wrap the data keys")
    settings = load_settings()
    stores = build_transfer(settings)
    try:
        log = stores.log
        summary = ExportSummary()
        started = time.monotonic()
        head = log.max_notification_id()
        bar = progress("export", head, quiet=args.quiet)
        sealed: set[str] | None = set() if args.with_secrets else None
        # The header counts what follows, so the events are spooled first: beside the output
        # (a file system with room for it), to $TMPDIR when writing to standard output.
        spool_dir = None if to_stdout else str(Path(args.output).resolve().parent)
        with tempfile.TemporaryFile(dir=spool_dir) as spool:
            for line in export_events(log, workspace, summary, bar.update, sealed=sealed):
                spool.write(line)
            bar.finish()
            if workspace not in (None, "default") and summary.streams == 0:
                return _refuse(f"workspace {workspace!r} has no events in this store; nothing was written")
            data_keys = None
            if sealed is not None:
                keys = data_key_transfer(settings)
                try:
                    data_keys = keys.export_keys(sealed, passphrase)
                except TransferError as error:
                    return _refuse(f"export refused: {error}")
                finally:
                    keys.close()
            exported_at = datetime.now(UTC).isoformat().replace("+00:00", "Z")
            source = {"agentry": _agentry_version(), "store": log.kind, "exported_at": exported_at}
            first = orjson.dumps(header(source, workspace, summary, data_keys)) + b"\n"
            spool.seek(0)
            if to_stdout:
                _write(sys.stdout.buffer, first, spool, gzip_name=None)
                sys.stdout.buffer.flush()
            else:
                _write_file(Path(args.output), first, spool)
        result = {
            "file": None if to_stdout else str(args.output),
            "workspace": workspace,
            "all": workspace is None,
            "position": summary.position,
            "events": summary.events,
            "streams": summary.streams,
            "types": summary.types,
            "skipped_streams": summary.skipped_streams,
            "data_keys": None if data_keys is None else len(data_keys["keys"]),
            "seconds": round(time.monotonic() - started, 3),
        }
        if args.json:
            _emit_json(result, to_stderr=to_stdout)
        else:
            where = "standard output" if to_stdout else args.output
            scope = "every workspace" if workspace is None else f"workspace {workspace}"
            _say(
                args,
                f"exported {summary.events} events of {summary.streams} streams ({scope}, up to event "
                f"{summary.position}) to {where} in {result['seconds']:.1f}s",
                to_stderr=to_stdout,
            )
        return 0
    finally:
        stores.close()


def _agentry_version() -> str:
    try:
        return version("agentry")
    except PackageNotFoundError:
        return "unknown"


def _write(target: IO[bytes], first: bytes, spool: IO[bytes], gzip_name: str | None) -> None:
    if gzip_name is not None:
        # Named explicitly: gzip would take the temporary file's name.
        with gzip.GzipFile(filename=gzip_name, fileobj=target, mode="wb") as zipped:
            zipped.write(first)
            shutil.copyfileobj(spool, zipped, 1 << 20)
    else:
        target.write(first)
        shutil.copyfileobj(spool, target, 1 << 20)


def _write_file(path: Path, first: bytes, spool: IO[bytes]) -> None:
    """Written beside the target and renamed over it: the named file is whole or absent."""
    handle, name = tempfile.mkstemp(dir=path.resolve().parent, prefix=f".{path.name}.", suffix=".partial")
    partial = Path(name)
    try:
        with os.fdopen(handle, "wb") as out:
            _write(out, first, spool, gzip_name=path.name[:-3] if path.name.endswith(".gz") else None)
            out.flush()
            os.fsync(out.fileno())
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


# -- import ----------------------------------------------------------------------------------


def _open(path: Path) -> BinaryIO:
    with open(path, "rb") as probe:
        magic = probe.read(2)
    if magic == b"\x1f\x8b":
        return cast(BinaryIO, gzip.open(path, "rb"))
    return open(path, "rb")


def _read_header(path: Path) -> dict[str, Any]:
    with _open(path) as source:
        first = source.readline()
    try:
        data = orjson.loads(first) if first.strip() else None
    except orjson.JSONDecodeError:
        data = None
    return check_header(data)


def _events(path: Path) -> Iterator[RawEvent]:
    with _open(path) as source:
        source.readline()
        for number, raw in enumerate(source, start=2):
            if raw.strip():
                yield parse_event_line(raw, number)


def import_command(args: argparse.Namespace) -> int:
    from interfaces.bootstrap import build_transfer, data_key_transfer, load_settings

    path = Path(args.file)
    if not path.is_file():
        return _refuse(f"import refused: no file {args.file}")
    try:
        meta = _read_header(path)
    except UNREADABLE as error:
        return _refuse(f"import refused: {error}")
    carried = meta.get("data_keys")
    section: dict[str, Any] = carried if isinstance(carried, dict) else {}
    passphrase = _passphrase()
    if section and not passphrase:
        print(
            f"agentry: the export carries data keys, but without {PASSPHRASE} they stay behind: "
            "its sealed secrets will not open here",
            file=sys.stderr,
        )
    settings = load_settings()
    stores = build_transfer(settings, read_models=not args.no_catch_up)
    keys = data_key_transfer(settings) if section and passphrase else None
    try:
        log = stores.log
        started = time.monotonic()
        try:
            if keys is not None:
                keys.import_keys(section, passphrase, write=False)  # checked before any write
            plan = plan_import(log, lambda: _events(path), meta["events"])
        except UNREADABLE as error:
            return _refuse(f"import refused: {error}")
        data_keys = None
        if keys is not None:
            try:
                data_keys = keys.import_keys(section, passphrase)
            except TransferError as error:
                return _refuse(f"import refused: {error}")
        bar = progress("import", plan.to_write, quiet=args.quiet)
        try:
            written = import_events(log, _events(path), plan, bar.update)
        except Conflict as error:
            bar.finish(complete=False)
            return _refuse(f"import stopped: {error}")
        bar.finish()
        position = _catch_up(stores, args.quiet)
        result = {
            "file": str(path),
            "workspace": meta.get("workspace"),
            "events": plan.events,
            "streams": plan.streams,
            "written": written,
            "already_present": plan.already_present,
            "data_keys": data_keys,
            "projections_position": position,
            "seconds": round(time.monotonic() - started, 3),
        }
        if args.json:
            _emit_json(result)
        else:
            more = f" ({plan.already_present} were already here)" if plan.already_present else ""
            caught = "" if position is None else f"; read models caught up to event {position}"
            _say(args, f"imported {written} events of {plan.streams} streams{more}{caught} in {result['seconds']:.1f}s")
        return 0
    finally:
        if keys is not None:
            keys.close()
        stores.close()


def _catch_up(stores: TransferStores, quiet: bool) -> int | None:
    """The read models brought up to the imported events here, so they are current when the
    command returns (a running server's own runner would get there too, by its next poll;
    the two take turns safely: positions move by compare-and-set). None with --no-catch-up."""
    runner = stores.projections
    if runner is None:
        return None
    head = stores.log.max_notification_id()
    start = min(runner.positions().values(), default=0)
    bar = progress("read models", head - start, quiet=quiet)
    runner.on_progress(lambda position: bar.update(max(position - start, 0)))
    position = int(runner.catch_up())
    bar.finish()
    return position


def add_parsers(commands: Any) -> None:
    export = commands.add_parser(
        "export", help="write a workspace's event history to a file another Agentry can import"
    )
    scope = export.add_mutually_exclusive_group()
    scope.add_argument("--workspace", default="default", help="the workspace to export (default: default)")
    scope.add_argument("--all", action="store_true", help="every workspace and the organization's people")
    export.add_argument(
        "--output", "-o", default="-", help="the file to write (.gz: gzip-compressed; default: standard output)"
    )
    export.add_argument(
        "--with-secrets", action="store_true",
        help=f"carry the data keys of the sealed secrets, wrapped under {PASSPHRASE} (which the import needs too)",
    )  # fmt: skip
    export.add_argument("--quiet", "-q", action="store_true", help="no progress and no summary line")
    export.add_argument("--json", action="store_true", help="print a JSON summary (stderr when exporting to stdout)")
    export.set_defaults(handler=export_command)

    imp = commands.add_parser(
        "import", help="append an export's events to this store (ids and versions kept), then catch up read models"
    )
    imp.add_argument("file", help="a file `agentry export` wrote (gzip or plain)")
    imp.add_argument("--quiet", "-q", action="store_true", help="no progress and no summary line")
    imp.add_argument("--json", action="store_true", help="print a JSON summary")
    imp.add_argument(
        "--no-catch-up", action="store_true", help="leave the read models to the running server's projections"
    )
    imp.set_defaults(handler=import_command)
