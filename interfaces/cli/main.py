"""``agentry serve | worker | sandbox-worker | relay | project | projections rebuild NAME | projections status | api-keys create |
users create | environments keys create ENV | secrets rotate-root | export | import FILE``."""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from typing import Any

from interfaces.bootstrap import Settings, SettingsError, load_settings


def _configure_logging(settings: Settings, with_pid: bool = False) -> None:
    from interfaces.logs import configure_logging

    configure_logging(settings.log_level, settings.log_format, with_pid=with_pid)


def _serve_metrics(telemetry: Any, settings: Settings) -> None:
    """The relay's, projector's and worker's metrics, on a port of their own (AGENTRY_METRICS_PORT)."""
    if settings.metrics_port and telemetry is not None:
        telemetry.serve(settings.metrics_port, settings.host)


def serve(args: argparse.Namespace) -> int:
    from interfaces.bootstrap import build, server_config
    from interfaces.http.server import serve_until_signalled

    if args.workers is not None:
        os.environ["AGENTRY_WORKERS"] = str(args.workers)  # the flag wins, checked as the setting is
    settings = load_settings()
    one_of_many = args.listen_fd is not None  # a child of `serve --workers N`
    _configure_logging(settings, with_pid=one_of_many)
    host = args.host or settings.host
    port = args.port if args.port is not None else settings.port
    if settings.workers > 1 and not one_of_many:
        from interfaces.cli.api_processes import supervise

        return supervise(settings, host, port)
    platform = build(settings)
    platform.start()
    if one_of_many and settings.metrics_port:
        # One port answers for N processes, so each serves its own counters on a port of its
        # own (a scrape of the shared one would reach any of them: counters would jump).
        platform.services.operations.telemetry.serve(settings.metrics_port + args.process_index, host)
    where = "PostgreSQL" if settings.uses_postgres else f"SQLite in {settings.data_dir.resolve()}"
    logging.getLogger("agentry").info("event store: %s; listening on http://%s:%d", where, host, port)
    config = server_config(
        settings,
        platform.asgi_app(),
        host=host,
        port=port,
        log_level=settings.log_level,
        lifespan="off",
        timeout_graceful_shutdown=10,
        # Agentry writes its own line per request (interfaces/http/operations.py: the route,
        # never the query string) and uvicorn's lines go through the same formatter.
        access_log=False,
        log_config=None,
    )
    children = _start_sandbox_workers(settings, port)
    _freeze_startup_objects()

    def shutting_down() -> None:
        # Tell the sandbox workers first (without waiting: this runs on the server's loop),
        # so their final stops reach the API while it still answers.
        for child in children:
            if child.poll() is None:
                child.terminate()
        platform.services.live.close()
        platform.services.notification_feed.close()

    sockets = None
    if one_of_many:
        from interfaces.cli.api_processes import announce_ready, end_with_parent

        sockets = [socket.socket(fileno=args.listen_fd)]
        end_with_parent()
        if args.ready_fd is not None:
            announce_ready(args.ready_fd)
    try:
        serve_until_signalled(config, on_shutdown=shutting_down, sockets=sockets)
    finally:
        _stop_children(children)
        platform.close()
    return 0


def _freeze_startup_objects() -> None:
    """Everything built so far (modules, the routes, the schemas: most of the heap) lives as
    long as the process: moved out of the collector's sight, a full collection under load no
    longer walks it. Whether a few more modules were imported at start-up changed how often
    those collections ran, and 50 concurrent turns' added p99 by ≈ 300 ms (bench/turns.py).
    The relay, likewise: 6.0–7.5k events/s without, 7.3–8.7k with (bench/relay.py's rounds,
    made to alternate without and with, in one run)."""
    gc.collect()
    gc.freeze()


def _stop_children(children: list[subprocess.Popen[bytes]]) -> None:
    for child in children:
        if child.poll() is None:
            child.terminate()
    for child in children:
        try:
            child.wait(20)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait(5)


