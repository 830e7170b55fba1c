"""Socket monitor events, and zeropipe's connection-state view (peers, endpoints, wait_for_peers).

The monitor tests run on both implementations (the ``kit`` fixture: zeropipe, and pyzmq over
libzmq 4.3.5), so every expected sequence below is proven against libzmq itself. Where libzmq
is deterministic the ORDERED list of event kinds is compared; values are checked for their
meaning: descriptors are ints >= 0 (the same one from ACCEPTED/CONNECTED to DISCONNECTED, from
LISTENING to CLOSED), errors are errno values, CONNECT_RETRIED carries the reconnect delay
(libzmq adds a random jitter below RECONNECT_IVL, zeropipe does not), and endpoints equal
``last_endpoint`` or the connect string.

The connection-state view is a zeropipe extension, so those tests use zeropipe alone (with
libzmq peers where a transport allows it).
"""

from __future__ import annotations

import asyncio
import errno
import importlib
import socket
import struct
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any, NamedTuple, TypeVar

import pytest
import zmq as pyzmq
from deadlines import term_with_deadline
from netutil import IMPLEMENTATIONS, Endpoints, ScratchDir, endpoint_str
from zmq.utils.monitor import parse_monitor_message as pyzmq_parse

import zeropipe as zp
from zeropipe.sdk.monitor import Peer
from zeropipe.utils.monitor import parse_monitor_message as zp_parse

T = TypeVar("T")

TIMEOUT_MS = 5000
"""RCVTIMEO/SNDTIMEO of every socket: a missing event or message fails instead of hanging."""
WAIT_S = 5.0
"""Upper bound for anything awaited outside a socket (threads, state polls, raw sockets)."""
QUIET_MS = 200
"""How long a monitor is watched when no event may arrive."""
RECONNECT_IVL = 50

# ZMTP pieces for the raw clients (ZMTP 3.0 greeting, NULL mechanism unless told).
SIGNATURE = b"\xff" + b"\x00" * 7 + b"\x01\x7f"
UNEXPECTED_COMMAND = b"\x04\x05\x04JUNK"  # a short command frame named "JUNK", no body
HTTP_REQUEST = b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"


def greeting(mechanism: bytes = b"NULL") -> bytes:
    return SIGNATURE + b"\x03\x00" + mechanism.ljust(20, b"\x00") + b"\x00" + b"\x00" * 31


def kind_name(kind: int) -> str:
    """The name libzmq (through pyzmq) gives an event number."""
    return pyzmq.Event(kind).name or hex(kind)


def eventually(probe: Callable[[], T], ok: Callable[[T], bool], what: str) -> T:
    """Poll ``probe`` until ``ok``; fail after WAIT_S (for state that has no event to await)."""
    deadline = time.monotonic() + WAIT_S
    while True:
        value = probe()
        if ok(value):
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: still {value!r} after {WAIT_S} s")
        time.sleep(0.01)


class Ev(NamedTuple):
    kind: str
    value: int
    endpoint: str


class Scratch(ScratchDir):
    """Endpoints for one test: ipc files in a short private directory (AF_UNIX paths are short)."""

    def __init__(self) -> None:
        super().__init__("zpmon")

    def bind_endpoint(self, transport: str) -> str:
        return Endpoints(transport, self, "monitor-test").to_bind()

    def fresh(self, transport: str) -> str:
        """A concrete endpoint nobody is bound to."""
        return Endpoints(transport, self, "monitor-test").fresh()


@pytest.fixture
def scratch() -> Iterator[Scratch]:
    directory = Scratch()
    yield directory
    directory.remove()


class Kit:
    """One implementation: its module, one context, every socket of the test."""

    def __init__(self, name: str, asynchronous: bool = False) -> None:
        self.name = name
        self.module: ModuleType = importlib.import_module(IMPLEMENTATIONS[name])
        self.parse: Callable[[list[bytes]], Any] = importlib.import_module(
            IMPLEMENTATIONS[name] + ".utils.monitor"
        ).parse_monitor_message
        if asynchronous:
            self.ctx = importlib.import_module(IMPLEMENTATIONS[name] + ".asyncio").Context()
        else:
            self.ctx = self.module.Context()
        self.sockets: list[Any] = []

    def adopt(self, sock: Any) -> Any:
        self.sockets.append(sock)
        sock.setsockopt(self.module.LINGER, 0)
        sock.setsockopt(self.module.RCVTIMEO, TIMEOUT_MS)
        sock.setsockopt(self.module.SNDTIMEO, TIMEOUT_MS)
        return sock

    def socket(self, kind: str, routing_id: bytes | None = None) -> Any:
        sock = self.adopt(self.ctx.socket(getattr(self.module, kind)))
        sock.setsockopt(self.module.RECONNECT_IVL, RECONNECT_IVL)
        if routing_id is not None:
            sock.setsockopt(self.module.ROUTING_ID, routing_id)
        return sock

    def monitor(self, sock: Any, events: int | None = None) -> Events:
        return Events(self, self.adopt(sock.get_monitor_socket(events)))

    def bind(self, sock: Any, endpoint: str) -> str:
        sock.bind(endpoint)
        return endpoint_str(sock.last_endpoint)

    def close(self) -> None:
        for sock in self.sockets:
            sock.close()
        term_with_deadline(self.ctx)


