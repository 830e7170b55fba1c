"""Fair-queue: take whole messages from the pipes in turn (libzmq fq.cpp).

A pipe that went away keeps its already-received messages readable until
they are drained; only then is it forgotten.
"""

from __future__ import annotations

from collections.abc import Callable

from zeropipe.protocol import Message
from zeropipe.transports.pipe import Pipe


class FairQueue:
    """Receives from each pipe in turn."""

    def __init__(self, on_change: Callable[[list[Pipe]], None] | None = None) -> None:
        self.pipes: list[Pipe] = []
        self._next = 0
        self._on_change = on_change
        #: The pipe the last message came from (for Frame properties).
        self.last_pipe: Pipe | None = None

    def attach(self, pipe: Pipe) -> None:
        self.pipes.append(pipe)
        self._changed()

    def detach(self, pipe: Pipe) -> None:
        if pipe in self.pipes and not pipe.has_in():
            self._remove(pipe)

    def _remove(self, pipe: Pipe) -> None:
        index = self.pipes.index(pipe)
        self.pipes.remove(pipe)
        if self.last_pipe is pipe:
            self.last_pipe = None  # a closed connection's state must not outlive it
        if index < self._next:
            self._next -= 1
        self._changed()

    def _changed(self) -> None:
        if self._on_change is not None:
            self._on_change(self.pipes)

    def recv(self) -> Message | None:
        """The next message in fair order, or None."""
        pipes = self.pipes
        count = len(pipes)
        if count == 1:
            pipe = pipes[0]
            msg = pipe.read()
            if msg is not None:
                self.last_pipe = pipe
            elif not pipe.alive:
                self._remove(pipe)
            return msg
        for _ in range(count):
            index = self._next % count
            pipe = pipes[index]
            msg = pipe.read()
            if msg is not None:
                self._next = index + 1
                self.last_pipe = pipe
                return msg
            if not pipe.alive:
                self._remove(pipe)
                count -= 1
                if not count:
                    break
            else:
                self._next = index + 1
        return None

    def recv_many(self, limit: int) -> list[Message]:
        """Up to ``limit`` messages, taking whole runs from each pipe in turn."""
        out: list[Message] = []
        for _ in range(len(self.pipes)):
            msg = self.recv()
            if msg is None:
                break
            out.append(msg)
            assert self.last_pipe is not None
            out.extend(self.last_pipe.read_many(limit - len(out)))
            if len(out) >= limit:
                break
        return out

    def has_in(self) -> bool:
        return any(p.has_in() for p in self.pipes)