def _start_sandbox_workers(settings: Settings, port: int) -> list[subprocess.Popen[bytes]]:
    """Embedded, `serve` runs cloud environments' tools in `agentry sandbox-worker` children
    (never in this process). They need root and bubblewrap; without either, cloud tool calls
    end in an error result after AGENTRY_WORKER_TIMEOUT, and the log says why here."""
    log = logging.getLogger("agentry")
    if settings.uses_postgres or settings.sandbox_workers < 1:
        return []
    missing = []
    if os.geteuid() != 0:
        missing.append("root (each session's tools run as a uid of their own)")
    if shutil.which("bwrap") is None:
        missing.append("bubblewrap (apt-get install bubblewrap)")
    if missing:
        log.warning("cloud environments' built-in tools will not run here: the sandbox workers need %s", " and ".join(missing))
        return []
    command = [sys.executable, "-m", "interfaces.cli.main", "sandbox-worker", "--api", f"http://127.0.0.1:{port}"]
    children = [subprocess.Popen(command) for _ in range(settings.sandbox_workers)]
    log.info("sandbox workers: %d started, %d sessions each", len(children), settings.sandbox_slots)
    return children


def projections_command(args: argparse.Namespace) -> int:
    from interfaces.bootstrap import build_read_side
    from interfaces.cli.progress import progress

    settings = load_settings()
    _configure_logging(settings)
    read_side = build_read_side(settings)
    runner = read_side.projections
    as_json = getattr(args, "json", False)
    quiet = getattr(args, "quiet", False) or as_json
    try:
        if args.action == "status":
            head = read_side.store.max_notification_id()
            if as_json:
                print(json.dumps(_status_document(runner.positions(), read_side.vectors, head), sort_keys=True))
                return 0
            for name, position in sorted(runner.positions().items()):
                print(f"{name:<16} position {position:>10}  behind {head - position:>8}")
            _vector_status(read_side.vectors, head)
            return 0
        known = [*runner.names, VECTORS]
        names = known if args.name == "all" else [args.name]
        unknown = [name for name in names if name not in known]
        if unknown:
            print(f"unknown projection {unknown[0]!r}; known: {', '.join(known)}, all", file=sys.stderr)
            return 2
        rebuilt: dict[str, Any] = {}
        # The read models in one pass of the log (each event read and decoded once for all).
        read_models = [name for name in names if name != VECTORS]
        if read_models:
            started = time.monotonic()
            if not quiet:
                print(f"rebuilding {', '.join(read_models)} …", flush=True)
            bar = progress("rebuild", read_side.store.max_notification_id(), quiet=quiet)
            runner.on_progress(bar.update)
            # The rebuild allocates millions of objects; the collections they set off would
            # each walk the whole program (bench/rebuild.py, same run: 0.82 → 0.71 s best of 4).
            _freeze_startup_objects()
            position = runner.rebuild(*read_models)
            bar.finish()
            took = time.monotonic() - started
            rebuilt.update({name: {"position": position, "seconds": round(took, 3)} for name in read_models})
            if not as_json:
                print(f"rebuilt {', '.join(read_models)} up to event {position} in {took:.1f}s", flush=True)
        if VECTORS in names:
            started = time.monotonic()
            if not quiet:
                print(f"rebuilding {VECTORS} …", flush=True)
            position = _rebuild_vectors(read_side.vectors, quiet)
            if position is None:
                return 1
            took = time.monotonic() - started
            rebuilt[VECTORS] = {"position": position, "seconds": round(took, 3)}
            if not as_json:
                print(f"rebuilt {VECTORS} up to event {position} in {took:.1f}s", flush=True)
        if as_json:
            print(json.dumps({"rebuilt": rebuilt}, sort_keys=True))
        return 0
    finally:
        read_side.close()


def _status_document(positions: dict[str, int], vectors: Any, head: int) -> dict[str, Any]:
    document = {name: {"position": position, "behind": head - position} for name, position in positions.items()}
    position = vectors.position()
    document[VECTORS] = {"position": position, "behind": head - position, "store": vectors.position_name}
    return {"head": head, "projections": document}


VECTORS = "vectors"


def _vector_status(vectors: Any, head: int) -> None:
    position = vectors.position()
    print(f"{VECTORS:<16} position {position:>10}  behind {head - position:>8}  ({vectors.position_name})")


