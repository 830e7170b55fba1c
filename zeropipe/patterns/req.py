"""REQ: one request at a time, one reply from the peer that got it (RFC 28).

Each request goes out as ``[b"", *body]`` to the next peer in turn; the socket
then accepts only that peer's reply, strips the empty delimiter, and drops
anything else. Sending twice, or receiving before sending, is EFSM.
"""

from __future__ import annotations

from zeropipe.errors import EFSM, ZMQError
from zeropipe.patterns.base import SocketCore
from zeropipe.patterns.lb import LoadBalancer
from zeropipe.protocol import Message, SocketType
from zeropipe.protocol.frames import Buffer
from zeropipe.transports.options import Options
from zeropipe.transports.pipe import Pipe


class ReqCore(SocketCore):
    socket_type = SocketType.REQ

    def __init__(self, options: Options) -> None:
        super().__init__(options)
        self.lb = LoadBalancer()
        self.waiting: Pipe | None = None
        self.expecting_reply = False

    def on_attach(self, pipe: Pipe) -> None:
        self.lb.attach(pipe)

    def on_detach(self, pipe: Pipe) -> None:
        self.lb.detach(pipe)

    def xsend(self, msg: Message) -> bool:
        if self.expecting_reply:
            raise ZMQError(EFSM, "REQ: a request is pending; receive its reply first")
        frames: list[Buffer] = [b"", *msg] if type(msg) is list else [b"", msg]  # type: ignore[list-item]
        if not self.lb.send(frames):
            return False
        self.waiting = self.lb.last
        self.expecting_reply = True
        return True

    def xrecv(self) -> Message | None:
        if not self.expecting_reply:
            raise ZMQError(EFSM, "REQ: send a request before receiving")
        self._drop_strays()
        pipe = self.waiting
        msg = pipe.read() if pipe is not None else None
        while msg is not None:
            if type(msg) is list and len(msg) > 1 and not msg[0]:
                self.expecting_reply = False
                self.waiting = None
                body = msg[1:]
                return body if len(body) > 1 else body[0]
            msg = pipe.read() if pipe is not None else None  # malformed: dropped
        return None

    def _drop_strays(self) -> None:
        for pipe in self.lb.pipes:
            if pipe is not self.waiting:
                while pipe.read() is not None:
                    pass

    def xhas_in(self) -> bool:
        pipe = self.waiting
        return self.expecting_reply and pipe is not None and pipe.has_in()

    def xhas_out(self) -> bool:
        return not self.expecting_reply and self.lb.has_room()

    def last_pipe(self) -> Pipe | None:
        return self.waiting
