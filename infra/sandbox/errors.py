"""What can stop a sandbox from starting. The two package errors name the manager, so the
caller can end the session's start with a `session.error` that says which."""

from __future__ import annotations


class SandboxError(Exception):
    """The sandbox could not be set up or has stopped working."""


class SandboxUnavailable(SandboxError):
    """This machine cannot run sandboxes (bubblewrap missing, no mount permission, no free uid)."""


class PackageError(SandboxError):
    def __init__(self, manager: str, message: str) -> None:
        super().__init__(f"{manager}: {message}")
        self.manager = manager


class PackageManagerUnavailable(PackageError):
    """The environment lists packages for a manager this worker cannot run."""


class PackageInstallFailed(PackageError):
    """The manager ran and failed (unknown package, no network for it, over the size cap, …)."""