def _rebuild_vectors(vectors: Any, quiet: bool = False) -> int | None:
    """Drops the index's collections and embeds the whole log again, saying how far it got.
    The embedded index belongs to one process: while `agentry serve` runs, this refuses."""
    from interfaces.bootstrap import VectorIndexBusy
    from interfaces.cli.progress import Progress, progress

    bars: list[Progress] = []

    def advanced(position: int, head: int) -> None:
        if not bars:
            bars.append(progress(VECTORS, head, quiet=quiet))
        bars[0].total = head
        bars[0].update(position)

    try:
        return int(vectors.rebuild(advanced))
    except VectorIndexBusy as error:
        print(f"agentry: {error}", file=sys.stderr)
        return None
    finally:
        if bars:
            bars[0].finish()


def api_keys_command(args: argparse.Namespace) -> int:
    from application.api_keys import generate_key
    from interfaces.bootstrap import build

    platform = build(load_settings())
    try:
        workspaces = platform.services.workspaces
        if args.tenant.startswith("wrkspc_") and not workspaces.selectable(args.tenant):
            print(f"agentry: workspace {args.tenant} does not exist or is archived", file=sys.stderr)
            return 1
        # A tenant named here becomes a workspace of that id (so it can be selected and listed).
        workspaces.create_named(args.tenant, name=args.tenant)
        key = generate_key()
        issued = platform.services.api_keys.issue(key, name=args.name, tenant_id=args.tenant, role=args.role)
        # Printed to the terminal that asked for it, once; never logged.
        if args.json:
            print(json.dumps({"id": issued.key_id, "key": key, "workspace_id": args.tenant, "role": args.role, "name": args.name}))
        else:
            print(key)
        return 0
    finally:
        platform.close()


def users_command(args: argparse.Namespace) -> int:
    """`agentry users create`: a person who logs in (the first admin, typically). The
    password comes from AGENTRY_USER_PASSWORD or, at a terminal, a prompt (never argv)."""
    import getpass

    from application.errors import ApplicationError
    from domain.errors import DomainError
    from interfaces.bootstrap import build

    password = os.environ.get("AGENTRY_USER_PASSWORD") or getpass.getpass(f"password for {args.email}: ")
    platform = build(load_settings())
    try:
        role = "admin" if args.admin else args.role
        workspace_role = "workspace_admin" if args.admin else "workspace_developer"
        try:
            written = platform.services.people.create_user(args.email, password, args.name or "", role, workspace_role)
        except (DomainError, ApplicationError) as error:
            print(f"agentry: {error}", file=sys.stderr)
            return 1
        if args.json:
            print(json.dumps({"id": written.view["id"], "email": written.view["email"], "role": role}))
        else:
            print(f"created {written.view['id']} ({written.view['email']}, {role})")
        return 0
    finally:
        platform.close()


def environment_keys_command(args: argparse.Namespace) -> int:
    from application.errors import NotFound
    from application.tenancy import Principal
    from domain.errors import Archived
    from interfaces.bootstrap import build

    platform = build(load_settings())
    try:
        who = Principal(args.tenant, key_id="cli")
        try:
            written, key = platform.services.environment_keys.create(who, args.environment, args.name)
        except (NotFound, Archived) as error:
            print(f"agentry: {error}", file=sys.stderr)
            return 1
        # Printed to the terminal that asked for it, once; never logged.
        if args.json:
            print(json.dumps({"id": written.view["id"], "environment_id": args.environment, "key": key}))
            return 0
        print(f"issued {written.view['id']} for {args.environment}; the key is shown only now:", file=sys.stderr)
        print(key)
        return 0
    finally:
        platform.close()


def secrets_command(args: argparse.Namespace) -> int:
    from interfaces.bootstrap import rotate_root_secret

    settings = load_settings()
    # Read here rather than in Settings: only this command ever needs it.
    new_root = os.environ.get("AGENTRY_NEW_ROOT_SECRET", "")
    if not args.json:
        print("re-wrapping every data key under a new root key …", flush=True)
    outcome = rotate_root_secret(settings, new_root)
    if args.json:
        fields = ("rewrapped", "already_new", "old_fingerprint", "new_fingerprint", "root_file_replaced")
        print(json.dumps({name: getattr(outcome, name) for name in fields}))
        return 0
    print(
        f"re-wrapped {outcome.rewrapped} data keys ({outcome.already_new} already under the new root); "
        f"root fingerprint {outcome.old_fingerprint} → {outcome.new_fingerprint}; no event was changed"
    )
    if outcome.root_file_replaced:
        print(f"{settings.root_secret_path} now holds the new root; running processes switch to it on their own")
    else:
        print(
            "next: set AGENTRY_ROOT_SECRET to the value of AGENTRY_NEW_ROOT_SECRET for every API and worker "
            "process and restart them (until then they cannot open stored secrets), then drop the old secret. "
            "If a process still holding the old root made a new secret in between, run this command again "
            "with the same two secrets: it re-wraps only what is still under the old root."
        )
    return 0


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    return stop


