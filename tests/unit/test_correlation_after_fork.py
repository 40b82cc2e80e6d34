"""A process forked from one that imported the services (the fault tests' fork server,
tests/faults/forkserver.py; a pre-forking server) must not hand out the same new
correlation ids as its parent and its siblings: they name requests in the logs."""

from __future__ import annotations

import os

from shared.http.correlation import new_correlation


def test_a_forked_process_draws_other_correlation_ids_than_its_parent() -> None:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its first new ids, to the parent, then out at once
        try:
            os.write(write, " ".join(new_correlation() for _ in range(4)).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        child = pipe.read().decode().split()
    os.waitpid(pid, 0)
    parent = [new_correlation() for _ in range(4)]
    assert len(child) == 4
    assert not set(child) & set(parent), (child, parent)
