"""The only way out of a networked sandbox: an HTTP proxy (CONNECT for TLS, absolute-form
requests for plain HTTP) that the worker serves on a unix socket bound into the sandbox.

The sandbox has its own network namespace with nothing but a loopback, so a connection can
leave only through this socket, and the proxy decides every one of them here, on the host
side, where the sandbox cannot touch the decision:

- the host name must be allowed by the environment's `networking` (`unrestricted`: any;
  `limited`: the listed hosts, plus the package registries when `allow_package_managers`);
- every address it connects to is resolved here and must be public: loopback, private,
  link-local, shared, multicast and reserved ranges, and every address of the host's own
  interfaces, are refused whatever `networking` says, so the sandbox never reaches the host's
  loopback or the platform's services (API, database, broker) on the internal network. The
  address checked is the address connected to, so a name that re-resolves cannot slip past.

What this does not carry: UDP (no DNS inside — the proxy resolves), raw TCP to clients that
ignore `HTTPS_PROXY`/`HTTP_PROXY`."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import os
import socket
from collections.abc import Iterable, Sequence
from pathlib import Path
from urllib.parse import urlsplit

from domain.environment_config import Networking

log = logging.getLogger("agentry.sandbox.egress")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Where the public package managers fetch from: what `allow_package_managers` opens.
PACKAGE_REGISTRY_HOSTS = (
    "pypi.org",
    "files.pythonhosted.org",
    "registry.npmjs.org",
    "registry.yarnpkg.com",
    "crates.io",
    "index.crates.io",
    "static.crates.io",
    "rubygems.org",
    "index.rubygems.org",
    "proxy.golang.org",
    "sum.golang.org",
    "deb.debian.org",
    "security.debian.org",
)

HEAD_LIMIT = 64 * 1024
HEAD_TIMEOUT = 30.0
CONNECT_TIMEOUT = 10.0
MAX_CONNECTIONS = 64
CHUNK = 64 * 1024


def host_addresses() -> set[IPAddress]:
    """Every address assigned to this machine's interfaces (IPv4 from the kernel's local
    routing table, IPv6 from if_inet6), so a sandbox cannot reach the host through its public
    address either. Read from /proc, which needs no extra library."""
    found: set[IPAddress] = set()
    with contextlib.suppress(OSError):
        previous = ""
        for line in Path("/proc/net/fib_trie").read_text().splitlines():
            text = line.strip()
            if text.startswith("/32 host LOCAL") and previous:
                with contextlib.suppress(ValueError):
                    found.add(ipaddress.ip_address(previous))
            if text.startswith(("|--", "+--")):
                previous = text.split()[1]
    with contextlib.suppress(OSError):
        for line in Path("/proc/net/if_inet6").read_text().splitlines():
            raw = line.split()[0]
            with contextlib.suppress(ValueError):
                found.add(ipaddress.ip_address(":".join(raw[i : i + 4] for i in range(0, 32, 4))))
    return found


class EgressGuard:
    """The decisions, apart from the sockets: may this host name be asked for, may this
    address be connected to."""

    def __init__(
        self,
        networking: Networking,
        *,
        reachable_networks: Iterable[str] = (),
        blocked_networks: Iterable[str] = (),
        own_addresses: Iterable[IPAddress] | None = None,
    ) -> None:
        self._networking = networking
        self._hosts = set(networking.allowed_hosts)
        if networking.allow_package_managers:
            self._hosts.update(PACKAGE_REGISTRY_HOSTS)
        self._reachable: list[IPNetwork] = [ipaddress.ip_network(n, strict=False) for n in reachable_networks]
        self._blocked: list[IPNetwork] = [ipaddress.ip_network(n, strict=False) for n in blocked_networks]
        self._own = set(host_addresses() if own_addresses is None else own_addresses)

    def host_allowed(self, host: str) -> bool:
        name = host.strip().lower().rstrip(".")
        if not name:
            return False
        if self._networking.allow_all:
            return True
        if name in self._hosts:
            return True
        # "*.example.com" opens the subdomains of example.com (not example.com itself).
        return any(entry.startswith("*.") and name.endswith(entry[1:]) for entry in self._hosts)

    def address_allowed(self, address: IPAddress) -> bool:
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        if any(address in network for network in self._blocked):
            return False
        if any(address in network for network in self._reachable):
            return True
        if address in self._own:
            return False
        # Python counts multicast as global; a sandbox has no business there either.
        return address.is_global and not address.is_multicast


class EgressProxy:
    """One session's proxy, serving the unix socket bound into its sandbox."""

    def __init__(self, guard: EgressGuard, socket_path: Path, *, uid: int) -> None:
        self._guard = guard
        self._path = socket_path
        self._uid = uid
        self._server: asyncio.AbstractServer | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._slots = asyncio.Semaphore(MAX_CONNECTIONS)

    async def start(self) -> None:
        self._server = await asyncio.start_unix_server(self._accept, path=str(self._path), limit=HEAD_LIMIT)
        # Only the session's uid may connect (a unix socket needs write permission on it).
        os.chown(self._path, self._uid, self._uid)
        os.chmod(self._path, 0o600)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
            self._server = None
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            async with self._slots:
                await self._serve(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
            pass
        except asyncio.CancelledError:
            pass
        finally:
            self._tasks.discard(task)
            writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), HEAD_TIMEOUT)
        request_line, _, rest = head.partition(b"\r\n")
        parts = request_line.decode("latin-1").split()
        if len(parts) != 3:
            return await _refuse(writer, 400, "malformed request")
        method, target, version = parts
        if method.upper() == "CONNECT":
            host, port = _split_authority(target, default_port=443)
            forward = b""
        else:
            url = urlsplit(target)
            if url.scheme != "http" or not url.hostname:
                return await _refuse(writer, 400, "only CONNECT and absolute http:// requests go through this proxy")
            host, port = url.hostname, url.port or 80
            path = (url.path or "/") + (f"?{url.query}" if url.query else "")
            forward = f"{method} {path} {version}\r\n".encode("latin-1") + _rewrite_headers(rest)
        if not host or port is None:
            return await _refuse(writer, 400, "no host to connect to")
        if not self._guard.host_allowed(host):
            log.info("sandbox egress refused: host %s is not allowed", host)
            return await _refuse(writer, 403, f"egress to {host} is not allowed by this environment's networking")
        upstream = await self._connect(host, port)
        if upstream is None:
            log.info("sandbox egress refused: %s resolves to no address the sandbox may reach", host)
            return await _refuse(writer, 403, f"{host} resolves to no address this sandbox may reach")
        up_reader, up_writer = upstream
        try:
            if forward:
                up_writer.write(forward)
            else:
                writer.write(b"HTTP/1.1 200 Connection Established\r\n\r\n")
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        finally:
            up_writer.close()

    async def _connect(self, host: str, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        loop = asyncio.get_running_loop()
        try:
            infos = await asyncio.wait_for(
                loop.getaddrinfo(host, port, type=socket.SOCK_STREAM), CONNECT_TIMEOUT
            )
        except (OSError, TimeoutError):
            return None
        for _family, _type, _proto, _name, sockaddr in infos:
            address = ipaddress.ip_address(sockaddr[0])
            if not self._guard.address_allowed(address):
                continue
            try:
                return await asyncio.wait_for(asyncio.open_connection(str(address), port), CONNECT_TIMEOUT)
            except (OSError, TimeoutError):
                continue
        return None


def _split_authority(target: str, *, default_port: int) -> tuple[str, int | None]:
    if target.startswith("["):
        host, _, tail = target[1:].partition("]")
        port_text = tail[1:] if tail.startswith(":") else ""
    else:
        host, _, port_text = target.rpartition(":") if ":" in target else (target, "", "")
    try:
        port = int(port_text) if port_text else default_port
    except ValueError:
        return host, None
    return host, port if 0 < port < 65536 else None


def _rewrite_headers(rest: bytes) -> bytes:
    """Drop the proxy's own headers and ask for one request per connection, so a client that
    keeps the connection cannot send its next request to a host nobody checked."""
    kept: list[bytes] = []
    for line in rest.split(b"\r\n"):
        name = line.split(b":", 1)[0].strip().lower()
        if name in (b"proxy-connection", b"proxy-authorization", b"connection", b"keep-alive"):
            continue
        if line:
            kept.append(line)
    kept.append(b"Connection: close")
    return b"\r\n".join(kept) + b"\r\n\r\n"


async def _refuse(writer: asyncio.StreamWriter, status: int, reason: str) -> None:
    body = f"agentry sandbox: {reason}\n".encode()
    phrase = {400: "Bad Request", 403: "Forbidden"}.get(status, "Error")
    writer.write(
        f"HTTP/1.1 {status} {phrase}\r\nContent-Type: text/plain\r\nContent-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n".encode()
        + body
    )
    with contextlib.suppress(ConnectionError):
        await writer.drain()


async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    try:
        while chunk := await source.read(CHUNK):
            sink.write(chunk)
            await sink.drain()
    except ConnectionError:
        pass
    finally:
        with contextlib.suppress(OSError):
            if sink.can_write_eof():
                sink.write_eof()


def guard_for(
    networking: Networking, reachable_networks: Sequence[str], blocked_networks: Sequence[str]
) -> EgressGuard | None:
    """No guard (and no proxy at all) when networking is off."""
    if networking.off:
        return None
    return EgressGuard(networking, reachable_networks=reachable_networks, blocked_networks=blocked_networks)
