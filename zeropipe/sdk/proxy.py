"""``proxy``, ``proxy_steerable`` and ``device``: libzmq's built-in proxy, in the caller's thread.

The proxy moves whole messages from the frontend to the backend and back (in
each direction whose source can receive and whose destination can send),
copying each message to an optional capture socket. It takes up to a burst of
messages from a source per step and never blocks on a destination: what the
destination cannot take now waits in the proxy, and the source is not read
again until the destination has room (POLLOUT), as libzmq does. So a slow
consumer slows the producer down through the high-water marks and nothing is
lost where the socket types themselves block (PUSH, DEALER).

The steerable variant reads commands from a control socket (libzmq 4.3
semantics, as documented):

* ``PAUSE`` stops moving messages (they wait in the sockets' queues),
  ``RESUME`` starts again, ``TERMINATE`` makes the proxy return 0;
* ``STATISTICS`` replies with 8 frames, each a native-endian uint64: messages
  received by the frontend, bytes received by the frontend, messages sent by
  the frontend, bytes sent by the frontend, then the same four for the backend.
  As in libzmq 4.3.5, each frame of a multipart message counts as one message;
* a REP control socket gets an empty reply to every other command, unknown
  ones included (they are otherwise ignored), so it stays in step; other
  control types (PAIR, SUB...) get no reply but to STATISTICS.

libzmq 4.3.5 itself departs from this: it pauses on RESUME and not on PAUSE,
and replies to every command whatever the control socket's type; both were
fixed after 4.3.5 (commits f8b3cc81 and 058ad60b), whose behaviour this follows.
"""

from __future__ import annotations

import enum
import errno
import struct
from typing import Any

from zeropipe.errors import Again, ContextTerminated, ZMQError
from zeropipe.protocol import Message, SocketType
from zeropipe.sdk.constants import Flag, PollEvent
from zeropipe.sdk.poll import Poller
from zeropipe.sdk.socket import Socket

NOBLOCK = int(Flag.NOBLOCK)
POLLIN = int(PollEvent.POLLIN)
POLLOUT = int(PollEvent.POLLOUT)

BURST = 1000
"""Most messages taken from one source per step (libzmq's ``proxy_burst_size``)."""

_TICK_MS = 100
"""Longest wait between two checks that the sockets are still open and the context alive."""

_CANNOT_RECEIVE = frozenset({SocketType.PUB, SocketType.PUSH})
_CANNOT_SEND = frozenset({SocketType.SUB, SocketType.PULL})
_STATS = struct.Struct("=8Q")


class DeviceType(enum.IntEnum):
    """Device types of the deprecated ``device`` call, with libzmq's numbers."""

    STREAMER = 1
    FORWARDER = 2
    QUEUE = 3


STREAMER = DeviceType.STREAMER
FORWARDER = DeviceType.FORWARDER
QUEUE = DeviceType.QUEUE


class _Counter:
    """Messages (frames) and bytes one socket received and sent."""

    __slots__ = ("bytes_in", "bytes_out", "msgs_in", "msgs_out")

    def __init__(self) -> None:
        self.msgs_in = self.bytes_in = self.msgs_out = self.bytes_out = 0

    def values(self) -> tuple[int, int, int, int]:
        return self.msgs_in, self.bytes_in, self.msgs_out, self.bytes_out


def _size(msg: Message) -> tuple[int, int]:
    """(frames, bytes) of one message."""
    if type(msg) is list:
        return len(msg), sum(len(part) for part in msg)
    return 1, len(msg)


class _Flow:
    """One direction of the proxy: from ``src`` to ``dst``.

    Socket methods are called through the base class: the proxy blocks its thread even
    on sockets of ``zeropipe.asyncio``, whose methods are coroutines (as pyzmq's does).
    """

    def __init__(
        self,
        src: Socket,
        dst: Socket,
        src_count: _Counter,
        dst_count: _Counter,
        capture: Socket | None,
    ) -> None:
        self.src = src
        self.dst = dst
        self.src_count = src_count
        self.dst_count = dst_count
        self.capture = capture
        #: Received (and captured) messages the destination has not taken yet.
        self.pending: list[Message] = []
        self.sent = 0

    def step(self) -> bool:
        """Move what can be moved without blocking; True if anything moved."""
        moved = False
        if self.pending:
            moved = self._send_pending()
            if self.pending:
                return moved
        try:
            batch: list[Any] = Socket.recv_many(self.src, BURST, NOBLOCK)
        except Again:
            return moved
        count = self.src_count
        for msg in batch:
            frames, nbytes = _size(msg)
            count.msgs_in += frames
            count.bytes_in += nbytes
        if self.capture is not None:
            Socket.send_many(self.capture, batch)
        self.pending = batch
        self.sent = 0
        self._send_pending()
        return True

    def _send_pending(self) -> bool:
        """Hand the destination what it takes now, in order; True if it took any."""
        msgs = self.pending
        start = self.sent
        end = len(msgs)
        # Socket.send_many cannot say how far it got before the destination was
        # full, so this does what it does: one routing call per message, one lock.
        core = self.dst._core
        with core.lock:
            xsend = core.xsend
            i = start
            while i < end and xsend(msgs[i]):
                i += 1
        count = self.dst_count
        for msg in msgs[start:i]:
            frames, nbytes = _size(msg)
            count.msgs_out += frames
            count.bytes_out += nbytes
        if i == end:
            self.pending = []
            self.sent = 0
        else:
            self.sent = i
        return i > start

    def wanted(self) -> tuple[Socket, int]:
        """The socket and event that would let this flow move again."""
        if self.pending:
            return self.dst, POLLOUT
        return self.src, POLLIN


