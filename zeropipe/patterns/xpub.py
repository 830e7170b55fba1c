"""XPUB: a PUB whose user also receives the subscriptions (libzmq xpub.cpp).

Each subscription from a subscriber reaches the user as a message
``\\x01topic`` (``\\x00topic`` for a cancel), by default only when it changes
what the socket as a whole is subscribed to: the first subscriber of a topic,
the last one leaving it (a subscriber that disconnects cancels its topics).
``XPUB_VERBOSE`` passes on every subscribe, ``XPUB_VERBOSER`` every cancel too.
With ``XPUB_MANUAL`` nothing is applied by itself: the user sees everything and
subscribes the last subscriber that spoke with ``setsockopt(SUBSCRIBE, topic)``.
``XPUB_NODROP`` makes a send wait (or fail with EAGAIN) instead of dropping
when a matching subscriber is full; ``XPUB_WELCOME_MSG`` greets each new one.
Other messages a subscriber (an XSUB) sends are passed on to the user as they are.

The queue of messages for the user is bounded by RCVHWM: past it, pipes are
no longer absorbed, so their own high-water marks stop reading from peers.
"""

from __future__ import annotations

from collections import Counter, deque

from zeropipe.patterns.pub import PubCore
from zeropipe.patterns.trie import Subscriptions, compacted
from zeropipe.protocol import Message, SocketType
from zeropipe.transports.options import Options
from zeropipe.transports.pipe import Pipe


class XPubCore(PubCore):
    socket_type = SocketType.XPUB

    def __init__(self, options: Options) -> None:
        super().__init__(options)
        #: Messages for the user, each with the pipe it came from.
        self.pending: deque[tuple[Message, Pipe]] = deque()
        #: How many subscribers want each topic (to tell first and last apart).
        self.topic_pipes: Counter[bytes] = Counter()
        self._topics_peak = 0
        #: In manual mode, what each subscriber asked for (cancelled when it leaves).
        self.requested: dict[Pipe, Subscriptions] = {}
        self.last_from: Pipe | None = None

    # -- pipes -----------------------------------------------------------------

    def on_attach(self, pipe: Pipe) -> None:
        super().on_attach(pipe)
        self.requested[pipe] = Subscriptions()
        welcome = self.options.xpub_welcome_msg
        if welcome:
            pipe.write(welcome)

    def on_detach(self, pipe: Pipe) -> None:
        if pipe.has_in() and not self.closed:
            self.absorb(pipe)  # what it said before leaving still counts
        subs = self.dist.subscriptions.get(pipe)
        requested = self.requested.pop(pipe, None)
        if self.options.xpub_manual:
            leaving = list(requested or ())
        else:
            verboser = self.options.xpub_verboser
            leaving = [t for t in subs or () if self._count_down(t) or verboser]
        self.pending.extend((b"\x00" + topic, pipe) for topic in leaving)
        if self.last_from is pipe:
            self.last_from = None
        super().on_detach(pipe)
        if leaving:
            self.wake()

    def _count_down(self, topic: bytes) -> bool:
        """One subscriber fewer for ``topic``; True when it was the last."""
        left = self.topic_pipes[topic] - 1
        if left > 0:
            self.topic_pipes[topic] = left
            return False
        del self.topic_pipes[topic]
        self.topic_pipes, self._topics_peak = compacted(self.topic_pipes, self._topics_peak)
        return True

    # -- what subscribers send ---------------------------------------------------

    def peer_subscription(self, pipe: Pipe, topic: bytes, *, subscribe: bool) -> None:
        opts = self.options
        notice = (b"\x01" if subscribe else b"\x00") + topic
        if opts.xpub_manual:
            requested = self.requested.get(pipe)
            if requested is not None:
                if subscribe:
                    requested.add(topic)
                else:
                    requested.remove(topic)
            self.pending.append((notice, pipe))
            return
        if pipe not in self.dist.subscriptions:
            return
        if subscribe:
            changed = self.dist.subscribe(pipe, topic)
            first = changed and self.topic_pipes[topic] == 0
            if changed:
                self.topic_pipes[topic] += 1
                self._topics_peak = max(self._topics_peak, len(self.topic_pipes))
            if first or opts.xpub_verbose or opts.xpub_verboser:
                self.pending.append((notice, pipe))
        else:
            changed = self.dist.unsubscribe(pipe, topic)
            last = changed and self._count_down(topic)
            if last or opts.xpub_verboser:
                self.pending.append((notice, pipe))

    def peer_message(self, pipe: Pipe, msg: Message) -> None:
        self.pending.append((msg, pipe))

    def absorb(self, pipe: Pipe) -> None:
        limit = self._limit()
        pending = self.pending
        while len(pending) < limit:
            msg = pipe.read()
            if msg is None:
                return
            self.absorb_one(pipe, msg)

    def _limit(self) -> int:
        hwm = self.options.rcvhwm
        return hwm if hwm > 0 else 1 << 62

    # -- the user's side ---------------------------------------------------------

    def manual_subscription(self, topic: bytes, *, subscribe: bool) -> None:
        """``setsockopt(SUBSCRIBE/UNSUBSCRIBE)`` in manual mode: for the last subscriber heard."""
        if self.last_from is not None:
            PubCore.peer_subscription(self, self.last_from, topic, subscribe=subscribe)

    def xsend(self, msg: Message) -> bool:
        if self.input_pending:
            self.absorb_inproc()
        if self.options.xpub_nodrop and not self.dist.has_room_for(msg):
            return False
        self.dist.send(msg)
        return True

    def xhas_out(self) -> bool:
        if not self.options.xpub_nodrop:
            return True
        return all(pipe.has_room() for pipe in self.dist.subscriptions)

    def xrecv(self) -> Message | None:
        if not self.pending:
            self._refill()
            if not self.pending:
                return None
        msg, pipe = self.pending.popleft()
        self.last_from = pipe
        return msg

    def _refill(self) -> None:
        self.absorb_inproc()

    def xhas_in(self) -> bool:
        if not self.pending:
            self._refill()
        return bool(self.pending)

    def last_pipe(self) -> Pipe | None:
        return self.last_from
