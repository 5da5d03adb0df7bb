"""An environment's packages are installed when a session's sandbox starts, inside it and
into the session's own area; a manager the worker cannot run, or an install that fails, ends
the start with an error naming the manager, and leaves nothing behind.

pip installs from a package index the test serves on 127.0.0.2 (through the sandbox's
egress proxy, which the test lets reach that one address), so no internet is needed."""

from __future__ import annotations

import base64
import hashlib
import http.server
import io
import shutil
import subprocess
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from domain.environment_config import Packages
from infra.sandbox import PackageInstallFailed, PackageManagerUnavailable, Sandbox, SandboxLimits
from infra.sandbox.command import SEARCH_PATH
from tests.support.sandbox import Tools, sessions_root

in_module_loop = pytest.mark.asyncio(loop_scope="module")

HOST = "127.0.0.2"
WHEEL = "agentry_probe-1.0-py3-none-any.whl"
LIMITS = SandboxLimits(disk_bytes=64 << 20, command_seconds=20, install_seconds=60)
NO_PACKAGES = {"type": "packages", "apt": [], "cargo": [], "gem": [], "go": [], "npm": [], "pip": []}


def probe_wheel() -> bytes:
    files = {
        "agentry_probe/__init__.py": b'VALUE = "installed in the sandbox"\n',
        "agentry_probe-1.0.dist-info/METADATA": b"Metadata-Version: 2.1\nName: agentry-probe\nVersion: 1.0\n",
        "agentry_probe-1.0.dist-info/WHEEL": b"Wheel-Version: 1.0\nGenerator: agentry-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = []
    for name, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{name},sha256={digest},{len(data)}")
    record.append("agentry_probe-1.0.dist-info/RECORD,,")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as wheel:
        for name, data in files.items():
            wheel.writestr(name, data)
        wheel.writestr("agentry_probe-1.0.dist-info/RECORD", "\n".join(record) + "\n")
    return buffer.getvalue()


class Index(http.server.BaseHTTPRequestHandler):
    wheel = probe_wheel()

    def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
        if self.path.rstrip("/") == "/simple/agentry-probe":
            digest = hashlib.sha256(self.wheel).hexdigest()
            self.answer(f'<html><body><a href="/files/{WHEEL}#sha256={digest}">{WHEEL}</a></body></html>'.encode(), "text/html")
        elif self.path == f"/files/{WHEEL}":
            self.answer(self.wheel, "application/octet-stream")
        else:
            self.send_error(404)

    def answer(self, body: bytes, kind: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", kind)
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
def index() -> Iterator[str]:
    httpd = http.server.ThreadingHTTPServer((HOST, 0), Index)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://{HOST}:{httpd.server_address[1]}/simple/"
    httpd.shutdown()
    httpd.server_close()


def pip_runs_here() -> bool:
    """Whether the sandbox's python3 has pip: its absence is exactly what the error must name."""
    python = shutil.which("python3", path=SEARCH_PATH)
    return python is not None and subprocess.run([python, "-m", "pip", "--version"], capture_output=True).returncode == 0


async def create_with_pip(root: Path, session_id: str, index: str, packages: list[str]) -> Sandbox:
    return await Sandbox.create(
        root,
        session_id,
        networking={"type": "limited", "allowed_hosts": [HOST], "allow_package_managers": True},
        packages={**NO_PACKAGES, "pip": packages},
        limits=LIMITS,
        env={"PIP_INDEX_URL": index, "PIP_TRUSTED_HOST": HOST},
        reachable_networks=[f"{HOST}/32"],
    )


@in_module_loop
async def test_pip_packages_are_installed_into_the_session_when_it_starts(root: Path, index: str):
    if not pip_runs_here():
        with pytest.raises(PackageManagerUnavailable) as refused:
            await create_with_pip(root, "sesn_pip", index, ["agentry-probe==1.0"])
        assert refused.value.manager == "pip"
        return
    sandbox = await create_with_pip(root, "sesn_pip", index, ["agentry-probe==1.0"])
    try:
        tools = Tools(sandbox)
        shown = await tools.ok("bash", command="python3 -c 'import agentry_probe; print(agentry_probe.VALUE, agentry_probe.__file__)'")
        assert shown.startswith("installed in the sandbox /home/user/.local/lib/")
        # It went into the session's own area, as the session's uid.
        installed = next((sandbox.workdir.parent / "home" / ".local").rglob("agentry_probe/__init__.py"))
        assert installed.stat().st_uid == sandbox.uid
    finally:
        await sandbox.close()


@in_module_loop
async def test_a_failed_install_ends_the_start_naming_the_manager(root: Path, index: str):
    expected = PackageInstallFailed if pip_runs_here() else PackageManagerUnavailable
    with pytest.raises(expected) as failed:
        await create_with_pip(root, "sesn_missing_package", index, ["agentry-no-such-package"])
    assert failed.value.manager == "pip"
    assert str(failed.value).startswith("pip: ")
    assert not (root / "sesn_missing_package").exists()


@in_module_loop
@pytest.mark.parametrize("manager", ["cargo", "gem", "go", "npm", "pip"])
async def test_a_manager_the_worker_cannot_run_ends_the_start_naming_it(root: Path, manager: str):
    # With nothing on the sandbox's PATH, no manager can run: the start must say which one.
    with pytest.raises(PackageManagerUnavailable) as refused:
        await Sandbox.create(
            root,
            f"sesn_no_{manager}",
            packages={**NO_PACKAGES, manager: ["something"]},
            limits=LIMITS,
            env={"PATH": "/nonexistent"},
        )
    assert refused.value.manager == manager
    assert str(refused.value).startswith(f"{manager}: ") and "cannot run it" in str(refused.value)
    assert not (root / f"sesn_no_{manager}").exists()


@in_module_loop
async def test_apt_packages_must_already_be_on_the_worker(root: Path):
    with pytest.raises(PackageManagerUnavailable) as refused:
        await Sandbox.create(root, "sesn_apt", packages={**NO_PACKAGES, "apt": ["bash", "agentry-no-such-package"]})
    assert refused.value.manager == "apt"
    assert "agentry-no-such-package" in str(refused.value) and "bash," not in str(refused.value)
    sandbox = await Sandbox.create(root, "sesn_apt", packages={**NO_PACKAGES, "apt": ["bash"]}, limits=LIMITS)
    await sandbox.close()


def test_a_package_entry_cannot_smuggle_an_option():
    for entry in ("--index-url=http://evil.example/", "-e git+https://evil.example/x", "a b", ""):
        with pytest.raises(ValueError):
            Packages.parse({"pip": [entry]})
    assert Packages.parse({"pip": ["requests[socks]>=2.31"], "npm": ["@scope/pkg@1.2.3"]}).of("npm") == ("@scope/pkg@1.2.3",)
