"""Hostile peers against a real zeropipe PULL over tcp.

A zeropipe PULL binds; a well-behaved PUSH (zeropipe, once pyzmq) connects and its first
message is received; then a raw TCP peer sends one kind of hostile input. For every case:

* we close the raw connection (recv returns b"" or the connection is reset) within 2 s, except
  where libzmq keeps it open (an unknown command), and except when the hostile peer hangs up
  itself (disconnect in the middle of a multipart message);
* nothing the hostile peer sent is ever delivered;
* a message from the good PUSH sent afterwards arrives within 1 s;
* the memory Python allocates while the case runs (tracemalloc's peak, from just before the
  hostile bytes go out) stays under ``MEMORY_BOUND``;
* a new PUSH can still connect and be heard (the reactor thread, which accepts and runs
  handshakes, is alive).

Cases with a valid handshake (large READY metadata) are accepted instead: the peer shows up in
``peers`` and the monitor reports HANDSHAKE_SUCCEEDED; the hostile peer sends no data, so the
"nothing delivered" oracle still holds. Handshake timeouts must be reported to the monitor as
HANDSHAKE_FAILED_NO_DETAIL, as libzmq does. A ROUTER is also attacked with routing ids of 255
(legal: usable both ways) and 256 bytes (refused).

What libzmq 4.3.5 does with the same inputs is in research/reliability.md 2.1.
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from rawzmtp import MemoryPeak, split_frames

import zeropipe as zmq
from zeropipe.protocol.commands import encode_error, encode_metadata
from zeropipe.protocol.frames import FLAG_COMMAND, FLAG_LONG, FLAG_MORE, encode_command
from zeropipe.protocol.greeting import build_greeting
from zeropipe.utils.monitor import recv_monitor_message

pytestmark = pytest.mark.timeout(20)

CLOSE_TIMEOUT_S = 5.0
"""How long we give zeropipe to close a hostile connection."""

GOOD_DELIVERY_S = 1.0
"""How soon the good peer's message must arrive after the hostile input."""

PAUSE_S = 0.1
"""Pause between the chunks of a hostile input (so later chunks arrive after the handshake)."""

MEMORY_BOUND = 16 * 1024 * 1024
"""Most Python memory one hostile case may allocate (tracemalloc peak, all threads).

The largest buffers a case legitimately needs are one 64 KiB read chunk, the first buffer of a
large frame (at most 1 MiB, EAGER_ALLOC_LIMIT in zeropipe/protocol/connection.py; it grows only
as data arrives) and its doubling while filled (the 2^30 case sends 1.5 MiB of its frame), plus
a READY of a few KiB and copies of each: about 3 MiB measured at most, 0.2 MiB for most cases.
16 MiB leaves room for interpreter noise (lazy imports, a monitor message) while allocating a
declared frame size (2^30 and up) exceeds it by orders of magnitude.
"""

EVENT_WAIT_MS = 2000
"""Hang guard for a monitor event that must come."""

# -- wire helpers ----------------------------------------------------------------------------


def greeting(mechanism: bytes = b"NULL") -> bytes:
    """A ZMTP 3.1 greeting as a client would send it."""
    return build_greeting(mechanism, False)


def ready(properties: dict[str, bytes] | None = None) -> bytes:
    """A READY command; Socket-Type PUSH unless told otherwise."""
    if properties is None:
        properties = {"Socket-Type": b"PUSH"}
    return encode_command(b"READY", encode_metadata(properties))


HANDSHAKE = greeting() + ready()
"""A complete, valid NULL handshake from a PUSH peer."""


def frame(body: bytes, *, more: bool = False) -> bytes:
    flags = FLAG_MORE if more else 0
    if len(body) < 256:
        return bytes((flags, len(body))) + body
    return bytes((flags | FLAG_LONG,)) + len(body).to_bytes(8, "big") + body


def long_header(size: int, flags: int = 0) -> bytes:
    return bytes((flags | FLAG_LONG,)) + size.to_bytes(8, "big")


def parse_frames(data: bytes) -> list[tuple[int, bytes]]:
    """(flags, body) of the complete frames in ``data``."""
    return split_frames(data)[0]


