"""Stage functions for tests/test_pipeline_faults.py, run in worker processes.

Every function takes a task number ``x`` and returns ``[x, x * x]`` (msgpack carries a tuple
as a list), so a result names its task. Worker processes talk to the test through files
under ``$FAULT_TASKS_DIR``:

* ``log``: a line ``start|done|close PID X`` per event (one O_APPEND write each, so lines
  from several processes never interleave);
* ``attempt-X``: one byte per call for task X, so a function can act on its first attempt;
* ``gate``, ``gate2``: files the test creates to let waiting tasks go on.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterable, Iterator

DIR_ENV = "FAULT_TASKS_DIR"
GATE_WAIT_S = 30.0  # a gate never opened fails the task instead of hanging the test
HANG_S = 20.0  # a "hanging" task returns after this, if its watchdog never ended it

SEEN: list[list[int]] = []
DEAD: list[object] = []


def reset() -> None:
    SEEN.clear()
    DEAD.clear()


def numbers(n: int) -> Iterator[int]:
    return iter(range(n))


def collect(item: list[int]) -> None:
    SEEN.append(item)


def collect_all(results: Iterable[list[int]]) -> list[list[int]]:
    return list(results)


def on_dead(letter: object) -> None:
    DEAD.append(letter)


# -- stage functions ------------------------------------------------------------------


def pair(x: int) -> list[int]:
    _log("start", x)
    time.sleep(0.002)
    _log("done", x)
    return [x, x * x]


def gated_pair(x: int) -> list[int]:
    """Tasks from ``$FAULT_GATE_FROM`` on wait for the file ``gate``; the task
    ``$FAULT_GATE2_AT`` (if set) then waits for ``gate2`` too."""
    _log("start", x)
    if x >= int(os.environ.get("FAULT_GATE_FROM", "0")):
        _wait_for("gate")
    if str(x) == os.environ.get("FAULT_GATE2_AT"):
        _wait_for("gate2")
    _log("done", x)
    return [x, x * x]


def raise_for(x: int) -> list[int]:
    """Task 13 always raises; task 7 raises on its first attempt only."""
    attempt = _attempt(x)
    if x == 13:
        raise ValueError(f"bad task {x}")
    if x == 7 and attempt == 1:
        raise RuntimeError(f"task {x} fails once")
    return [x, x * x]


def exit_once(x: int) -> list[int]:
    """Task 17 kills its worker process on its first attempt."""
    if x == 17 and _attempt(x) == 1:
        os._exit(3)
    return [x, x * x]


def exit_always(x: int) -> list[int]:
    """Task 17 kills its worker process on every attempt."""
    if x == 17:
        _attempt(x)
        os._exit(3)
    return [x, x * x]


def hang_for(x: int) -> list[int]:
    """Task 5 hangs on every attempt; task 8 on its first one only."""
    attempt = _attempt(x)
    if x == 5 or (x == 8 and attempt == 1):
        time.sleep(HANG_S)
    return [x, x * x]


def leave_at(x: int) -> list[int]:
    """On the first attempt of tasks 0, 5, ... 40 the worker asks itself to leave (SIGTERM):
    it finishes this task, says BYE and exits."""
    if x % 5 == 0 and x <= 40 and _attempt(x) == 1:
        os.kill(os.getpid(), signal.SIGTERM)
    return [x, x * x]


def close_hook() -> None:
    _log("close", -1)


# -- plumbing -------------------------------------------------------------------------


def _path(name: str) -> str:
    return os.path.join(os.environ[DIR_ENV], name)


def _log(what: str, x: int) -> None:
    fd = os.open(_path("log"), os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        os.write(fd, f"{what} {os.getpid()} {x}\n".encode())
    finally:
        os.close(fd)


def _attempt(x: int) -> int:
    """This call's attempt number for task ``x`` (1 for the first)."""
    fd = os.open(_path(f"attempt-{x}"), os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        os.write(fd, b".")
        return os.fstat(fd).st_size
    finally:
        os.close(fd)


def _wait_for(name: str) -> None:
    deadline = time.monotonic() + GATE_WAIT_S
    while not os.path.exists(_path(name)):
        if time.monotonic() > deadline:
            raise RuntimeError(f"the test never opened {name}")
        time.sleep(0.005)
