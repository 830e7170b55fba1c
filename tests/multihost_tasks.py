"""Stage functions for tests/test_pipeline_multihost.py, imported by remote worker processes.

Workers learn their settings from the environment the test starts them with:
``ZP_MH_DELAY`` (seconds each task sleeps), ``ZP_MH_BARRIER`` (a directory) and
``ZP_MH_PEERS``: the first task of a worker marks the directory with the worker's network
namespace and waits until ``ZP_MH_PEERS`` namespaces have marked it, so that every remote
worker has joined before the work is spread (a bounded wait: a missing peer makes the test's
assertions fail, not hang).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

#: The inode of this process's network namespace (the same number ``stat`` gives for
#: ``/run/netns/<name>``), so a result tells which namespace computed it.
NETNS = os.stat("/proc/self/ns/net").st_ino

BARRIER_WAIT_S = 20.0
_peers_seen = False


def numbers(n: int) -> Iterator[int]:
    yield from range(n)


def words(n: int) -> Iterator[str]:
    yield from (str(i) for i in range(n))


def tagged(x: int) -> list[int]:
    """``[x, the network namespace that computed it]``, after ``ZP_MH_DELAY`` seconds."""
    _wait_for_peers()
    delay = float(os.environ.get("ZP_MH_DELAY", "0"))
    if delay:
        time.sleep(delay)
    return [x, NETNS]


def tagged_text(x: str) -> list[str]:
    """A function with other types than :func:`tagged` (a worker with a stale schema)."""
    return [x]


def _wait_for_peers() -> None:
    global _peers_seen
    barrier = os.environ.get("ZP_MH_BARRIER")
    if _peers_seen or not barrier:
        return
    peers = int(os.environ.get("ZP_MH_PEERS", "1"))
    with open(os.path.join(barrier, str(NETNS)), "w"):
        pass
    deadline = time.monotonic() + BARRIER_WAIT_S
    while len(os.listdir(barrier)) < peers and time.monotonic() < deadline:
        time.sleep(0.01)
    _peers_seen = True