@pytest.fixture(params=list(IMPLEMENTATIONS))
def kit(request: pytest.FixtureRequest, scratch: Scratch) -> Iterator[Kit]:
    """Both implementations in turn (depends on ``scratch`` so ipc files outlive the sockets)."""
    owner = Kit(request.param)
    yield owner
    owner.close()


@pytest.fixture
def zkit(scratch: Scratch) -> Iterator[Kit]:
    owner = Kit("zeropipe")
    yield owner
    owner.close()


@pytest.fixture
def pkit(scratch: Scratch) -> Iterator[Kit]:
    owner = Kit("pyzmq")
    yield owner
    owner.close()


class Events:
    """Reads one monitor socket, keeping what it saw for failure messages."""

    def __init__(self, kit: Kit, sock: Any) -> None:
        self.kit = kit
        self.sock = sock
        self.seen: list[Ev] = []

    def next(self) -> Ev:
        try:
            frames = self.sock.recv_multipart()
        except self.kit.module.Again:
            pytest.fail(f"no monitor event within {TIMEOUT_MS} ms; seen so far: {self.seen}")
        parsed = self.kit.parse(frames)
        event = Ev(
            kind_name(int(parsed["event"])), int(parsed["value"]), endpoint_str(parsed["endpoint"])
        )
        self.seen.append(event)
        return event

    def take(self, *kinds: str) -> list[Ev]:
        """The next events, which must be ``kinds`` in this order."""
        got = [self.next() for _ in kinds]
        assert [e.kind for e in got] == list(kinds), f"events: {got}"
        return got

    def until(self, kind: str, allowed: set[str]) -> tuple[list[Ev], Ev]:
        """Read up to the first ``kind``; every event before it must be in ``allowed``."""
        before: list[Ev] = []
        while True:
            event = self.next()
            if event.kind == kind:
                return before, event
            assert event.kind in allowed, f"unexpected {event} before {kind}; events: {before}"
            before.append(event)

    def assert_quiet(self) -> None:
        if self.sock.poll(QUIET_MS):
            pytest.fail(f"unexpected monitor event: {self.next()}")


def assert_fd(event: Ev) -> None:
    assert isinstance(event.value, int), event
    assert event.value >= 0, event


def assert_retry_delay(event: Ev) -> None:
    # libzmq waits RECONNECT_IVL plus a random jitter below RECONNECT_IVL; zeropipe adds none.
    assert event.kind == "CONNECT_RETRIED", event
    assert RECONNECT_IVL <= event.value < 2 * RECONNECT_IVL, event


def address_part(endpoint: str) -> str:
    return endpoint.split("://", 1)[1]


# -- raw (non-ZMTP) clients ---------------------------------------------------------------------


def raw_connect(endpoint: str) -> socket.socket:
    transport, address = endpoint.split("://", 1)
    if transport == "tcp":
        host, port = address.rsplit(":", 1)
        conn = socket.create_connection((host, int(port)), timeout=WAIT_S)
    else:
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        conn.settimeout(WAIT_S)
        conn.connect(address)
    return conn


def read_to_eof(conn: socket.socket) -> bytes:
    """Everything the server sends until it closes (a reset counts as closing)."""
    data = b""
    while True:
        try:
            chunk = conn.recv(4096)
        except ConnectionResetError:
            return data
        if not chunk:
            return data
        data += chunk


def raw_listener(endpoint: str) -> tuple[socket.socket, str]:
    """A plain listening socket that will never speak ZMTP; returns it and its endpoint."""
    transport, address = endpoint.split("://", 1)
    if transport == "tcp":
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.bind(("127.0.0.1", 0))
        endpoint = f"tcp://127.0.0.1:{listener.getsockname()[1]}"
    else:
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(address)
    listener.listen(4)
    listener.settimeout(WAIT_S)
    return listener, endpoint


# -- the numbers and the wire format ------------------------------------------------------------