def parse_commands(data: bytes) -> list[tuple[bytes, bytes]]:
    """(name, data) of the complete command frames in ``data``."""
    return [
        (body[1 : 1 + body[0]], body[1 + body[0] :])
        for flags, body in parse_frames(data)
        if flags & FLAG_COMMAND and body
    ]


def data_frames(data: bytes) -> list[bytes]:
    """The bodies of the complete data frames in ``data`` (everything after the greeting)."""
    return [body for flags, body in parse_frames(data[64:]) if not flags & FLAG_COMMAND]


# -- memory and monitor --------------------------------------------------------------------


def drain_events(monitor: Any) -> list[tuple[int, int]]:
    """(event, value) of every monitor event queued now."""
    events = []
    with contextlib.suppress(zmq.Again):
        while True:
            event = recv_monitor_message(monitor, zmq.NOBLOCK)
            events.append((int(event["event"]), event["value"]))
    return events


def await_event(monitor: Any, kind: int, seen: list[tuple[int, int]]) -> bool:
    """Read events into ``seen`` until one of ``kind``; False if none within EVENT_WAIT_MS."""
    if any(event == kind for event, _ in seen):
        return True
    deadline = time.monotonic() + EVENT_WAIT_MS / 1000
    while (remaining := deadline - time.monotonic()) > 0:
        if not monitor.poll(int(remaining * 1000) + 1):
            break
        event = recv_monitor_message(monitor)
        seen.append((int(event["event"]), event["value"]))
        if event["event"] == kind:
            return True
    return False


# -- the harness -----------------------------------------------------------------------------


class Harness:
    """Every zeropipe/pyzmq socket, context and raw socket of one test; closed at teardown."""

    def __init__(self) -> None:
        self.ctx = zmq.Context()
        self.sockets: list[Any] = []
        self.raws: list[socket.socket] = []
        self.pyzmq_ctx: Any = None

    def pull(self, **options: int) -> tuple[Any, tuple[str, int]]:
        """A zeropipe PULL bound to a free loopback port; options are set before bind."""
        return self.bound(zmq.PULL, **options)

    def bound(self, socket_type: int, **options: int) -> tuple[Any, tuple[str, int]]:
        """A zeropipe socket bound to a free loopback port; options are set before bind."""
        sock = self.ctx.socket(socket_type)
        self.sockets.append(sock)
        sock.linger = 0
        sock.rcvtimeo = 2000
        sock.sndtimeo = 2000
        for name, value in options.items():
            sock.setsockopt(getattr(zmq, name), value)
        sock.bind("tcp://127.0.0.1:*")
        endpoint = sock.last_endpoint
        assert isinstance(endpoint, bytes)
        host, port = endpoint.decode().removeprefix("tcp://").rsplit(":", 1)
        return sock, (host, int(port))

    def monitor(self, sock: Any) -> Any:
        """A PAIR receiving ``sock``'s monitor events (closed after ``sock``)."""
        monitor = sock.get_monitor_socket()
        self.sockets.append(monitor)
        monitor.linger = 0
        monitor.rcvtimeo = EVENT_WAIT_MS
        return monitor

    def push(self, endpoint: bytes) -> Any:
        return self.connected(zmq.PUSH, endpoint)

    def connected(self, socket_type: int, endpoint: bytes) -> Any:
        sock = self.ctx.socket(socket_type)
        self.sockets.append(sock)
        sock.linger = 0
        sock.sndtimeo = 2000
        sock.rcvtimeo = 2000
        sock.connect(endpoint.decode())
        return sock

    def pyzmq_push(self, endpoint: bytes) -> Any:
        pyzmq = pytest.importorskip("zmq")
        if self.pyzmq_ctx is None:
            self.pyzmq_ctx = pyzmq.Context()
        push = self.pyzmq_ctx.socket(pyzmq.PUSH)
        self.sockets.append(push)
        push.linger = 0
        push.sndtimeo = 2000
        push.connect(endpoint.decode())
        return push

    def raw(self, address: tuple[str, int]) -> socket.socket:
        sock = socket.create_connection(address, timeout=CLOSE_TIMEOUT_S)
        self.raws.append(sock)
        return sock

    def close(self) -> None:
        for raw in self.raws:
            with contextlib.suppress(OSError):
                raw.close()
        errors: list[BaseException] = []
        for sock in self.sockets:
            try:
                sock.close(linger=0)
            except Exception as exc:
                errors.append(exc)
        self.ctx.term()
        if self.pyzmq_ctx is not None:
            self.pyzmq_ctx.term()
        if errors:
            raise errors[0]


