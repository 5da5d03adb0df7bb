"""A real PostgreSQL for the tests: ``AGENTRY_TEST_POSTGRES_URL`` if set, otherwise a
throwaway cluster started with the system's own binaries. Neither working is an error,
never a skip: a suite that silently skips its database proves nothing."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg


class PostgresUnavailable(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _binaries() -> str:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb")) or (
        [shutil.which("initdb")] if shutil.which("initdb") else []
    )
    if not found:
        raise PostgresUnavailable(
            "AGENTRY_TEST_POSTGRES_URL is not set and no initdb binary was found; install "
            "PostgreSQL (apt-get install postgresql) or point AGENTRY_TEST_POSTGRES_URL at a server"
        )
    return os.path.dirname(found[-1])


def _as_postgres_user(command: list[str]) -> list[str]:
    """initdb and postgres refuse to run as root."""
    if os.geteuid() != 0:
        return command
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        raise PostgresUnavailable("running as root and there is no 'postgres' user to start a cluster as") from None
    return ["runuser", "-u", "postgres", "--", *command]


@contextmanager
def own_cluster() -> Iterator[str]:
    bindir = _binaries()
    workdir = tempfile.mkdtemp(prefix="agentry-pg-")
    os.chmod(workdir, 0o777)
    datadir = os.path.join(workdir, "data")
    port = free_port()
    if os.geteuid() == 0:
        shutil.chown(workdir, "postgres", "postgres")
    subprocess.run(
        _as_postgres_user([f"{bindir}/initdb", "-D", datadir, "-U", "postgres", "--auth=trust", "-E", "UTF8"]),
        check=True,
        capture_output=True,
    )
    log = os.path.join(workdir, "server.log")
    subprocess.run(
        _as_postgres_user(
            [
                f"{bindir}/pg_ctl", "-D", datadir, "-l", log, "-w", "-t", "60", "start",
                "-o", f"-p {port} -h 127.0.0.1 -k {workdir} -c fsync=off -c max_connections=300",
            ]
        ),
        check=True,
        capture_output=True,
    )
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            _as_postgres_user([f"{bindir}/pg_ctl", "-D", datadir, "-m", "immediate", "stop"]),
            capture_output=True,
        )
        shutil.rmtree(workdir, ignore_errors=True)


@contextmanager
def postgres_server() -> Iterator[str]:
    url = os.environ.get("AGENTRY_TEST_POSTGRES_URL")
    if url:
        try:
            with psycopg.connect(url, connect_timeout=5):
                pass
        except psycopg.OperationalError as error:
            raise PostgresUnavailable(f"AGENTRY_TEST_POSTGRES_URL is set but unusable: {error}") from error
        yield url
        return
    try:
        with own_cluster() as own:
            yield own
    except subprocess.CalledProcessError as error:
        raise PostgresUnavailable(
            f"could not start a PostgreSQL cluster with the system binaries: {error.stderr!r}"
        ) from error


def with_database(server_url: str, dbname: str) -> str:
    base, _, _ = server_url.rpartition("/")
    return f"{base}/{dbname}"


@contextmanager
def fresh_database(server_url: str) -> Iterator[str]:
    """A new, empty database on the server; dropped afterwards."""
    name = "agentry_test_" + uuid.uuid4().hex[:12]
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield with_database(server_url, name)
    finally:
        for _ in range(20):
            try:
                with psycopg.connect(server_url, autocommit=True) as conn:
                    conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                break
            except psycopg.Error:
                time.sleep(0.25)


def database_of(request: Any) -> str:
    """The database URL for a test parametrized over ``["sqlite", "postgres"]`` ("" is the
    embedded SQLite store; PostgreSQL is the ``postgres_url`` fixture's scratch database)."""
    return str(request.getfixturevalue("postgres_url")) if request.param == "postgres" else ""
