"""XSUB: a SUB whose user sends the subscriptions as messages (libzmq xsub.cpp).

A message ``\\x01topic`` subscribes and ``\\x00topic`` cancels (each goes to
every publisher, in the form that publisher understands, and again to any
that reconnects); a cancel goes out only when the last subscription to the
topic is cancelled. Any other message goes upstream to every publisher.
Unlike SUB, XSUB does not filter what it receives: a forwarding device
passes on what the publishers chose to send.
"""

from __future__ import annotations

from zeropipe.patterns.sub import SubCore, send_subscription
from zeropipe.protocol import Message, SocketType
from zeropipe.protocol.frames import Buffer


class XSubCore(SubCore):
    socket_type = SocketType.XSUB

    def xsend(self, msg: Message) -> bool:
        first: Buffer = msg[0] if type(msg) is list else msg  # type: ignore[assignment]
        kind = bytes(first[:1])
        if kind == b"\x01":
            topic = bytes(first[1:])
            self.subscriptions.add(topic)
            for pipe in self.pipes:
                send_subscription(pipe, topic, subscribe=True)
        elif kind == b"\x00":
            topic = bytes(first[1:])
            if self.subscriptions.remove(topic):
                for pipe in self.pipes:
                    send_subscription(pipe, topic, subscribe=False)
        else:
            for pipe in list(self.pipes):
                pipe.write(msg)  # a full publisher misses it
        return True

    def xhas_out(self) -> bool:
        return True

    def xrecv(self) -> Message | None:
        msg = self._lookahead
        if msg is not None:
            self._lookahead = None
            return msg
        return self.fq.recv()
