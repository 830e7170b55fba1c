"""PUSH: load-balances messages over its peers; blocks when all are full (RFC 30)."""

from __future__ import annotations

from zeropipe.patterns.base import SocketCore
from zeropipe.patterns.lb import LoadBalancer
from zeropipe.protocol import Message, SocketType
from zeropipe.transports.options import Options
from zeropipe.transports.pipe import Pipe


class PushCore(SocketCore):
    socket_type = SocketType.PUSH

    def __init__(self, options: Options) -> None:
        super().__init__(options)
        self.lb = LoadBalancer()
        self.xsend = self.lb.send  # type: ignore[method-assign]  # one call less per message

    def on_attach(self, pipe: Pipe) -> None:
        self.lb.attach(pipe)
        self._route()

    def on_detach(self, pipe: Pipe) -> None:
        self.lb.detach(pipe)
        self._route()

    def _route(self) -> None:
        # With one peer, load-balancing is that peer: one call less per message.
        pipes = self.lb.pipes
        self.xsend = pipes[0].write if len(pipes) == 1 else self.lb.send  # type: ignore[method-assign]

    def xsend(self, msg: Message) -> bool:
        return self.lb.send(msg)

    def xhas_out(self) -> bool:
        return self.lb.has_room()
