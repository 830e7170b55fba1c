"""Unit tests of the sans-I/O ZMTP 3.1 layer (zeropipe.protocol).

Two ``Connection`` objects are wired together by hand (as h11's tests do with a client and a
server), or one ``Connection`` is fed hand-built bytes. Nothing here opens a socket.

Facts come from RFC 23/37 and libzmq 4.3.5 (see research/zeromq-anchors.md 3.2-3.4 and
research/reliability.md 2.1).
"""

from __future__ import annotations

import random
import tracemalloc

import pytest

from zeropipe.protocol import (
    LARGE_FRAME,
    VALID_PEERS,
    Cancel,
    Connection,
    ConnectionState,
    HandshakeComplete,
    LocalProtocolError,
    PeerErrorReceived,
    Ping,
    Pong,
    RemoteProtocolError,
    SocketType,
    Subscribe,
    UnknownCommand,
    compatible,
    encode_frames,
    frame_header,
)
from zeropipe.protocol.commands import encode_error, encode_metadata
from zeropipe.protocol.connection import EAGER_ALLOC_LIMIT
from zeropipe.protocol.frames import FLAG_COMMAND, FLAG_LONG, FLAG_MORE, encode_command
from zeropipe.protocol.greeting import GREETING_SIZE, build_greeting

pytestmark = pytest.mark.timeout(20)

KiB = 1 << 10
MiB = 1 << 20

# -- wire helpers ------------------------------------------------------------------------------


def greeting(
    mechanism: bytes = b"NULL",
    *,
    as_server: int = 0,
    major: int = 3,
    minor: int = 1,
    padding: bytes = bytes(8),
    filler: bytes = bytes(31),
) -> bytes:
    """A peer greeting with every field under the test's control."""
    assert len(padding) == 8
    assert len(filler) == 31
    data = (
        b"\xff"
        + padding
        + b"\x7f"
        + bytes((major, minor))
        + mechanism.ljust(20, b"\x00")
        + bytes((as_server,))
        + filler
    )
    assert len(data) == GREETING_SIZE
    return data


def ready(properties: dict[str, bytes] | None = None) -> bytes:
    """A READY command frame; Socket-Type PUSH unless told otherwise."""
    if properties is None:
        properties = {"Socket-Type": b"PUSH"}
    return encode_command(b"READY", encode_metadata(properties))


def frame(body: bytes, *, more: bool = False, command: bool = False, long: bool = False) -> bytes:
    """One frame; ``long`` forces the 8-byte size encoding even for a short body."""
    flags = (FLAG_MORE if more else 0) | (FLAG_COMMAND if command else 0)
    if long or len(body) > 255:
        return bytes((flags | FLAG_LONG,)) + len(body).to_bytes(8, "big") + body
    return bytes((flags, len(body))) + body


def message(*frames: bytes) -> bytes:
    """The wire form of one data message, as the engine itself encodes it."""
    out: list[bytes] = []
    encode_frames(out, list(frames))  # type: ignore[arg-type]
    return b"".join(out)


def command(name: bytes, data: bytes = b"") -> bytes:
    return encode_command(name, data)


def parse_frames(data: bytes) -> list[tuple[int, bytes]]:
    """Decode complete frames (used to inspect what a Connection wants to send)."""
    frames = []
    pos = 0
    while pos < len(data):
        flags = data[pos]
        if flags & FLAG_LONG:
            size = int.from_bytes(data[pos + 1 : pos + 9], "big")
            pos += 9
        else:
            size = data[pos + 1]
            pos += 2
        assert pos + size <= len(data), "truncated frame in output"
        frames.append((flags, data[pos : pos + size]))
        pos += size
    return frames


def parse_commands(data: bytes) -> list[tuple[bytes, bytes]]:
    """(name, data) of every command in ``data``; fails on a data frame."""
    out = []
    for flags, body in parse_frames(data):
        assert flags & FLAG_COMMAND, f"unexpected data frame {body!r}"
        size = body[0]
        out.append((body[1 : 1 + size], body[1 + size :]))
    return out


def events(conn: Connection) -> list[object]:
    found = []
    event = conn.next_event()
    while event is not None:
        found.append(event)
        event = conn.next_event()
    return found


def messages(conn: Connection) -> list[bytes | list[bytes]]:
    """Pop every delivered message, normalised to bytes / list of bytes."""
    out: list[bytes | list[bytes]] = []
    while conn.messages:
        msg = conn.messages.popleft()
        if isinstance(msg, list):
            out.append([bytes(f) for f in msg])
        else:
            out.append(bytes(msg))
    return out


def feed(conn: Connection, data: bytes, step: int | None = None) -> None:
    """Feed ``data`` whole, or in pieces of ``step`` bytes."""
    if step is None:
        conn.receive_data(data)
        return
    for i in range(0, len(data), step):
        conn.receive_data(data[i : i + step])


def new_server(socket_type: SocketType = SocketType.PULL, **kwargs: object) -> Connection:
    conn = Connection(socket_type, as_server=True, **kwargs)  # type: ignore[arg-type]
    conn.initiate()
    assert conn.data_to_send() == build_greeting(b"NULL", False)
    return conn