@pytest.fixture
def harness() -> Iterator[Harness]:
    h = Harness()
    try:
        yield h
    finally:
        h.close()


def send_chunks(raw: socket.socket, chunks: tuple[bytes, ...]) -> None:
    """Send the chunks with a pause between them; the server may hang up at any point."""
    for i, chunk in enumerate(chunks):
        if i:
            time.sleep(PAUSE_S)
        try:
            raw.sendall(chunk)
        except OSError:  # BrokenPipe / ConnectionReset: already refused
            return


def wait_closed(raw: socket.socket, timeout: float) -> tuple[bool, bytes]:
    """Read until the peer closes (True) or ``timeout`` passes (False); return what was read."""
    deadline = time.monotonic() + timeout
    received = bytearray()
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False, bytes(received)
        raw.settimeout(remaining)
        try:
            chunk = raw.recv(65536)
        except TimeoutError:
            return False, bytes(received)
        except ConnectionResetError:
            return True, bytes(received)
        if not chunk:
            return True, bytes(received)
        received += chunk


def read_until(
    raw: socket.socket, received: bytes, done: Callable[[bytes], bool]
) -> tuple[bool, bytes]:
    """Read until ``done(everything received)`` holds; (False, ...) on close or after 5 s."""
    data = bytearray(received)
    deadline = time.monotonic() + CLOSE_TIMEOUT_S
    while not done(bytes(data)):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False, bytes(data)
        raw.settimeout(remaining)
        try:
            chunk = raw.recv(65536)
        except (TimeoutError, ConnectionResetError):
            return False, bytes(data)
        if not chunk:
            return False, bytes(data)
        data += chunk
    return True, bytes(data)


def connect_good(harness: Harness, pull: Any, *, use_pyzmq: bool = False) -> Any:
    """Connect the well-behaved PUSH and make sure its connection is up."""
    endpoint = pull.last_endpoint
    push = harness.pyzmq_push(endpoint) if use_pyzmq else harness.push(endpoint)
    push.send(b"warm-up")
    assert pull.recv() == b"warm-up"
    return push


def check_good_peer(pull: Any, push: Any, routing_id: bytes | None = None) -> list[str]:
    """Problems with the good peer's next message (it must arrive within 1 s, alone).

    ``routing_id``: the receiver is a ROUTER, which prefixes the good peer's id.
    """
    problems = []
    expected = [b"good message"] if routing_id is None else [routing_id, b"good message"]
    start = time.monotonic()
    push.send(b"good message")
    delivered = []
    while pull.poll(int(GOOD_DELIVERY_S * 1000)):
        msg = pull.recv_multipart(zmq.NOBLOCK)
        if msg == expected:
            break
        delivered.append(msg)
    else:
        problems.append(f"the good peer's message did not arrive within {GOOD_DELIVERY_S} s")
    if time.monotonic() - start > GOOD_DELIVERY_S:
        problems.append(f"the good peer's message took more than {GOOD_DELIVERY_S} s")
    with contextlib.suppress(zmq.Again):
        delivered.append(pull.recv_multipart(zmq.NOBLOCK))
    if delivered:
        problems.append(
            f"hostile input was delivered: {[[f[:16] for f in m] for m in delivered]!r}"
        )
    return problems


def check_still_accepting(harness: Harness, pull: Any) -> list[str]:
    """A new PUSH connects and is heard: the reactor thread (accept, handshake) is alive."""
    newcomer = harness.push(pull.last_endpoint)
    newcomer.send(b"newcomer")
    if not pull.poll(int(CLOSE_TIMEOUT_S * 1000)):
        return [f"a new PUSH was not heard within {CLOSE_TIMEOUT_S} s: is the reactor alive?"]
    msg = pull.recv_multipart(zmq.NOBLOCK)
    return [] if msg == [b"newcomer"] else [f"the new PUSH's message became {msg!r}"]


