"""Events that stamp their own time on the aggregate (``archived_at``, ``revoked_at``…).

A method decorated with ``@event`` runs before eventsourcing moves ``modified_on`` to the
event's time, so a body that reads ``self.modified_on`` gets the time of the event before.
The event's ``apply`` runs after that body, on creation and on every load alike: it sets the
stamp from the event's own ``timestamp``. Nothing is added to the stored event, so streams
recorded before need no upcast.
"""

from __future__ import annotations

from typing import Any, ClassVar

from eventsourcing.domain import Aggregate


class Stamped(Aggregate.Event):
    """Sets the aggregate's ``stamp`` attribute to this event's time (after the body of
    the ``@event`` method, which must not set it)."""

    stamp: ClassVar[str]

    def apply(self, aggregate: Any) -> None:
        setattr(aggregate, self.stamp, self.timestamp)
        super().apply(aggregate)
