"""The WebhookEndpoint aggregate: a URL the organization wants some kinds of events sent to.

An endpoint belongs to the organization, not to one of its workspaces: its ``tenant_id`` is
the organization's id. Its signing secret is never held in clear: ``ciphertext`` is the secret
sealed under a data key of its own ``secret_generation``, so regenerating the secret (or
deleting the endpoint) lets the application shred the old data key.

URLs: only ``http`` and ``https`` (with a host) are accepted. Endpoints are configured by
organization admins, so private and loopback addresses are allowed (a receiver on the same
host or network is the usual set-up); no other scheme ever reaches the HTTP client."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.errors import DomainError, InvalidState
from domain.ids import stream_id

SCHEMES = ("http", "https")
MAX_URL_LENGTH = 2048
ENABLED = "enabled"
DISABLED = "disabled"
STATES = (ENABLED, DISABLED)


class InvalidWebhookUrl(DomainError):
    """A URL deliveries cannot be sent to."""


def check_url(url: str) -> str:
    """The URL as given when deliveries can be POSTed to it: ``http(s)://host…``, no
    whitespace or control characters, at most 2048 characters."""
    if len(url) > MAX_URL_LENGTH:
        raise InvalidWebhookUrl(f"url is longer than {MAX_URL_LENGTH} characters")
    if any(character.isspace() or ord(character) < 32 or ord(character) == 127 for character in url):
        raise InvalidWebhookUrl("url may not contain whitespace or control characters")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (a port that is not a number raises here)
    except ValueError:
        raise InvalidWebhookUrl("url is not a valid URL") from None
    if parts.scheme.lower() not in SCHEMES:
        raise InvalidWebhookUrl("url must be an http:// or https:// URL")
    if not parts.hostname:
        raise InvalidWebhookUrl("url names no host")
    return url


class WebhookEndpoint(Aggregate):
    @staticmethod
    def create_id(endpoint_id: str, **_: Any) -> UUID:
        return stream_id(endpoint_id)

    class Created(Aggregate.Created):
        endpoint_id: str
        tenant_id: str  # the organization's id
        url: str
        name: str
        description: str
        enabled_events: list[str]
        ciphertext: str  # the signing secret, sealed (generation 1)

    class Updated(Aggregate.Event):
        """The endpoint's settings, each as it now is."""

        url: str
        name: str
        description: str
        enabled_events: list[str]
        state: str

    class SigningSecretRegenerated(Aggregate.Event):
        """A new signing secret, sealed under the data key of ``generation``."""

        generation: int
        ciphertext: str

    class Deleted(Aggregate.Event):
        """The endpoint is gone; its secret's data key is shredded right after."""

    @event(Created)
    def __init__(
        self,
        endpoint_id: str,
        tenant_id: str,
        url: str,
        name: str,
        description: str,
        enabled_events: list[str],
        ciphertext: str,
    ) -> None:
        if not enabled_events:
            raise InvalidState("enabled_events must name at least one event type")
        self.endpoint_id = endpoint_id
        self.tenant_id = tenant_id
        self.url = url
        self.name = name
        self.description = description
        self.enabled_events = list(enabled_events)
        self.state = ENABLED
        # Agentry never disables an endpoint by itself (yet): always "" (the SDK's field).
        self.disabled_reason = ""
        self.secret_generation = 1
        self.ciphertext = ciphertext
        self.deleted = False

    @property
    def enabled(self) -> bool:
        return self.state == ENABLED

    def update(self, changes: dict[str, Any]) -> bool:
        """Changes the fields given; an empty ``enabled_events`` leaves the kinds as they
        are (as the SDK documents). Returns False (recording nothing) when nothing changed."""
        self._check_live()
        kinds = changes.get("enabled_events") or self.enabled_events
        state = changes.get("state") or self.state
        if state not in STATES:
            raise InvalidState(f"state must be one of {', '.join(STATES)}")
        after = (
            check_url(changes["url"]) if "url" in changes else self.url,
            changes["name"] if changes.get("name") is not None else self.name,
            changes["description"] if changes.get("description") is not None else self.description,
            list(kinds),
            state,
        )
        if after == (self.url, self.name, self.description, self.enabled_events, self.state):
            return False
        self._record_update(*after)
        return True

    @event(Updated)
    def _record_update(self, url: str, name: str, description: str, enabled_events: list[str], state: str) -> None:
        self.url = url
        self.name = name
        self.description = description
        self.enabled_events = list(enabled_events)
        self.state = state
        self.disabled_reason = ""

    def regenerate_secret(self, ciphertext: str) -> None:
        """Records a new sealed secret under the next generation's data key."""
        self._check_live()
        self._record_secret(self.secret_generation + 1, ciphertext)

    @event(SigningSecretRegenerated)
    def _record_secret(self, generation: int, ciphertext: str) -> None:
        self.secret_generation = generation
        self.ciphertext = ciphertext

    def delete(self) -> bool:
        if self.deleted:
            return False
        self._record_deletion()
        return True

    @event(Deleted)
    def _record_deletion(self) -> None:
        self.deleted = True

    def _check_live(self) -> None:
        if self.deleted:
            raise InvalidState(f"webhook endpoint {self.endpoint_id} is deleted")
