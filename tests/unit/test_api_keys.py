"""API keys are recorded as an HMAC-SHA256 under the server secret; keys recorded as plain
SHA-256 before that still work once and are then recorded again under the HMAC."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from application.api_keys import ApiKeyService, keyed_hash, legacy_hash
from application.errors import Unauthorized
from domain.api_keys import ApiKey, key_stream_id
from infra.event_store import EventsourcingEventStore

SECRET = "server-secret-" + "s" * 32
KEY = "agentry-" + "k" * 43


def _states(store: EventsourcingEventStore) -> bytes:
    return b"".join(notification.state for notification in store.notifications(0, 1000))


def test_a_key_is_recorded_as_its_hmac_under_the_secret(store: EventsourcingEventStore) -> None:
    keys = ApiKeyService(store, keyed_hash(SECRET))
    principal = keys.issue(KEY, name="k", tenant_id="t1")
    expected = hmac.new(SECRET.encode(), KEY.encode(), hashlib.sha256).hexdigest()
    stored = store.load(key_stream_id(expected))
    assert stored.key_hash == expected and stored.key_id == principal.key_id
    states = _states(store)
    assert KEY.encode() not in states
    assert hashlib.sha256(KEY.encode()).hexdigest().encode() not in states
    assert keys.authenticate(KEY) == principal


def test_another_secret_does_not_authenticate_the_key(store: EventsourcingEventStore) -> None:
    ApiKeyService(store, keyed_hash(SECRET)).issue(KEY, name="k")
    with pytest.raises(Unauthorized):
        ApiKeyService(store, keyed_hash("another-secret-" + "x" * 32)).authenticate(KEY)


def test_a_legacy_sha256_key_is_migrated_on_first_use(store: EventsourcingEventStore) -> None:
    legacy = ApiKey(
        key_hash=legacy_hash(KEY), key_id="apikey_old", tenant_id="t7", name="old", role="admin", hint=KEY[-4:]
    )
    store.save(legacy)
    keys = ApiKeyService(store, keyed_hash(SECRET))

    principal = keys.authenticate(KEY)

    assert (principal.tenant_id, principal.key_id, principal.role) == ("t7", "apikey_old", "admin")
    keyed = store.load(key_stream_id(keyed_hash(SECRET)(KEY)))
    assert keyed.key_id == "apikey_old" and keyed.active
    assert not store.load(key_stream_id(legacy_hash(KEY))).active, "the plain SHA-256 record is revoked"
    # A fresh service (no cache) finds the key by its HMAC; issuing it again is idempotent.
    again = ApiKeyService(store, keyed_hash(SECRET))
    assert again.authenticate(KEY) == principal
    assert again.issue(KEY, name="bootstrap").key_id == "apikey_old"


def test_a_revoked_legacy_key_stays_refused(store: EventsourcingEventStore) -> None:
    legacy = ApiKey(
        key_hash=legacy_hash(KEY), key_id="apikey_old", tenant_id="t7", name="old", role="admin", hint=KEY[-4:]
    )
    legacy.revoke()
    store.save(legacy)
    with pytest.raises(Unauthorized):
        ApiKeyService(store, keyed_hash(SECRET)).authenticate(KEY)