def relay_command(args: argparse.Namespace) -> int:
    from interfaces.bootstrap import build_relay

    settings = load_settings()
    _configure_logging(settings)
    stop = _stop_on_signals()
    process = build_relay(settings)
    try:
        _serve_metrics(process.telemetry, settings)
        _freeze_startup_objects()
        process.run(stop.is_set)
    finally:
        process.close()
    return 0


def worker_command(args: argparse.Namespace) -> int:
    from interfaces.bootstrap import build_worker

    settings = load_settings()
    _configure_logging(settings)
    stop = _stop_on_signals()
    process = build_worker(settings)
    try:
        _serve_metrics(process.telemetry, settings)
        _freeze_startup_objects()
        process.run(stop)
    finally:
        process.close()
    return 0


def sandbox_worker_command(args: argparse.Namespace) -> int:
    from interfaces.bootstrap import build_sandbox_worker, sandbox_worker_key
    from interfaces.cli.sandbox_worker import run_sandbox_worker

    settings = load_settings()
    _configure_logging(settings)
    key = sandbox_worker_key(settings)
    if key is None:
        print("agentry: sandbox-worker needs AGENTRY_SANDBOX_WORKER_KEY (the same value the API has)", file=sys.stderr)
        return 2
    api = args.api or os.environ.get("AGENTRY_API_URL") or f"http://127.0.0.1:{settings.port}"
    return run_sandbox_worker(build_sandbox_worker(settings, api, key, args.slots or settings.sandbox_slots))