def test_event_numbers_are_libzmqs() -> None:
    names = [n for n in dir(pyzmq) if n.startswith("EVENT_")]
    assert names
    for name in names:
        if name in ("EVENT_PIPES_STATS", "EVENT_ALL_V1", "EVENT_ALL_V2"):
            continue  # zmq_socket_monitor_versioned (libzmq draft API) only
        assert int(getattr(zp, name)) == int(getattr(pyzmq, name)), name


# -- bind, unbind, close ------------------------------------------------------------------------


@pytest.mark.parametrize("transport", ["tcp", "ipc"])
def test_bind_then_close(kit: Kit, scratch: Scratch, transport: str) -> None:
    """bind -> LISTENING (fd, last_endpoint); close -> CLOSED (same fd) then MONITOR_STOPPED."""
    sock = kit.socket("PULL")
    events = kit.monitor(sock)
    endpoint = kit.bind(sock, scratch.bind_endpoint(transport))
    (listening,) = events.take("LISTENING")
    assert_fd(listening)
    assert listening.endpoint == endpoint
    sock.close()
    closed, stopped = events.take("CLOSED", "MONITOR_STOPPED")
    assert closed == Ev("CLOSED", listening.value, endpoint)
    assert stopped == Ev("MONITOR_STOPPED", 0, "")


@pytest.mark.parametrize("transport", ["tcp", "ipc"])
def test_unbind_reports_closed(kit: Kit, scratch: Scratch, transport: str) -> None:
    sock = kit.socket("PULL")
    events = kit.monitor(sock)
    endpoint = kit.bind(sock, scratch.bind_endpoint(transport))
    (listening,) = events.take("LISTENING")
    sock.unbind(endpoint)
    (closed,) = events.take("CLOSED")
    assert closed == Ev("CLOSED", listening.value, endpoint)
    # the listener is gone already: closing the socket reports nothing more about it
    sock.close()
    events.take("MONITOR_STOPPED")


@pytest.mark.parametrize("transport", ["tcp", "ipc"])
def test_bind_failure_reports_bind_failed(kit: Kit, scratch: Scratch, transport: str) -> None:
    """tcp: an address in use -> EADDRINUSE; ipc: a path in a missing directory -> ENOENT.

    (An ipc path in use is no failure: libzmq, and zeropipe, take the path over.)
    libzmq first reports CLOSED for the descriptor it opened, and names the endpoint
    without its scheme; zeropipe reports BIND_FAILED alone, with the full endpoint.
    """
    sock = kit.socket("PULL")
    if transport == "tcp":
        holder = kit.socket("PULL")
        target = kit.bind(holder, scratch.bind_endpoint("tcp"))
        code = errno.EADDRINUSE
    else:
        target = f"ipc://{scratch.path}/missing/dir.sock"
        code = errno.ENOENT
    events = kit.monitor(sock)
    with pytest.raises(kit.module.ZMQError) as failure:
        sock.bind(target)
    assert failure.value.errno == code
    _, failed = events.until("BIND_FAILED", allowed={"CLOSED"})
    assert failed.value == code
    assert failed.endpoint.endswith(address_part(target)), failed
    # the socket is still usable: a good bind works and is reported
    endpoint = kit.bind(sock, scratch.bind_endpoint(transport))
    (listening,) = events.take("LISTENING")
    assert listening.endpoint == endpoint


# -- connecting ---------------------------------------------------------------------------------


@pytest.mark.parametrize("transport", ["tcp", "ipc"])
def test_connect_retry_then_peer_binds_then_leaves(
    kit: Kit, scratch: Scratch, transport: str
) -> None:
    """Nobody listening -> [CONNECT_DELAYED (tcp only)], CLOSED, CONNECT_RETRIED, again and again;
    the peer binds -> CONNECTED, HANDSHAKE_SUCCEEDED; the peer leaves -> DISCONNECTED,
    CONNECT_RETRIED."""
    endpoint = scratch.fresh(transport)
    push = kit.socket("PUSH")
    events = kit.monitor(push)
    push.connect(endpoint)

    if transport == "tcp":
        delayed, closed, retried = events.take("CONNECT_DELAYED", "CLOSED", "CONNECT_RETRIED")
        assert delayed.value == errno.EINPROGRESS
    else:  # a unix socket connect fails at once
        closed, retried = events.take("CLOSED", "CONNECT_RETRIED")
    assert_fd(closed)
    assert_retry_delay(retried)
    assert {e.endpoint for e in events.seen} == {endpoint}

    pull = kit.socket("PULL")
    kit.bind(pull, endpoint)
    retrying, connected = events.until(
        "CONNECTED", allowed={"CONNECT_DELAYED", "CLOSED", "CONNECT_RETRIED"}
    )
    for event in retrying:
        if event.kind == "CONNECT_RETRIED":
            assert_retry_delay(event)
    assert_fd(connected)
    (succeeded,) = events.take("HANDSHAKE_SUCCEEDED")
    assert succeeded.value == 0
    push.send(b"through")
    assert pull.recv() == b"through"

    pull.close()
    disconnected, retried = events.take("DISCONNECTED", "CONNECT_RETRIED")
    assert disconnected.value == connected.value
    assert_retry_delay(retried)
    assert {e.endpoint for e in events.seen} == {endpoint}