class _Proxy:
    def __init__(
        self,
        frontend: Socket,
        backend: Socket,
        capture: Socket | None,
        control: Socket | None,
    ) -> None:
        for name, sock in (
            ("frontend", frontend),
            ("backend", backend),
            ("capture", capture),
            ("control", control),
        ):
            if sock is not None and not isinstance(sock, Socket):
                raise TypeError(f"{name} must be a zeropipe Socket, not {type(sock).__name__}")
        self.frontend = frontend
        self.backend = backend
        self.control = control
        self.sockets = [s for s in (frontend, backend, capture, control) if s is not None]
        self.front_count = _Counter()
        self.back_count = _Counter()
        self.flows: list[_Flow] = []
        if _can_forward(frontend, backend):
            self.flows.append(_Flow(frontend, backend, self.front_count, self.back_count, capture))
        # One socket as both ends (libzmq allows it) is one flow, counted as from front to back.
        if backend is not frontend and _can_forward(backend, frontend):
            self.flows.append(_Flow(backend, frontend, self.back_count, self.front_count, capture))
        self.paused = False
        self.poller = Poller()
        self.registered: dict[Socket, int] = {}

    def run(self) -> int:
        flows = self.flows
        while True:
            self._check_alive()
            if self.control is not None and self._handle_control():
                return 0
            moved = False
            if not self.paused:
                for flow in flows:
                    if flow.step():
                        moved = True
            if not moved:
                self._wait()

    def _check_alive(self) -> None:
        for sock in self.sockets:
            if sock.closed:
                raise ZMQError(errno.ENOTSOCK, "Socket operation on a closed socket")
            if sock.context.closed:
                raise ContextTerminated()

    def _wait(self) -> None:
        wanted: dict[Socket, int] = {}
        if not self.paused:
            for flow in self.flows:
                sock, event = flow.wanted()
                wanted[sock] = wanted.get(sock, 0) | event
        if self.control is not None:
            wanted[self.control] = wanted.get(self.control, 0) | POLLIN
        if wanted != self.registered:
            for sock in self.registered:
                if sock not in wanted:
                    self.poller.unregister(sock)
            for sock, events in wanted.items():
                if self.registered.get(sock) != events:
                    self.poller.register(sock, events)
            self.registered = wanted
        self.poller.poll(_TICK_MS)

    def _handle_control(self) -> bool:
        """Obey every queued command; True on TERMINATE."""
        control = self.control
        assert control is not None
        while True:
            try:
                frames: list[bytes] = Socket.recv_multipart(control, NOBLOCK)
            except Again:
                return False
            command = frames[0]
            if command == b"STATISTICS":
                values = self.front_count.values() + self.back_count.values()
                packed = _STATS.pack(*values)
                Socket.send_multipart(control, [packed[i : i + 8] for i in range(0, 64, 8)])
                continue
            if command == b"PAUSE":
                self.paused = True
            elif command == b"RESUME":
                self.paused = False
            if control.socket_type == SocketType.REP:
                Socket.send(control, b"")
            if command == b"TERMINATE":
                return True


def _can_forward(src: Socket, dst: Socket) -> bool:
    return src.socket_type not in _CANNOT_RECEIVE and dst.socket_type not in _CANNOT_SEND


def proxy(frontend: Socket, backend: Socket, capture: Socket | None = None) -> int:
    """Move messages between ``frontend`` and ``backend`` until the context ends.

    Every message is also sent to ``capture`` if given. Raises
    ContextTerminated when the sockets' context is terminated, and ZMQError
    (ENOTSOCK) when one of the sockets is closed meanwhile.
    """
    return _Proxy(frontend, backend, capture, None).run()


def proxy_steerable(
    frontend: Socket,
    backend: Socket,
    capture: Socket | None = None,
    control: Socket | None = None,
) -> int:
    """``proxy``, steered by PAUSE, RESUME, TERMINATE and STATISTICS on ``control``.

    Returns 0 after TERMINATE; see the module documentation for the commands.
    """
    return _Proxy(frontend, backend, capture, control).run()


def device(device_type: int, frontend: Socket, backend: Socket) -> int:
    """The deprecated ``zmq.device``: ``proxy(frontend, backend)``, whatever the type."""
    return proxy(frontend, backend)


__all__ = [
    "FORWARDER",
    "QUEUE",
    "STREAMER",
    "DeviceType",
    "device",
    "proxy",
    "proxy_steerable",
]
