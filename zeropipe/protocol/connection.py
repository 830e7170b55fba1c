"""One ZMTP 3.1 connection as a sans-I/O state machine.

Theory of operation
-------------------
The owner feeds received bytes to :meth:`Connection.receive_data` and sends
whatever :meth:`Connection.data_to_send` returns. Nothing here touches a
socket, a thread or an event loop.

States: GREETING (waiting for the peer's 64 bytes) -> HANDSHAKE (mechanism
commands) -> READY (data flows) -> CLOSED (after any protocol error).

Complete data messages are appended to :attr:`Connection.messages`: a
``bytes``-like object for a one-frame message, a ``list`` of frames for a
multipart one. Frames of a multipart message are held back until its last
frame arrives, so a message is delivered whole or not at all. Everything else
(handshake result, subscriptions, PING/PONG) comes out of :meth:`next_event`.

Large frames (at least ``LARGE_FRAME`` bytes) are received into a buffer of
their own; an owner that wants to avoid one copy asks :meth:`get_buffer` for
the unfilled part, reads into it (``recv_into``) and calls
:meth:`buffer_updated`. Sizes are checked against the protocol limit and
``max_msg_size`` before anything is allocated, and huge declared sizes are
allocated as data actually arrives, never up front.

Errors raise :class:`RemoteProtocolError`; the connection is then CLOSED and
may have queued an ERROR command for the owner to send before closing.
"""

from __future__ import annotations

import enum
import operator
import struct
from collections import deque
from collections.abc import Callable, Iterator

from zeropipe.protocol import commands as cmd
from zeropipe.protocol.commands import Metadata
from zeropipe.protocol.errors import (
    ZMTP_MECHANISM_MISMATCH,
    ZMTP_UNEXPECTED_COMMAND,
    LocalProtocolError,
    RemoteProtocolError,
)
from zeropipe.protocol.events import (
    Cancel,
    Event,
    HandshakeComplete,
    Ping,
    Pong,
    Subscribe,
    UnknownCommand,
)
from zeropipe.protocol.frames import (
    FLAG_COMMAND,
    FLAG_LONG,
    FLAG_MORE,
    MAX_FRAME_SIZE,
    Buffer,
    encode_command,
    encode_frames,
)
from zeropipe.protocol.greeting import (
    GREETING_SIZE,
    PeerGreeting,
    build_greeting,
    check_signature,
    parse_greeting,
)
from zeropipe.protocol.mechanisms import NULL_SECURITY, Mechanism, Security, create_mechanism
from zeropipe.protocol.socket_types import SocketType, compatible, socket_type_from_wire
from zeropipe.protocol.zap import ZapReply

#: Frames at least this large are received into a buffer of their own.
LARGE_FRAME = 65536
#: Declared sizes above this are allocated as the data arrives (doubling), so
#: a peer that announces a huge frame costs only what it really sends.
EAGER_ALLOC_LIMIT = 1 << 20

_unpack_size: Callable[[bytes, int], tuple[int]] = struct.Struct(">Q").unpack_from

_ROUTING_TYPES = frozenset({SocketType.REQ, SocketType.DEALER, SocketType.ROUTER})

Message = Buffer | list[Buffer]


#: Runs shorter than this are not worth the set-up of :func:`_take_run`.
_MIN_RUN = 16
_RUN_UNPACKERS: dict[tuple[int, int], Callable[[bytes], Iterator[tuple[bytes]]]] = {}
_first = operator.itemgetter(0)


def _take_run(data: bytes, pos: int, end: int, messages: deque[Message]) -> int:
    """Cut a run of equal-size, single-frame data messages at C speed.

    Streams of small messages usually repeat one header (``00 size`` or
    ``02 size64``). Stepped slices check every header byte of the whole run at
    once, and ``struct.iter_unpack`` cuts the bodies without a Python loop.
    Returns the bytes consumed (0 when there is no run of ``_MIN_RUN`` frames).
    """
    if data[pos]:
        if pos + 9 > end:
            return 0
        hlen, size = 9, _unpack_size(data, pos + 1)[0]
        if size >= LARGE_FRAME:
            return 0
    else:
        hlen, size = 2, data[pos + 1]
    step = hlen + size
    count = (end - pos) // step
    if count < _MIN_RUN:
        return 0
    header = data[pos : pos + hlen]
    count = _run_length(data, pos, step, count, header)
    if count < _MIN_RUN:
        return 0
    stop = pos + count * step
    unpack = _RUN_UNPACKERS.get((hlen, size))
    if unpack is None:
        unpack = _RUN_UNPACKERS[(hlen, size)] = struct.Struct(f"{hlen}x{size}s").iter_unpack
    messages.extend(map(_first, unpack(data[pos:stop])))
    return stop - pos


