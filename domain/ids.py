"""Public ids (``agent_…``) and the event-store ids derived from them.

Public ids are minted by the application (the domain has no id source of its own) and
mapped deterministically to the UUID the event store keys streams by, so an aggregate can
be loaded from its public id without a lookup table.
"""

from __future__ import annotations

import re
from uuid import UUID, uuid5

_NAMESPACE = UUID("6f3b2a9e-1c4d-5e7f-8a9b-0c1d2e3f4a5b")

PUBLIC_ID = re.compile(r"^[a-z]+_[A-Za-z0-9]{8,64}$")


def stream_id(public_id: str) -> UUID:
    """The event-store originator id of the aggregate whose public id is ``public_id``."""
    return uuid5(_NAMESPACE, public_id)


def looks_like(prefix: str, public_id: str) -> bool:
    """True when ``public_id`` is syntactically an id of the ``prefix`` kind."""
    return bool(PUBLIC_ID.match(public_id)) and public_id.startswith(prefix + "_")