def assert_good_peer_unaffected(pull: Any, push: Any, problems: list[str] | None = None) -> None:
    problems = [*(problems or []), *check_good_peer(pull, push)]
    assert not problems, "; ".join(problems)


# -- the cases -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Hostile:
    chunks: tuple[bytes, ...]
    """Sent in order, PAUSE_S apart (later chunks arrive after the handshake completed)."""
    options: dict[str, int] = field(default_factory=dict)
    """Options of the PULL, set before bind."""
    keep_open: bool = False
    """libzmq keeps such a connection open; so must we."""
    accepted: bool = False
    """The handshake is valid (with keep_open): we answer it and the peer joins the socket."""
    peer_hangs_up: bool = False
    """The hostile peer ends the connection itself (half-close) after sending."""
    expect_error: str = ""
    """Reason of the ERROR command we must send before closing."""
    expect_event: int = 0
    """A monitor event that must report the hostile connection's end."""
    min_close_s: float = 0.0
    """The close must not come before this (a timer, not the input, closes it)."""


MANY_PROPERTIES = {f"X-Property-{i}": b"%d" % i for i in range(300)}
"""A READY of ~6 KiB made of small properties (a long command frame, 300 metadata entries)."""

CASES: dict[str, Hostile] = {
    "http-request": Hostile((b"GET / HTTP/1.1\r\nHost: localhost\r\nEVIL: 1\r\n\r\n",)),
    "zmtp1.0-greeting": Hostile((b"\x01\x00" + b"\x05\x00EVIL" + b"\x05\x00EVIL",)),
    "zmtp2.0-greeting": Hostile(
        (b"\xff" + bytes(8) + b"\x7f" + b"\x01" + b"\x08" + b"\x00\x00" + b"\x00\x04EVIL",)
    ),
    "truncated-greeting-then-silence": Hostile(
        (greeting()[:20],),
        options={"HANDSHAKE_IVL": 300},
        min_close_s=0.25,
        expect_event=zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL,
    ),
    "complete-greeting-then-silence": Hostile(
        (greeting(),),
        options={"HANDSHAKE_IVL": 300},
        min_close_s=0.25,
        expect_event=zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL,
    ),
    "mechanism-FOO": Hostile((greeting(b"FOO") + ready(),)),
    "mechanism-CURVE": Hostile((greeting(b"CURVE") + encode_command(b"HELLO", bytes(194)),)),
    "command-before-ready": Hostile((greeting() + encode_command(b"PING", b"\x00\x00") + ready(),)),
    "data-before-ready": Hostile((greeting() + frame(b"EVIL") + ready() + frame(b"EVIL"),)),
    "ready-property-overruns": Hostile(
        (greeting() + encode_command(b"READY", b"\x0bSocket-Type" + (1000).to_bytes(4, "big")),)
    ),
    "ready-without-socket-type": Hostile(
        (greeting() + ready({"Identity": b"x"}),), expect_error="Invalid socket type"
    ),
    "incompatible-socket-type-PUB": Hostile(
        (greeting() + ready({"Socket-Type": b"PUB"}),), expect_error="Invalid socket type"
    ),
    "ready-metadata-4KiB-value": Hostile(
        (greeting() + ready({"Socket-Type": b"PUSH", "X-Large": b"v" * 4096}),),
        keep_open=True,
        accepted=True,
    ),
    "ready-metadata-300-properties": Hostile(
        (greeting() + ready({"Socket-Type": b"PUSH", **MANY_PROPERTIES}),),
        keep_open=True,
        accepted=True,
    ),
    # A routing id is 1 to 255 bytes (the range of ZMQ_ROUTING_ID). libzmq 4.3.5 does not check
    # what a peer announces; zeropipe refuses it (see also the ROUTER tests below).
    "identity-256-bytes": Hostile(
        (greeting() + ready({"Socket-Type": b"PUSH", "Identity": b"I" * 256}),)
    ),
    "frame-size-2^64-1": Hostile((HANDSHAKE, long_header(2**64 - 1) + b"EVIL")),
    "frame-size-2^63": Hostile((HANDSHAKE, long_header(2**63) + b"EVIL")),
    "frame-size-2^40": Hostile((HANDSHAKE, long_header(2**40) + b"EVIL")),
    "frame-size-2^40-with-maxmsgsize": Hostile(
        (HANDSHAKE, long_header(2**40) + b"EVIL"), options={"MAXMSGSIZE": 1000}
    ),
    # Below this machine's memory, so not refused by its size: it must be allocated only as
    # its data arrives (1.5 MiB of it, then the peer hangs up).
    "frame-size-2^30-then-hang-up": Hostile(
        (HANDSHAKE, long_header(2**30) + b"E" * (3 * 2**19)), peer_hangs_up=True
    ),
    "maxmsgsize+1": Hostile((HANDSHAKE, frame(b"E" * 1001)), options={"MAXMSGSIZE": 1000}),
    "maxmsgsize+1-multipart": Hostile(
        (HANDSHAKE, frame(b"E" * 600, more=True) + frame(b"E" * 401)),
        options={"MAXMSGSIZE": 1000},
    ),
    "maxmsgsize+1-short-frame": Hostile(
        (HANDSHAKE, frame(b"E" * 101)), options={"MAXMSGSIZE": 100}
    ),
    "command-with-more": Hostile(
        (HANDSHAKE, bytes((FLAG_COMMAND | FLAG_MORE, 7)) + b"\x04PING\x00\x00" + frame(b"EVIL"))
    ),
    "command-inside-multipart": Hostile(
        (HANDSHAKE, frame(b"EVIL", more=True) + encode_command(b"PING", b"\x00\x00") + frame(b"E"))
    ),
    "ping-shorter-than-ttl": Hostile((HANDSHAKE, encode_command(b"PING", b"\x00"))),
    "error-after-handshake": Hostile((HANDSHAKE, encode_command(b"ERROR", encode_error("x")))),
    "unknown-command": Hostile(
        (HANDSHAKE, encode_command(b"BOGUS", b"EVIL")), keep_open=True, accepted=True
    ),
    "disconnect-mid-multipart": Hostile(
        (HANDSHAKE, frame(b"EVIL", more=True) + frame(b"EVIL", more=True)), peer_hangs_up=True
    ),
    "disconnect-mid-large-frame": Hostile(
        (HANDSHAKE, frame(b"EVIL", more=True) + long_header(100_000) + b"E" * 5000),
        peer_hangs_up=True,
    ),
}


