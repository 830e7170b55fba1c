"""PUB: every message to every subscriber whose subscriptions match it (RFC 29).

Filtering happens here, on the publisher's side. Subscriptions arrive as
``\\x01topic``/``\\x00topic`` messages, in order with any data: ZMTP 3.0 peers
send that form, and the connection turns a 3.1 peer's SUBSCRIBE/CANCEL commands
into it. Stream pipes are absorbed as they are read; inproc subscribers flag
``input_pending``, so a send looks at the pipes only then. A PUB never blocks: a subscriber at its
high-water mark misses messages.
"""

from __future__ import annotations

from zeropipe.patterns.base import SocketCore
from zeropipe.patterns.dist import Distributor
from zeropipe.protocol import Message, SocketType
from zeropipe.protocol.frames import Buffer
from zeropipe.transports.options import Options
from zeropipe.transports.pipe import Pipe


class PubCore(SocketCore):
    socket_type = SocketType.PUB
    absorbs_input = True

    def __init__(self, options: Options) -> None:
        super().__init__(options)
        self.dist = Distributor(options)

    def on_attach(self, pipe: Pipe) -> None:
        self.dist.attach(pipe)

    def on_detach(self, pipe: Pipe) -> None:
        self.dist.detach(pipe)

    def peer_subscription(self, pipe: Pipe, topic: bytes, *, subscribe: bool) -> None:
        """A subscriber (un)subscribed ``topic``."""
        if subscribe:
            self.dist.subscribe(pipe, topic)
        else:
            self.dist.unsubscribe(pipe, topic)

    def peer_message(self, pipe: Pipe, msg: Message) -> None:
        """A subscriber sent a message that is not a subscription: PUB ignores it."""

    def absorb(self, pipe: Pipe) -> None:
        """Apply the subscription messages a subscriber sent as data."""
        msg = pipe.read()
        while msg is not None:
            self.absorb_one(pipe, msg)
            msg = pipe.read()

    def absorb_one(self, pipe: Pipe, msg: Message) -> None:
        first: Buffer = msg[0] if type(msg) is list else msg  # type: ignore[assignment]
        kind = bytes(first[:1])
        if kind == b"\x01" or kind == b"\x00":
            self.peer_subscription(pipe, bytes(first[1:]), subscribe=kind == b"\x01")
        else:
            self.peer_message(pipe, msg)

    def absorb_inproc(self) -> None:
        """Take what inproc subscribers queued, forget those that left (they flag
        ``input_pending``)."""
        self.input_pending = False
        for pipe in list(self.pipes):
            if pipe.has_in():
                self.absorb(pipe)
            if not pipe.alive and not pipe.has_in():
                self.detach(pipe)

    def xsend(self, msg: Message) -> bool:
        if self.input_pending:
            self.absorb_inproc()
        self.dist.send(msg)
        return True

    def xhas_out(self) -> bool:
        return True

    @property
    def dropped(self) -> int:
        return self.dist.dropped
