"""Time-based one-time passwords (RFC 6238 over RFC 4226): HMAC-SHA1, 30-second steps, six
digits — what authenticator apps use by default. Pure: the time is given.

A code is good once (RFC 6238 §5.2): ``matching_step`` says which time step a code belongs
to, and the caller records the last step it accepted (``User.totp_step_used``), refusing
that step and every earlier one afterwards."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import struct
from urllib.parse import quote

STEP_SECONDS = 30
DIGITS = 6
# Codes of the step before and after are accepted too (clocks drift, people type slowly).
DRIFT_STEPS = 1


def new_secret() -> str:
    """160 random bits, base32 without padding (what otpauth URIs carry)."""
    return base64.b32encode(secrets.token_bytes(20)).decode().rstrip("=")


def _key(secret: str) -> bytes:
    return base64.b32decode(secret + "=" * (-len(secret) % 8), casefold=True)


def hotp(key: bytes, counter: int, digits: int = DIGITS, digest: str = "sha1") -> str:
    mac = hmac.new(key, struct.pack(">Q", counter), getattr(hashlib, digest)).digest()
    offset = mac[-1] & 0x0F
    code = struct.unpack(">I", mac[offset : offset + 4])[0] & 0x7FFFFFFF
    return str(code % 10**digits).zfill(digits)


def code_at(secret: str, unix_time: float) -> str:
    return hotp(_key(secret), int(unix_time // STEP_SECONDS))


def matching_step(secret: str, code: str, unix_time: float) -> int | None:
    """The time step (within the drift) whose code ``code`` is, or None; the latest one
    should two steps share a code, so a replay guard never lets it through twice."""
    code = code.strip().replace(" ", "")
    if len(code) != DIGITS or not code.isdigit():
        return None
    step = int(unix_time // STEP_SECONDS)
    key = _key(secret)
    matches = [
        step + drift
        for drift in range(-DRIFT_STEPS, DRIFT_STEPS + 1)
        if hmac.compare_digest(hotp(key, step + drift), code)
    ]
    return matches[-1] if matches else None


def verify(secret: str, code: str, unix_time: float) -> bool:
    return matching_step(secret, code, unix_time) is not None


def provisioning_uri(secret: str, account: str, issuer: str = "Agentry") -> str:
    return f"otpauth://totp/{quote(issuer)}:{quote(account)}?secret={secret}&issuer={quote(issuer)}&digits={DIGITS}&period={STEP_SECONDS}"
