"""PUB: every message to every subscriber whose subscriptions match it (RFC 29).

Filtering happens here, on the publisher's side. Subscriptions arrive as ZMTP
3.1 SUBSCRIBE/CANCEL commands, or as ``\\x01topic``/``\\x00topic`` messages from
ZMTP 3.0 peers (absorbed as they are read) and inproc subscribers (which flag
``input_pending``, so a send looks at the pipes only then). A PUB never blocks: a subscriber at its
high-water mark misses messages.
"""

from __future__ import annotations

from typing import Any

from zeropipe.patterns.base import SocketCore
from zeropipe.patterns.dist import Distributor
from zeropipe.protocol import Cancel, Message, SocketType, Subscribe
from zeropipe.transports.options import Options
from zeropipe.transports.pipe import Pipe


class PubCore(SocketCore):
    socket_type = SocketType.PUB
    absorbs_input = True

    def __init__(self, options: Options) -> None:
        super().__init__(options)
        self.dist = Distributor()

    def on_attach(self, pipe: Pipe) -> None:
        self.dist.attach(pipe)

    def on_detach(self, pipe: Pipe) -> None:
        self.dist.detach(pipe)

    def on_pipe_event(self, pipe: Pipe, event: Any) -> None:
        subs = self.dist.subscriptions.get(pipe)
        if subs is None:
            return
        if type(event) is Subscribe:
            subs.add(event.topic)
        elif type(event) is Cancel:
            subs.remove(event.topic)

    def absorb(self, pipe: Pipe) -> None:
        """Apply the subscription messages a subscriber sent as data."""
        subs = self.dist.subscriptions.get(pipe)
        msg = pipe.read()
        while msg is not None:
            body = bytes(msg[0] if type(msg) is list else msg)  # type: ignore[arg-type]
            if subs is not None and body[:1] == b"\x01":
                subs.add(body[1:])
            elif subs is not None and body[:1] == b"\x00":
                subs.remove(body[1:])
            msg = pipe.read()

    def xsend(self, msg: Message) -> bool:
        if self.input_pending:  # an inproc subscriber queued (un)subscriptions
            self.input_pending = False
            for pipe in self.pipes:
                if pipe.has_in():
                    self.absorb(pipe)
        self.dist.send(msg)
        return True

    def xhas_out(self) -> bool:
        return True

    @property
    def dropped(self) -> int:
        return self.dist.dropped