def run_hostile(
    harness: Harness, pull: Any, monitor: Any, address: tuple[str, int], case: Hostile
) -> list[str]:
    """Open one hostile connection, send the case; return what went wrong with its ending.

    ``monitor`` receives ``pull``'s events; those of the good peer were read already.
    """
    raw = harness.raw(address)
    start = time.monotonic()
    events: list[tuple[int, int]] = []
    send_chunks(raw, case.chunks)
    if case.peer_hangs_up:
        with contextlib.suppress(OSError):
            raw.shutdown(socket.SHUT_WR)  # a FIN after the data, not a reset that may drop it
        closed, _ = wait_closed(raw, CLOSE_TIMEOUT_S)
        raw.close()
        if not closed:
            return ["we did not close the connection the peer hung up"]
        # reported once everything before the hang-up was read: the memory peak includes it
        if not await_event(monitor, zmq.EVENT_DISCONNECTED, events):
            return [f"no DISCONNECTED event after the peer hung up: {events!r}"]
        return []
    if case.keep_open:
        return check_kept_open(raw, pull, monitor, case)
    closed, received = wait_closed(raw, CLOSE_TIMEOUT_S)
    elapsed = time.monotonic() - start
    if not closed:
        return [f"the hostile connection was not closed within {CLOSE_TIMEOUT_S} s"]
    problems = []
    if elapsed < case.min_close_s:
        problems.append(f"closed after {elapsed:.3f} s, before the handshake timeout")
    if received[:1] not in (b"", b"\xff"):
        problems.append(f"we sent non-ZMTP bytes {received[:16]!r}")
    if case.expect_error:
        commands = parse_commands(received[64:])
        if not commands or commands[-1] != (b"ERROR", encode_error(case.expect_error)):
            problems.append(f"no ERROR {case.expect_error!r} before the close: {commands!r}")
    if case.expect_event and not await_event(monitor, case.expect_event, events):
        problems.append(f"no monitor event {case.expect_event:#x}; events: {events!r}")
    return problems


