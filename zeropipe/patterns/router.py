"""ROUTER: addresses peers by routing id (RFC 28).

Each received message is prefixed with the routing id of the peer it came
from; a message sent starts with the routing id of the peer it goes to. A
peer's id is, in order: the ``CONNECT_ROUTING_ID`` set before the ``connect``
that reached it, the ``Identity`` it announced in its handshake (its
``ROUTING_ID`` option), or 5 bytes made up here (a zero byte and a counter, as
libzmq does). A message to an unknown peer, or to one at its high-water mark,
is dropped, or with ``ROUTER_MANDATORY`` fails with EHOSTUNREACH (unknown) or
waits / EAGAIN (full). A second peer announcing an id already in use is
refused, or with ``ROUTER_HANDOVER`` takes the id over from the first one,
which is disconnected. ``PROBE_ROUTER`` sends each new peer an empty message.
"""

from __future__ import annotations

import errno
import random

from zeropipe.errors import ZMQError
from zeropipe.patterns.base import SocketCore
from zeropipe.patterns.fq import FairQueue
from zeropipe.protocol import Message, SocketType
from zeropipe.protocol.frames import Buffer
from zeropipe.transports.options import Options
from zeropipe.transports.pipe import Pipe


class RouterCore(SocketCore):
    socket_type = SocketType.ROUTER

    def __init__(self, options: Options) -> None:
        super().__init__(options)
        self.fq = FairQueue()
        self.by_id: dict[bytes, Pipe] = {}
        self.ids: dict[Pipe, bytes] = {}
        #: Ids of peers that left with messages still queued, until those are read.
        self.leaving: dict[Pipe, bytes] = {}
        self._next_id = random.getrandbits(32)

    def accept_pipe(self, pipe: Pipe) -> bool:
        routing_id = pipe.connect_id or pipe.routing_id
        if not routing_id or routing_id not in self.by_id:
            return True
        if not self.options.router_handover:
            return False
        old = self.by_id[routing_id]
        self.detach(old)
        old.close(0)
        return True

    def on_attach(self, pipe: Pipe) -> None:
        routing_id = pipe.connect_id or pipe.routing_id or self._make_id()
        self.by_id[routing_id] = pipe
        self.ids[pipe] = routing_id
        self.fq.attach(pipe)
        if self.options.probe_router:
            pipe.write(b"")

    def _make_id(self) -> bytes:
        while True:
            self._next_id = (self._next_id + 1) & 0xFFFFFFFF
            routing_id = b"\x00" + self._next_id.to_bytes(4, "big")
            if routing_id not in self.by_id:
                return routing_id

    def on_detach(self, pipe: Pipe) -> None:
        routing_id = self.ids.pop(pipe, None)
        if routing_id is not None:
            self.by_id.pop(routing_id, None)
            if pipe.has_in():
                self.leaving[pipe] = routing_id
        self.fq.detach(pipe)

    def xrecv(self) -> Message | None:
        msg = self.fq.recv()
        if msg is None:
            return None
        pipe = self.fq.last_pipe
        assert pipe is not None
        routing_id = self.ids.get(pipe)
        if routing_id is None:  # a peer that left: its last messages keep its id
            routing_id = self.leaving.get(pipe, pipe.routing_id)
            if not pipe.has_in():
                self.leaving.pop(pipe, None)
        if type(msg) is list:
            return [routing_id, *msg]
        return [routing_id, msg]  # type: ignore[list-item]

    def xrecv_many(self, limit: int) -> list[Message]:
        msgs: list[Message] = []
        xrecv = self.xrecv
        while len(msgs) < limit and (msg := xrecv()) is not None:
            msgs.append(msg)
        return msgs

    def xsend(self, msg: Message) -> bool:
        if type(msg) is not list:
            return True  # only a routing id, no body: nothing to send
        frames: list[Buffer] = msg
        pipe = self._route(frames[0])
        body = frames[1:]
        if not body:
            return True
        if pipe is None:
            if self.options.router_mandatory:
                raise ZMQError(errno.EHOSTUNREACH, "Host unreachable: no peer with that routing id")
            self.drops += 1
            return True
        if not pipe.write(body if len(body) > 1 else body[0]):
            if self.options.router_mandatory:
                if not pipe.alive:  # the write found the peer gone
                    raise ZMQError(errno.EHOSTUNREACH, "Host unreachable: the peer just left")
                return False  # full: the caller waits, or gets EAGAIN
            self.drops += 1  # a full peer misses it
        return True

    @property
    def routes_first_frame(self) -> bool:  # type: ignore[override]
        return bool(self.options.router_mandatory)

    def _route(self, routing_id: Buffer) -> Pipe | None:
        """The live pipe of a peer (an inproc peer that left is forgotten here)."""
        pipe = self.by_id.get(bytes(routing_id))
        if pipe is not None and not pipe.alive:
            self.detach(pipe)
            return None
        return pipe

    def route_ready(self, routing_id: Buffer) -> bool:
        pipe = self._route(routing_id)
        if pipe is None:
            raise ZMQError(errno.EHOSTUNREACH, "Host unreachable: no peer with that routing id")
        return pipe.has_room()

    def xhas_in(self) -> bool:
        return self.fq.has_in()

    def xhas_out(self) -> bool:
        if not self.options.router_mandatory:
            return True
        return any(pipe.has_room() for pipe in self.by_id.values())

    def last_pipe(self) -> Pipe | None:
        return self.fq.last_pipe
