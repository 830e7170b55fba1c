"""Hostile peers against a real zeropipe PULL over tcp.

A zeropipe PULL binds; a well-behaved PUSH (zeropipe, once pyzmq) connects and its first
message is received; then a raw TCP peer sends one kind of hostile input. For every case:

* we close the raw connection (recv returns b"" or the connection is reset) within 2 s, except
  where libzmq keeps it open (an unknown command), and except when the hostile peer hangs up
  itself (disconnect in the middle of a multipart message);
* nothing the hostile peer sent is ever delivered;
* a message from the good PUSH sent afterwards arrives within 1 s.

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

import zeropipe as zmq
from zeropipe.protocol.commands import encode_error, encode_metadata
from zeropipe.protocol.frames import FLAG_COMMAND, FLAG_LONG, FLAG_MORE, encode_command
from zeropipe.protocol.greeting import build_greeting

pytestmark = pytest.mark.timeout(20)

CLOSE_TIMEOUT_S = 5.0
"""How long we give zeropipe to close a hostile connection."""

GOOD_DELIVERY_S = 1.0
"""How soon the good peer's message must arrive after the hostile input."""

PAUSE_S = 0.1
"""Pause between the chunks of a hostile input (so later chunks arrive after the handshake)."""

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


def parse_commands(data: bytes) -> list[tuple[bytes, bytes]]:
    """(name, data) of the complete command frames in ``data``."""
    out = []
    pos = 0
    while pos + 2 <= len(data):
        flags = data[pos]
        if flags & FLAG_LONG:
            size = int.from_bytes(data[pos + 1 : pos + 9], "big")
            pos += 9
        else:
            size = data[pos + 1]
            pos += 2
        body = data[pos : pos + size]
        pos += size
        if flags & FLAG_COMMAND and body:
            out.append((body[1 : 1 + body[0]], body[1 + body[0] :]))
    return out


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
        pull = self.ctx.socket(zmq.PULL)
        self.sockets.append(pull)
        pull.linger = 0
        pull.rcvtimeo = 2000
        for name, value in options.items():
            pull.setsockopt(getattr(zmq, name), value)
        pull.bind("tcp://127.0.0.1:*")
        endpoint = pull.last_endpoint
        assert isinstance(endpoint, bytes)
        host, port = endpoint.decode().removeprefix("tcp://").rsplit(":", 1)
        return pull, (host, int(port))

    def push(self, endpoint: bytes) -> Any:
        push = self.ctx.socket(zmq.PUSH)
        self.sockets.append(push)
        push.linger = 0
        push.sndtimeo = 2000
        push.connect(endpoint.decode())
        return push

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


def read_until(raw: socket.socket, received: bytes, done: Callable[[bytes], bool]) -> bool:
    """Read until ``done(everything received)`` holds; False on close or after 2 s."""
    data = bytearray(received)
    deadline = time.monotonic() + CLOSE_TIMEOUT_S
    while not done(bytes(data)):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        raw.settimeout(remaining)
        try:
            chunk = raw.recv(65536)
        except (TimeoutError, ConnectionResetError):
            return False
        if not chunk:
            return False
        data += chunk
    return True


def connect_good(harness: Harness, pull: Any, *, use_pyzmq: bool = False) -> Any:
    """Connect the well-behaved PUSH and make sure its connection is up."""
    endpoint = pull.last_endpoint
    push = harness.pyzmq_push(endpoint) if use_pyzmq else harness.push(endpoint)
    push.send(b"warm-up")
    assert pull.recv() == b"warm-up"
    return push


def check_good_peer(pull: Any, push: Any) -> list[str]:
    """Problems with the good peer's next message (it must arrive within 1 s, alone)."""
    problems = []
    start = time.monotonic()
    push.send(b"good message")
    delivered = []
    while pull.poll(int(GOOD_DELIVERY_S * 1000)):
        msg = pull.recv_multipart(zmq.NOBLOCK)
        if msg == [b"good message"]:
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
    peer_hangs_up: bool = False
    """The hostile peer closes the connection itself after sending."""
    expect_error: str = ""
    """Reason of the ERROR command we must send before closing."""
    min_close_s: float = 0.0
    """The close must not come before this (a timer, not the input, closes it)."""