def ready_server(
    socket_type: SocketType = SocketType.PULL,
    peer_properties: dict[str, bytes] | None = None,
    **kwargs: object,
) -> Connection:
    """A server Connection whose handshake with a raw peer has completed."""
    conn = new_server(socket_type, **kwargs)
    conn.receive_data(greeting() + ready(peer_properties))
    assert conn.state is ConnectionState.READY
    found = events(conn)
    assert len(found) == 1
    assert isinstance(found[0], HandshakeComplete)
    conn.data_to_send()
    return conn


def pump(a: Connection, b: Connection) -> None:
    """Exchange bytes between two Connections until both are quiet."""
    for _ in range(20):
        da, db = a.data_to_send(), b.data_to_send()
        if not da and not db:
            return
        if da:
            b.receive_data(da)
        if db:
            a.receive_data(db)
    raise AssertionError("the connections never went quiet")


def connected_pair(
    client_type: SocketType, server_type: SocketType, **client_kwargs: object
) -> tuple[Connection, Connection, HandshakeComplete, HandshakeComplete]:
    client = Connection(client_type, **client_kwargs)  # type: ignore[arg-type]
    server = Connection(server_type, as_server=True)
    client.initiate()
    server.initiate()
    pump(client, server)
    ce, se = events(client), events(server)
    (cev,) = ce
    (sev,) = se
    assert isinstance(cev, HandshakeComplete), ce
    assert isinstance(sev, HandshakeComplete), se
    return client, server, cev, sev


def assert_closed(conn: Connection) -> None:
    assert conn.state is ConnectionState.CLOSED
    with pytest.raises(RemoteProtocolError):
        conn.receive_data(message(b"after close"))
    assert not conn.messages


# -- the socket-type table ---------------------------------------------------------------------

RFC37_PEERS = {
    "PAIR": {"PAIR"},
    "PUB": {"SUB", "XSUB"},
    "XPUB": {"SUB", "XSUB"},
    "SUB": {"PUB", "XPUB"},
    "XSUB": {"PUB", "XPUB"},
    "REQ": {"REP", "ROUTER"},
    "REP": {"REQ", "DEALER"},
    "DEALER": {"REP", "DEALER", "ROUTER"},
    "ROUTER": {"REQ", "DEALER", "ROUTER"},
    "PUSH": {"PULL"},
    "PULL": {"PUSH"},
}

VALID_PAIRS = sorted(
    ((ours, theirs) for ours, peers in VALID_PEERS.items() for theirs in peers),
    key=lambda p: (p[0].name, p[1].name),
)

INVALID_PAIRS = [
    (SocketType.PUSH, SocketType.PUSH),
    (SocketType.PULL, SocketType.PULL),
    (SocketType.PUB, SocketType.PULL),
    (SocketType.PUB, SocketType.PUB),
    (SocketType.SUB, SocketType.SUB),
    (SocketType.XPUB, SocketType.PUB),
    (SocketType.REQ, SocketType.REQ),
    (SocketType.REQ, SocketType.DEALER),
    (SocketType.REP, SocketType.ROUTER),
    (SocketType.PAIR, SocketType.DEALER),
    (SocketType.PUSH, SocketType.SUB),
    (SocketType.STREAM, SocketType.STREAM),
]


def test_valid_peers_table_matches_rfc37() -> None:
    table = {t.name: {p.name for p in peers} for t, peers in VALID_PEERS.items()}
    assert table == RFC37_PEERS
    for ours in SocketType:
        for theirs in SocketType:
            assert compatible(ours, theirs) == compatible(theirs, ours), (ours, theirs)


@pytest.mark.parametrize(
    ("client_type", "server_type"), VALID_PAIRS, ids=[f"{a.name}-{b.name}" for a, b in VALID_PAIRS]
)
def test_null_handshake_between_valid_peers(
    client_type: SocketType, server_type: SocketType
) -> None:
    client, server, cev, sev = connected_pair(client_type, server_type)
    assert client.state is server.state is ConnectionState.READY
    assert cev.peer_type is server_type
    assert sev.peer_type is client_type
    assert cev.peer_minor == sev.peer_minor == 1
    assert cev.metadata.get_ci("Socket-Type") == server_type.name.encode()
    assert sev.metadata.get_ci("Socket-Type") == client_type.name.encode()
    assert client.peer_greeting is not None
    assert not client.peer_greeting.as_server  # NULL has no server role: the bit is 0
    assert server.peer_greeting is not None
    assert not server.peer_greeting.as_server
    # data flows both ways once READY
    client.send_message([b"one"])
    server.send_message([b"two", b"", b"x" * 300])
    pump(client, server)
    assert messages(server) == [b"one"]
    assert messages(client) == [[b"two", b"", b"x" * 300]]


