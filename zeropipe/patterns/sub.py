"""SUB: receives the messages that match its subscriptions (RFC 29).

Subscriptions are counted locally and sent to every publisher: as SUBSCRIBE /
CANCEL commands to ZMTP 3.1 peers, as ``\\x01topic``/``\\x00topic`` messages to
ZMTP 3.0 peers and inproc publishers, and again to each publisher that
(re)connects. Messages are filtered here too, since a 3.0 publisher or one
that has not seen a CANCEL yet may send more than was asked for.
"""

from __future__ import annotations

from zeropipe.patterns.base import SocketCore
from zeropipe.patterns.fq import FairQueue
from zeropipe.patterns.trie import Subscriptions
from zeropipe.protocol import Message, SocketType
from zeropipe.transports.options import Options
from zeropipe.transports.pipe import Pipe
from zeropipe.transports.stream import StreamPipe


class SubCore(SocketCore):
    socket_type = SocketType.SUB

    def __init__(self, options: Options) -> None:
        super().__init__(options)
        self.fq = FairQueue(on_change=self._pipes_changed)
        self.subscriptions = Subscriptions(counted=True)
        self._lookahead: Message | None = None
        #: The receive queue of the only pipe, when it is a stream pipe (the fast path).
        self._only: StreamPipe | None = None

    def _pipes_changed(self, pipes: list[Pipe]) -> None:
        only = pipes[0] if len(pipes) == 1 else None
        self._only = only if isinstance(only, StreamPipe) else None

    def on_attach(self, pipe: Pipe) -> None:
        self.fq.attach(pipe)
        for topic in self.subscriptions:
            send_subscription(pipe, topic, subscribe=True)

    def on_detach(self, pipe: Pipe) -> None:
        self.fq.detach(pipe)

    def pipe_ready(self, pipe: Pipe) -> None:
        for topic in self.subscriptions:
            send_subscription(pipe, topic, subscribe=True)

    def subscribe(self, topic: bytes) -> None:
        self.subscriptions.add(topic)
        for pipe in self.pipes:
            send_subscription(pipe, topic, subscribe=True)

    def unsubscribe(self, topic: bytes) -> None:
        if self.subscriptions.remove(topic):
            for pipe in self.pipes:
                send_subscription(pipe, topic, subscribe=False)

    def xrecv(self) -> Message | None:
        msg = self._lookahead
        if msg is not None:
            self._lookahead = None
            return msg
        matches = self.subscriptions.matches
        wanted = not self.options.invert_matching
        only = self._only
        if only is not None and only.inq:
            # One stream peer: filter its queue directly (no fair-queue hop per message).
            q = only.inq
            self.fq.last_pipe = only
            while q:
                msg = q.popleft()
                if matches(msg[0] if type(msg) is list else msg) is wanted:  # type: ignore[arg-type]
                    return msg
            return None
        msg = self.fq.recv()
        while msg is not None:
            if matches(msg[0] if type(msg) is list else msg) is wanted:  # type: ignore[arg-type]
                return msg
            msg = self.fq.recv()
        return None

    def xrecv_many(self, limit: int) -> list[Message]:
        out: list[Message] = []
        while len(out) < limit:
            msg = self.xrecv()
            if msg is None:
                break
            out.append(msg)
        return out

    def xhas_in(self) -> bool:
        if self._lookahead is None:
            self._lookahead = self.xrecv()
        return self._lookahead is not None

    def last_pipe(self) -> Pipe | None:
        return self.fq.last_pipe


def send_subscription(pipe: Pipe, topic: bytes, *, subscribe: bool) -> None:
    """A SUBSCRIBE/CANCEL command to a ZMTP 3.1 peer, a ``\\x01``/``\\x00`` message to others.

    A pipe without a connection now gets every subscription when it has one.
    """
    if not pipe.ready:
        return
    if isinstance(pipe, StreamPipe) and pipe.peer_minor >= 1:
        pipe.send_command(b"SUBSCRIBE" if subscribe else b"CANCEL", topic)
    else:
        pipe.write((b"\x01" if subscribe else b"\x00") + topic)
