"""The command line that starts a sandboxed process: drop root first, then set the rlimits,
then let bubblewrap build the namespaces.

Measured on this project: `bwrap --uid N` run by root is no real drop (root's files stay
readable, RLIMIT_NPROC is not enforced for root), so the worker drops to the session's uid
with `setpriv` (no groups, no capabilities, none inheritable or in the bounding set) before
`prlimit` and `bwrap` run. bubblewrap then runs unprivileged in a new user namespace:

- every namespace is new (`--unshare-all`): its own pid namespace (killing bwrap kills every
  process in it, whatever signals they ignore), its own network namespace (a loopback of its
  own and nothing else), and it may not make user namespaces of its own;
- the system is the host's, read-only, one top-level directory at a time; /tmp, /run, /home,
  /root, /mnt, /media and the sessions' root are not the host's, so host sockets there, other
  users' files and other sessions' areas are out of sight;
- the writable places are the session's area and nothing else: /workspace, /home/user,
  /tmp, /var/tmp, /dev/shm, and /mnt where its files allow (its memory stores; see
  mounts.py); every other mount (the root, /dev, /run) is read-only;
- `--die-with-parent`: if the worker dies, bubblewrap and everything it started die too;
  `--new-session`: no terminal to push keystrokes into."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path

from infra.sandbox.area import HOME, Area, open_to_others
from infra.sandbox.errors import SandboxUnavailable
from infra.sandbox.limits import SandboxLimits

INSIDE_DIR = "/run/agentry"
HELPER = f"{INSIDE_DIR}/inside.py"
EGRESS_SOCKET = f"{INSIDE_DIR}/egress.sock"
PROXY_PORT = 3128
WORKDIR = "/workspace"
# The helper (CPython with the SDK loaded, its thread pool) needs this much address space even
# when the session's per-process memory limit is smaller; the shell gets the session's.
HELPER_ADDRESS_SPACE = 1 << 30

NOT_THE_HOSTS = frozenset({"tmp", "run", "dev", "proc", "home", "root", "mnt", "media", "lost+found", "workspace"})
SEARCH_PATH = "/home/user/.local/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def tool_path(name: str) -> str:
    found = shutil.which(name, path="/usr/bin:/bin:/usr/sbin:/sbin:/usr/local/bin")
    if found is None:
        raise SandboxUnavailable(f"{name} is not installed on this worker (Debian: apt-get install bubblewrap util-linux)")
    return found


def sandbox_environment(*, networked: bool, extra: Mapping[str, str]) -> dict[str, str]:
    """What a process in the sandbox sees, and nothing of the worker's (no credentials)."""
    local = f"{HOME}/.local"
    env = {
        "PATH": SEARCH_PATH,
        "HOME": HOME,
        "USER": "user",
        "LOGNAME": "user",
        "SHELL": "/bin/bash",
        "LANG": "C.UTF-8",
        "TMPDIR": "/tmp",
        # Per-session package locations, all inside the size-capped area.
        "PYTHONUSERBASE": local,
        "PIP_BREAK_SYSTEM_PACKAGES": "1",
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "npm_config_prefix": local,
        "NODE_PATH": f"{local}/lib/node_modules",
        "GEM_HOME": f"{local}/gems",
        "GEM_PATH": f"{local}/gems",
        "CARGO_HOME": f"{HOME}/.cargo",
        "GOPATH": f"{HOME}/go",
        "GOBIN": f"{local}/bin",
        "GOFLAGS": "-modcacherw",
    }
    if networked:
        proxy = f"http://127.0.0.1:{PROXY_PORT}"
        for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
            env[name] = proxy
        env["NO_PROXY"] = env["no_proxy"] = "localhost,127.0.0.1,::1"
    env.update(extra)
    return env


def hidden_python_prefixes() -> list[Path]:
    """The directories of the worker's own Python (the helper runs on it) that an unprivileged
    uid cannot reach — a pyenv build under /root, say. The area binds them in (see
    `Area.expose`), since bubblewrap already runs as the uid and could not open them."""
    prefixes = sorted({Path(os.path.realpath(sys.base_prefix)), Path(os.path.realpath(sys.prefix))})
    return [prefix for prefix in prefixes if not open_to_others(prefix)]


def _python_binds(area: Area, hidden_roots: frozenset[str]) -> list[str]:
    args: list[str] = []
    for prefix, exposed in area.exposed.items():
        if prefix.parts[1] not in hidden_roots:
            raise SandboxUnavailable(
                f"the worker's Python at {prefix} is not readable by the sandbox's uid; install it somewhere world-readable"
            )
        args += ["--ro-bind", str(exposed), str(prefix)]
    return args


def _system_binds() -> tuple[list[str], frozenset[str]]:
    args: list[str] = []
    hidden = set(NOT_THE_HOSTS)
    for entry in sorted(os.listdir("/")):
        path = f"/{entry}"
        if entry in NOT_THE_HOSTS:
            continue
        if os.path.islink(path):
            args += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path) and not open_to_others(Path(path)):
            hidden.add(entry)
        else:
            args += ["--ro-bind", path, path]
    return args, frozenset(hidden)


def sandbox_argv(
    area: Area,
    limits: SandboxLimits,
    *,
    sessions_root: Path,
    networked: bool,
    extra_env: Mapping[str, str],
    config: str,
) -> list[str]:
    system, hidden = _system_binds()
    # The sessions' root is hidden whenever the system part that holds it is the host's.
    masked = sessions_root.parts[1] not in hidden
    memory = max(limits.memory_bytes, HELPER_ADDRESS_SPACE)
    argv = [
        tool_path("setpriv"),
        f"--reuid={area.uid}",
        f"--regid={area.uid}",
        "--clear-groups",
        "--inh-caps=-all",
        "--bounding-set=-all",
        tool_path("prlimit"),
        f"--nproc={limits.processes}",
        f"--as={memory}",
        f"--nofile={limits.open_files}",
        "--core=0",
        "--",
        tool_path("bwrap"),
        "--unshare-all",
        "--unshare-user",
        "--disable-userns",
        "--die-with-parent",
        "--new-session",
        "--cap-drop",
        "ALL",
        "--hostname",
        "sandbox",
        *system,
        "--dev",
        "/dev",
        "--proc",
        "/proc",
        "--tmpfs",
        "/run",
        "--tmpfs",
        "/home",
        *(["--tmpfs", str(sessions_root)] if masked else []),
        "--bind",
        str(area.workspace),
        WORKDIR,
        "--bind",
        str(area.home),
        HOME,
        "--bind",
        str(area.tmp),
        "/tmp",
        "--bind",
        str(area.shm),
        "/dev/shm",
        "--bind",
        str(area.mnt),
        "/mnt",
        "--ro-bind",
        str(area.passwd),
        "/etc/passwd",
        "--ro-bind",
        str(area.group),
        "/etc/group",
        "--ro-bind",
        str(area.helper),
        HELPER,
    ]
    if os.path.isdir("/var/tmp"):
        argv += ["--bind", str(area.tmp), "/var/tmp"]
    if networked:
        argv += ["--bind", str(area.egress_socket), EGRESS_SOCKET]
    argv += _python_binds(area, hidden)
    for mount in ("/run", "/home", *([str(sessions_root)] if masked else []), "/dev", "/"):
        argv += ["--remount-ro", mount]
    argv += ["--chdir", WORKDIR, "--clearenv"]
    for name, value in sandbox_environment(networked=networked, extra=extra_env).items():
        argv += ["--setenv", name, value]
    argv += ["--", sys.executable, "-I", "-B", HELPER, config]
    return argv