@pytest.mark.parametrize("transport", ["tcp", "ipc"])
def test_accept_reports_accepted_and_handshake(kit: Kit, scratch: Scratch, transport: str) -> None:
    pull = kit.socket("PULL")
    events = kit.monitor(pull)
    endpoint = kit.bind(pull, scratch.bind_endpoint(transport))
    events.take("LISTENING")
    push = kit.socket("PUSH")
    push.connect(endpoint)
    accepted, succeeded = events.take("ACCEPTED", "HANDSHAKE_SUCCEEDED")
    assert_fd(accepted)
    assert succeeded.value == 0
    push.send(b"hello")
    assert pull.recv() == b"hello"
    push.close()
    (disconnected,) = events.take("DISCONNECTED")
    assert disconnected.value == accepted.value
    assert {e.endpoint for e in events.seen} == {endpoint}


# -- failed handshakes --------------------------------------------------------------------------


def http_garbage(conn: socket.socket) -> None:
    conn.sendall(HTTP_REQUEST)
    conn.shutdown(socket.SHUT_WR)
    read_to_eof(conn)


def close_in_greeting(conn: socket.socket) -> None:
    assert conn.recv(1) == b"\xff"  # the server has accepted and started its greeting


@pytest.mark.parametrize("client", [http_garbage, close_in_greeting])
@pytest.mark.parametrize("transport", ["tcp", "ipc"])
def test_bad_client_fails_handshake_and_socket_keeps_working(
    kit: Kit, scratch: Scratch, transport: str, client: Callable[[socket.socket], None]
) -> None:
    pull = kit.socket("PULL")
    events = kit.monitor(pull)
    endpoint = kit.bind(pull, scratch.bind_endpoint(transport))
    events.take("LISTENING")
    with raw_connect(endpoint) as conn:
        client(conn)
    accepted, failed, disconnected = events.take(
        "ACCEPTED", "HANDSHAKE_FAILED_NO_DETAIL", "DISCONNECTED"
    )
    assert_fd(accepted)
    assert failed.value in errno.errorcode, failed
    assert disconnected.value == accepted.value
    assert {e.endpoint for e in events.seen} == {endpoint}

    push = kit.socket("PUSH")
    push.connect(endpoint)
    events.take("ACCEPTED", "HANDSHAKE_SUCCEEDED")
    push.send(b"still serving")
    assert pull.recv() == b"still serving"


@pytest.mark.parametrize(
    ("sent", "code"),
    [
        pytest.param(greeting(b"CURVE"), pyzmq.PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH, id="curve"),
        pytest.param(
            greeting() + UNEXPECTED_COMMAND,
            pyzmq.PROTOCOL_ERROR_ZMTP_UNEXPECTED_COMMAND,
            id="unexpected-command",
        ),
    ],
)
@pytest.mark.parametrize("transport", ["tcp", "ipc"])
def test_protocol_violation_fails_handshake_with_its_code(
    kit: Kit, scratch: Scratch, transport: str, sent: bytes, code: int
) -> None:
    """A peer that speaks ZMTP wrongly: HANDSHAKE_FAILED_PROTOCOL with libzmq's error code."""
    pull = kit.socket("PULL")
    events = kit.monitor(pull)
    endpoint = kit.bind(pull, scratch.bind_endpoint(transport))
    events.take("LISTENING")
    with raw_connect(endpoint) as conn:
        conn.sendall(sent)
        read_to_eof(conn)  # the server hangs up by itself
    accepted, failed, disconnected = events.take(
        "ACCEPTED", "HANDSHAKE_FAILED_PROTOCOL", "DISCONNECTED"
    )
    assert failed.value == code, f"{failed.value:#x} != {code:#x}"
    assert disconnected.value == accepted.value


# -- choosing events ----------------------------------------------------------------------------


