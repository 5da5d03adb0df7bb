"""Request ids: unique, cheap, and still not guessable from outside the process.

A request id names a request in responses and logs; it is no secret, it only has to be
unique. Reading the OS's random source on every request showed in the fan-out profile, so
each process draws a random prefix once and counts from there (after a fork, the child
draws its own prefix, so two workers never share one).
"""

from __future__ import annotations

import itertools
import os
import secrets

_prefix = secrets.token_hex(6)
_counter = itertools.count()


def _reseed() -> None:
    global _prefix, _counter
    _prefix = secrets.token_hex(6)
    _counter = itertools.count()


os.register_at_fork(after_in_child=_reseed)


def new_request_id() -> str:
    """``req_`` and 24 hex digits, as before: a per-process random prefix and a counter."""
    return f"req_{_prefix}{next(_counter) & 0xFFFFFFFFFFFF:012x}"
