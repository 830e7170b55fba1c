"""Byte-exact ZMTP 3.x wire tests against a peer scripted by hand on a plain socket.

One side is a real socket (zeropipe, or libzmq through pyzmq: the ``impl`` fixture runs every
test against both, so each expectation is shown to be libzmq's own behaviour); the other side
is a ``socket.socket`` that writes and checks raw bytes. The frames the script sends and the
bytes it expects are built by the helpers below, independently of ``zeropipe.protocol``.

Where libzmq 4.3.5 and zeropipe differ, the expectation depends on ``impl``: the greeting's
padding bytes and how much of the greeting is sent before the peer's arrives (both allowed by
the RFC), and the ERROR command (libzmq closes a peer of the wrong socket type without one).
"""

from __future__ import annotations

import importlib
import select
import shutil
import socket
import struct
import tempfile
import time
from collections.abc import Iterator
from typing import Any

import pytest
from deadlines import term_with_deadline

TIMEOUT_S = 5.0
TIMEOUT_MS = 5000
MODULES = {"zeropipe": "zeropipe", "pyzmq": "zmq"}

FLAG_MORE = 0x01
FLAG_LONG = 0x02
FLAG_COMMAND = 0x04


# -- building frames by hand ---------------------------------------------------------------


def greeting(minor: int = 1, padding: bytes = bytes(8)) -> bytes:
    """A NULL-mechanism greeting for ZMTP 3.``minor``, as-server 0."""
    assert len(padding) == 8
    mechanism = b"NULL" + b"\x00" * 16
    return b"\xff" + padding + b"\x7f" + bytes([3, minor]) + mechanism + b"\x00" + b"\x00" * 31


def frame(
    body: bytes, *, more: bool = False, command: bool = False, long: bool | None = None
) -> bytes:
    """One frame; long form when the body exceeds 255 bytes unless ``long`` says otherwise."""
    flags = (FLAG_MORE if more else 0) | (FLAG_COMMAND if command else 0)
    if long is None:
        long = len(body) > 255
    if long:
        return bytes([flags | FLAG_LONG]) + struct.pack(">Q", len(body)) + body
    assert len(body) <= 255
    return bytes([flags, len(body)]) + body


def message(*parts: bytes) -> bytes:
    """The frames of one multipart message."""
    return b"".join(frame(p, more=i < len(parts) - 1) for i, p in enumerate(parts))


def command(name: bytes, data: bytes = b"") -> bytes:
    return frame(bytes([len(name)]) + name + data, command=True)


def prop(name: bytes, value: bytes) -> bytes:
    """One metadata property: 1-byte name length, name, 4-byte big-endian value length, value."""
    return bytes([len(name)]) + name + struct.pack(">I", len(value)) + value


def ready(socket_type: bytes, identity: bytes | None = None) -> bytes:
    data = prop(b"Socket-Type", socket_type)
    if identity is not None:
        data += prop(b"Identity", identity)
    return command(b"READY", data)


def parse_command(body: bytes) -> tuple[bytes, bytes]:
    """Split a command body into name and data, checking the name length."""
    assert body, "empty command frame"
    size = body[0]
    assert 0 < size <= len(body) - 1, f"bad command name length in {body!r}"
    return body[1 : 1 + size], body[1 + size :]


# -- the scripted peer ---------------------------------------------------------------------