def test_events_mask_selects_events(kit: Kit) -> None:
    """Only the requested events arrive; a mask without MONITOR_STOPPED is not told of the stop.

    Uses ``monitor(addr, events)`` with a PAIR of our own, as ``zmq_socket_monitor``.
    """
    pull = kit.socket("PULL")
    addr = f"inproc://monitor-{uuid.uuid4().hex}"
    pull.monitor(addr, kit.module.EVENT_ACCEPTED | kit.module.EVENT_DISCONNECTED)
    pair = kit.socket("PAIR")
    pair.connect(addr)
    events = Events(kit, pair)
    endpoint = kit.bind(pull, "tcp://127.0.0.1:*")
    push = kit.socket("PUSH")
    push.connect(endpoint)
    push.send(b"x")
    assert pull.recv() == b"x"
    push.close()
    # LISTENING and HANDSHAKE_SUCCEEDED were not asked for: they would have come in between
    events.take("ACCEPTED", "DISCONNECTED")
    pull.monitor(None)
    events.assert_quiet()


def test_disable_monitor_stops_events(kit: Kit) -> None:
    pull = kit.socket("PULL")
    events = kit.monitor(pull)
    endpoint = kit.bind(pull, "tcp://127.0.0.1:*")
    events.take("LISTENING")
    pull.disable_monitor()
    events.take("MONITOR_STOPPED")
    push = kit.socket("PUSH")
    push.connect(endpoint)
    push.send(b"unmonitored")
    assert pull.recv() == b"unmonitored"
    push.close()
    pull.unbind(endpoint)
    events.assert_quiet()
    # monitoring can start again, with a new monitor socket
    again = kit.monitor(pull)
    assert again.sock is not events.sock
    endpoint = kit.bind(pull, "tcp://127.0.0.1:*")
    (listening,) = again.take("LISTENING")
    assert listening.endpoint == endpoint


# -- one implementation's messages through the other's parser -----------------------------------


def produce_monitor_frames(kit: Kit, transport: str, scratch: Scratch) -> list[list[bytes]]:
    """Raw monitor messages of a bind, an accept, a handshake, a disconnect and a close."""
    pull = kit.socket("PULL")
    mon = kit.adopt(pull.get_monitor_socket())
    endpoint = kit.bind(pull, scratch.bind_endpoint(transport))
    push = kit.socket("PUSH")
    push.connect(endpoint)
    push.send(b"x")
    assert pull.recv() == b"x"
    push.close()
    messages = [[bytes(f) for f in mon.recv_multipart()] for _ in range(4)]
    pull.close()
    messages += [[bytes(f) for f in mon.recv_multipart()] for _ in range(2)]
    return messages


EXPECTED_KINDS = [
    "LISTENING",
    "ACCEPTED",
    "HANDSHAKE_SUCCEEDED",
    "DISCONNECTED",
    "CLOSED",
    "MONITOR_STOPPED",
]


@pytest.mark.parametrize("transport", ["tcp", "ipc"])
@pytest.mark.parametrize(
    ("producer", "parse"),
    [
        pytest.param("zeropipe", pyzmq_parse, id="pyzmq-parses-zeropipe"),
        pytest.param("pyzmq", zp_parse, id="zeropipe-parses-pyzmq"),
    ],
)
def test_monitor_messages_cross_implementations(
    scratch: Scratch, transport: str, producer: str, parse: Callable[[list[bytes]], Any]
) -> None:
    kit = Kit(producer)
    try:
        messages = produce_monitor_frames(kit, transport, scratch)
    finally:
        kit.close()
    decoded = [parse(message) for message in messages]
    assert [kind_name(int(d["event"])) for d in decoded] == EXPECTED_KINDS
    for message, d in zip(messages, decoded, strict=True):
        # libzmq's layout: uint16 event, uint32 value, machine order, no padding; then endpoint
        assert message[0] == struct.pack("=HI", int(d["event"]), int(d["value"]) & 0xFFFFFFFF)
        assert d["endpoint"] == message[1]
    assert int(decoded[0]["value"]) >= 0
    assert int(decoded[2]["value"]) == 0
    assert decoded[-1]["endpoint"] == b""


