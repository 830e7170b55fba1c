"""The pattern-neutral core of a socket: pipes, lock, parking and pumping.

A pattern (PUSH, PULL, PAIR, ...) subclasses :class:`SocketCore` and fills in
a few hooks over the shared routing parts, as libzmq's ``socket_base_t``
subclasses do: ``accept_pipe``, ``on_attach``, ``on_detach``, ``xsend``,
``xrecv``, ``xhas_in`` and ``xhas_out``.

Threading: every method here runs with ``lock`` held, by the caller's
thread or by the reactor. A thread about to sleep sets ``parked`` (and
``reader_parked`` when it waits to receive), re-checks, then polls; whoever
makes progress possible calls :meth:`wake`, which rings the bell only when
someone is parked. That is the only cross-thread signal on the hot path.
"""

from __future__ import annotations

import errno
import select
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from zeropipe.errors import ZMQError
from zeropipe.protocol import Message, SocketType
from zeropipe.protocol.frames import Buffer
from zeropipe.transports.inproc import InprocRegistry
from zeropipe.transports.options import Options
from zeropipe.transports.pipe import Pipe
from zeropipe.transports.stream import StreamPipe
from zeropipe.transports.waker import Waker

#: No peer answers faster than this (a loopback round trip takes tens of microseconds).
ANSWER_DELAY = 0.00002
POLLIN = select.POLLIN
POLLOUT = select.POLLOUT


class SocketCore:
    """State and routing of one socket, without any user-facing API."""

    socket_type: SocketType
    #: True for patterns that consume what peers send as control data (PUB).
    absorbs_input = False
    input_pending = False

    def __init__(self, options: Options) -> None:
        self.lock = threading.Lock()
        self.options = options
        self.closed = False
        self.parked = False
        self.reader_parked = False
        self.last_pump = 0.0
        self.pipes: list[Pipe] = []
        self.waker = Waker()
        #: The receive queue of the only peer, when there is exactly one stream
        #: peer: ``recv`` pops it without the lock (only this socket's user pops,
        #: other threads only append, and deque operations are atomic).
        self.fast_in: deque[Message] | None = None
        #: The Context's inproc registry (set by the socket): where ZAP handlers bind.
        self.inproc: InprocRegistry | None = None

    # -- PipeOwner -----------------------------------------------------------

    def attach(self, pipe: Pipe) -> bool:
        if self.closed or not self.accept_pipe(pipe):
            return False
        self.pipes.append(pipe)
        self.on_attach(pipe)
        return True

    def detach(self, pipe: Pipe) -> None:
        if pipe in self.pipes:
            self.pipes.remove(pipe)
            self.on_detach(pipe)

    #: Set, without the lock, by an inproc peer that closed its end of a pipe.
    peer_gone = False

    def reap_dead_pipes(self) -> None:
        """Forget inproc pipes whose peer closed and that hold nothing to read (lock held).

        A socket that serves many short-lived inproc peers (a ZAP handler: one pipe
        per request) would otherwise keep every dead pipe until it next reads.
        """
        self.peer_gone = False
        for pipe in [p for p in self.pipes if not p.alive and not p.pollable and not p.has_in()]:
            self.detach(pipe)

    def on_pipe_event(self, pipe: Pipe, event: Any) -> None:
        """Control events are ignored unless a pattern wants them."""

    def absorb(self, pipe: Pipe) -> None:
        """Consume the messages a pipe received (patterns with ``absorbs_input``)."""

    def pipe_ready(self, pipe: Pipe) -> None:
        """A persistent pipe reconnected (SUB re-sends its subscriptions)."""

    def event(self, kind: int, value: int, endpoint: str) -> None:
        monitor = self.monitor
        if monitor is not None and kind & self.monitor_mask:
            monitor(kind, value, endpoint)

    #: Called with each event whose bit is in ``monitor_mask`` (set by the SDK).
    monitor: Callable[[int, int, str], None] | None = None
    monitor_mask = 0

    def wake(self) -> None:
        if self.parked:
            self.parked = False
            self.waker.wake()

    # -- pattern hooks -------------------------------------------------------

    def accept_pipe(self, pipe: Pipe) -> bool:
        return True

    def on_attach(self, pipe: Pipe) -> None:
        raise NotImplementedError

    def on_detach(self, pipe: Pipe) -> None:
        raise NotImplementedError

    def xsend(self, msg: Message) -> bool:
        raise ZMQError(errno.ENOTSUP, f"{self.socket_type.name} sockets cannot send")

    def xrecv(self) -> Message | None:
        raise ZMQError(errno.ENOTSUP, f"{self.socket_type.name} sockets cannot receive")

    def xrecv_many(self, limit: int) -> list[Message]:
        msg = self.xrecv()
        return [] if msg is None else [msg]

    def xhas_in(self) -> bool:
        return False

    def xhas_out(self) -> bool:
        return False

    #: True when the first frame of a message must be checked as it is sent (ROUTER).
    routes_first_frame = False

    def route_ready(self, routing_id: Buffer) -> bool:
        """May a message to ``routing_id`` be sent now? (raise if it never can)"""
        return True

    def last_pipe(self) -> Pipe | None:
        """The pipe the last received message came from, if known."""
        return None

    @property
    def dropped(self) -> int:
        """Messages this socket dropped by design (a full subscriber, an unknown peer...)."""
        return self.drops

    drops = 0

    def refresh_fast_in(self, readable: list[Pipe]) -> None:
        """Point ``fast_in`` at the single stream peer's queue, or at nothing."""
        only = readable[0] if len(readable) == 1 else None
        self.fast_in = only.inq if isinstance(only, StreamPipe) else None

    # -- I/O on the caller's thread ------------------------------------------

    def idle_pipes(self) -> list[StreamPipe]:
        """Pipes the reactor should read while nobody else does."""
        return [p for p in self.pipes if isinstance(p, StreamPipe) and p.wants_read()]

    def flush_all(self) -> None:
        for pipe in self.pipes:
            if isinstance(pipe, StreamPipe) and pipe.out:
                pipe.flush()

    def pump(self, ready: set[int] | None = None) -> None:
        """Read one chunk from each stream pipe (or each ready one)."""
        self.last_pump = time.monotonic()
        for pipe in list(self.pipes):
            if (
                isinstance(pipe, StreamPipe)
                and (ready is None or pipe.fd in ready)
                and pipe.wants_read()
            ):
                pipe.read_some()

    #: When this socket last sent something its peer must answer (REQ, REP).
    sent_at = 0.0

    def recv_now(self) -> Message | None:
        """Receive without waiting: queued first, then whatever the kernel has.

        Right after a request (or a reply) went out, the answer cannot be there
        yet: the read that would fail is skipped, and the caller waits for it.
        """
        msg = self.xrecv()
        if msg is None:
            if self.peer_gone:
                self.reap_dead_pipes()
            self.flush_all()
            if time.monotonic() - self.sent_at > ANSWER_DELAY:
                self.pump()
                msg = self.xrecv()
        return msg

    def poll_fds(self, events: int) -> list[tuple[int, int]]:
        """What a parked thread should poll, besides the waker."""
        if self.peer_gone:
            self.reap_dead_pipes()
        fds = []
        for pipe in self.pipes:
            if not isinstance(pipe, StreamPipe) or not pipe.ready:
                continue
            mask = 0
            if events & POLLIN and pipe.wants_read():
                mask |= POLLIN
            if pipe.out:
                mask |= POLLOUT
            if mask:
                fds.append((pipe.fd, mask))
        return fds
