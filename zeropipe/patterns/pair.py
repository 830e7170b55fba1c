"""PAIR: one exclusive peer, both directions (RFC 31); a second peer is refused."""

from __future__ import annotations

from zeropipe.patterns.base import SocketCore
from zeropipe.protocol import Message, SocketType
from zeropipe.transports.pipe import Pipe


class PairCore(SocketCore):
    socket_type = SocketType.PAIR
    peer: Pipe | None = None

    def accept_pipe(self, pipe: Pipe) -> bool:
        return self.peer is None

    def on_attach(self, pipe: Pipe) -> None:
        self.peer = pipe
        self.refresh_fast_in([pipe])

    def on_detach(self, pipe: Pipe) -> None:
        if pipe is self.peer:
            self.peer = None
            if pipe.has_in():
                self._draining = pipe
            else:
                self.refresh_fast_in([])

    _draining: Pipe | None = None

    def xsend(self, msg: Message) -> bool:
        peer = self.peer
        return peer is not None and peer.write(msg)

    def xrecv(self) -> Message | None:
        peer = self.peer
        if peer is not None:
            return peer.read()
        draining = self._draining
        if draining is not None:
            msg = draining.read()
            if msg is None:
                self._draining = None
                self.refresh_fast_in([])
            return msg
        return None

    def xhas_in(self) -> bool:
        peer = self.peer or self._draining
        return peer is not None and peer.has_in()

    def xhas_out(self) -> bool:
        peer = self.peer
        return peer is not None and peer.has_room()

    def last_pipe(self) -> Pipe | None:
        return self.peer