def check_kept_open(raw: socket.socket, pull: Any, monitor: Any, case: Hostile) -> list[str]:
    """The connection stays open and answers PING; an accepted one joined ``pull``."""
    problems = []
    closed, received = wait_closed(raw, 0.5)
    if closed:
        return ["libzmq keeps this connection open; zeropipe closed it"]
    if case.accepted:
        # our greeting, then our READY: the handshake went through
        ok, received = read_until(raw, received, lambda data: bool(parse_commands(data[64:])))
        if not ok or parse_commands(received[64:])[0][0] != b"READY":
            problems.append(f"we did not answer the handshake with READY: {received[64:80]!r}")
        events: list[tuple[int, int]] = []
        if not await_event(monitor, zmq.EVENT_HANDSHAKE_SUCCEEDED, events):
            problems.append(f"no HANDSHAKE_SUCCEEDED event: {events!r}")
        peers = pull.peers
        if len(peers) != 2 or any(peer.socket_type != "PUSH" for peer in peers):
            problems.append(f"the hostile peer did not join: peers {peers!r}")
    raw.sendall(encode_command(b"PING", b"\x00\x00ctx"))
    answered, _ = read_until(
        raw, received, lambda data: (b"PONG", b"ctx") in parse_commands(data[64:])
    )
    raw.close()
    if not answered:
        problems.append("the connection kept open does not answer PING")
    return problems


def start_case(
    harness: Harness, case: Hostile, *, use_pyzmq: bool = False
) -> tuple[Any, Any, Any, tuple[str, int]]:
    """(pull, good push, pull's monitor, pull's address), the good peer connected."""
    pull, address = harness.pull(**case.options)
    monitor = harness.monitor(pull)
    push = connect_good(harness, pull, use_pyzmq=use_pyzmq)
    drain_events(monitor)  # the good peer's: what comes next is the hostile peer's
    return pull, push, monitor, address


def run_case(harness: Harness, case: Hostile, *, use_pyzmq: bool = False) -> None:
    pull, push, monitor, address = start_case(harness, case, use_pyzmq=use_pyzmq)
    with MemoryPeak(MEMORY_BOUND) as memory:
        problems = run_hostile(harness, pull, monitor, address, case)
        problems += check_good_peer(pull, push)
    problems += memory.problems()
    problems += check_still_accepting(harness, pull)
    assert not problems, "; ".join(problems)


@pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))
def test_hostile_peer(harness: Harness, case: Hostile) -> None:
    run_case(harness, case)


@pytest.mark.parametrize(
    "name", ["http-request", "frame-size-2^64-1", "disconnect-mid-multipart", "unknown-command"]
)
def test_hostile_peer_next_to_a_pyzmq_push(harness: Harness, name: str) -> None:
    run_case(harness, CASES[name], use_pyzmq=True)


# -- routing ids -----------------------------------------------------------------------------

ROUTING_ID_255 = bytes(range(1, 256))
"""The longest legal routing id (255 bytes, none of them the reserved leading zero)."""


def dealer_handshake(identity: bytes) -> bytes:
    return greeting() + ready({"Socket-Type": b"DEALER", "Identity": identity})


def test_routing_id_of_255_bytes_is_usable_both_ways(harness: Harness) -> None:
    router, address = harness.bound(zmq.ROUTER)
    raw = harness.raw(address)
    send_chunks(raw, (dealer_handshake(ROUTING_ID_255), frame(b"hello")))
    assert router.recv_multipart() == [ROUTING_ID_255, b"hello"]
    assert [peer.routing_id for peer in router.peers] == [ROUTING_ID_255]
    router.send_multipart([ROUTING_ID_255, b"reply"])
    replied, received = read_until(raw, b"", lambda data: b"reply" in data_frames(data))
    assert replied, f"the reply to the 255-byte id never came: {received[64:]!r}"
    assert data_frames(received) == [b"reply"]


