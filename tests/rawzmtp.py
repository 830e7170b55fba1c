"""Helpers for tests that speak raw ZMTP to a socket: cutting frames, measuring memory.

Written independently of zeropipe's own codec, so that a bug there cannot hide itself.
"""

from __future__ import annotations

import tracemalloc

FLAG_MORE = 0x01
FLAG_LONG = 0x02
FLAG_COMMAND = 0x04


def split_frames(data: bytes) -> tuple[list[tuple[int, bytes]], int]:
    """(flags, body) of the complete frames in ``data``, and where the incomplete rest starts."""
    frames = []
    pos = 0
    while pos + 2 <= len(data):
        flags = data[pos]
        if flags & FLAG_LONG:
            if pos + 9 > len(data):
                break
            size, start = int.from_bytes(data[pos + 1 : pos + 9], "big"), pos + 9
        else:
            size, start = data[pos + 1], pos + 2
        if start + size > len(data):
            break
        frames.append((flags, data[start : start + size]))
        pos = start + size
    return frames, pos


def command_bodies(data: bytes) -> list[bytes]:
    """The bodies of the complete command frames in ``data`` (after the greeting)."""
    return [body for flags, body in split_frames(data)[0] if flags & FLAG_COMMAND]


class MemoryPeak:
    """tracemalloc's peak of everything Python allocates inside the ``with`` block."""

    def __init__(self, bound: int) -> None:
        self.bound = bound
        self.peak = 0
        self._was_tracing = False
        self._base = 0

    def __enter__(self) -> MemoryPeak:
        self._was_tracing = tracemalloc.is_tracing()
        if self._was_tracing:
            self._base = tracemalloc.get_traced_memory()[0]
            tracemalloc.reset_peak()
        else:
            tracemalloc.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.peak = tracemalloc.get_traced_memory()[1] - self._base
        if not self._was_tracing:
            tracemalloc.stop()

    def problems(self) -> list[str]:
        """An empty list, or what went over the bound."""
        if self.peak <= self.bound:
            return []
        return [f"allocated up to {self.peak / 2**20:.1f} MiB, above {self.bound / 2**20} MiB"]
