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


# Every value below 62² as its two characters, least significant first.
_PAIR_BASE = len(_ALPHABET) ** 2
_PAIRS = [low + high for high in _ALPHABET for low in _ALPHABET]


def base62(number: int, digits: int) -> str:
    """``number``'s lowest ``digits`` base-62 digits, least significant first (how derived
    ids — activity entries, webhook events — spell a hash). Two digits per division."""
    pairs = []
    for _ in range(digits // 2):
        number, pair = divmod(number, _PAIR_BASE)
        pairs.append(_PAIRS[pair])
    if digits % 2:
        pairs.append(_ALPHABET[number % len(_ALPHABET)])
    return "".join(pairs)