def test_zeropipe_parse_matches_pyzmq_on_edge_values() -> None:
    """Protocol error codes and zero decode alike; a negative value as pyzmq's signed int32."""
    for kind, value in [
        (int(pyzmq.EVENT_HANDSHAKE_FAILED_PROTOCOL), pyzmq.PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH),
        (int(pyzmq.EVENT_CONNECT_RETRIED), 0),
    ]:
        message = [struct.pack("=HI", kind, value), b"tcp://127.0.0.1:1"]
        ours, theirs = zp_parse(message), pyzmq_parse(message)
        assert int(ours["event"]) == int(theirs["event"]) == kind
        assert int(ours["value"]) == int(theirs["value"]) == value
        assert ours["endpoint"] == theirs["endpoint"] == b"tcp://127.0.0.1:1"
    # pyzmq unpacks the value as a signed int32 (then wraps it in an IntFlag, which mangles
    # negative numbers), so the signed reading is compared directly
    message = [struct.pack("=HI", int(pyzmq.EVENT_CLOSED), 0xFFFFFFFF), b""]
    assert zp_parse(message)["value"] == struct.unpack("=hi", message[0])[1] == -1


# -- asyncio ------------------------------------------------------------------------------------


def run_async(name: str, main: Callable[[Kit], Any]) -> None:
    kit = Kit(name, asynchronous=True)
    try:
        asyncio.run(asyncio.wait_for(main(kit), 3 * WAIT_S))
    finally:
        kit.close()


@pytest.mark.parametrize("name", list(IMPLEMENTATIONS))
def test_asyncio_monitor_socket(name: str) -> None:
    async def main(kit: Kit) -> None:
        pull = kit.socket("PULL")
        mon = kit.adopt(pull.get_monitor_socket())
        assert isinstance(mon, kit.module.asyncio.Socket)
        assert mon.getsockopt(kit.module.TYPE) == kit.module.PAIR
        endpoint = kit.bind(pull, "tcp://127.0.0.1:*")
        push = kit.socket("PUSH")
        push.connect(endpoint)
        kinds = []
        for _ in range(3):
            frames = await asyncio.wait_for(mon.recv_multipart(), WAIT_S)
            event = kit.parse(frames)
            assert endpoint_str(event["endpoint"]) == endpoint
            kinds.append(kind_name(int(event["event"])))
        assert kinds == ["LISTENING", "ACCEPTED", "HANDSHAKE_SUCCEEDED"]

    run_async(name, main)


@pytest.mark.parametrize("name", list(IMPLEMENTATIONS))
def test_asyncio_recv_monitor_message_is_awaitable(name: str) -> None:
    """pyzmq's recv_monitor_message returns an awaitable for an asyncio socket."""

    async def main(kit: Kit) -> None:
        recv_monitor_message = importlib.import_module(
            IMPLEMENTATIONS[name] + ".utils.monitor"
        ).recv_monitor_message
        pull = kit.socket("PULL")
        mon = kit.adopt(pull.get_monitor_socket())
        endpoint = kit.bind(pull, "tcp://127.0.0.1:*")
        event = await asyncio.wait_for(recv_monitor_message(mon), WAIT_S)
        assert kind_name(int(event["event"])) == "LISTENING"
        assert endpoint_str(event["endpoint"]) == endpoint

    run_async(name, main)


# -- the connection-state view (zeropipe only) --------------------------------------------------

PAIRS = [("ROUTER", "DEALER"), ("PUB", "SUB"), ("PULL", "PUSH")]
ANNOUNCES_ROUTING_ID = {"ROUTER", "DEALER"}


def expected_address(transport: str, endpoint: str) -> str:
    """What ``Peer.address`` documents: the IP for tcp, the path for ipc, the name for inproc."""
    if transport == "tcp":
        return "127.0.0.1"
    if transport == "ipc":
        return address_part(endpoint)
    return endpoint


@pytest.mark.parametrize(("bound_type", "connecting_type"), PAIRS)
@pytest.mark.parametrize("transport", ["tcp", "ipc", "inproc"])
def test_peers(
    zkit: Kit, scratch: Scratch, transport: str, bound_type: str, connecting_type: str
) -> None:
    def routing_id(kind: str) -> bytes | None:
        return f"{kind.lower()}-id".encode() if kind in ANNOUNCES_ROUTING_ID else None

    bound = zkit.socket(bound_type, routing_id(bound_type))
    connecting = zkit.socket(connecting_type, routing_id(connecting_type))
    assert bound.peers == []
    assert connecting.peers == []
    endpoint = zkit.bind(bound, scratch.bind_endpoint(transport))
    connecting.connect(endpoint)
    assert bound.wait_for_peers(1, TIMEOUT_MS)
    assert connecting.wait_for_peers(1, TIMEOUT_MS)

    (seen_by_bound,) = bound.peers
    assert seen_by_bound.endpoint == endpoint
    assert seen_by_bound.direction == "bind"
    assert seen_by_bound.socket_type == connecting_type
    assert seen_by_bound.routing_id == (routing_id(connecting_type) or b"")
    if transport != "ipc":  # the bound side of ipc: see test_peer_address_of_an_ipc_client
        assert seen_by_bound.address == expected_address(transport, endpoint)

    assert connecting.peers == [
        Peer(
            endpoint=endpoint,
            direction="connect",
            address=expected_address(transport, endpoint),
            socket_type=bound_type,
            routing_id=routing_id(bound_type) or b"",
        )
    ]

    connecting.close()
    eventually(lambda: bound.peers, lambda p: p == [], "peers after the peer closed")


