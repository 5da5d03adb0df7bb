"""Networking of a sandbox: off means no way out at all; `limited` and `unrestricted` go out
only through the worker's egress proxy, which allows the listed hosts and never the host's
loopback or other non-public addresses, whatever the environment says.

The test server listens on 127.0.0.2 (loopback, but not in the sandbox's NO_PROXY list), so
the allowed case can run without the internet: the test lets the proxy reach that one
address with `reachable_networks`, as an operator would for an internal mirror."""

from __future__ import annotations

import http.server
import ipaddress
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from domain.environment_config import Networking
from infra.sandbox import Sandbox, SandboxLimits
from infra.sandbox.egress import PACKAGE_REGISTRY_HOSTS, EgressGuard
from tests.support.sandbox import Tools, sessions_root

in_module_loop = pytest.mark.asyncio(loop_scope="module")

LIMITS = SandboxLimits(disk_bytes=16 << 20, command_seconds=20)
MARKER = "served-to-the-sandbox"
HOST = "127.0.0.2"


class Recorder(http.server.BaseHTTPRequestHandler):
    requests: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
        Recorder.requests.append(self.path)
        body = MARKER.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def root() -> Iterator[Path]:
    with sessions_root() as path:
        yield path


@pytest.fixture(scope="module")
def server() -> Iterator[int]:
    httpd = http.server.ThreadingHTTPServer((HOST, 0), Recorder)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield httpd.server_address[1]
    httpd.shutdown()
    httpd.server_close()


def through_proxy(url: str) -> str:
    """A command that asks the sandbox's proxy for `url` and prints the status (the worker's
    Python is inside the sandbox too: the helper runs on it)."""
    code = (
        "import http.client, os; c = http.client.HTTPConnection('127.0.0.1', 3128, timeout=15); "
        f"c.request('GET', '{url}'); r = c.getresponse(); print(r.status, r.read().decode())"
    )
    return f'{sys.executable} -c "{code}"'


def tunnel_through_proxy(host: str) -> str:
    """A command that asks the proxy for a TLS tunnel (CONNECT) to `host`."""
    code = (
        "import http.client; c = http.client.HTTPSConnection('127.0.0.1', 3128, timeout=15); "
        f"c.set_tunnel('{host}', 443); c.request('GET', '/'); print(c.getresponse().status)"
    )
    return f'{sys.executable} -c "{code}"'


@in_module_loop
async def test_limited_reaches_a_listed_host_and_nothing_else(root: Path, server: int):
    networking = {"type": "limited", "allowed_hosts": [HOST], "allow_package_managers": False, "allow_mcp_servers": False}
    sandbox = await Sandbox.create(
        root, "sesn_limited", networking=networking, limits=LIMITS, reachable_networks=[f"{HOST}/32"]
    )
    try:
        tools = Tools(sandbox)
        assert await tools.ok("bash", command=through_proxy(f"http://{HOST}:{server}/listed")) == f"200 {MARKER}"
        refused = await tools.ok("bash", command=through_proxy(f"http://localhost:{server}/unlisted"))
        assert refused.startswith("403 ") and "not allowed by this environment's networking" in refused
        assert "Tunnel connection failed: 403" in await tools.error("bash", command=tunnel_through_proxy("pypi.org"))
        # The proxy is the only way: the host's address directly is the sandbox's own loopback.
        direct = f"import socket; socket.create_connection(('{HOST}', {server}), timeout=5)"
        assert "Connection refused" in await tools.error("bash", command=f'{sys.executable} -c "{direct}"')
        assert Recorder.requests.count("/listed") == 1 and "/unlisted" not in Recorder.requests
    finally:
        await sandbox.close()


@in_module_loop
@pytest.mark.parametrize(
    "networking",
    [
        {"type": "unrestricted"},
        {"type": "limited", "allowed_hosts": [HOST, "localhost"], "allow_package_managers": True},
    ],
    ids=["unrestricted", "limited-listing-loopback"],
)
async def test_the_hosts_loopback_is_refused_whatever_networking_says(root: Path, server: int, networking: dict):
    sandbox = await Sandbox.create(root, "sesn_loopback", networking=networking, limits=LIMITS)
    try:
        tools = Tools(sandbox)
        for host in (HOST, "localhost"):
            answer = await tools.ok("bash", command=through_proxy(f"http://{host}:{server}/loopback"))
            assert answer.startswith("403 ") and "no address this sandbox may reach" in answer
        assert "/loopback" not in Recorder.requests
    finally:
        await sandbox.close()


@in_module_loop
async def test_networking_off_has_no_proxy_and_no_way_out(root: Path, server: int):
    sandbox = await Sandbox.create(root, "sesn_offline", limits=LIMITS)
    try:
        tools = Tools(sandbox)
        assert await tools.ok("bash", command="echo ${HTTPS_PROXY:-none}; ls /run/agentry") == "none\ninside.py"
        assert "Connection refused" in await tools.error("bash", command=through_proxy(f"http://{HOST}:{server}/off"))
        assert "/off" not in Recorder.requests
    finally:
        await sandbox.close()


def test_the_guard_allows_listed_names_and_public_addresses_only():
    own = ipaddress.ip_address("203.0.113.7")
    limited = EgressGuard(
        Networking.parse({"type": "limited", "allowed_hosts": ["Example.COM.", "*.svc.example.org"]}),
        own_addresses=[own],
    )
    assert limited.host_allowed("example.com") and limited.host_allowed("EXAMPLE.com.")
    assert not limited.host_allowed("api.example.com")
    assert limited.host_allowed("a.svc.example.org") and not limited.host_allowed("svc.example.org")
    assert not limited.host_allowed("pypi.org")
    with_registries = EgressGuard(
        Networking.parse({"type": "limited", "allowed_hosts": [], "allow_package_managers": True}), own_addresses=[]
    )
    assert all(with_registries.host_allowed(host) for host in PACKAGE_REGISTRY_HOSTS)
    assert not with_registries.host_allowed("example.com")
    anything = EgressGuard(Networking.parse({"type": "unrestricted"}), own_addresses=[own])
    assert anything.host_allowed("example.com")
    for address in ("1.1.1.1", "2606:4700:4700::1111"):
        assert anything.address_allowed(ipaddress.ip_address(address))
    for address in (
        "127.0.0.1",
        "::1",
        "::ffff:127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "224.0.0.1",
        "fd00::1",
        "fe80::1",
        str(own),
    ):
        assert not anything.address_allowed(ipaddress.ip_address(address)), address
    operator = EgressGuard(
        Networking.parse({"type": "unrestricted"}),
        reachable_networks=["10.9.0.0/16"],
        blocked_networks=["1.1.1.0/24"],
        own_addresses=[],
    )
    assert operator.address_allowed(ipaddress.ip_address("10.9.1.1"))
    assert not operator.address_allowed(ipaddress.ip_address("1.1.1.1"))


def test_networking_is_read_as_the_sdk_sends_it():
    from anthropic.types.beta import BetaLimitedNetwork, BetaUnrestrictedNetwork

    assert Networking.parse(None).off
    assert Networking.parse(BetaUnrestrictedNetwork(type="unrestricted")).allow_all
    limited = Networking.parse(
        BetaLimitedNetwork(type="limited", allowed_hosts=["a.example"], allow_package_managers=False, allow_mcp_servers=False)
    )
    assert limited.allowed_hosts == ("a.example",) and not limited.off
    assert Networking.parse({"type": "limited", "allowed_hosts": []}).off
    with pytest.raises(ValueError):
        Networking.parse({"type": "open"})