class RawPeer:
    """A plain stream socket with exact reads; bytes read early stay buffered."""

    def __init__(self, sock: socket.socket) -> None:
        sock.settimeout(TIMEOUT_S)
        if sock.family != socket.AF_UNIX:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = sock
        self.buf = bytearray()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def send_trickle(self, data: bytes) -> None:
        """Send one byte per write, so the receiver sees the data in many tiny pieces."""
        for i in range(len(data)):
            self.sock.sendall(data[i : i + 1])

    def _fill(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"peer closed the connection; unread: {bytes(self.buf)!r}")
        self.buf += chunk

    def read_exactly(self, n: int) -> bytes:
        while len(self.buf) < n:
            self._fill()
        data = bytes(self.buf[:n])
        del self.buf[:n]
        return data

    def read_frame_bytes(self) -> bytes:
        """One whole frame, header included, exactly as it came on the wire."""
        flags = self.read_exactly(1)
        if flags[0] & FLAG_LONG:
            size_field = self.read_exactly(8)
            size = struct.unpack(">Q", size_field)[0]
        else:
            size_field = self.read_exactly(1)
            size = size_field[0]
        assert flags[0] & 0xF8 == 0, f"reserved flag bits set: {flags!r}"
        return flags + size_field + self.read_exactly(size)

    def read_frame(self) -> tuple[int, bytes]:
        """(flags, body) of the next frame."""
        raw = self.read_frame_bytes()
        return raw[0], raw[9:] if raw[0] & FLAG_LONG else raw[2:]

    def read_command(self) -> tuple[bytes, bytes]:
        flags, body = self.read_frame()
        assert flags == FLAG_COMMAND, f"expected a command frame, got flags {flags:#x}: {body!r}"
        return parse_command(body)

    def read_message(self) -> list[bytes]:
        """The frames of the next data message (commands in between are a failure)."""
        parts = []
        while True:
            flags, body = self.read_frame()
            assert not flags & FLAG_COMMAND, f"unexpected command {body!r}"
            parts.append(body)
            if not flags & FLAG_MORE:
                return parts

    def readable(self, timeout: float) -> bool:
        if self.buf:
            return True
        return bool(select.select([self.sock], [], [], timeout)[0])

    def read_until_closed(self) -> bytes:
        """Everything until the peer closes; fails if it keeps the connection open."""
        data = bytes(self.buf)
        self.buf.clear()
        while True:
            try:
                chunk = self.sock.recv(65536)
            except TimeoutError:
                pytest.fail(f"connection still open after {TIMEOUT_S} s; received {data!r}")
            except ConnectionResetError:
                return data
            if not chunk:
                return data
            data += chunk

    def handshake(
        self,
        socket_type: bytes,
        identity: bytes | None = None,
        minor: int = 1,
    ) -> tuple[bytes, bytes]:
        """Send a whole greeting and READY; return the peer's greeting and READY frame."""
        self.send(greeting(minor) + ready(socket_type, identity))
        their_greeting = self.read_exactly(64)
        return their_greeting, self.read_frame_bytes()


class Wire:
    """Owns the raw sockets and the ipc directory of one test."""

    def __init__(self) -> None:
        self._sockets: list[socket.socket] = []
        self._dir: str | None = None
        self._ipc_count = 0

    def _track(self, sock: socket.socket) -> socket.socket:
        self._sockets.append(sock)
        return sock

    def listen(self, transport: str) -> tuple[socket.socket, str]:
        """A listening raw socket and the endpoint a zmq socket connects to."""
        if transport == "tcp":
            sock = self._track(socket.create_server(("127.0.0.1", 0)))
            sock.settimeout(TIMEOUT_S)
            return sock, f"tcp://127.0.0.1:{sock.getsockname()[1]}"
        path = self.ipc_path()
        sock = self._track(socket.socket(socket.AF_UNIX, socket.SOCK_STREAM))
        sock.bind(path)
        sock.listen(4)
        sock.settimeout(TIMEOUT_S)
        return sock, f"ipc://{path}"

    def accept(self, listener: socket.socket) -> RawPeer:
        conn, _ = listener.accept()
        return RawPeer(self._track(conn))

    def connect(self, endpoint: str) -> RawPeer:
        if endpoint.startswith("tcp://"):
            host, port = endpoint[len("tcp://") :].rsplit(":", 1)
            sock = socket.create_connection((host, int(port)), timeout=TIMEOUT_S)
        else:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(TIMEOUT_S)
            sock.connect(endpoint[len("ipc://") :])
        return RawPeer(self._track(sock))

    def ipc_path(self) -> str:
        if self._dir is None:
            self._dir = tempfile.mkdtemp(prefix="zpw", dir="/tmp")
        self._ipc_count += 1
        return f"{self._dir}/{self._ipc_count}.sock"

    def close(self) -> None:
        for sock in self._sockets:
            sock.close()
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)