def test_identity_of_256_bytes_is_refused_by_a_router(harness: Harness) -> None:
    """A routing id is 1 to 255 bytes (the range of ZMQ_ROUTING_ID), so the peer is refused.

    (libzmq 4.3.5 does not check: it accepts the peer and routes by the 256-byte id.)
    """
    router, address = harness.bound(zmq.ROUTER)
    dealer = harness.connected(zmq.DEALER, router.last_endpoint)
    dealer.send(b"warm-up")
    good_id, body = router.recv_multipart()
    assert body == b"warm-up"
    raw = harness.raw(address)
    with MemoryPeak(MEMORY_BOUND) as memory:
        send_chunks(raw, (dealer_handshake(b"I" * 256), frame(b"EVIL")))
        closed, _ = wait_closed(raw, CLOSE_TIMEOUT_S)
        problems = [] if closed else ["the connection announcing 256 bytes was not closed"]
        problems += check_good_peer(router, dealer, routing_id=good_id)
    problems += memory.problems()
    problems += [f"peers: {router.peers!r}"] if len(router.peers) != 1 else []
    assert not problems, "; ".join(problems)


def test_hostile_peer_in_the_same_chunk_as_good_traffic(harness: Harness) -> None:
    """A peer that sends good messages and then garbage: the good ones are delivered whole."""
    pull, address = harness.pull()
    push = connect_good(harness, pull)
    raw = harness.raw(address)
    send_chunks(
        raw,
        (
            HANDSHAKE,
            frame(b"from-raw-1") + frame(b"a", more=True) + frame(b"b") + long_header(2**64 - 1),
        ),
    )
    closed, _ = wait_closed(raw, CLOSE_TIMEOUT_S)
    assert closed
    assert pull.recv() == b"from-raw-1"
    assert pull.recv_multipart() == [b"a", b"b"]
    assert_good_peer_unaffected(pull, push)


def test_fifty_hostile_connections_in_a_row(harness: Harness) -> None:
    pull, address = harness.pull()
    push = connect_good(harness, pull)
    names = [
        "http-request",
        "zmtp1.0-greeting",
        "zmtp2.0-greeting",
        "mechanism-FOO",
        "data-before-ready",
        "incompatible-socket-type-PUB",
        "frame-size-2^64-1",
        "command-with-more",
        "ping-shorter-than-ttl",
        "disconnect-mid-multipart",
    ]
    for i in range(50):
        case = CASES[names[i % len(names)]]
        raw = harness.raw(address)
        for chunk in case.chunks:
            with contextlib.suppress(OSError):
                raw.sendall(chunk)
        if case.peer_hangs_up:
            raw.close()
        else:
            closed, _ = wait_closed(raw, CLOSE_TIMEOUT_S)
            assert closed, f"hostile connection {i} ({names[i % len(names)]}) was not closed"
            raw.close()
        harness.raws.remove(raw)
    assert_good_peer_unaffected(pull, push)


@pytest.mark.parametrize("what", ["ping", "bad-frame"])
def test_new_connection_is_served_promptly_while_the_caller_is_away(
    harness: Harness, what: str
) -> None:
    """A peer attached just after the caller's last recv() must still be read by the reactor.

    The caller is not reading, so the reactor reads for it: a PING is answered and a
    protocol error closes the connection. (How soon the reactor looks again is checked
    without a clock in tests/test_reactor.py.)
    """
    pull, address = harness.pull()
    with pytest.raises(zmq.Again):
        pull.recv(zmq.NOBLOCK)  # the caller was here a moment ago, and now goes away
    raw = harness.raw(address)
    raw.sendall(HANDSHAKE)
    handshaken, _ = read_until(
        raw, b"", lambda data: len(data) >= 64 + len(ready({"Socket-Type": b"PULL"}))
    )
    assert handshaken
    if what == "ping":
        raw.sendall(encode_command(b"PING", b"\x00\x00ctx"))
        # the greeting was read already: ``data`` starts with our READY
        answered, _ = read_until(raw, b"", lambda data: (b"PONG", b"ctx") in parse_commands(data))
        assert answered
    else:
        raw.sendall(long_header(2**64 - 1))
        closed, _ = wait_closed(raw, CLOSE_TIMEOUT_S)
        assert closed