@pytest.mark.parametrize(
    ("client_type", "server_type"),
    INVALID_PAIRS,
    ids=[f"{a.name}-{b.name}" for a, b in INVALID_PAIRS],
)
def test_null_handshake_between_invalid_peers_is_refused(
    client_type: SocketType, server_type: SocketType
) -> None:
    client = Connection(client_type)
    server = Connection(server_type, as_server=True)
    client.initiate()
    server.initiate()
    server.receive_data(client.data_to_send())  # client's greeting: server sends READY
    with pytest.raises(RemoteProtocolError):
        client.receive_data(server.data_to_send())  # server's greeting + READY
    assert client.state is ConnectionState.CLOSED
    sent = parse_commands(client.data_to_send())
    assert sent[-1] == (b"ERROR", encode_error("Invalid socket type"))
    assert [name for name, _ in sent[:-1]] == [b"READY"]
    # the server refuses the client's READY on its own as well
    with pytest.raises(RemoteProtocolError):
        server.receive_data(encode_command(*sent[0]))
    assert server.state is ConnectionState.CLOSED
    assert parse_commands(server.data_to_send()) == [
        (b"ERROR", encode_error("Invalid socket type"))
    ]
    assert not events(client)
    assert not events(server)
    assert_closed(client)
    assert_closed(server)


@pytest.mark.parametrize(
    "properties",
    [
        {},
        {"Identity": b"abc"},
        {"Socket-Type": b"FOO"},
        {"Socket-Type": b""},
        {"Socket-Type": b"push"},  # libzmq compares the value case-sensitively
        {"Socket-Type": b"PUSH\x00"},
    ],
    ids=["none", "identity-only", "unknown", "empty", "lowercase", "nul-suffix"],
)
def test_missing_or_unknown_socket_type_is_refused(properties: dict[str, bytes]) -> None:
    conn = new_server()
    with pytest.raises(RemoteProtocolError):
        conn.receive_data(greeting() + ready(properties))
    assert conn.state is ConnectionState.CLOSED
    sent = parse_commands(conn.data_to_send())
    assert sent == [
        (b"READY", encode_metadata({"Socket-Type": b"PULL"})),
        (b"ERROR", encode_error("Invalid socket type")),
    ]
    assert not events(conn)
    assert_closed(conn)


def test_property_names_are_case_insensitive() -> None:
    conn = ready_server(peer_properties={"socket-TYPE": b"PUSH", "X-App": b"v"})
    conn.receive_data(message(b"hi"))
    assert messages(conn) == [b"hi"]


def test_we_announce_our_socket_type() -> None:
    conn = new_server(SocketType.PULL)
    conn.receive_data(greeting())
    assert parse_commands(conn.data_to_send()) == [
        (b"READY", encode_metadata({"Socket-Type": b"PULL"}))
    ]


# -- greeting --------------------------------------------------------------------------------

LENIENT_GREETINGS = {
    "padding-nonzero": greeting(padding=b"\x00\x00\x00\x00\x00\x00\x00\x01"),
    "padding-all-ff": greeting(padding=b"\xff" * 8),
    "as-server-1-with-null": greeting(as_server=1),
    "minor-0": greeting(minor=0),
    "minor-7": greeting(minor=7),
    "major-4": greeting(major=4, minor=0),
    "filler-garbage": greeting(filler=b"\xaa" * 31),
    "everything": greeting(
        padding=b"\x01" * 8, as_server=1, major=9, minor=255, filler=b"\x55" * 31
    ),
}


@pytest.mark.parametrize(
    "peer_greeting", list(LENIENT_GREETINGS.values()), ids=list(LENIENT_GREETINGS)
)
@pytest.mark.parametrize("step", [None, 1, 7], ids=["whole", "bytewise", "7-bytes"])
def test_greeting_leniency(peer_greeting: bytes, step: int | None) -> None:
    conn = new_server()
    feed(conn, peer_greeting + ready() + message(b"payload"), step)
    assert conn.state is ConnectionState.READY
    (event,) = events(conn)
    assert isinstance(event, HandshakeComplete)
    assert event.peer_minor == peer_greeting[11]
    assert conn.peer_greeting is not None
    assert conn.peer_greeting.major == peer_greeting[10]
    assert messages(conn) == [b"payload"]


HOSTILE_GREETINGS = {
    # name: (bytes, how many bytes are needed to see it is not ZMTP 3.x)
    "http": (b"GET / HTTP/1.1\r\nHost: example\r\n\r\n" + bytes(40), 1),
    "zmtp1.0-short-form": (b"\x01\x00" + b"\x06\x00hello" + bytes(60), 1),
    "zmtp1.0-long-form": (b"\xff" + (5).to_bytes(8, "big") + b"\x00" + bytes(60), 10),
    "zmtp2.0": (b"\xff" + bytes(8) + b"\x7f\x01\x00" + bytes(60), 11),
    "zmtp2.x-major-2": (b"\xff" + bytes(8) + b"\x7f\x02\x01" + bytes(60), 11),
    "major-0": (b"\xff" + bytes(8) + b"\x7f\x00\x01" + bytes(60), 11),
    "tls-client-hello": (b"\x16\x03\x01\x02\x00\x01" + bytes(70), 1),
    "nul-bytes": (bytes(80), 1),
}


@pytest.mark.parametrize(
    ("data", "refused_at"), list(HOSTILE_GREETINGS.values()), ids=list(HOSTILE_GREETINGS)
)
def test_non_zmtp3_greeting_is_refused_as_early_as_possible(data: bytes, refused_at: int) -> None:
    conn = new_server()
    for i in range(refused_at - 1):
        conn.receive_data(data[i : i + 1])
        assert conn.state is ConnectionState.GREETING
    with pytest.raises(RemoteProtocolError):
        conn.receive_data(data[refused_at - 1 : refused_at])
    assert conn.state is ConnectionState.CLOSED
    assert conn.data_to_send() == b"", "nothing (no READY, no ERROR) goes to a non-ZMTP 3 peer"
    assert_closed(conn)


