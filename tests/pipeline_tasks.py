"""Stage functions for tests/test_pipelines.py, imported by path in the worker processes.

State the head needs (what a per-item sink saw) lives in module globals of the test process;
what worker processes do is written under the directory named by ``$PIPELINE_TASKS_DIR``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Iterator

from zeropipe.codecs import field, message

DIR_ENV = "PIPELINE_TASKS_DIR"

SEEN: list[object] = []
"""What :func:`collect` (a per-item sink, run by the head) received."""

DEAD: list[object] = []
"""What :func:`on_dead` (the dead-letter handler, run by the head) received."""


def reset() -> None:
    SEEN.clear()
    DEAD.clear()


# -- sources -----------------------------------------------------------------------


def numbers(n: int) -> Iterator[int]:
    return iter(range(n))


def words(n: int) -> Iterator[str]:
    return (f"w{i}" for i in range(n))


def points(n: int) -> Iterator[Point]:
    return (Point(i, -i) for i in range(n))


# -- map stages --------------------------------------------------------------------


def square(x: int) -> int:
    return x * x


def jittery_square(x: int) -> int:
    """Squares, taking a little longer for some tasks, so workers finish out of source order."""
    time.sleep(0.002 * (x % 4))
    return x * x


def add_one(x: int) -> int:
    return x + 1


def describe(x: int) -> str:
    return f"n{x}"


def length(s: str) -> int:
    return len(s)


def half(x: float) -> float:
    return x / 2


def untyped(x):  # type: ignore[no-untyped-def]
    return x


def set_for_five(x: int) -> int:
    """Returns a set (no values codec carries one) for task 5."""
    return {x} if x == 5 else x  # type: ignore[return-value]


def to_bytes(x: int) -> bytes:
    return b"%d" % x


def logged_square(x: int) -> int:
    """Squares, noting which worker process ran the task."""
    _note("task", x)
    return x * x


def flaky(x: int) -> int:
    """Fails for every multiple of 7 (deterministically, on every attempt)."""
    if x % 7 == 3:
        raise ValueError(f"no luck with {x}")
    return x * 10


# -- typed messages ----------------------------------------------------------------


@message("pipetest.Point")
class Point:
    x: int = field(1, "int64")
    y: int = field(2, "int64")


@message("pipetest.Label")
class Label:
    id: int = field(1, "int64")
    text: str = field(2)
    tags: list[str] = field(3, default_factory=list)


def fail_on_three(x: int) -> int:
    if x == 3:
        raise ValueError("three")
    return x * x


def too_big_on_odd(x: int) -> int:
    """An odd task's result does not fit msgpack's 64-bit integers."""
    return 2**70 if x % 2 else x


def make_point(x: int) -> Point:
    return Point(x, x * x)


def label(p: Point) -> Label:
    return Label(p.x, f"({p.x}, {p.y})", [str(p.x), str(p.y)])


def label_number(p: Point) -> int:
    return p.x + p.y


# -- sinks -------------------------------------------------------------------------


def collect(item: object) -> None:
    SEEN.append(item)


def total(results: Iterable[int]) -> int:
    return sum(results)


def as_list(results: Iterable[int]) -> list[int]:
    return list(results)


def label_list(results: Iterable[Label]) -> list[Label]:
    return list(results)


def collect_labels(item: Label) -> None:
    SEEN.append(item)


def collect_ints(item: int) -> None:
    SEEN.append(item)


def on_dead(letter: object) -> None:
    DEAD.append(letter)


# -- hooks -------------------------------------------------------------------------


def init_hook() -> None:
    _note("init")


def close_hook() -> None:
    _note("close")


def _note(what: str, x: int = -1) -> None:
    """Appends ``what pid x`` to the log (one short O_APPEND write: lines never interleave)."""
    line = f"{what} {os.getpid()} {x}\n".encode()
    fd = os.open(os.path.join(os.environ[DIR_ENV], "log"), os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


# -- misfits -----------------------------------------------------------------------


def takes_two(a: int, b: int) -> int:
    return a + b


def not_iterable(n: int) -> int:
    return n
