"""Distributor: a copy of each message to every pipe that wants it (libzmq dist.cpp).

A pipe at its high-water mark simply misses the message: a publisher never
blocks on a slow subscriber.
"""

from __future__ import annotations

from zeropipe.patterns.trie import Subscriptions
from zeropipe.protocol import Message
from zeropipe.transports.pipe import Pipe


class Distributor:
    """Fan-out to the pipes whose subscriptions match the message's first frame."""

    def __init__(self) -> None:
        self.subscriptions: dict[Pipe, Subscriptions] = {}
        #: Copies not queued because their subscriber was at its high-water mark.
        self.dropped = 0

    def attach(self, pipe: Pipe) -> None:
        self.subscriptions[pipe] = Subscriptions()

    def detach(self, pipe: Pipe) -> None:
        self.subscriptions.pop(pipe, None)

    def send(self, msg: Message) -> None:
        topic = msg[0] if type(msg) is list else msg
        # A write may find its peer gone and detach it: iterate over a snapshot.
        for pipe, subs in tuple(self.subscriptions.items()):
            if subs.matches(topic) and not pipe.write(msg):  # type: ignore[arg-type]
                self.dropped += 1  # a full subscriber misses it