@pytest.mark.parametrize(
    "data", [v[0] for v in HOSTILE_GREETINGS.values()], ids=list(HOSTILE_GREETINGS)
)
def test_non_zmtp3_greeting_in_one_chunk_is_refused(data: bytes) -> None:
    conn = new_server()
    with pytest.raises(RemoteProtocolError):
        conn.receive_data(data)
    assert_closed(conn)


@pytest.mark.parametrize("mechanism", [b"PLAIN", b"CURVE", b"GSSAPI", b"FOO", b"", b"null"])
def test_mechanism_mismatch_is_refused(mechanism: bytes) -> None:
    conn = new_server()
    with pytest.raises(RemoteProtocolError):
        conn.receive_data(greeting(mechanism) + ready())
    assert conn.state is ConnectionState.CLOSED
    assert conn.data_to_send() == b"", "no READY (metadata) is sent to a mismatched peer"
    assert not events(conn)
    assert_closed(conn)


def test_partial_greeting_keeps_waiting() -> None:
    conn = new_server()
    conn.receive_data(greeting()[:20])
    assert conn.state is ConnectionState.GREETING
    assert conn.data_to_send() == b""
    conn.receive_data(greeting()[20:])
    assert conn.state is ConnectionState.HANDSHAKE
    assert parse_commands(conn.data_to_send())[0][0] == b"READY"


# -- handshake -------------------------------------------------------------------------------

BAD_METADATA = {
    "value-length-overruns": b"\x0bSocket-Type" + (1000).to_bytes(4, "big") + b"PUSH",
    "value-length-max": b"\x0bSocket-Type" + b"\xff\xff\xff\xff" + b"PUSH",
    "name-length-overruns": b"\x40Socket-Type",
    "name-length-zero": b"\x00" + (4).to_bytes(4, "big") + b"PUSH",
    "value-length-truncated": b"\x0bSocket-Type\x00\x00\x00",
    "second-property-overruns": encode_metadata({"Socket-Type": b"PUSH"})
    + b"\x08Identity"
    + (5).to_bytes(4, "big")
    + b"ab",
    "non-ascii-name": b"\x02\xff\xfe" + (0).to_bytes(4, "big"),
}


@pytest.mark.parametrize("metadata", list(BAD_METADATA.values()), ids=list(BAD_METADATA))
def test_ready_with_malformed_metadata_is_refused(metadata: bytes) -> None:
    conn = new_server()
    with pytest.raises(RemoteProtocolError):
        conn.receive_data(greeting() + command(b"READY", metadata))
    assert not events(conn)
    assert_closed(conn)


def test_ready_with_large_metadata_is_accepted() -> None:
    """CVE-2019-13132: metadata of any size must parse (here 100 KiB and a 255-byte id)."""
    routing_id = bytes(range(1, 256))
    conn = new_server(SocketType.ROUTER)
    data = greeting() + ready(
        {"Socket-Type": b"DEALER", "Identity": routing_id, "X-Big": b"z" * (100 * KiB)}
    )
    feed(conn, data, 4096)
    (event,) = events(conn)
    assert isinstance(event, HandshakeComplete)
    assert event.routing_id == routing_id
    assert event.metadata.get_ci("x-big") == b"z" * (100 * KiB)


def test_identity_longer_than_255_bytes_is_refused() -> None:
    conn = new_server(SocketType.ROUTER)
    with pytest.raises(RemoteProtocolError):
        conn.receive_data(greeting() + ready({"Socket-Type": b"DEALER", "Identity": b"i" * 256}))
    assert_closed(conn)


def test_identity_property_becomes_routing_id() -> None:
    _client, _server, _cev, sev = connected_pair(
        SocketType.DEALER, SocketType.ROUTER, routing_id=b"dealer-1"
    )
    assert sev.routing_id == b"dealer-1"
    conn = new_server(SocketType.ROUTER)
    conn.receive_data(greeting() + ready({"socket-type": b"REQ", "identity": b"\x01req"}))
    (event,) = events(conn)
    assert isinstance(event, HandshakeComplete)
    assert event.routing_id == b"\x01req"


def test_routing_types_announce_identity_and_others_do_not() -> None:
    dealer = Connection(SocketType.DEALER, routing_id=b"me")
    dealer.initiate()
    dealer.data_to_send()
    dealer.receive_data(greeting())
    ((name, data),) = parse_commands(dealer.data_to_send())
    assert name == b"READY"
    assert data == encode_metadata({"Socket-Type": b"DEALER", "Identity": b"me"})
    push = Connection(SocketType.PUSH, routing_id=b"me")
    push.initiate()
    push.data_to_send()
    push.receive_data(greeting())
    assert parse_commands(push.data_to_send()) == [
        (b"READY", encode_metadata({"Socket-Type": b"PUSH"}))
    ]


