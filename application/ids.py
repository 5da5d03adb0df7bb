"""Mints public ids: a type prefix and 24 random base62 characters."""

from __future__ import annotations

import os
import string

_ALPHABET = string.ascii_letters + string.digits
_LENGTH = 24
# Bytes below this map evenly onto the alphabet (4 × 62); the rest are dropped, so every
# character stays uniform. One read of the system's CSPRNG per id, not one per character.
_EVEN = 4 * len(_ALPHABET)


def new_id(prefix: str) -> str:
    chars: list[str] = []
    while len(chars) < _LENGTH:
        chars.extend(_ALPHABET[byte % 62] for byte in os.urandom(32) if byte < _EVEN)
    return prefix + "_" + "".join(chars[:_LENGTH])
