"""REP: receives a request, then sends its reply to whoever asked (RFC 28).

The envelope of a request (routing ids up to and including the empty
delimiter) is kept aside and put back in front of the reply, which goes to
the pipe the request came from (dropped if that peer is gone). Receiving
twice, or sending before receiving, is EFSM.
"""

from __future__ import annotations

import time

from zeropipe.errors import EFSM, ZMQError
from zeropipe.patterns.base import SocketCore
from zeropipe.patterns.fq import FairQueue
from zeropipe.protocol import Message, SocketType
from zeropipe.protocol.frames import Buffer
from zeropipe.transports.options import Options
from zeropipe.transports.pipe import Pipe

_monotonic = time.monotonic


class RepCore(SocketCore):
    socket_type = SocketType.REP

    def __init__(self, options: Options) -> None:
        super().__init__(options)
        self.fq = FairQueue()
        self.envelope: list[Buffer] | None = None
        self.reply_to: Pipe | None = None

    def on_attach(self, pipe: Pipe) -> None:
        self.fq.attach(pipe)

    def on_detach(self, pipe: Pipe) -> None:
        self.fq.detach(pipe)

    def xrecv(self) -> Message | None:
        if self.envelope is not None:
            raise ZMQError(EFSM, "REP: send the reply to the last request first")
        msg = self.fq.recv()
        while msg is not None:
            frames: list[Buffer] = msg if type(msg) is list else [msg]  # type: ignore[list-item]
            split = next((i for i, frame in enumerate(frames) if not frame), -1)
            if split >= 0 and split + 1 < len(frames):
                self.envelope = frames[: split + 1]
                self.reply_to = self.fq.last_pipe
                body = frames[split + 1 :]
                return body if len(body) > 1 else body[0]
            msg = self.fq.recv()  # no delimiter or no body: not a request, dropped
        return None

    def xsend(self, msg: Message) -> bool:
        envelope, pipe = self.envelope, self.reply_to
        if envelope is None:
            raise ZMQError(EFSM, "REP: receive a request before sending a reply")
        self.envelope = self.reply_to = None
        body: list[Buffer] = msg if type(msg) is list else [msg]  # type: ignore[list-item]
        if pipe is not None and pipe.alive:
            pipe.write([*envelope, *body])
            self.sent_at = _monotonic()
        return True

    def xhas_in(self) -> bool:
        return self.envelope is None and self.fq.has_in()

    def xhas_out(self) -> bool:
        return self.envelope is not None

    def last_pipe(self) -> Pipe | None:
        return self.fq.last_pipe