class Lib:
    """One context of the implementation under test and the sockets opened on it."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.mod: Any = importlib.import_module(MODULES[name])
        self.ctx = self.mod.Context()
        self.sockets: list[Any] = []

    def socket(self, kind: str, **options: Any) -> Any:
        sock = self.ctx.socket(getattr(self.mod, kind))
        self.sockets.append(sock)
        sock.setsockopt(self.mod.LINGER, 0)
        sock.setsockopt(self.mod.RCVTIMEO, TIMEOUT_MS)
        sock.setsockopt(self.mod.SNDTIMEO, TIMEOUT_MS)
        for name, value in options.items():
            sock.setsockopt(getattr(self.mod, name), value)
        return sock

    def bind(self, sock: Any, transport: str, wire: Wire) -> str:
        """Bind to a fresh endpoint and return it."""
        if transport == "tcp":
            sock.bind("tcp://127.0.0.1:*")
            endpoint = sock.last_endpoint
            return endpoint.decode() if isinstance(endpoint, bytes) else str(endpoint)
        endpoint = f"ipc://{wire.ipc_path()}"
        sock.bind(endpoint)
        return endpoint

    def close(self) -> None:
        try:
            for sock in self.sockets:
                sock.close()
        finally:
            term_with_deadline(self.ctx)

    def expected_greeting(self, routing_id: bytes = b"", minor: int = 1) -> bytes:
        """The exact greeting this implementation sends.

        The RFC leaves bytes 1-8 as padding; zeropipe zeroes them while libzmq writes
        ``len(routing_id) + 1`` there as a big-endian 64-bit number (the length field of a
        ZMTP 1.0 identity frame, for old peers).
        """
        if self.name == "pyzmq":
            return greeting(minor, padding=struct.pack(">Q", len(routing_id) + 1))
        return greeting(minor)

    @property
    def sends_whole_greeting(self) -> bool:
        """zeropipe sends all 64 bytes at once; libzmq only the 10-byte signature first."""
        return self.name == "zeropipe"


@pytest.fixture(params=sorted(MODULES))
def impl(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture
def wire() -> Iterator[Wire]:
    owner = Wire()
    yield owner
    owner.close()


@pytest.fixture
def lib(impl: str, wire: Wire) -> Iterator[Lib]:
    # Depends on ``wire`` so that raw sockets are closed after the context is terminated.
    owner = Lib(impl)
    yield owner
    owner.close()


def connected_pair(
    lib: Lib,
    wire: Wire,
    kind: str,
    peer_type: bytes,
    transport: str = "tcp",
    identity: bytes | None = None,
    minor: int = 1,
    **options: Any,
) -> tuple[Any, RawPeer, bytes]:
    """A zmq socket connected to a raw listener, handshake done; returns (socket, peer, READY)."""
    sock = lib.socket(kind, **options)
    listener, endpoint = wire.listen(transport)
    sock.connect(endpoint)
    peer = wire.accept(listener)
    _, their_ready = peer.handshake(peer_type, identity, minor)
    return sock, peer, their_ready


def bound_pair(
    lib: Lib,
    wire: Wire,
    kind: str,
    peer_type: bytes,
    transport: str = "tcp",
    identity: bytes | None = None,
    minor: int = 1,
    **options: Any,
) -> tuple[Any, RawPeer, bytes]:
    """A bound zmq socket with a raw peer connected to it, handshake done."""
    sock = lib.socket(kind, **options)
    peer = wire.connect(lib.bind(sock, transport, wire))
    _, their_ready = peer.handshake(peer_type, identity, minor)
    return sock, peer, their_ready


# -- greeting --------------------------------------------------------------------------------


def read_their_greeting(lib: Lib, peer: RawPeer, minor: int = 1) -> bytes:
    """Read the 64-byte greeting, sending ours only when the implementation waits for it."""
    if lib.sends_whole_greeting:
        their = peer.read_exactly(64)
        peer.send(greeting(minor))
        return their
    signature = peer.read_exactly(10)
    peer.send(greeting(minor))
    return signature + peer.read_exactly(54)


@pytest.mark.parametrize("transport", ["tcp", "ipc"])
def test_greeting_when_connecting(lib: Lib, wire: Wire, transport: str) -> None:
    push = lib.socket("PUSH")
    listener, endpoint = wire.listen(transport)
    push.connect(endpoint)
    peer = wire.accept(listener)
    their = read_their_greeting(lib, peer)
    assert their == lib.expected_greeting()
    assert len(their) == 64


@pytest.mark.parametrize("transport", ["tcp", "ipc"])
def test_greeting_when_accepting(lib: Lib, wire: Wire, transport: str) -> None:
    """The binder's greeting is the same: as-server is 0 for NULL (libzmq never sets it)."""
    pull = lib.socket("PULL")
    peer = wire.connect(lib.bind(pull, transport, wire))
    assert read_their_greeting(lib, peer) == lib.expected_greeting()


