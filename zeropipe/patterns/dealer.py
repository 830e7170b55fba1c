"""DEALER: load-balances out and fair-queues in, with no envelope (RFC 28)."""

from __future__ import annotations

from zeropipe.patterns.base import SocketCore
from zeropipe.patterns.fq import FairQueue
from zeropipe.patterns.lb import LoadBalancer
from zeropipe.protocol import Message, SocketType
from zeropipe.transports.options import Options
from zeropipe.transports.pipe import Pipe


class DealerCore(SocketCore):
    socket_type = SocketType.DEALER

    def __init__(self, options: Options) -> None:
        super().__init__(options)
        self.lb = LoadBalancer()
        self.fq = FairQueue(on_change=self.refresh_fast_in)
        self.xsend = self.lb.send  # type: ignore[method-assign]
        self.xrecv = self.fq.recv  # type: ignore[method-assign]

    def on_attach(self, pipe: Pipe) -> None:
        self.lb.attach(pipe)
        self.fq.attach(pipe)
        if self.options.probe_router:
            pipe.write(b"")

    def on_detach(self, pipe: Pipe) -> None:
        self.lb.detach(pipe)
        self.fq.detach(pipe)

    def xrecv_many(self, limit: int) -> list[Message]:
        return self.fq.recv_many(limit)

    def xhas_in(self) -> bool:
        return self.fq.has_in()

    def xhas_out(self) -> bool:
        return self.lb.has_room()

    def last_pipe(self) -> Pipe | None:
        return self.fq.last_pipe