def test_peer_address_of_an_ipc_client(zkit: Kit, scratch: Scratch) -> None:
    """``Peer.address`` is documented as "the path for ipc", on the bound side too."""
    pull = zkit.socket("PULL")
    endpoint = zkit.bind(pull, scratch.bind_endpoint("ipc"))
    push = zkit.socket("PUSH")
    push.connect(endpoint)
    assert pull.wait_for_peers(1, TIMEOUT_MS)
    (peer,) = pull.peers
    assert peer.address == address_part(endpoint)


def test_peers_leave_on_the_connecting_side_too(zkit: Kit, scratch: Scratch) -> None:
    pull = zkit.socket("PULL")
    endpoint = zkit.bind(pull, scratch.bind_endpoint("tcp"))
    push = zkit.socket("PUSH")
    push.connect(endpoint)
    assert push.wait_for_peers(1, TIMEOUT_MS)
    pull.close()
    eventually(lambda: push.peers, lambda p: p == [], "peers after the bound peer closed")
    push.close()
    assert push.peers == []


@pytest.mark.parametrize("transport", ["tcp", "ipc"])
def test_peers_of_libzmq_sockets(zkit: Kit, pkit: Kit, scratch: Scratch, transport: str) -> None:
    """libzmq peers announce their type and routing id; both directions."""
    router = zkit.socket("ROUTER", b"zp-router")
    endpoint = zkit.bind(router, scratch.bind_endpoint(transport))
    their_dealer = pkit.socket("DEALER", b"libzmq-dealer")
    their_dealer.connect(endpoint)
    assert router.wait_for_peers(1, TIMEOUT_MS)
    (peer,) = router.peers
    assert (peer.endpoint, peer.direction) == (endpoint, "bind")
    assert (peer.socket_type, peer.routing_id) == ("DEALER", b"libzmq-dealer")

    their_router = pkit.socket("ROUTER", b"libzmq-router")
    their_endpoint = pkit.bind(their_router, scratch.bind_endpoint(transport))
    dealer = zkit.socket("DEALER", b"zp-dealer")
    dealer.connect(their_endpoint)
    assert dealer.wait_for_peers(1, TIMEOUT_MS)
    assert dealer.peers == [
        Peer(
            endpoint=their_endpoint,
            direction="connect",
            address=expected_address(transport, their_endpoint),
            socket_type="ROUTER",
            routing_id=b"libzmq-router",
        )
    ]
    # and libzmq saw our routing id: it routes by it
    dealer.send(b"ping")
    assert their_router.recv_multipart() == [b"zp-dealer", b"ping"]

    their_dealer.close()
    eventually(lambda: router.peers, lambda p: p == [], "peers after libzmq's DEALER closed")


@pytest.mark.parametrize("transport", ["tcp", "ipc", "inproc"])
def test_endpoints_states(zkit: Kit, scratch: Scratch, transport: str) -> None:
    """connect before anyone binds: connecting; bound: listening; peer there: connected;
    peer gone: connecting again; disconnect/unbind: gone."""
    endpoint = scratch.fresh(transport)
    push = zkit.socket("PUSH")
    assert push.endpoints == {}
    push.connect(endpoint)
    assert push.endpoints == {endpoint: "connecting"}
    pull = zkit.socket("PULL")
    zkit.bind(pull, endpoint)
    assert pull.endpoints == {endpoint: "listening"}
    assert push.wait_for_peers(1, TIMEOUT_MS)
    assert push.endpoints == {endpoint: "connected"}

    pull.close()
    eventually(lambda: push.endpoints, lambda e: e == {endpoint: "connecting"}, "endpoints")
    push.disconnect(endpoint)
    assert push.endpoints == {}

    listener = zkit.socket("PULL")
    bound = zkit.bind(listener, scratch.bind_endpoint(transport))
    assert listener.endpoints == {bound: "listening"}
    listener.unbind(bound)
    assert listener.endpoints == {}