def test_routing_id_starting_with_zero_byte_is_a_local_error() -> None:
    with pytest.raises(LocalProtocolError):
        Connection(SocketType.DEALER, routing_id=b"\x00abc")


@pytest.mark.parametrize("minor", [0, 1, 7])
def test_peer_minor_is_reported(minor: int) -> None:
    conn = new_server()
    conn.receive_data(greeting(minor=minor) + ready())
    (event,) = events(conn)
    assert isinstance(event, HandshakeComplete)
    assert event.peer_minor == minor
    assert conn.peer_greeting is not None
    assert conn.peer_greeting.minor == minor


@pytest.mark.parametrize(
    "early",
    [
        message(b"data"),
        message(b"part", b"last"),
        command(b"PING", b"\x00\x00"),
        command(b"SUBSCRIBE", b"topic"),
        command(b"BOGUS"),
    ],
    ids=["data", "multipart", "ping", "subscribe", "unknown-command"],
)
def test_traffic_before_ready_is_refused(early: bytes) -> None:
    conn = new_server()
    with pytest.raises(RemoteProtocolError):
        conn.receive_data(greeting() + early + ready())
    assert not events(conn)
    sent = parse_commands(conn.data_to_send())
    assert sent[0][0] == b"READY"
    assert all(name in (b"READY", b"ERROR") for name, _ in sent)
    assert_closed(conn)


def test_peer_error_during_handshake() -> None:
    conn = new_server()
    with pytest.raises(PeerErrorReceived) as info:
        conn.receive_data(greeting() + command(b"ERROR", encode_error("go away")))
    assert info.value.reason == "go away"
    assert_closed(conn)


def test_second_ready_is_refused() -> None:
    conn = ready_server()
    with pytest.raises(RemoteProtocolError):
        conn.receive_data(ready())
    assert_closed(conn)


@pytest.mark.parametrize(
    "body",
    [b"", b"\x00", b"\x00PING", b"\x05PIN", b"\xff"],
    ids=["empty", "name-length-0", "name-length-0-with-data", "name-overruns", "ff"],
)
@pytest.mark.parametrize("when", ["handshake", "ready"])
def test_malformed_command_body_is_refused(body: bytes, when: str) -> None:
    conn = new_server() if when == "handshake" else ready_server()
    data = (greeting() if when == "handshake" else b"") + frame(body, command=True)
    with pytest.raises(RemoteProtocolError):
        conn.receive_data(data)
    assert_closed(conn)


# -- framing ---------------------------------------------------------------------------------


@pytest.mark.parametrize("when", ["handshake", "ready"])
@pytest.mark.parametrize("name", [b"PING", b"READY", b"BOGUS"])
def test_command_with_more_flag_is_refused(when: str, name: bytes) -> None:
    conn = new_server() if when == "handshake" else ready_server()
    body = bytes((len(name),)) + name + (b"\x00\x00" if name == b"PING" else b"")
    bad = frame(body, more=True, command=True)
    assert bad[0] == FLAG_COMMAND | FLAG_MORE
    data = (greeting() if when == "handshake" else b"") + bad
    with pytest.raises(RemoteProtocolError):
        conn.receive_data(data)
    assert_closed(conn)


@pytest.mark.parametrize(
    "cmd",
    [command(b"PING", b"\x00\x00"), command(b"BOGUS"), command(b"SUBSCRIBE", b"t")],
    ids=["ping", "unknown", "subscribe"],
)
@pytest.mark.parametrize("long_frames", [False, True], ids=["short", "long"])
def test_command_inside_multipart_is_refused(cmd: bytes, long_frames: bool) -> None:
    conn = ready_server()
    head = frame(b"h" * (300 if long_frames else 3), more=True)
    with pytest.raises(RemoteProtocolError):
        conn.receive_data(head + cmd + frame(b"tail"))
    assert not events(conn)
    assert_closed(conn)


FRAME_SIZES = [0, 1, 255, 256, 65535, 65536, MiB]


def _blob(size: int) -> bytes:
    """Deterministic non-repeating bytes, so a shifted or truncated body is detected."""
    return random.Random(size).randbytes(size)


