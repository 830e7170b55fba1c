"""Task functions of the pipelines benchmark (``benchmarks.pipelines``).

They live in a module of their own because every contender imports them by name in its worker
processes: zeropipe's workers by import path, ``multiprocessing`` by pickling the function
reference, the hand-written pyzmq workers directly. The source and the sink of the zeropipe
runs also take the timestamps (in the head process; see :data:`CLOCK`)."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterable, Iterator

CPU_WORK = 20_000  # ``cpu`` task: sum(range(CPU_WORK)) + x, about 0.3-0.6 ms here

#: Timestamps (``time.perf_counter``) taken in the head process of a zeropipe run.
CLOCK: dict[str, float] = {}


def square(x: int) -> int:
    """The ``tiny`` task."""
    return x * x


def cpu(x: int) -> int:
    """The ``cpu`` task."""
    return sum(range(CPU_WORK)) + x


TASKS = {"tiny": square, "cpu": cpu}


def checksum(workload: str, n: int) -> int:
    """The sum of the results of tasks 0..n-1, in closed form."""
    if workload == "tiny":
        return (n - 1) * n * (2 * n - 1) // 6
    return n * sum(range(CPU_WORK)) + n * (n - 1) // 2


def numbers(n: int) -> Iterator[int]:
    """The source: 0..n-1. The head reads its first task only once a worker has joined and
    asks for work, so the time of that first read is when the run's tasks are submitted.
    (A chain, so the tasks themselves come from ``range`` in C, as for the other methods.)"""
    return itertools.chain(_stamp("submit"), range(n))


def _stamp(name: str) -> Iterator[int]:
    CLOCK[name] = time.perf_counter()
    yield from ()


def total(results: Iterable[int]) -> int:
    """The sink: the sum of the results (the checksum), timing the first and the last one."""
    it = iter(results)
    try:
        first = next(it)
    except StopIteration:
        return 0
    CLOCK["first"] = time.perf_counter()
    value = first + sum(it)
    CLOCK["end"] = time.perf_counter()
    return value
