"""REQ: one request at a time, one reply from the peer that got it (RFC 28).

Each request goes out as ``[b"", *body]`` to the next peer in turn; the socket
then accepts only that peer's reply, strips the empty delimiter, and drops
anything else. Sending twice, or receiving before sending, is EFSM.

``REQ_RELAXED`` lets a new request go out while the last one is unanswered
(its reply, if it comes, is then ignored); ``REQ_CORRELATE`` puts a request
id frame in front of the delimiter (4 bytes, the machine's byte order, as
libzmq does) and accepts only a reply that carries the same id back.
"""

from __future__ import annotations

import random
import sys
import time

from zeropipe.errors import EFSM, ZMQError
from zeropipe.patterns.base import SocketCore
from zeropipe.patterns.lb import LoadBalancer
from zeropipe.protocol import Message, SocketType
from zeropipe.protocol.frames import Buffer
from zeropipe.transports.options import Options
from zeropipe.transports.pipe import Pipe

_monotonic = time.monotonic


class ReqCore(SocketCore):
    socket_type = SocketType.REQ

    def __init__(self, options: Options) -> None:
        super().__init__(options)
        self.lb = LoadBalancer()
        self.waiting: Pipe | None = None
        self.expecting_reply = False
        self.request_id = random.getrandbits(32)
        self.request_tag = b""

    def on_attach(self, pipe: Pipe) -> None:
        self.lb.attach(pipe)
        if self.options.probe_router:
            pipe.write(b"")

    def on_detach(self, pipe: Pipe) -> None:
        self.lb.detach(pipe)

    def xsend(self, msg: Message) -> bool:
        opts = self.options
        if self.expecting_reply and not opts.req_relaxed:
            raise ZMQError(EFSM, "REQ: a request is pending; receive its reply first")
        body: list[Buffer] = msg if type(msg) is list else [msg]  # type: ignore[list-item]
        if opts.req_correlate:
            tag = ((self.request_id + 1) & 0xFFFFFFFF).to_bytes(4, sys.byteorder)
            frames = [tag, b"", *body]
        else:
            tag = b""
            frames = [b"", *body]
        if not self.lb.send(frames):
            return False
        if tag:
            self.request_id = (self.request_id + 1) & 0xFFFFFFFF
        self.request_tag = tag
        self.waiting = self.lb.last
        self.expecting_reply = True
        self.sent_at = _monotonic()
        return True

    def xrecv(self) -> Message | None:
        if not self.expecting_reply:
            raise ZMQError(EFSM, "REQ: send a request before receiving")
        self._drop_strays()
        pipe = self.waiting
        if pipe is None:
            return None
        msg = pipe.read()
        while msg is not None:
            body = self._reply_body(msg)
            if body is not None:
                self.expecting_reply = False
                self.waiting = None
                return body if len(body) > 1 else body[0]
            msg = pipe.read()  # malformed, or the reply to an older request: dropped
        return None

    def _reply_body(self, msg: Message) -> list[Buffer] | None:
        """The reply's body, if ``msg`` is a well-formed reply to the current request."""
        if type(msg) is not list:
            return None
        frames: list[Buffer] = msg
        skip = 0
        tag = self.request_tag
        if tag:
            if len(frames) < 3 or bytes(frames[0]) != tag:
                return None
            skip = 1
        if len(frames) <= skip + 1 or len(frames[skip]):
            return None
        return frames[skip + 1 :]

    def _drop_strays(self) -> None:
        for pipe in self.lb.pipes:
            if pipe is not self.waiting:
                while pipe.read() is not None:
                    pass

    def xhas_in(self) -> bool:
        pipe = self.waiting
        return self.expecting_reply and pipe is not None and pipe.has_in()

    def xhas_out(self) -> bool:
        relaxed = self.options.req_relaxed
        return (bool(relaxed) or not self.expecting_reply) and self.lb.has_room()

    def last_pipe(self) -> Pipe | None:
        return self.waiting
