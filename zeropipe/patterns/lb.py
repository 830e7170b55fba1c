"""Load-balancer: round-robin whole messages over the pipes that have room (libzmq lb.cpp)."""

from __future__ import annotations

from zeropipe.protocol import Message
from zeropipe.transports.pipe import Pipe


class LoadBalancer:
    """Sends each message to the next pipe that accepts it."""

    def __init__(self) -> None:
        self.pipes: list[Pipe] = []
        self._next = 0
        #: The pipe the last message went to (REQ waits for its reply there).
        self.last: Pipe | None = None

    def attach(self, pipe: Pipe) -> None:
        self.pipes.append(pipe)

    def detach(self, pipe: Pipe) -> None:
        if pipe in self.pipes:
            index = self.pipes.index(pipe)
            self.pipes.remove(pipe)
            if index < self._next:
                self._next -= 1

    def send(self, msg: Message) -> bool:
        """Queue ``msg`` on one pipe; False when every pipe is full (or none exists)."""
        pipes = self.pipes
        for _ in range(len(pipes)):
            if not pipes:
                return False
            index = self._next % len(pipes)
            pipe = pipes[index]
            if pipe.write(msg):
                self._next = index + 1
                self.last = pipe
                return True
            if index < len(pipes) and pipes[index] is pipe:
                self._next = index + 1  # full: try the next one (a dead one was removed)
        return False

    def has_room(self) -> bool:
        """True when some pipe would accept a message now."""
        return any(p.has_room() for p in self.pipes)