def project_command(args: argparse.Namespace) -> int:
    from interfaces.bootstrap import build, build_kafka_projector_process

    settings = load_settings()
    _configure_logging(settings)
    stop = _stop_on_signals()
    log = logging.getLogger("agentry.projections")
    if args.source == "kafka":
        process = build_kafka_projector_process(settings)
        try:
            _serve_metrics(process.telemetry, settings)
            log.info("projecting from Kafka topics as group %s", settings.kafka_projector_group)
            _freeze_startup_objects()
            process.run(stop.is_set)
        finally:
            process.close()
        return 0
    platform = build(settings)
    telemetry = platform.services.operations.telemetry
    try:
        _serve_metrics(telemetry, settings)
        _freeze_startup_objects()
        platform.start_projections()
        log.info("projecting from the event store's notification log")
        stop.wait()
    finally:
        platform.close()
    return 0


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="agentry", description="Agentry control plane")
    commands = root.add_subparsers(dest="command", required=True)

    serve_cmd = commands.add_parser("serve", help="run the API, projections and session runtime")
    serve_cmd.add_argument("--host", default=None, help="bind address (AGENTRY_HOST, default 127.0.0.1)")
    serve_cmd.add_argument("--port", type=int, default=None, help="port (AGENTRY_PORT, default 8400)")
    serve_cmd.add_argument(
        "--workers", type=int, default=None,
        help="API processes sharing the port (AGENTRY_WORKERS, default 1; more need PostgreSQL and AGENTRY_QDRANT_URL)",
    )  # fmt: skip
    # Given by `serve --workers N` to its children: the shared listening socket, and where to say "ready".
    serve_cmd.add_argument("--listen-fd", type=int, default=None, help=argparse.SUPPRESS)
    serve_cmd.add_argument("--ready-fd", type=int, default=None, help=argparse.SUPPRESS)
    serve_cmd.add_argument("--process-index", type=int, default=0, help=argparse.SUPPRESS)
    serve_cmd.set_defaults(handler=serve)

    worker = commands.add_parser(
        "worker", help="drive session turns (PostgreSQL; pair with AGENTRY_TURNS=workers on serve)"
    )
    worker.set_defaults(handler=worker_command)

    sandbox = commands.add_parser(
        "sandbox-worker", help="run cloud environments' built-in tools in bubblewrap sandboxes (needs root)"
    )
    sandbox.add_argument("--api", default=None, help="the API's base URL (AGENTRY_API_URL, default this host's AGENTRY_PORT)")
    sandbox.add_argument("--slots", type=int, default=None, help="sessions served at once (AGENTRY_SANDBOX_SLOTS, default 8)")
    sandbox.set_defaults(handler=sandbox_worker_command)

    proj = commands.add_parser("projections", help="inspect or rebuild read models")
    proj_actions = proj.add_subparsers(dest="action", required=True)
    rebuild = proj_actions.add_parser("rebuild", help="empty a read model and replay the event store into it")
    rebuild.add_argument("name", help="projection name, or 'all'")
    rebuild.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    rebuild.add_argument("--json", action="store_true", help="print the outcome as JSON (and no progress)")
    rebuild.set_defaults(handler=projections_command)
    status = proj_actions.add_parser("status", help="show each projection's position")
    status.add_argument("--json", action="store_true", help="print the positions as JSON")
    status.set_defaults(handler=projections_command)

    relay = commands.add_parser("relay", help="publish every stored event to Kafka (one active relay at a time)")
    relay.set_defaults(handler=relay_command)

    project = commands.add_parser("project", help="run the projections as their own process")
    project.add_argument(
        "--from", dest="source", choices=("kafka", "store"), default="store",
        help="kafka: consume the relay's topics in a consumer group; store: follow the event store",
    )
    project.set_defaults(handler=project_command)

    keys = commands.add_parser("api-keys", help="manage API keys")
    key_actions = keys.add_subparsers(dest="action", required=True)
    create = key_actions.add_parser("create", help="issue a new key and print it once")
    create.add_argument("--name", default="cli")
    create.add_argument("--tenant", default="default", help="the workspace the key is bound to (created if missing)")
    create.add_argument("--role", choices=("admin", "member"), default="admin", help="the key's role in its workspace")
    create.add_argument("--json", action="store_true", help="print the key's id and the key as JSON")
    create.set_defaults(handler=api_keys_command)

    users = commands.add_parser("users", help="manage the people who log in")
    user_actions = users.add_subparsers(dest="action", required=True)
    user_create = user_actions.add_parser(
        "create", help="create a person (password from AGENTRY_USER_PASSWORD or a prompt)"
    )
    user_create.add_argument("--email", required=True)
    user_create.add_argument("--name", default=None)
    user_create.add_argument("--admin", action="store_true", help="an organization admin")
    user_create.add_argument("--role", default="user", choices=("billing", "claude_code_user", "developer", "managed", "user"))
    user_create.add_argument("--json", action="store_true", help="print the person's id as JSON")
    user_create.set_defaults(handler=users_command)

    environments = commands.add_parser("environments", help="manage environments")
    environment_actions = environments.add_subparsers(dest="action", required=True)
    env_keys = environment_actions.add_parser("keys", help="manage an environment's worker keys")
    env_key_actions = env_keys.add_subparsers(dest="keys_action", required=True)
    env_key_create = env_key_actions.add_parser("create", help="issue a key for ENV's workers and print it once")
    env_key_create.add_argument("environment", metavar="ENV", help="the environment's id (env_…)")
    env_key_create.add_argument("--name", default=None)
    env_key_create.add_argument("--tenant", default="default")
    env_key_create.add_argument("--json", action="store_true", help="print the key's id and the key as JSON")
    env_key_create.set_defaults(handler=environment_keys_command)

    secrets = commands.add_parser("secrets", help="manage the keys that protect stored secrets")
    secret_actions = secrets.add_subparsers(dest="action", required=True)
    rotate = secret_actions.add_parser(
        "rotate-root",
        help="re-wrap every data key under a new root key (embedded: generated; otherwise AGENTRY_NEW_ROOT_SECRET)",
    )
    rotate.add_argument("--json", action="store_true", help="print the outcome as JSON")
    rotate.set_defaults(handler=secrets_command)

    from interfaces.cli.transfer import add_parsers

    add_parsers(commands)
    return root


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.handler(args)
    except SettingsError as error:
        print(f"agentry: configuration error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
