"""Login tokens: JWTs (HS256) a person presents as ``Authorization: Bearer`` beside API keys.

The signing key is derived from the server secret API keys are hashed with (HMAC of a fixed
label), so every API process that can check a key can check a token and nothing new needs
keeping. A token names its user (``sub``) and the user's ``gen`` (token generation) when it
was issued: signing out, changing the password, enabling a second factor or removing the
user moves the generation on, and every earlier token stops working.

Hand-rolled rather than a library: HS256 only, and a token whose header names any other
algorithm is refused (no ``alg: none``, no algorithm confusion)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass

from application.errors import Unauthorized

TOKEN_SECONDS = 24 * 3600
_HEADER = {"alg": "HS256", "typ": "JWT"}
_LABEL = b"agentry login tokens v1"
ISSUER = "agentry"


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class TokenClaims:
    user_id: str
    generation: int
    expires_at: int


class LoginTokens:
    def __init__(self, server_secret: str) -> None:
        self._key = hmac.new(server_secret.encode(), _LABEL, hashlib.sha256).digest()

    def issue(self, user_id: str, generation: int, now: int) -> str:
        claims = {"iss": ISSUER, "sub": user_id, "gen": generation, "iat": now, "exp": now + TOKEN_SECONDS}
        signing_input = _b64(json.dumps(_HEADER, separators=(",", ":")).encode()) + "." + _b64(
            json.dumps(claims, separators=(",", ":")).encode()
        )
        return signing_input + "." + _b64(self._sign(signing_input))

    def verify(self, token: str, now: int) -> TokenClaims:
        invalid = Unauthorized("invalid or expired login token: log in again")
        parts = token.split(".")
        if len(parts) != 3:
            raise invalid
        # The signature first: nothing a stranger wrote is parsed before it is checked.
        try:
            signature = _unb64(parts[2])
        except (ValueError, UnicodeDecodeError):
            raise invalid from None
        if not hmac.compare_digest(signature, self._sign(parts[0] + "." + parts[1])):
            raise invalid
        try:
            header = json.loads(_unb64(parts[0]))
        except (ValueError, UnicodeDecodeError, RecursionError):
            raise invalid from None
        if not isinstance(header, dict) or header.get("alg") != "HS256":
            raise invalid
        try:
            claims = json.loads(_unb64(parts[1]))
        except (ValueError, UnicodeDecodeError):
            raise invalid from None
        if not isinstance(claims, dict) or claims.get("iss") != ISSUER:
            raise invalid
        user_id, generation, expires = claims.get("sub"), claims.get("gen"), claims.get("exp")
        if not isinstance(user_id, str) or not isinstance(generation, int) or not isinstance(expires, int):
            raise invalid
        if expires <= now:
            raise invalid
        return TokenClaims(user_id, generation, expires)

    def _sign(self, signing_input: str) -> bytes:
        return hmac.new(self._key, signing_input.encode(), hashlib.sha256).digest()
