"""The session runtime: the turn loop (``turns``), the transcript it sends (``transcript``),
the tools it offers (``tools``), list prices (``pricing``), model resolution (``models``)
and who drives which session (``dispatch``)."""

from application.runtime.dispatch import CancelToken, LocalLease, SessionLease, TurnDispatcher
from application.runtime.models import DefaultProviders, ModelResolver
from application.runtime.turns import PreviewSink, SessionRuntime, TurnPolicy

__all__ = [
    "CancelToken",
    "DefaultProviders",
    "LocalLease",
    "ModelResolver",
    "PreviewSink",
    "SessionLease",
    "SessionRuntime",
    "TurnDispatcher",
    "TurnPolicy",
]