def test_greeting_layout(lib: Lib, wire: Wire) -> None:
    """Field by field, for a socket with a routing id (which moves libzmq's padding)."""
    dealer = lib.socket("DEALER", ROUTING_ID=b"abc")
    listener, endpoint = wire.listen("tcp")
    dealer.connect(endpoint)
    their = read_their_greeting(lib, wire.accept(listener))
    assert their[0] == 0xFF
    assert their[9] == 0x7F
    assert their[10:12] == b"\x03\x01"
    assert their[12:32] == b"NULL" + bytes(16)
    assert their[32] == 0
    assert their[33:] == bytes(31)
    assert their == lib.expected_greeting(routing_id=b"abc")


def test_peer_speaking_zmtp_3_0_is_accepted(lib: Lib, wire: Wire) -> None:
    pull = lib.socket("PULL")
    peer = wire.connect(lib.bind(pull, "tcp", wire))
    their_greeting, their_ready = peer.handshake(b"PUSH", minor=0)
    assert their_greeting[10:12] == b"\x03\x01"  # we still announce 3.1
    assert their_ready == ready(b"PULL")
    peer.send(message(b"from", b"3.0"))
    assert pull.recv_multipart() == [b"from", b"3.0"]


# -- READY -----------------------------------------------------------------------------------

SOCKET_TYPES = ["PAIR", "PUB", "SUB", "REQ", "REP", "DEALER", "ROUTER", "PULL", "PUSH"]
ROUTING_TYPES = {"REQ", "DEALER", "ROUTER"}


@pytest.mark.parametrize("routing_id", [None, b"my-id"])
@pytest.mark.parametrize("kind", SOCKET_TYPES)
def test_ready_command(lib: Lib, wire: Wire, kind: str, routing_id: bytes | None) -> None:
    """Socket-Type always; Identity (empty unless ROUTING_ID is set) only for REQ/DEALER/ROUTER."""
    options = {} if routing_id is None else {"ROUTING_ID": routing_id}
    sock = lib.socket(kind, **options)
    listener, endpoint = wire.listen("tcp")
    sock.connect(endpoint)
    peer = wire.accept(listener)
    peer.send(greeting())
    peer.read_exactly(64)
    their_ready = peer.read_frame_bytes()
    identity = (routing_id or b"") if kind in ROUTING_TYPES else None
    assert their_ready == ready(kind.encode(), identity)


def test_ready_command_layout(lib: Lib, wire: Wire) -> None:
    """The READY frame of a DEALER, decoded field by field."""
    _, _, their_ready = connected_pair(lib, wire, "DEALER", b"ROUTER")
    body = b"\x05READY" + b"\x0bSocket-Type" + b"\x00\x00\x00\x06DEALER"
    body += b"\x08Identity" + b"\x00\x00\x00\x00"
    assert their_ready == b"\x04" + bytes([len(body)]) + body


# -- framing ---------------------------------------------------------------------------------

FRAMING_CASES = [
    pytest.param([b""], b"\x00\x00", id="empty"),
    pytest.param([b"hello"], b"\x00\x05hello", id="short"),
    pytest.param([b"x" * 255], b"\x00\xff" + b"x" * 255, id="short-255"),
    pytest.param([b"y" * 256], b"\x02" + (256).to_bytes(8, "big") + b"y" * 256, id="long-256"),
    pytest.param(
        [b"a", b"", b"x" * 255, b"y" * 256, b"end"],
        b"\x01\x01a"
        + b"\x01\x00"
        + b"\x01\xff"
        + b"x" * 255
        + b"\x03"
        + (256).to_bytes(8, "big")
        + b"y" * 256
        + b"\x00\x03end",
        id="multipart",
    ),
]