@pytest.mark.parametrize("transport", ["tcp", "ipc"])
def test_endpoints_handshaking(zkit: Kit, scratch: Scratch, transport: str) -> None:
    """Connected at the TCP/unix level to something that never finishes the ZMTP greeting."""
    listener, endpoint = raw_listener(scratch.fresh(transport))
    with listener:
        push = zkit.socket("PUSH")
        push.connect(endpoint)
        conn, _ = listener.accept()
    # the listener is closed: once this connection ends, reconnecting cannot succeed
    with conn:
        conn.settimeout(WAIT_S)
        assert conn.recv(1) == b"\xff"  # our greeting has started
        assert push.endpoints == {endpoint: "handshaking"}
        assert push.peers == []
        assert push.wait_for_peers(1, 50) is False
    eventually(lambda: push.endpoints, lambda e: e == {endpoint: "connecting"}, "endpoints")


def test_wait_for_peers_times_out(zkit: Kit, scratch: Scratch) -> None:
    pub = zkit.socket("PUB")
    endpoint = zkit.bind(pub, scratch.bind_endpoint("tcp"))
    assert pub.wait_for_peers(1, 50) is False
    sub = zkit.socket("SUB")
    sub.connect(endpoint)
    assert pub.wait_for_peers(1, TIMEOUT_MS) is True
    assert pub.wait_for_peers(2, 50) is False
    assert pub.wait_for_peers(0, 0) is True


class SubscriberThread(threading.Thread):
    """A SUB connecting from its own thread; receives up to ``end`` and keeps what it got."""

    def __init__(self, ctx: Any, endpoint: str, topic: bytes, end: bytes | None) -> None:
        super().__init__(daemon=True)
        self.ctx, self.endpoint, self.topic, self.end = ctx, endpoint, topic, end
        self.received: list[bytes] = []
        self.error: BaseException | None = None
        self.release = threading.Event()

    def run(self) -> None:
        sub = self.ctx.socket(zp.SUB)
        try:
            sub.setsockopt(zp.LINGER, 0)
            sub.setsockopt(zp.RCVTIMEO, TIMEOUT_MS)
            sub.setsockopt(zp.SUBSCRIBE, self.topic)
            sub.connect(self.endpoint)
            if self.end is None:
                self.release.wait(WAIT_S)
                return
            while (message := sub.recv()) != self.end:
                self.received.append(message)
        except BaseException as exc:
            self.error = exc
        finally:
            sub.close()

    def finish(self) -> None:
        self.release.set()
        self.join(WAIT_S + TIMEOUT_MS / 1000)
        assert not self.is_alive(), "subscriber thread still running"
        if self.error is not None:
            raise self.error


@pytest.mark.parametrize("transport", ["tcp", "ipc", "inproc"])
def test_wait_for_peers_sees_subscribers_from_threads(
    zkit: Kit, scratch: Scratch, transport: str
) -> None:
    pub = zkit.socket("PUB")
    endpoint = zkit.bind(pub, scratch.bind_endpoint(transport))
    subs = [SubscriberThread(zkit.ctx, endpoint, b"", None) for _ in range(2)]
    for sub in subs:
        sub.start()
    try:
        assert pub.wait_for_peers(2, TIMEOUT_MS) is True
        peers = pub.peers
        assert [p.socket_type for p in peers] == ["SUB", "SUB"]
        assert {p.direction for p in peers} == {"bind"}
    finally:
        for sub in subs:
            sub.finish()


@pytest.mark.parametrize("transport", ["tcp", "ipc", "inproc"])
def test_wait_for_peers_and_subscriptions_cure_the_slow_joiner(
    zkit: Kit, scratch: Scratch, transport: str
) -> None:
    """Publish once, lose nothing: no probe loop, no sleep.

    ``wait_for_peers`` says the subscribers are connected, but a SUB's subscription travels
    after its handshake, so a PUB could still drop the first messages. An XPUB hands each
    subscription to the application once its filter holds it: after reading one subscription
    per subscriber, every message published reaches them.
    """
    xpub = zkit.socket("XPUB")
    endpoint = zkit.bind(xpub, scratch.bind_endpoint(transport))
    topics = [b"alpha", b"beta"]
    subs = [SubscriberThread(zkit.ctx, endpoint, t, t + b" end") for t in topics]
    for sub in subs:
        sub.start()
    try:
        assert xpub.wait_for_peers(2, TIMEOUT_MS)
        assert sorted(xpub.recv() for _ in topics) == [b"\x01" + t for t in topics]
        for i in range(100):
            for topic in topics:
                xpub.send(b"%s %d" % (topic, i))
        for topic in topics:
            xpub.send(topic + b" end")
    finally:
        for sub in subs:
            sub.finish()
    for sub, topic in zip(subs, topics, strict=True):
        assert sub.received == [b"%s %d" % (topic, i) for i in range(100)]
