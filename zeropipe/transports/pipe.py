"""Pipes: the seam between a socket's routing and one peer.

A pipe carries whole messages (``bytes``-like for one frame, ``list`` for
multipart) in both directions and owns that peer's high-water marks, as in
libzmq's ``pipe.cpp``. Two kinds exist: :class:`InprocPipe` (two deques
shared by two sockets in one process, no framing, no copies) and the stream
pipe in :mod:`zeropipe.transports.stream` (a ZMTP connection over tcp/ipc).

All pipe methods run with the owning socket's lock held.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import TYPE_CHECKING, Any, Protocol

from zeropipe.protocol import Message, Metadata, SocketType

if TYPE_CHECKING:
    from zeropipe.transports.inproc import InprocRegistry
    from zeropipe.transports.options import Options


class PipeOwner(Protocol):
    """What a pipe needs from the socket that owns it (dependency inversion)."""

    lock: threading.Lock
    options: Options
    socket_type: SocketType
    closed: bool
    parked: bool
    absorbs_input: bool
    #: Set by inproc peers that queued input for an ``absorbs_input`` owner.
    input_pending: bool
    #: The Context's inproc names (where a ZAP handler is found), if any.
    inproc: InprocRegistry | None
    #: Set by an inproc peer that closed its end: forget dead pipes soon.
    peer_gone: bool

    def attach(self, pipe: Pipe) -> bool:
        """Offer a ready pipe; False refuses it (it will be closed)."""

    def detach(self, pipe: Pipe) -> None:
        """The pipe is gone; forget it."""

    def on_pipe_event(self, pipe: Pipe, event: Any) -> None:
        """A control event (subscription, ping...) arrived on the pipe."""

    def wake(self) -> None:
        """Wake a thread parked on this socket."""

    def absorb(self, pipe: Pipe) -> None:
        """Consume what ``pipe`` received (only when ``absorbs_input``)."""

    def pipe_ready(self, pipe: Pipe) -> None:
        """An attached (persistent) pipe finished a new handshake."""

    def event(self, kind: int, value: int, endpoint: str) -> None:
        """Report a connection event (see :mod:`zeropipe.transports.monitor`)."""


class Pipe:
    """Interface shared by every pipe."""

    owner: PipeOwner
    alive: bool = True
    #: True while the pipe has a usable connection (always, for inproc while alive).
    ready: bool = True
    peer_type: SocketType | None = None
    routing_id: bytes = b""
    #: The id a connecting ROUTER gives this peer (its CONNECT_ROUTING_ID), if any.
    connect_id: bytes = b""
    metadata: Metadata
    peer_address: str = ""
    #: True for pipes backed by a file descriptor that a waiter may poll.
    pollable: bool = False
    fd: int = -1
    #: The listener a bound stream pipe came from (unbind closes those), else None.
    listener: object = None
    #: The endpoint (bound or connected) this peer came through.
    endpoint: str = ""
    #: True when the peer connected to an endpoint this socket bound.
    bound: bool = False

    def write(self, msg: Message) -> bool:
        """Queue a whole message; False when the pipe is at its high-water mark."""
        raise NotImplementedError

    def read(self) -> Message | None:
        """Take the next whole message, or None."""
        raise NotImplementedError

    def has_in(self) -> bool:
        """True when :meth:`read` would return a message."""
        raise NotImplementedError

    def has_room(self) -> bool:
        """True when :meth:`write` would accept a message now."""
        raise NotImplementedError

    def read_many(self, limit: int) -> list[Message]:
        """Take up to ``limit`` queued messages at once."""
        raise NotImplementedError

    def flush(self) -> bool:
        """Push queued output towards the peer; True when nothing is left."""
        return True

    def discard_input(self) -> None:
        """Drop what was received and not read (the socket disconnects from this peer)."""
        raise NotImplementedError

    def close(self, linger_ms: int = 0) -> None:
        """Close this end from the owner's side."""
        raise NotImplementedError