@pytest.mark.parametrize(("parts", "expected"), FRAMING_CASES)
def test_frames_sent(lib: Lib, wire: Wire, parts: list[bytes], expected: bytes) -> None:
    push, peer, _ = connected_pair(lib, wire, "PUSH", b"PULL")
    push.send_multipart(parts)
    push.send(b"fence")
    assert peer.read_exactly(len(expected)) == expected
    assert peer.read_frame_bytes() == b"\x00\x05fence"


@pytest.mark.parametrize("trickle", [False, True], ids=["whole", "byte-by-byte"])
@pytest.mark.parametrize("transport", ["tcp", "ipc"])
def test_frames_received(lib: Lib, wire: Wire, transport: str, trickle: bool) -> None:
    pull, peer, _ = bound_pair(lib, wire, "PULL", b"PUSH", transport)
    stream = (
        message(b"")
        + message(b"x" * 255)
        + message(b"y" * 256)
        + message(b"a", b"", b"z" * 300, b"end")
        + frame(b"small in a long frame", long=True)
    )
    if trickle:
        peer.send_trickle(stream)
    else:
        peer.send(stream)
    assert pull.recv_multipart() == [b""]
    assert pull.recv_multipart() == [b"x" * 255]
    assert pull.recv_multipart() == [b"y" * 256]
    assert pull.recv_multipart() == [b"a", b"", b"z" * 300, b"end"]
    assert pull.recv_multipart() == [b"small in a long frame"]


def test_handshake_and_message_in_one_write(lib: Lib, wire: Wire) -> None:
    """Greeting, READY and a message pipelined in one write, before reading anything."""
    if lib.name == "pyzmq":
        pytest.skip(
            "libzmq 4.3.5 (NULL server) feeds a data frame that arrives with the READY, before "
            "its own READY is out, to the handshake and drops the connection (unexpected command)"
        )
    pull = lib.socket("PULL")
    peer = wire.connect(lib.bind(pull, "tcp", wire))
    peer.send(greeting() + ready(b"PUSH") + message(b"early", b"bird"))
    assert pull.recv_multipart() == [b"early", b"bird"]


# -- PING / PONG -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("context", "echoed"),
    [
        pytest.param(b"", b"", id="no-context"),
        pytest.param(b"ctx-0123", b"ctx-0123", id="context"),
        pytest.param(bytes(range(1, 17)), bytes(range(1, 17)), id="16-bytes"),
        pytest.param(bytes(range(1, 21)), bytes(range(1, 17)), id="truncated-to-16"),
    ],
)
def test_ping_answered_with_pong(lib: Lib, wire: Wire, context: bytes, echoed: bytes) -> None:
    _, peer, _ = bound_pair(lib, wire, "PULL", b"PUSH")
    peer.send(command(b"PING", b"\x01\x2c" + context))  # TTL 30 s
    assert peer.read_frame_bytes() == b"\x04" + bytes([5 + len(echoed)]) + b"\x04PONG" + echoed


def test_ping_answered_with_pong_exact(lib: Lib, wire: Wire) -> None:
    _, peer, _ = bound_pair(lib, wire, "PULL", b"PUSH")
    peer.send(b"\x04\x0b\x04PING\x00\x0aabcd")
    assert peer.read_exactly(11) == b"\x04\x09\x04PONGabcd"


@pytest.mark.parametrize(("ttl_ms", "ttl_field"), [(0, b"\x00\x00"), (2500, b"\x00\x19")])
def test_heartbeat_pings(lib: Lib, wire: Wire, ttl_ms: int, ttl_field: bytes) -> None:
    """With HEARTBEAT_IVL set, PINGs carry HEARTBEAT_TTL in deciseconds and no context."""
    # A long HEARTBEAT_TIMEOUT: a slow test machine must not get the raw peer dropped.
    _, peer, _ = connected_pair(
        lib,
        wire,
        "PUSH",
        b"PULL",
        HEARTBEAT_IVL=100,
        HEARTBEAT_TTL=ttl_ms,
        HEARTBEAT_TIMEOUT=TIMEOUT_MS,
    )
    assert peer.read_frame_bytes() == b"\x04\x07\x04PING" + ttl_field
    peer.send(command(b"PONG"))
    assert peer.read_frame_bytes() == command(b"PING", ttl_field)


