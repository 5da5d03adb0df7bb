"""Request ids come from a per-process random prefix and a counter: unique, same shape."""

from __future__ import annotations

import os
import re
import sys

import pytest

from interfaces.http import request_ids


def test_request_ids_are_unique_and_keep_their_shape() -> None:
    ids = [request_ids.new_request_id() for _ in range(10_000)]
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"req_[0-9a-f]{24}", rid) for rid in ids)


@pytest.mark.skipif(not hasattr(os, "fork") or sys.platform == "win32", reason="needs fork")
def test_a_forked_process_draws_its_own_prefix() -> None:
    parent = request_ids.new_request_id()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.write(write, request_ids.new_request_id().encode())
        os._exit(0)
    os.close(write)
    child = os.read(read, 64).decode()
    os.waitpid(pid, 0)
    os.close(read)
    assert child[:16] != parent[:16]