CASES: dict[str, Hostile] = {
    "http-request": Hostile((b"GET / HTTP/1.1\r\nHost: localhost\r\nEVIL: 1\r\n\r\n",)),
    "zmtp1.0-greeting": Hostile((b"\x01\x00" + b"\x05\x00EVIL" + b"\x05\x00EVIL",)),
    "zmtp2.0-greeting": Hostile(
        (b"\xff" + bytes(8) + b"\x7f" + b"\x01" + b"\x08" + b"\x00\x00" + b"\x00\x04EVIL",)
    ),
    "truncated-greeting-then-silence": Hostile(
        (greeting()[:20],), options={"HANDSHAKE_IVL": 300}, min_close_s=0.25
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
    "frame-size-2^64-1": Hostile((HANDSHAKE, long_header(2**64 - 1) + b"EVIL")),
    "frame-size-2^63": Hostile((HANDSHAKE, long_header(2**63) + b"EVIL")),
    "frame-size-2^40": Hostile((HANDSHAKE, long_header(2**40) + b"EVIL")),
    "frame-size-2^40-with-maxmsgsize": Hostile(
        (HANDSHAKE, long_header(2**40) + b"EVIL"), options={"MAXMSGSIZE": 1000}
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
    "unknown-command": Hostile((HANDSHAKE, encode_command(b"BOGUS", b"EVIL")), keep_open=True),
    "disconnect-mid-multipart": Hostile(
        (HANDSHAKE, frame(b"EVIL", more=True) + frame(b"EVIL", more=True)), peer_hangs_up=True
    ),
    "disconnect-mid-large-frame": Hostile(
        (HANDSHAKE, frame(b"EVIL", more=True) + long_header(100_000) + b"E" * 5000),
        peer_hangs_up=True,
    ),
}


def run_hostile(harness: Harness, address: tuple[str, int], case: Hostile) -> list[str]:
    """Open one hostile connection, send the case; return what went wrong with its ending."""
    raw = harness.raw(address)
    start = time.monotonic()
    send_chunks(raw, case.chunks)
    if case.peer_hangs_up:
        time.sleep(PAUSE_S)
        raw.close()
        return []
    if case.keep_open:
        closed, received = wait_closed(raw, 0.5)
        if closed:
            return ["libzmq keeps this connection open; zeropipe closed it"]
        # still a working connection: a PING is answered
        raw.sendall(encode_command(b"PING", b"\x00\x00ctx"))
        answered = read_until(
            raw, received, lambda data: (b"PONG", b"ctx") in parse_commands(data[64:])
        )
        raw.close()
        return [] if answered else ["the connection kept open does not answer PING"]
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
    return problems


@pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))
def test_hostile_peer(harness: Harness, case: Hostile) -> None:
    pull, address = harness.pull(**case.options)
    push = connect_good(harness, pull)
    problems = run_hostile(harness, address, case)
    assert_good_peer_unaffected(pull, push, problems)


@pytest.mark.parametrize(
    "name", ["http-request", "frame-size-2^64-1", "disconnect-mid-multipart", "unknown-command"]
)
def test_hostile_peer_next_to_a_pyzmq_push(harness: Harness, name: str) -> None:
    pull, address = harness.pull()
    push = connect_good(harness, pull, use_pyzmq=True)
    problems = run_hostile(harness, address, CASES[name])
    assert_good_peer_unaffected(pull, push, problems)


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
    assert read_until(raw, b"", lambda data: len(data) >= 64 + len(ready({"Socket-Type": b"PULL"})))
    if what == "ping":
        raw.sendall(encode_command(b"PING", b"\x00\x00ctx"))
        answered = read_until(raw, b"", lambda data: (b"PONG", b"ctx") in parse_commands(data))
        assert answered
    else:
        raw.sendall(long_header(2**64 - 1))
        closed, _ = wait_closed(raw, CLOSE_TIMEOUT_S)
        assert closed