class InprocPipe(Pipe):
    """One end of an in-process pipe pair."""

    def __init__(self, owner: PipeOwner, inbound: deque[Message], outbound: deque[Message]):
        self.owner = owner
        self.inbound = inbound
        self.outbound = outbound
        self.capacity = 0
        self.peer: InprocPipe = self
        self.metadata = Metadata()

    def write(self, msg: Message) -> bool:
        if not self.alive:
            return False
        out = self.outbound
        if self.capacity and len(out) >= self.capacity:
            return False
        out.append(msg)
        peer_owner = self.peer.owner
        if peer_owner.absorbs_input:
            peer_owner.input_pending = True
        if peer_owner.parked:
            peer_owner.wake()
        return True

    def read(self) -> Message | None:
        q = self.inbound
        if not q:
            return None
        msg = q.popleft()
        peer_owner = self.peer.owner
        if peer_owner.parked:
            peer_owner.wake()
        return msg

    def has_in(self) -> bool:
        return bool(self.inbound)

    def has_room(self) -> bool:
        return self.alive and (not self.capacity or len(self.outbound) < self.capacity)

    def discard_input(self) -> None:
        self.inbound.clear()

    def read_many(self, limit: int) -> list[Message]:
        msgs = take(self.inbound, limit)
        if msgs and self.peer.owner.parked:
            self.peer.owner.wake()
        return msgs

    #: Closed before its binder came, with messages to deliver (LINGER not 0).
    orphaned = False

    def close(self, linger_ms: int = 0) -> None:
        if not self.alive:
            return
        if self.peer_type is None and self.outbound and linger_ms != 0:
            self.orphaned = True  # the binder, when it comes, still gets them (as libzmq)
            return
        self.alive = self.ready = False
        peer = self.peer
        if peer.alive:
            peer.alive = peer.ready = False
            peer.owner.peer_gone = True
            if peer.owner.absorbs_input:
                peer.owner.input_pending = True  # a publisher reaps it (and its topics)
            peer.owner.wake()


def take(queue: deque[Message], limit: int) -> list[Message]:
    """Pop up to ``limit`` messages from the front of ``queue``."""
    if len(queue) <= limit:
        msgs = list(queue)
        queue.clear()
        return msgs
    return [queue.popleft() for _ in range(limit)]


def inproc_pair(bind_owner: PipeOwner, connect_owner: PipeOwner) -> tuple[InprocPipe, InprocPipe]:
    """Create the two ends of a pipe between two sockets of one process.

    Like libzmq, the capacity of each direction is the sender's SNDHWM plus
    the receiver's RCVHWM (0 on either side means unlimited).
    """
    # A receiver with CONFLATE keeps only the newest message: a one-slot queue.
    a_to_b: deque[Message] = deque(maxlen=1 if connect_owner.options.conflate else None)
    b_to_a: deque[Message] = deque(maxlen=1 if bind_owner.options.conflate else None)
    a = InprocPipe(bind_owner, b_to_a, a_to_b)
    b = InprocPipe(connect_owner, a_to_b, b_to_a)
    a.peer, b.peer = b, a
    if not connect_owner.options.conflate:
        a.capacity = hwm_capacity(bind_owner.options.sndhwm, connect_owner.options.rcvhwm)
    if not bind_owner.options.conflate:
        b.capacity = hwm_capacity(connect_owner.options.sndhwm, bind_owner.options.rcvhwm)
    a.peer_type, b.peer_type = connect_owner.socket_type, bind_owner.socket_type
    a.routing_id = connect_owner.options.routing_id
    b.routing_id = bind_owner.options.routing_id
    return a, b


def hwm_capacity(sndhwm: int, rcvhwm: int) -> int:
    if sndhwm <= 0 or rcvhwm <= 0:
        return 0
    return sndhwm + rcvhwm