# -- subscriptions ---------------------------------------------------------------------------


def test_sub_sends_commands_to_zmtp_3_1_publisher(lib: Lib, wire: Wire) -> None:
    sub = lib.socket("SUB")
    sub.setsockopt(lib.mod.SUBSCRIBE, b"topic")
    listener, endpoint = wire.listen("tcp")
    sub.connect(endpoint)
    peer = wire.accept(listener)
    peer.handshake(b"PUB")
    assert peer.read_frame_bytes() == b"\x04\x0f\x09SUBSCRIBEtopic"
    sub.setsockopt(lib.mod.SUBSCRIBE, b"")
    assert peer.read_frame_bytes() == b"\x04\x0a\x09SUBSCRIBE"
    sub.setsockopt(lib.mod.UNSUBSCRIBE, b"topic")
    assert peer.read_frame_bytes() == b"\x04\x0c\x06CANCELtopic"


def test_sub_sends_messages_to_zmtp_3_0_publisher(lib: Lib, wire: Wire) -> None:
    sub = lib.socket("SUB")
    sub.setsockopt(lib.mod.SUBSCRIBE, b"topic")
    listener, endpoint = wire.listen("tcp")
    sub.connect(endpoint)
    peer = wire.accept(listener)
    peer.handshake(b"PUB", minor=0)
    assert peer.read_frame_bytes() == b"\x00\x06\x01topic"
    sub.setsockopt(lib.mod.SUBSCRIBE, b"")
    assert peer.read_frame_bytes() == b"\x00\x01\x01"
    sub.setsockopt(lib.mod.UNSUBSCRIBE, b"topic")
    assert peer.read_frame_bytes() == b"\x00\x06\x00topic"


SUBSCRIPTION_FORMS = {
    # name: (peer's minor version, subscribe bytes, cancel bytes) for a topic
    "command-3.1": (1, lambda t: command(b"SUBSCRIBE", t), lambda t: command(b"CANCEL", t)),
    "message-3.0": (0, lambda t: frame(b"\x01" + t), lambda t: frame(b"\x00" + t)),
    "message-3.1": (1, lambda t: frame(b"\x01" + t), lambda t: frame(b"\x00" + t)),
}


def probe_until_received(pub: Any, peer: RawPeer, probe: bytes) -> None:
    """Publish ``probe`` until the raw subscriber receives it (its subscription took effect)."""
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:
        pub.send(probe)
        if peer.readable(0.02):
            got = peer.read_message()
            assert got == [probe], f"unexpected message while probing: {got!r}"
            return
    pytest.fail(f"subscription for {probe!r} never took effect")


def messages_until(peer: RawPeer, end: bytes, skip: bytes) -> list[bytes]:
    """Bodies of the single-frame messages before ``end``, leaving out leftover probes."""
    got = []
    while True:
        parts = peer.read_message()
        assert len(parts) == 1, parts
        if parts[0] == end:
            return got
        if parts[0] != skip:
            got.append(parts[0])


@pytest.mark.parametrize("form", sorted(SUBSCRIPTION_FORMS))
def test_pub_filters_on_raw_subscriptions(lib: Lib, wire: Wire, form: str) -> None:
    minor, subscribe, cancel = SUBSCRIPTION_FORMS[form]
    pub, peer, _ = bound_pair(lib, wire, "PUB", b"SUB", minor=minor)
    peer.send(subscribe(b"a"))
    probe_until_received(pub, peer, b"a-probe")
    for topic in (b"a1", b"b1", b"xa", b"a2", b"a-end"):
        pub.send(topic)
    assert messages_until(peer, b"a-end", skip=b"a-probe") == [b"a1", b"a2"]

    # The cancel is followed by a new subscription: once that one works, the cancel is in force.
    peer.send(cancel(b"a") + subscribe(b"z"))
    probe_until_received(pub, peer, b"z-probe")
    for topic in (b"a3", b"b3", b"z3", b"z-end"):
        pub.send(topic)
    assert messages_until(peer, b"z-end", skip=b"z-probe") == [b"z3"]