def _is_run(data: bytes, pos: int, step: int, count: int, header: bytes) -> bool:
    stop = pos + count * step
    return all(data[pos + k : stop : step] == header[k : k + 1] * count for k in range(len(header)))


def _run_length(data: bytes, pos: int, step: int, count: int, header: bytes) -> int:
    """How many frames from ``pos`` on repeat ``header`` (all, or a binary search)."""
    if _is_run(data, pos, step, count, header):
        return count
    lo, hi = 0, count - 1
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if _is_run(data, pos, step, mid, header):
            lo = mid
        else:
            hi = mid - 1
    return lo


class ConnectionState(enum.Enum):
    """Where a connection is in its life."""

    GREETING = "greeting"
    HANDSHAKE = "handshake"
    READY = "ready"
    CLOSED = "closed"


class Connection:
    """The ZMTP state machine of one connection (either side)."""

    def __init__(
        self,
        socket_type: SocketType,
        *,
        as_server: bool = False,
        routing_id: bytes = b"",
        max_msg_size: int = -1,
        mechanism: Mechanism | None = None,
        security: Security = NULL_SECURITY,
        extra_metadata: dict[str, bytes] | None = None,
        frame_size_limit: int = MAX_FRAME_SIZE,
    ) -> None:
        self.socket_type = SocketType(socket_type)
        self.frame_size_limit = min(frame_size_limit, MAX_FRAME_SIZE)
        self.as_server = as_server
        self.max_msg_size = max_msg_size
        if routing_id[:1] == b"\x00":
            raise LocalProtocolError("a routing id must not start with a zero byte")
        self.routing_id = routing_id
        meta = Metadata({"Socket-Type": self.socket_type.wire_name})
        if self.socket_type in _ROUTING_TYPES:
            meta["Identity"] = routing_id
        meta.update(extra_metadata or {})
        self.mechanism = mechanism if mechanism is not None else create_mechanism(security, meta)
        self.state = ConnectionState.GREETING
        self.peer_greeting: PeerGreeting | None = None
        self.messages: deque[Message] = deque()
        #: Deliver SUBSCRIBE/CANCEL as ``\x01topic``/``\x00topic`` messages, in order
        #: with the data (what a publisher wants), instead of as events.
        self.subscriptions_in_stream = False
        self._events: deque[Event] = deque()
        self._out: list[bytes] = []
        self._greeting = b""
        self._rest = b""
        self._parts: list[Buffer] = []
        self._parts_size = 0
        # A large frame in progress: a buffer of its own (>= EAGER_ALLOC_LIMIT, filled by
        # recv_into) or the pieces received so far (smaller ones, joined at the end).
        self._large: bytearray | list[bytes] | None = None
        self._after_large = False
        self._large_size = 0
        self._large_filled = 0
        self._large_flags = 0
        self._initiated = False
        self._zap_reported = False
        #: Frames are cut by the fast path: READY, no MAXMSGSIZE, no encryption.
        self._fast = False
        #: The mechanism, once the handshake is done, if it encrypts frames (CURVE).
        self._secure: Mechanism | None = None
        #: What encryption adds to each frame's size (MAXMSGSIZE counts the payload).
        self._overhead = 0

    # -- sending -------------------------------------------------------------

    def initiate(self) -> None:
        """Queue our greeting; call once, before anything else is sent."""
        if self._initiated:
            raise LocalProtocolError("initiate() called twice")
        self._initiated = True
        # The as-server bit names the mechanism's server role (PLAIN, CURVE), not
        # who accepted the connection: with NULL it is always 0, as in libzmq.
        self._out.append(build_greeting(self.mechanism.name, self.mechanism.as_server))

    def data_to_send(self) -> bytes:
        """Return and forget the control bytes waiting to be sent."""
        if not self._out:
            return b""
        data = b"".join(self._out)
        self._out.clear()
        return data

    @property
    def has_data_to_send(self) -> bool:
        """True when :meth:`data_to_send` would return bytes."""
        return bool(self._out)

    def send_command(self, name: bytes, data: bytes = b"") -> None:
        """Queue a command frame (READY state only)."""
        self._require_ready()
        self._queue_command(name, data)

    def _queue_command(self, name: bytes, data: bytes) -> None:
        secure = self._secure
        if secure is None:
            self._out.append(encode_command(name, data))
        else:
            body = bytes((len(name),)) + name + data
            self._out.append(b"".join(secure.seal(FLAG_COMMAND, body)))

    def send_ping(self, ttl_ds: int = 0, context: bytes = b"") -> None:
        """Queue a PING with a TTL in deciseconds."""
        self.send_command(cmd.PING, min(ttl_ds, 0xFFFF).to_bytes(2, "big") + context[:16])

    def send_message(self, frames: list[Buffer]) -> None:
        """Queue one data message through the control buffer (slow path)."""
        self._require_ready()
        chunks: list[Buffer] = []
        secure = self._secure
        if secure is None:
            encode_frames(chunks, frames)
        else:
            last = len(frames) - 1
            for i, frame in enumerate(frames):
                chunks += secure.seal(FLAG_MORE if i < last else 0, frame)
        self._out.append(b"".join(chunks))

    def _require_ready(self) -> None:
        if self.state is not ConnectionState.READY:
            raise LocalProtocolError(f"cannot send in state {self.state.value}")

    # -- receiving -----------------------------------------------------------

    def next_event(self) -> Event | None:
        """Return the next control event, or None."""
        return self._events.popleft() if self._events else None

    def receive_data(self, data: bytes) -> None:
        """Feed bytes received from the peer."""
        self._after_large = False
        try:
            if self._large is not None:
                self._receive_slow(data)
            elif self._fast:
                self._receive_ready(data)
            elif self._secure is not None:
                self._receive_sealed(data)
            else:
                self._receive_slow(data)
        except RemoteProtocolError as exc:
            self._fail(exc)
            raise

    def _fail(self, exc: RemoteProtocolError) -> None:
        if self.state is ConnectionState.HANDSHAKE and exc.error_reason:
            self._out.append(self.mechanism.error_frame(exc.error_reason))
        self.state = ConnectionState.CLOSED
        self._fast = False
        self._secure = None
        self._parts = []
        self._rest = b""
        self._large = None

    def _receive_slow(self, data: bytes) -> None:
        state = self.state
        if state is ConnectionState.CLOSED:
            raise RemoteProtocolError("data received on a closed connection")
        if state is ConnectionState.GREETING:
            data = self._receive_greeting(data)
        if self._large is not None and data:
            data = self._fill_large(data)
        if data:
            if self._fast:
                self._receive_ready(data)
            elif self._secure is not None:
                self._receive_sealed(data)
            else:
                self._receive_general(data)

    def _receive_greeting(self, data: bytes) -> bytes:
        need = GREETING_SIZE - len(self._greeting)
        self._greeting += data[:need]
        check_signature(self._greeting)
        if len(self._greeting) < GREETING_SIZE:
            return b""
        greeting = parse_greeting(self._greeting)
        if greeting.mechanism != self.mechanism.name:
            raise RemoteProtocolError(
                f"mechanism mismatch: peer uses {greeting.mechanism!r}, "
                f"we use {self.mechanism.name!r}",
                code=ZMTP_MECHANISM_MISMATCH,
            )
        if self.mechanism.as_server and greeting.as_server:
            raise RemoteProtocolError(
                f"both peers are {self.mechanism.name.decode()} servers",
                code=ZMTP_MECHANISM_MISMATCH,
            )
        self.peer_greeting = greeting
        self.state = ConnectionState.HANDSHAKE
        self._pump_mechanism()
        return data[need:]

    def _receive_ready(self, data: bytes) -> None:
        """Hot path: data frames below LARGE_FRAME are cut inline, the rest one by one."""
        if self._rest:
            data = self._rest + data
            self._rest = b""
        end = len(data)
        pos = 0
        append = self.messages.append
        parts = self._parts
        unpack_size = _unpack_size
        run_from = 0
        while pos + 2 <= end:
            flags = data[pos]
            if (flags == 0 or flags == 2) and not parts and pos >= run_from:
                taken = _take_run(data, pos, end, self.messages)
                if taken:
                    pos += taken
                    continue
                run_from = pos + 64 * (data[pos + 1] + 2)  # no run here: back off a while
            if flags < 4:
                if flags < 2:
                    start = pos + 2
                    stop = start + data[pos + 1]
                else:
                    if pos + 9 > end:
                        break
                    size = unpack_size(data, pos + 1)[0]
                    if size >= LARGE_FRAME:
                        self._parts = parts
                        new_pos = self._general_frame(data, pos, end)
                        parts = self._parts
                        if new_pos < 0:
                            break
                        pos = new_pos
                        if self._large is not None:
                            break
                        continue
                    start = pos + 9
                    stop = start + size
                if stop > end:
                    break
                body = data[start:stop]
                if flags & FLAG_MORE:
                    parts.append(body)
                elif parts:
                    parts.append(body)
                    append(parts)
                    parts = []
                else:
                    append(body)
                pos = stop
                continue
            self._parts = parts
            new_pos = self._general_frame(data, pos, end)
            parts = self._parts
            if new_pos < 0:
                break
            pos = new_pos
            if self._large is not None or self.state is not ConnectionState.READY:
                break
        self._parts = parts
        if pos < end:
            if self._large is not None:
                return
            self._rest = data[pos:]

    def _receive_sealed(self, data: bytes) -> None:
        """CURVE's path: each outer frame is a MESSAGE; those below LARGE_FRAME are cut
        and opened here, the rest go the general way."""
        if self._rest:
            data = self._rest + data
            self._rest = b""
        secure = self._secure
        assert secure is not None
        unseal = secure.unseal
        append = self.messages.append
        plain_ok = self.max_msg_size < 0
        end = len(data)
        pos = 0
        while pos + 2 <= end:
            if data[pos] & FLAG_LONG:
                if pos + 9 > end:
                    break
                size = _unpack_size(data, pos + 1)[0]
                if size >= LARGE_FRAME:
                    new_pos = self._general_frame(data, pos, end)
                    if new_pos < 0:
                        break
                    pos = new_pos
                    if self._large is not None or self.state is not ConnectionState.READY:
                        return
                    continue
                start = pos + 9
            else:
                start = pos + 2
                size = data[pos + 1]
            stop = start + size
            if stop > end:
                break
            flags, body = unseal(data[start:stop])
            pos = stop
            if not flags and plain_ok and not self._parts:
                append(body)
                continue
            self._on_opened(flags, body)
            if self.state is not ConnectionState.READY:
                return
        if pos < end:
            self._rest = data[pos:]

    def _receive_general(self, data: bytes) -> None:
        if self._rest:
            data = self._rest + data
            self._rest = b""
        end = len(data)
        pos = 0
        while pos < end:
            if self._large is not None:
                data = self._fill_large(data[pos:])
                pos, end = 0, len(data)
                continue
            new_pos = self._general_frame(data, pos, end)
            if new_pos < 0:
                self._rest = data[pos:]
                return
            pos = new_pos

    def _general_frame(self, data: bytes, pos: int, end: int) -> int:
        """Handle one frame at ``pos``; return the next position, or -1 if incomplete."""
        if pos + 2 > end:
            return -1
        flags = data[pos]
        if flags & FLAG_LONG:
            if pos + 9 > end:
                return -1
            size = _unpack_size(data, pos + 1)[0]
            start = pos + 9
        else:
            size = data[pos + 1]
            start = pos + 2
        self._check_header(flags, size)
        stop = start + size
        if stop > end:
            if size < LARGE_FRAME:
                return -1
            self._begin_large(flags, size, data[start:end])
            return end
        self._on_frame(flags, data[start:stop])
        return stop

    def _check_header(self, flags: int, size: int) -> None:
        if size > self.frame_size_limit:
            raise RemoteProtocolError(f"frame size {size} exceeds the limit of this connection")
        if flags & FLAG_COMMAND:
            if flags & FLAG_MORE:
                raise RemoteProtocolError("command frame with the MORE flag")
            if self._parts:
                raise RemoteProtocolError("command frame inside a multipart message")
            return
        if self.state is not ConnectionState.READY:
            raise RemoteProtocolError(
                "data frame before the handshake finished",
                error_reason="Unexpected data",
                code=ZMTP_UNEXPECTED_COMMAND,
            )
        limit = self.max_msg_size
        if limit >= 0 and self._parts_size + size - self._overhead > limit:
            raise RemoteProtocolError(f"message larger than MAXMSGSIZE ({limit} bytes)")

    def _begin_large(self, flags: int, size: int, head: bytes) -> None:
        self._large_size = size
        self._large_flags = flags
        self._large_filled = len(head)
        if size < EAGER_ALLOC_LIMIT:
            self._large = [head] if head else []
            return
        buf = self._large = bytearray(min(size, EAGER_ALLOC_LIMIT))
        buf[: len(head)] = head

    def want_buffer(self) -> int:
        """Bytes still missing from a large frame that has a buffer of its own (else 0).

        Such a frame (at least ``EAGER_ALLOC_LIMIT`` bytes) is best read with
        ``recv_into(get_buffer())`` followed by :meth:`buffer_updated`.
        """
        if type(self._large) is not bytearray:
            return 0
        return self._large_size - self._large_filled

    def read_hint(self) -> int:
        """How many bytes the next read should ask for; 0 means "a normal chunk".

        Inside a smaller large frame it is what the frame still lacks, so the
        body arrives as one ``bytes`` with no copy; right after a large frame it
        is the size of a long header, so the next large body can be read the
        same way instead of being copied out of a chunk.
        """
        large = self._large
        if type(large) is list:
            return self._large_size - self._large_filled
        if self._after_large and large is None and not self._rest:
            return 9
        return 0

    def get_buffer(self) -> memoryview:
        """The unfilled part of the large frame's buffer, to ``recv_into``."""
        buf = self._large
        if type(buf) is not bytearray:
            raise LocalProtocolError("no large frame with a buffer is being received")
        if self._large_filled == len(buf):
            buf.extend(bytes(min(len(buf), self._large_size - len(buf))))
        return memoryview(buf)[self._large_filled :]

    def buffer_updated(self, nbytes: int) -> None:
        """Record that ``nbytes`` were written into :meth:`get_buffer`'s view."""
        self._large_filled += nbytes
        if self._large_filled >= self._large_size:
            self._finish_large()

    def _fill_large(self, data: bytes) -> bytes:
        pieces = self._large
        if type(pieces) is list:
            need = self._large_size - self._large_filled
            piece = data if len(data) <= need else data[:need]
            pieces.append(piece)
            self._large_filled += len(piece)
            rest = data[need:] if len(data) > need else b""
            if self._large_filled >= self._large_size:
                self._finish_large()
                self._after_large = not rest
            return rest
        while data and self._large is not None:
            view = self.get_buffer()
            n = min(len(view), len(data))
            view[:n] = data[:n]
            view.release()
            data = data[n:]
            self.buffer_updated(n)
        return data

    def _finish_large(self) -> None:
        large, flags = self._large, self._large_flags
        body: Buffer | None = None
        if isinstance(large, list):
            body = large[0] if len(large) == 1 else b"".join(large)
        elif large is not None:
            body = large
        self._large = None
        self._large_size = self._large_filled = 0
        assert body is not None
        try:
            self._on_frame(flags, body)
        except RemoteProtocolError as exc:
            self._fail(exc)
            raise

    def _on_opened(self, flags: int, body: Buffer) -> None:
        """A frame that came out of a MESSAGE box: the checks of its header, then as usual."""
        if flags & FLAG_COMMAND:
            if flags & FLAG_MORE or self._parts:
                raise RemoteProtocolError("command frame with MORE or inside a multipart message")
        else:
            limit = self.max_msg_size
            if limit >= 0 and self._parts_size + len(body) > limit:
                raise RemoteProtocolError(f"message larger than MAXMSGSIZE ({limit} bytes)")
        self._on_frame(flags, body, opened=True)

    def _on_frame(self, flags: int, body: Buffer, opened: bool = False) -> None:
        if self._secure is not None and not opened:
            self._on_opened(*self._secure.unseal(body))
            return
        if flags & FLAG_COMMAND:
            self._on_command(bytes(body))
            return
        if flags & FLAG_MORE:
            self._parts.append(body)
            self._parts_size += len(body)
            return
        if self._parts:
            self._parts.append(body)
            self.messages.append(self._parts)
            self._parts = []
        else:
            self.messages.append(body)
        self._parts_size = 0

    # -- commands ------------------------------------------------------------

    def _on_command(self, body: bytes) -> None:
        if self.state is ConnectionState.HANDSHAKE and body[:5] == cmd.LIBZMQ_PLAIN_ERROR:
            name, data = cmd.ERROR, body[5:]
        else:
            name, data = cmd.split_command(body)
        if self.state is ConnectionState.HANDSHAKE:
            self.mechanism.process_command(name, data)
            self._pump_mechanism()
            return
        if name == cmd.PING:
            ttl, context = cmd.parse_ping(data)
            self._queue_command(cmd.PONG, context)
            self._events.append(Ping(ttl, context))
        elif name == cmd.PONG:
            self._events.append(Pong(data[: cmd.MAX_PING_CONTEXT]))
        elif name == cmd.SUBSCRIBE:
            if self.subscriptions_in_stream:
                self.messages.append(b"\x01" + data)
            else:
                self._events.append(Subscribe(data))
        elif name == cmd.CANCEL:
            if self.subscriptions_in_stream:
                self.messages.append(b"\x00" + data)
            else:
                self._events.append(Cancel(data))
        elif name == cmd.ERROR:
            raise RemoteProtocolError(f"peer sent ERROR: {cmd.decode_error(data)!r}")
        elif name == cmd.READY:
            raise RemoteProtocolError("READY after the handshake", code=ZMTP_UNEXPECTED_COMMAND)
        else:
            self._events.append(UnknownCommand(name))

    def _pump_mechanism(self) -> None:
        mechanism = self.mechanism
        for name, data in mechanism.next_commands():
            self._out.append(encode_command(name, data))
        if mechanism.zap_request is not None and not self._zap_reported:
            self._zap_reported = True
            self._events.append(mechanism.zap_request)
        if mechanism.done:
            self._complete_handshake()

    def zap_reply(self, reply: ZapReply | None) -> None:
        """Give the mechanism its ZAP handler's reply (None: no handler is bound).

        Raises like :meth:`receive_data` when the peer is refused; an ERROR
        to send may then be waiting in :meth:`data_to_send`.
        """
        if self.state is not ConnectionState.HANDSHAKE:
            return
        try:
            self.mechanism.zap_done(reply)
            self._pump_mechanism()
        except RemoteProtocolError as exc:
            self._fail(exc)
            raise

    def _complete_handshake(self) -> None:
        meta = self.mechanism.properties()
        assert self.peer_greeting is not None
        raw_type = meta.get_ci("Socket-Type")
        peer_type = socket_type_from_wire(raw_type) if raw_type is not None else None
        if peer_type is None or not compatible(self.socket_type, peer_type):
            raise RemoteProtocolError(
                f"peer socket type {raw_type!r} cannot talk to {self.socket_type.name}",
                error_reason="Invalid socket type",
            )
        routing_id = meta.get_ci("Identity") or b""
        if len(routing_id) > 255:
            raise RemoteProtocolError("Identity longer than 255 bytes")
        self.state = ConnectionState.READY
        if self.mechanism.encrypts:
            self._secure = self.mechanism
            self._overhead = self.mechanism.overhead
        else:
            self._fast = self.max_msg_size < 0
        self._events.append(
            HandshakeComplete(peer_type, self.peer_greeting.minor, routing_id, meta)
        )
