"""PULL: fair-queues messages from its peers (RFC 30)."""

from __future__ import annotations

from zeropipe.patterns.base import SocketCore
from zeropipe.patterns.fq import FairQueue
from zeropipe.protocol import Message, SocketType
from zeropipe.transports.options import Options
from zeropipe.transports.pipe import Pipe


class PullCore(SocketCore):
    socket_type = SocketType.PULL

    def __init__(self, options: Options) -> None:
        super().__init__(options)
        self.fq = FairQueue(on_change=self.refresh_fast_in)
        self.xrecv = self.fq.recv  # type: ignore[method-assign]  # one call less per message

    def on_attach(self, pipe: Pipe) -> None:
        self.fq.attach(pipe)

    def on_detach(self, pipe: Pipe) -> None:
        self.fq.detach(pipe)

    def xrecv(self) -> Message | None:
        return self.fq.recv()

    def xrecv_many(self, limit: int) -> list[Message]:
        return self.fq.recv_many(limit)

    def xhas_in(self) -> bool:
        return self.fq.has_in()

    def last_pipe(self) -> Pipe | None:
        pipes = self.fq.pipes
        return pipes[0] if len(pipes) == 1 else self.fq.last_pipe