# -- envelopes -------------------------------------------------------------------------------


def test_req_sends_empty_delimiter(lib: Lib, wire: Wire) -> None:
    req, peer, their_ready = connected_pair(lib, wire, "REQ", b"REP")
    assert their_ready == ready(b"REQ", b"")
    req.send(b"hello")
    assert peer.read_exactly(9) == b"\x01\x00" + b"\x00\x05hello"
    peer.send(b"\x01\x00" + b"\x00\x05world")
    assert req.recv_multipart() == [b"world"]
    req.send_multipart([b"two", b"parts"])
    assert peer.read_message() == [b"", b"two", b"parts"]


def test_req_over_ipc(lib: Lib, wire: Wire) -> None:
    req, peer, _ = connected_pair(lib, wire, "REQ", b"ROUTER", transport="ipc")
    req.send(b"ping")
    assert peer.read_exactly(8) == b"\x01\x00\x00\x04ping"
    peer.send(message(b"", b"pong"))
    assert req.recv() == b"pong"


def test_dealer_sends_no_delimiter(lib: Lib, wire: Wire) -> None:
    dealer, peer, _ = connected_pair(lib, wire, "DEALER", b"ROUTER")
    dealer.send(b"hello")
    assert peer.read_exactly(7) == b"\x00\x05hello"
    peer.send(message(b"back"))
    assert dealer.recv_multipart() == [b"back"]


def test_router_prefixes_peer_identity(lib: Lib, wire: Wire) -> None:
    router = lib.socket("ROUTER")
    endpoint = lib.bind(router, "tcp", wire)
    named = wire.connect(endpoint)
    _, their_ready = named.handshake(b"DEALER", identity=b"peer-1")
    assert their_ready == ready(b"ROUTER", b"")
    named.send(message(b"hi"))
    assert router.recv_multipart() == [b"peer-1", b"hi"]
    router.send_multipart([b"peer-1", b"back", b"two"])
    assert named.read_exactly(11) == b"\x01\x04back\x00\x03two"

    anonymous = wire.connect(endpoint)
    anonymous.handshake(b"REQ", identity=b"")
    anonymous.send(message(b"", b"q"))
    frames = router.recv_multipart()
    assert frames[1:] == [b"", b"q"]
    generated = frames[0]
    assert len(generated) == 5, generated
    assert generated[0] == 0, generated
    router.send_multipart([generated, b"", b"a"])
    assert anonymous.read_message() == [b"", b"a"]


# -- ERROR -----------------------------------------------------------------------------------


def test_incompatible_peer_gets_error_and_is_closed(lib: Lib, wire: Wire) -> None:
    """zeropipe answers a peer of the wrong Socket-Type with ERROR, then closes.

    libzmq 4.3.5 closes without sending ERROR (``mechanism_t::check_socket_type`` only
    reports a monitor event); both then keep serving other peers.
    """
    pull = lib.socket("PULL")
    endpoint = lib.bind(pull, "tcp", wire)
    wrong = wire.connect(endpoint)
    wrong.send(greeting())
    wrong.read_exactly(64)
    assert wrong.read_frame_bytes() == ready(b"PULL")
    wrong.send(ready(b"PUB"))
    rest = wrong.read_until_closed()
    if lib.name == "pyzmq":
        assert rest == b""
    else:
        assert rest[:1] == b"\x04", f"expected one short command frame, got {rest!r}"
        assert rest[1] == len(rest) - 2, f"frame size does not match what was sent: {rest!r}"
        name, data = parse_command(rest[2:])
        assert name == b"ERROR"
        assert data, "ERROR without a reason length"
        assert data[0] == len(data) - 1, f"ERROR reason length mismatch: {data!r}"
        assert data[1:].isascii(), data

    right = wire.connect(endpoint)
    right.handshake(b"PUSH")
    right.send(message(b"still", b"works"))
    assert pull.recv_multipart() == [b"still", b"works"]
