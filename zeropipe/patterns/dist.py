"""Distributor: a copy of each message to every pipe that wants it (libzmq dist.cpp).

Which pipes want a message is looked up by its first frame in one index of
every subscriber's prefixes: one slice and one dict lookup per distinct prefix
length, however many subscribers there are (libzmq's mtrie serves the same
purpose). A pipe at its high-water mark simply misses the message: a
publisher never blocks on a slow subscriber (unless the caller checks
:meth:`Distributor.has_room_for` first, as XPUB_NODROP does).
"""

from __future__ import annotations

from zeropipe.patterns.trie import Lengths, Subscriptions, compacted
from zeropipe.protocol import Message
from zeropipe.protocol.frames import Buffer
from zeropipe.transports.options import Options
from zeropipe.transports.pipe import Pipe

_NONE: tuple[Pipe, ...] = ()


class Distributor:
    """Fan-out to the pipes whose subscriptions match the message's first frame."""

    def __init__(self, options: Options | None = None) -> None:
        self.options = options if options is not None else Options()
        #: Each pipe's own topics (what it subscribed to, for cancels and leaving).
        self.subscriptions: dict[Pipe, Subscriptions] = {}
        #: prefix -> the pipes subscribed to it.
        self._index: dict[bytes, tuple[Pipe, ...]] = {}
        self._index_peak = 0
        self._topic_lengths = Lengths()
        self._lengths = self._topic_lengths.sorted
        #: Copies not queued because their subscriber was at its high-water mark.
        self.dropped = 0

    # -- pipes and their subscriptions -------------------------------------------

    def attach(self, pipe: Pipe) -> None:
        self.subscriptions[pipe] = Subscriptions()

    def detach(self, pipe: Pipe) -> None:
        subs = self.subscriptions.pop(pipe, None)
        if subs is not None:
            for topic in subs:
                self._unindex(pipe, topic)

    def subscribe(self, pipe: Pipe, topic: bytes) -> bool:
        """``pipe`` wants ``topic``; True when it did not already."""
        subs = self.subscriptions.get(pipe)
        if subs is None or not subs.add(topic):
            return False
        pipes = self._index.get(topic)
        if pipes is None:
            self._index[topic] = (pipe,)
            self._topic_lengths.add(len(topic))
            self._index_peak = max(self._index_peak, len(self._index))
        else:
            self._index[topic] = (*pipes, pipe)
        return True

    def unsubscribe(self, pipe: Pipe, topic: bytes) -> bool:
        """``pipe`` no longer wants ``topic``; True when it did."""
        subs = self.subscriptions.get(pipe)
        if subs is None or not subs.remove(topic):
            return False
        self._unindex(pipe, topic)
        return True

    def _unindex(self, pipe: Pipe, topic: bytes) -> None:
        pipes = tuple(p for p in self._index.get(topic, _NONE) if p is not pipe)
        if pipes:
            self._index[topic] = pipes
        elif self._index.pop(topic, None) is not None:
            self._topic_lengths.remove(len(topic))
            self._index, self._index_peak = compacted(self._index, self._index_peak)

    # -- sending -------------------------------------------------------------------

    def match(self, topic: Buffer) -> tuple[Pipe, ...]:
        """The pipes a message whose first frame is ``topic`` goes to."""
        index = self._index
        if type(topic) is not bytes:
            topic = bytes(topic[: self._lengths[-1]]) if self._lengths else b""
        found: tuple[Pipe, ...] = _NONE
        size = len(topic)
        many = False
        for length in self._lengths:
            if length > size:
                break
            pipes = index.get(topic[:length])
            if pipes is not None:
                if found:
                    many = True
                    found = (*found, *pipes)
                else:
                    found = pipes
        if many:
            found = tuple(dict.fromkeys(found))  # a pipe with two matching prefixes: once
        if self.options.invert_matching:  # INVERT_MATCHING: those that do NOT match
            return tuple(p for p in self.subscriptions if p not in found)
        return found

    def send(self, msg: Message) -> None:
        # A tuple: a write that finds its peer gone may detach it meanwhile.
        for pipe in self.match(msg[0] if type(msg) is list else msg):  # type: ignore[arg-type]
            if not pipe.write(msg):
                self.dropped += 1  # a full subscriber misses it

    def has_room_for(self, msg: Message) -> bool:
        """True when every pipe that wants ``msg`` would take it now."""
        return all(p.has_room() for p in self.match(msg[0] if type(msg) is list else msg))  # type: ignore[arg-type]