@pytest.mark.parametrize("size", FRAME_SIZES)
@pytest.mark.parametrize("split", ["whole", "header-apart", "thirds", "small-steps"])
def test_frame_sizes(size: int, split: str) -> None:
    body = _blob(size)
    data = message(body)
    assert data[: len(data) - size] == frame_header(size)
    assert len(data) - size == (2 if size < 256 else 9)
    conn = ready_server()
    header = len(data) - size
    if split == "whole":
        feed(conn, data)
    elif split == "header-apart":
        feed(conn, data[:1])
        feed(conn, data[1:header])
        feed(conn, data[header:])
    elif split == "thirds":
        third = max(1, len(data) // 3)
        feed(conn, data, third)
    else:
        feed(conn, data, 1 if size < 1000 else 4093)
    assert messages(conn) == [body]
    # the connection is still in sync afterwards
    conn.receive_data(message(b"next"))
    assert messages(conn) == [b"next"]


@pytest.mark.parametrize("size", [0, 2, 255])
def test_long_size_encoding_of_tiny_frames_is_accepted(size: int) -> None:
    body = b"q" * size
    conn = ready_server()
    conn.receive_data(frame(body, long=True))
    conn.receive_data(frame(body, long=True, more=True) + frame(b"end", long=True))
    conn.receive_data(frame(b"\x04PING\x00\x01", command=True, long=True))
    assert messages(conn) == [body, [body, b"end"]]
    assert events(conn) == [Ping(1, b"")]


def test_reserved_flag_bits_are_ignored_like_libzmq() -> None:
    conn = ready_server()
    conn.receive_data(b"\xf0\x03abc" + b"\xf1\x01x" + b"\xf0\x01y")
    assert messages(conn) == [b"abc", [b"x", b"y"]]


def test_multipart_is_assembled_into_one_list() -> None:
    parts = [b"a", b"", b"c" * 300, b"d" * 70_000, b"e"]
    conn = ready_server()
    data = message(*parts)
    pieces = []
    pos = 0
    for part in parts:
        size = (2 if len(part) < 256 else 9) + len(part)
        pieces.append(data[pos : pos + size])
        pos += size
    for piece in pieces[:-1]:
        conn.receive_data(piece)
        assert not conn.messages, "a multipart message is held back until its last frame"
    conn.receive_data(pieces[-1])
    assert messages(conn) == [parts]


def test_many_messages_in_one_chunk_keep_their_order() -> None:
    msgs: list[list[bytes]] = [[b"m%d" % i] if i % 3 else [b"m%d" % i, b"x"] for i in range(500)]
    conn = ready_server()
    conn.receive_data(b"".join(message(*m) for m in msgs))
    assert messages(conn) == [m[0] if len(m) == 1 else m for m in msgs]


@pytest.mark.parametrize("size", [2**64 - 1, 2**63], ids=["2^64-1", "2^63"])
@pytest.mark.parametrize(
    "flags",
    [FLAG_LONG, FLAG_LONG | FLAG_MORE, FLAG_LONG | FLAG_COMMAND],
    ids=["data", "data-more", "command"],
)
def test_oversized_frame_is_refused_before_any_allocation(size: int, flags: int) -> None:
    conn = ready_server()
    header = bytes((flags,)) + size.to_bytes(8, "big")
    tracemalloc.start()
    try:
        with pytest.raises(RemoteProtocolError):
            conn.receive_data(header + b"x" * 100)
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < MiB
    assert_closed(conn)


@pytest.mark.parametrize("in_handshake_chunk", [False, True], ids=["own-chunk", "with-ready"])
def test_huge_declared_frame_is_not_allocated_up_front(in_handshake_chunk: bool) -> None:
    """2**40 is a legal ZMTP size: the buffer starts at most EAGER_ALLOC_LIMIT bytes and then
    grows with the data actually received (never 1 TiB)."""
    size = 2**40
    header = bytes((FLAG_LONG,)) + size.to_bytes(8, "big")
    fed = 8 * MiB
    tracemalloc.start()
    try:
        if in_handshake_chunk:
            conn = new_server()
            conn.receive_data(greeting() + ready() + header + b"a" * 1000)
        else:
            conn = ready_server()
            conn.receive_data(header + b"a" * 1000)
        _current, peak = tracemalloc.get_traced_memory()
        assert peak < EAGER_ALLOC_LIMIT + MiB
        assert conn.want_buffer() == size - 1000
        for _ in range(fed // MiB):
            conn.receive_data(b"b" * MiB)
        _current, peak = tracemalloc.get_traced_memory()
        # doubling growth plus the temporary copies it makes: a small multiple of the data
        assert peak < 4 * (EAGER_ALLOC_LIMIT + fed)
        assert conn.want_buffer() == size - 1000 - fed
        assert not conn.messages
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize(
    "flags",
    [FLAG_LONG, FLAG_LONG | FLAG_MORE, FLAG_LONG | FLAG_COMMAND],
    ids=["data", "data-more", "command"],
)
def test_frame_size_limit_is_enforced_from_the_header(flags: int) -> None:
    """The transport caps frames (e.g. at physical memory); commands are capped as well."""
    limit = 100_000
    conn = ready_server(frame_size_limit=limit)
    conn.receive_data(frame(b"x" * limit))
    assert messages(conn) == [b"x" * limit]
    with pytest.raises(RemoteProtocolError):
        conn.receive_data(bytes((flags,)) + (limit + 1).to_bytes(8, "big"))
    assert_closed(conn)


def test_frame_size_limit_never_exceeds_the_protocol_limit() -> None:
    conn = ready_server(frame_size_limit=2**70)
    with pytest.raises(RemoteProtocolError):
        conn.receive_data(bytes((FLAG_LONG,)) + (2**63).to_bytes(8, "big"))
    assert_closed(conn)


# -- MAXMSGSIZE ------------------------------------------------------------------------------

CHUNKING = pytest.mark.parametrize(
    "same_chunk", [True, False], ids=["same-chunk-as-ready", "own-chunk"]
)


def _handshake(conn: Connection, same_chunk: bool) -> bytes:
    """Complete the handshake now, or return its bytes to be sent with the next data."""
    if same_chunk:
        return greeting() + ready()
    conn.receive_data(greeting() + ready())
    assert conn.state is ConnectionState.READY
    return b""


def _limited(limit: int, data: bytes, same_chunk: bool) -> Connection:
    """A PULL with max_msg_size=limit fed a handshake and then ``data``."""
    conn = new_server(max_msg_size=limit)
    conn.receive_data(_handshake(conn, same_chunk) + data)
    return conn


@CHUNKING
def test_maxmsgsize_accepts_exact_limit(same_chunk: bool) -> None:
    conn = _limited(1000, message(b"x" * 1000) + message(b"y" * 400, b"z" * 600), same_chunk)
    assert messages(conn) == [b"x" * 1000, [b"y" * 400, b"z" * 600]]


@CHUNKING
def test_maxmsgsize_refuses_long_frame_from_its_header(same_chunk: bool) -> None:
    header = bytes((FLAG_LONG,)) + (1001).to_bytes(8, "big")
    with pytest.raises(RemoteProtocolError):
        _limited(1000, header, same_chunk)


@CHUNKING
def test_maxmsgsize_refuses_long_multipart_total(same_chunk: bool) -> None:
    data = frame(b"a" * 600, more=True) + frame(b"b" * 401)
    conn = new_server(max_msg_size=1000)
    prefix = _handshake(conn, same_chunk)
    with pytest.raises(RemoteProtocolError):
        conn.receive_data(prefix + data)
    assert not conn.messages
    assert_closed(conn)


@CHUNKING
def test_maxmsgsize_refuses_short_frame(same_chunk: bool) -> None:
    """MAXMSGSIZE=100 and a 200-byte (short-encoded) frame: refused like any other."""
    conn = new_server(max_msg_size=100)
    prefix = _handshake(conn, same_chunk)
    with pytest.raises(RemoteProtocolError):
        conn.receive_data(prefix + message(b"s" * 200))
    assert not conn.messages
    assert_closed(conn)


@CHUNKING
def test_maxmsgsize_refuses_multipart_of_short_frames(same_chunk: bool) -> None:
    data = message(*([b"p" * 255] * 5))  # 1275 bytes in short frames
    conn = new_server(max_msg_size=1000)
    prefix = _handshake(conn, same_chunk)
    with pytest.raises(RemoteProtocolError):
        conn.receive_data(prefix + data)
    assert not conn.messages
    assert_closed(conn)


@CHUNKING
def test_maxmsgsize_counts_each_message_separately(same_chunk: bool) -> None:
    """A multipart ending in a short frame must not leave its size counted for the next one."""
    first = message(b"a" * 600, b"b")
    second = message(b"c" * 600)
    conn = new_server(max_msg_size=1000)
    conn.receive_data(_handshake(conn, same_chunk) + first)
    conn.receive_data(second)
    assert messages(conn) == [[b"a" * 600, b"b"], b"c" * 600]


# -- commands after the handshake ------------------------------------------------------------


@pytest.mark.parametrize("context_size", [0, 1, 16, 17, 100])
def test_ping_is_answered_with_pong_echoing_at_most_16_bytes(context_size: int) -> None:
    context = bytes(range(65, 65 + context_size)) if context_size < 60 else b"c" * context_size
    conn = ready_server()
    conn.receive_data(command(b"PING", (50).to_bytes(2, "big") + context))
    assert events(conn) == [Ping(50, context[:16])]
    assert parse_commands(conn.data_to_send()) == [(b"PONG", context[:16])]
    assert conn.state is ConnectionState.READY


@pytest.mark.parametrize("data", [b"", b"\x00"], ids=["empty", "one-byte"])
def test_ping_shorter_than_its_ttl_is_refused(data: bytes) -> None:
    conn = ready_server()
    with pytest.raises(RemoteProtocolError):
        conn.receive_data(command(b"PING", data))
    assert conn.data_to_send() == b"", "no PONG for a malformed PING"
    assert_closed(conn)


def test_pong_becomes_an_event() -> None:
    conn = ready_server()
    conn.receive_data(command(b"PONG", b"ctx") + command(b"PONG", b"p" * 40))
    assert events(conn) == [Pong(b"ctx"), Pong(b"p" * 16)]


def test_ping_pong_between_two_connections() -> None:
    client, server, _, _ = connected_pair(SocketType.PUSH, SocketType.PULL)
    client.send_ping(ttl_ds=30, context=b"0123456789abcdefXYZ")
    pump(client, server)
    assert events(server) == [Ping(30, b"0123456789abcdef")]
    assert events(client) == [Pong(b"0123456789abcdef")]


def test_unknown_command_is_ignored() -> None:
    conn = ready_server()
    conn.receive_data(command(b"BOGUS", b"whatever") + message(b"after"))
    assert events(conn) == [UnknownCommand(b"BOGUS")]
    assert conn.state is ConnectionState.READY
    assert conn.data_to_send() == b""
    assert messages(conn) == [b"after"]


def test_subscribe_and_cancel_events() -> None:
    conn = ready_server(SocketType.PUB, {"Socket-Type": b"SUB"})
    conn.receive_data(
        command(b"SUBSCRIBE", b"A")
        + command(b"SUBSCRIBE", b"")
        + command(b"CANCEL", b"A")
        + command(b"SUBSCRIBE", b"\x00bin\xff")
    )
    assert events(conn) == [
        Subscribe(b"A"),
        Subscribe(b""),
        Cancel(b"A"),
        Subscribe(b"\x00bin\xff"),
    ]
    assert conn.state is ConnectionState.READY


def test_huge_subscription_topic() -> None:
    """GHSA-qq65-x72m-9wr8: a 1 MiB topic, delivered through the large-frame path."""
    topic = _blob(MiB)
    conn = ready_server(SocketType.XPUB, {"Socket-Type": b"SUB"})
    feed(conn, command(b"SUBSCRIBE", topic) + command(b"CANCEL", topic), 65536)
    assert events(conn) == [Subscribe(topic), Cancel(topic)]


def test_error_command_after_handshake_closes() -> None:
    conn = ready_server()
    with pytest.raises(RemoteProtocolError):
        conn.receive_data(command(b"ERROR", encode_error("bye")))
    assert_closed(conn)


# -- large frames through get_buffer / buffer_updated -----------------------------------------


def _recv_into(conn: Connection, source: bytes, chunk: int) -> bytes:
    """Fill the large frame as a transport does with recv_into; return what was left over."""
    pos = 0
    while conn.want_buffer() and pos < len(source):
        view = conn.get_buffer()
        try:
            n = min(len(view), chunk, len(source) - pos)
            view[:n] = source[pos : pos + n]
        finally:
            view.release()
        conn.buffer_updated(n)
        pos += n
    return source[pos:]


@pytest.mark.parametrize("size", [LARGE_FRAME, 200_000])
def test_medium_large_frame_via_read_hint(size: int) -> None:
    """Below EAGER_ALLOC_LIMIT a large body is read as bytes pieces, sized by read_hint()."""
    body = _blob(size)
    data = message(body)
    conn = ready_server()
    assert conn.read_hint() == 0
    conn.receive_data(data[:100])
    assert conn.want_buffer() == 0  # no buffer of its own: read it as bytes
    assert conn.read_hint() == len(data) - 100
    left = data[100:]
    while left:
        take = min(conn.read_hint(), 70_000)
        conn.receive_data(left[:take])
        left = left[take:]
    assert messages(conn) == [body]
    assert conn.read_hint() == 9  # next: only a header, so another large body needs no copy
    conn.receive_data(message(b"small"))
    assert messages(conn) == [b"small"]
    assert conn.read_hint() == 0


@pytest.mark.parametrize("size", [3 * MiB + 5])
def test_large_frame_via_get_buffer(size: int) -> None:
    body = _blob(size)
    data = message(body)
    conn = ready_server()
    assert conn.want_buffer() == 0
    with pytest.raises(LocalProtocolError):
        conn.get_buffer()
    conn.receive_data(data[:100])
    assert conn.want_buffer() == len(data) - 100
    rest = _recv_into(conn, data[100:], 50_000)
    assert rest == b""
    assert conn.want_buffer() == 0
    assert messages(conn) == [body]
    conn.receive_data(message(b"small"))
    assert messages(conn) == [b"small"]


def test_large_multipart_via_get_buffer() -> None:
    big = _blob(100_000)
    conn = ready_server()
    data = message(b"head", big, big, b"tail")
    conn.receive_data(data[:20])
    left = data[20:]
    while left:
        if conn.want_buffer():
            left = _recv_into(conn, left, 30_000)
        else:
            conn.receive_data(left[:1000])
            left = left[1000:]
        if left:
            assert not conn.messages
    assert messages(conn) == [[b"head", big, big, b"tail"]]


def test_frame_larger_than_eager_limit_grows_correctly() -> None:
    size = EAGER_ALLOC_LIMIT + 12345
    pattern = bytes(range(256)) * 4096
    body = (pattern * (size // len(pattern) + 1))[:size]
    conn = ready_server()
    conn.receive_data(frame_header(size) + body[:10])
    rest = _recv_into(conn, body[10:], 8 * MiB)
    assert rest == b""
    (got,) = conn.messages
    assert len(got) == size
    assert got == body


def test_large_frame_and_following_data_in_one_chunk() -> None:
    big = _blob(70_000)
    conn = ready_server()
    data = message(big) + message(b"after") + command(b"PING", b"\x00\x00")
    conn.receive_data(data[:50])
    conn.receive_data(data[50:])
    assert messages(conn) == [big, b"after"]
    assert events(conn) == [Ping(0, b"")]


# -- local misuse ----------------------------------------------------------------------------


def test_local_protocol_errors() -> None:
    conn = Connection(SocketType.PUSH)
    with pytest.raises(LocalProtocolError):
        conn.send_message([b"too early"])
    with pytest.raises(LocalProtocolError):
        conn.send_ping()
    conn.initiate()
    with pytest.raises(LocalProtocolError):
        conn.initiate()
    with pytest.raises(LocalProtocolError):
        conn.send_command(b"SUBSCRIBE", b"x")


def test_data_to_send_is_drained() -> None:
    conn = Connection(SocketType.PUSH)
    assert not conn.has_data_to_send
    conn.initiate()
    assert conn.has_data_to_send
    assert conn.data_to_send() == build_greeting(b"NULL", False)
    assert conn.data_to_send() == b""
