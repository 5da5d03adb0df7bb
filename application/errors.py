"""Errors the application layer raises. The HTTP edge maps these, and the domain's own
errors, to a status code once (by class, walking the MRO), so no use case catches them."""


class ApplicationError(Exception):
    """Base of the errors a use case reports to its caller."""


class NotFound(ApplicationError):
    """The named resource does not exist (or is not visible to the caller's tenant)."""


class UnknownModel(NotFound):
    """No agent or model card answers to the model a request names."""

    code = "model_not_found"  # what OpenAI's clients expect in error.code


class Conflict(ApplicationError):
    """The command lost a race (``retryable``) or was based on a stale version (not)."""

    def __init__(self, message: str, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


class Invalid(ApplicationError):
    """The command is well-formed but not acceptable in the current state."""


class Unauthorized(ApplicationError):
    """The caller did not present a valid credential."""


class Forbidden(ApplicationError):
    """The credential is valid but not for this route or this resource."""


class PreconditionFailed(ApplicationError):
    """A conditional request's condition no longer holds; ``details`` says what is current."""

    def __init__(self, message: str, error_code: str, details: dict[str, object]) -> None:
        super().__init__(message)
        self.error_code = error_code
        self.details = details


class Unavailable(ApplicationError):
    """A service the request needs (the embeddings endpoint, the vector index, the blob
    store) cannot answer now; trying again later may work."""
