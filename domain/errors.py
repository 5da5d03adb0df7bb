"""Errors raised by aggregates when a command would break an invariant."""


class DomainError(Exception):
    """A command was refused by an aggregate."""


class VersionMismatch(DomainError):
    """The client edited a version that is no longer current (optimistic concurrency)."""

    def __init__(self, expected: int, actual: int) -> None:
        super().__init__(
            f"version mismatch: the request was based on version {expected}, "
            f"but the current version is {actual}"
        )
        self.expected = expected
        self.actual = actual


class Archived(DomainError):
    """The aggregate is archived and no longer accepts changes."""


class InvalidState(DomainError):
    """The command is not allowed in the aggregate's current state."""


class Taken(DomainError):
    """A name that must be unique (a tenant's model card handle) is held by another aggregate."""
