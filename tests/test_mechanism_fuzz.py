"""Property tests of the NULL (with ZAP), PLAIN and CURVE handshakes over the sans-I/O Connection.

A client and a server ``Connection`` are wired together in memory by two links (one per
direction) that carry bytes in drawn chunk sizes (optionally through ``get_buffer``) and can
apply one mutation to one frame of their direction's stream. The server's ZAP requests are
answered with a drawn verdict.

(a) Clean sessions: the handshake completes, and messages, PINGs (with their PONGs) and
    SUBSCRIBE/CANCEL (as events, or in the message stream) sent both ways arrive exactly, in
    order; the server sees the ZAP handler's User-Id and metadata, never the one the client
    claims.
(b) Mutated sessions (bit flips, truncations, cut streams, dropped, duplicated, swapped,
    replaced or inserted frames, lying size fields, arbitrary bytes from some frame on), on the
    client's stream (the server under test) or the server's (the client under test), at every
    stage from the greeting to after READY:
    * only ``RemoteProtocolError`` (or a subclass) ever escapes ``receive_data``,
      ``buffer_updated`` or ``zap_reply``; after one the connection is CLOSED, refuses more
      bytes with ``RemoteProtocolError`` and delivers nothing more;
    * no message comes before the handshake completes, and everything the sender finished
      before the mutated frame is delivered exactly;
    * with CURVE nothing is delivered that was not sent: what arrives is a prefix of what was
      sent, or (a dropped or reordered frame) that prefix less one frame. The short nonce of
      CurveZMQ must grow, not grow by one (libzmq checks ``nonce > peer nonce`` too), so a
      frame removed from the stream goes unnoticed and may join two multipart messages: the
      oracle compares frames in that case, not message boundaries;
    * a short frame re-sent with a long header is the same frame: the session is unchanged.
(c) A CURVE peer that holds valid keys (written here from PyNaCl, not from zeropipe's code)
    boxes hostile plaintexts: a wrong or weak client key, a vouch that does not match, broken
    or missing metadata, replayed or decreasing nonces, MESSAGE boxes with any flags byte and
    garbage commands. Each side under test raises only ``RemoteProtocolError`` and delivers
    exactly what a small reference decoder of the inner frames says.
(d) ZAP replies, random or mutated from a valid one, through ``zap.parse_reply``: only
    ``ZapError``, and what is accepted is exactly what was sent.

Streams are cut into frames and mutated by tests/fuzz/mutate.py (shared with the socket-level
harness). The default example counts keep each test to a few seconds. ``make fuzz`` runs this
module with ``--hypothesis-profile=long`` (registered in tests/conftest.py): 20,000 examples
per test, 5,000 per mechanism and 1,000 per handshake-command case, no deadline.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass, field

import nacl.bindings as nacl
import pytest
from fuzz.mutate import OPS, FrameCutter, Mutation, Mutator, relong
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from zeropipe.protocol import (
    Cancel,
    Connection,
    ConnectionState,
    HandshakeComplete,
    Metadata,
    PeerErrorReceived,
    Ping,
    Pong,
    RemoteProtocolError,
    Security,
    SocketType,
    Subscribe,
    UnknownCommand,
    ZapError,
    ZapReply,
    ZapRequest,
)
from zeropipe.protocol.commands import encode_metadata
from zeropipe.protocol.frames import FLAG_COMMAND, FLAG_LONG, FLAG_MORE, encode_command
from zeropipe.protocol.greeting import build_greeting
from zeropipe.protocol.zap import parse_reply

LONG_RUN = settings.get_current_profile_name() == "long"
pytestmark = pytest.mark.timeout(0 if LONG_RUN else 60)

SETTINGS = settings(
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
#: Tests run once per mechanism (or more) take fewer examples each (``make fuzz`` stays
#: within some twenty minutes for this module).
PER_MECHANISM = settings(SETTINGS, max_examples=5_000 if LONG_RUN else 50)
PER_COMMAND = settings(SETTINGS, max_examples=1_000 if LONG_RUN else 25)

SERVER_PUBLIC, SERVER_SECRET = nacl.crypto_box_keypair()
CLIENT_PUBLIC, CLIENT_SECRET = nacl.crypto_box_keypair()
USERNAME, PASSWORD = b"admin", b"secret"
GRANTED = ZapReply(200, "OK", b"zap-user", Metadata({"Zap-Prop": b"zap-value"}))
CLIENT_CLAIMS = {"User-Id": b"claimed-by-the-client"}
PUSH_METADATA = encode_metadata({"Socket-Type": b"PUSH"})
PULL_METADATA = encode_metadata({"Socket-Type": b"PULL"})

MECHANISMS = ("NULL", "PLAIN", "CURVE")
#: (client type, server type, client routing id)
SOCKET_PAIRS = [
    (SocketType.DEALER, SocketType.ROUTER, b"client-id"),
    (SocketType.PAIR, SocketType.PAIR, b""),
    (SocketType.PUSH, SocketType.PULL, b""),
]

Normalised = bytes | list[bytes]
Item = tuple[str, object]
#: A ZAP verdict: a status code, or None for "no handler bound".
Verdict = int | None


def securities(mechanism: str) -> tuple[Security, Security]:
    """(server, client) security for one mechanism; the server always consults ZAP."""
    if mechanism == "PLAIN":
        return (
            Security(b"PLAIN", as_server=True),
            Security(b"PLAIN", username=USERNAME, password=PASSWORD),
        )
    if mechanism == "CURVE":
        return (
            Security(
                b"CURVE",
                as_server=True,
                public_key=SERVER_PUBLIC,
                secret_key=SERVER_SECRET,
                zap=True,
            ),
            Security(
                b"CURVE",
                public_key=CLIENT_PUBLIC,
                secret_key=CLIENT_SECRET,
                server_key=SERVER_PUBLIC,
            ),
        )
    return Security(b"NULL", zap=True), Security(b"NULL")


def zap_reply_for(verdict: Verdict) -> ZapReply | None:
    if verdict is None:
        return None
    if verdict == 200:
        return GRANTED
    return ZapReply(verdict, "refused")


def granted(mechanism: str, verdict: Verdict) -> bool:
    """Whether the server lets the client in (a PLAIN server needs a handler, as libzmq's)."""
    return verdict == 200 or (verdict is None and mechanism != "PLAIN")


def normalise(msg: object) -> Normalised:
    if isinstance(msg, list):
        return [bytes(f) for f in msg]
    return bytes(msg)  # type: ignore[call-overload, no-any-return]


def flatten(msgs: list[Normalised]) -> list[bytes]:
    out: list[bytes] = []
    for msg in msgs:
        out.extend(msg if isinstance(msg, list) else [msg])
    return out


def is_prefix(got: list[object], full: list[object]) -> bool:
    return got == full[: len(got)]


def is_prefix_less_one(got: list[object], full: list[object]) -> bool:
    """``got`` is a prefix of ``full``, or of ``full`` with one element taken out."""
    if is_prefix(got, full):
        return True
    if len(got) >= len(full):
        return False
    for i in range(len(got)):
        if got[i] != full[i]:
            return got[i:] == full[i + 1 : len(got) + 1]
    return False


# -- the links ---------------------------------------------------------------------------------


class Link:
    """One direction: collects a sender's frames, mutates one, feeds the receiver in chunks."""

    def __init__(
        self, chunks: list[int], use_buffer: bool, mutation: Mutation | None = None
    ) -> None:
        self.cutter = FrameCutter()
        self.mutator = Mutator(mutation)
        self.chunks = itertools.cycle(chunks)
        self.use_buffer = use_buffer
        self.wire = bytearray()

    @property
    def frames_in(self) -> int:
        """How many frames the sender has produced."""
        return self.mutator.frames_in

    def push(self, data: bytes) -> None:
        for frame in self.cutter.feed(data):
            self.wire += self.mutator.frame(frame)

    def deliver(self, side: Side) -> None:
        """Feed what is on the wire to ``side`` (dropped if it has failed)."""
        data = bytes(self.wire)
        self.wire.clear()
        conn = side.conn
        pos = 0
        try:
            while pos < len(data) and side.error is None:
                want = conn.want_buffer() if self.use_buffer else 0
                if want:
                    view = conn.get_buffer()
                    try:
                        n = min(len(view), len(data) - pos)
                        view[:n] = data[pos : pos + n]
                    finally:
                        view.release()
                    pos += n
                    conn.buffer_updated(n)
                else:
                    n = next(self.chunks)
                    if max(conn.read_hint(), conn.want_buffer()) > 4096:  # cut large frames less
                        n *= 1024
                    chunk = data[pos : pos + n]
                    pos += n
                    conn.receive_data(chunk)
                side.collect()
        except RemoteProtocolError as exc:
            side.failed(exc, data[pos:])


# -- the two ends ------------------------------------------------------------------------------


@dataclass
class Side:
    """One Connection, the traffic it sends once READY and everything it delivered."""

    conn: Connection
    items: list[Item]
    link: Link
    verdict: Verdict = 200
    messages: list[Normalised] = field(default_factory=list)
    events: list[object] = field(default_factory=list)
    handshake: HandshakeComplete | None = None
    error: RemoteProtocolError | None = None
    sent: bool = False
    #: After each item sent: how many frames the sender had produced (so item k is made of
    #: frames numbered below item_ends[k]).
    item_ends: list[int] = field(default_factory=list)

    def collect(self) -> None:
        """Take the connection's events, then its messages, answering ZAP requests."""
        conn = self.conn
        while True:
            event = conn.next_event()
            if event is None:
                break
            if isinstance(event, HandshakeComplete):
                assert self.handshake is None, "two HandshakeComplete events"
                assert conn.state is ConnectionState.READY or self.error is not None
                self.handshake = event
            elif isinstance(event, ZapRequest):
                assert conn.as_server
                try:
                    conn.zap_reply(zap_reply_for(self.verdict))
                except RemoteProtocolError as exc:
                    self.failed(exc, b"")
                    return
            else:
                assert self.handshake is not None, "an event before the handshake completed"
                self.events.append(event)
        while conn.messages:
            assert self.handshake is not None, "a message before the handshake completed"
            self.messages.append(normalise(conn.messages.popleft()))

    def failed(self, exc: RemoteProtocolError, rest: bytes) -> None:
        """The peer's bytes were refused: CLOSED, and nothing more comes out."""
        assert self.error is None
        self.error = exc
        assert self.conn.state is ConnectionState.CLOSED, f"{exc!r} left it {self.conn.state}"
        self.collect()
        seen = (len(self.messages), len(self.events), self.handshake)
        with pytest.raises(RemoteProtocolError):
            self.conn.receive_data(rest or b"\x00\x00")
        self.collect()
        assert (len(self.messages), len(self.events), self.handshake) == seen

    def send_traffic(self) -> None:
        conn = self.conn
        self.sent = True
        for kind, value in self.items:
            if kind == "msg":
                conn.send_message(list(value))  # type: ignore[call-overload]
            elif kind == "ping":
                ttl, context = value  # type: ignore[misc]
                conn.send_ping(ttl, context)
            elif kind == "sub":
                conn.send_command(b"SUBSCRIBE", value)  # type: ignore[arg-type]
            else:
                conn.send_command(b"CANCEL", value)  # type: ignore[arg-type]
            self.link.push(conn.data_to_send())
            self.item_ends.append(self.link.frames_in)


@dataclass
class Session:
    mechanism: str
    client: Side
    server: Side

    def pump(self) -> None:
        """Move bytes both ways until nothing moves."""
        for _ in range(10_000):
            moved = False
            for me, peer in ((self.client, self.server), (self.server, self.client)):
                if (
                    not me.sent
                    and me.handshake is not None
                    and me.conn.state is ConnectionState.READY
                ):
                    me.send_traffic()
                out = me.conn.data_to_send()
                if out:
                    me.link.push(out)
                if me.link.wire:
                    moved = True
                    me.link.deliver(peer)
            if not moved:
                return
        pytest.fail("the session never settled")


def new_session(
    mechanism: str,
    pair: tuple[SocketType, SocketType, bytes],
    client_items: list[Item],
    server_items: list[Item],
    c2s: Link,
    s2c: Link,
    verdict: Verdict = 200,
    in_stream: tuple[bool, bool] = (False, False),
) -> Session:
    client_type, server_type, routing_id = pair
    server_security, client_security = securities(mechanism)
    client = Connection(
        client_type,
        routing_id=routing_id,
        security=client_security,
        extra_metadata=CLIENT_CLAIMS,
    )
    server = Connection(server_type, as_server=True, security=server_security)
    client.subscriptions_in_stream, server.subscriptions_in_stream = in_stream
    session = Session(
        mechanism,
        Side(client, client_items, c2s),
        Side(server, server_items, s2c, verdict=verdict),
    )
    client.initiate()
    server.initiate()
    session.pump()
    return session


@dataclass
class Expected:
    messages: list[Normalised]
    events: list[object]
    pongs: list[object]


def expected_from(items: list[Item], in_stream: bool) -> Expected:
    """What the receiver of ``items`` delivers, and the PONGs their sender gets back."""
    out = Expected([], [], [])
    for kind, value in items:
        if kind == "msg":
            frames: list[bytes] = value  # type: ignore[assignment]
            out.messages.append(frames[0] if len(frames) == 1 else list(frames))
        elif kind == "ping":
            ttl, context = value  # type: ignore[misc]
            out.events.append(Ping(ttl, context[:16]))
            out.pongs.append(Pong(context[:16]))
        elif in_stream:
            out.messages.append((b"\x01" if kind == "sub" else b"\x00") + value)  # type: ignore[operator]
        else:
            out.events.append((Subscribe if kind == "sub" else Cancel)(value))  # type: ignore[arg-type]
    return out


def split_pongs(events: list[object]) -> tuple[list[object], list[object]]:
    """(every event but the PONGs, the PONGs)"""
    pongs = [e for e in events if isinstance(e, Pong)]
    return [e for e in events if not isinstance(e, Pong)], pongs


# -- strategies --------------------------------------------------------------------------------


def body_of(size: int, seed: int) -> bytes:
    return random.Random(seed * 1_000_003 + size).randbytes(size)


# mostly 0-300 bytes (both sides of the short/long boundary), now and then 70,000 (a large
# frame), rarely 1.1 MB (a frame with a receive buffer of its own)
frame_sizes = st.integers(0, 330).map(lambda n: 70_000 if 300 < n < 330 else n)
big_frame_sizes = st.integers(0, 340).map(
    lambda n: 1_100_000 if n == 340 else 70_000 if n > 310 else n
)
topics = st.binary(max_size=20)


def traffic(sizes: st.SearchStrategy[int], max_size: int) -> st.SearchStrategy[list[Item]]:
    bodies = st.builds(body_of, sizes, st.integers(0, 2**16))
    return st.lists(
        st.one_of(
            st.lists(bodies, min_size=1, max_size=4).map(lambda f: ("msg", f)),
            st.lists(bodies, min_size=1, max_size=4).map(lambda f: ("msg", f)),
            st.tuples(st.integers(0, 0xFFFF), st.binary(max_size=24)).map(lambda p: ("ping", p)),
            topics.map(lambda t: ("sub", t)),
            topics.map(lambda t: ("cancel", t)),
        ),
        max_size=max_size,
    )


chunk_lists = st.one_of(
    st.lists(st.integers(1, 300), min_size=1, max_size=12),
    st.lists(st.integers(1, 70_000), min_size=1, max_size=4),
    st.just([1 << 30]),  # whatever is there, at once
)

MECHANISM_COMMANDS = [
    b"HELLO",
    b"WELCOME",
    b"INITIATE",
    b"READY",
    b"ERROR",
    b"MESSAGE",
    b"PING",
    b"PONG",
    b"SUBSCRIBE",
    b"BOGUS",
]
#: Data sizes that pass the mechanisms' size checks (so the crypto is reached).
PLAUSIBLE_SIZES = [0, 1, 2, 17, 24, 33, 160, 194, 248, 249, 300]


@st.composite
def hostile_frame(draw: st.DrawFn) -> bytes:
    kind = draw(st.integers(0, 3))
    if kind == 0:  # a command named as a mechanism's, with data of a plausible size
        name = draw(st.sampled_from(MECHANISM_COMMANDS))
        data = draw(
            st.one_of(
                st.binary(max_size=60),
                st.sampled_from(PLAUSIBLE_SIZES).flatmap(
                    lambda n: st.binary(min_size=n, max_size=n)
                ),
            )
        )
        body = bytes((len(name),)) + name + data
        flags = draw(st.sampled_from([FLAG_COMMAND, FLAG_COMMAND | FLAG_MORE, 0, FLAG_MORE]))
    elif kind == 1:  # libzmq's PLAIN ERROR form, or a CURVE MESSAGE of garbage
        body = draw(
            st.sampled_from([b"^RROR", b"\x07MESSAGE"]).flatmap(
                lambda p: st.binary(max_size=60).map(lambda d: p + d)
            )
        )
        flags = draw(st.sampled_from([FLAG_COMMAND, 0, FLAG_MORE]))
    else:
        body = draw(st.binary(max_size=80))
        flags = draw(st.one_of(st.sampled_from([0, 1, 4, 5]), st.integers(0, 255)))
    size = len(body)
    if draw(st.integers(0, 9)) == 0:  # lie about the size
        size = draw(
            st.one_of(
                st.integers(0, 300),
                st.sampled_from([2**64 - 1, 2**63, 2**63 - 1, 2**40, 65_535, 65_536, 1 << 20]),
            )
        )
    if flags & FLAG_LONG or size > 255:
        return bytes((flags | FLAG_LONG,)) + size.to_bytes(8, "big") + body
    return bytes((flags, size)) + body


hostile_bytes = st.one_of(
    st.binary(max_size=300),
    st.lists(hostile_frame(), min_size=1, max_size=6).map(b"".join),
)

MUTATION_OPS = [op for op in OPS if op != "tail"]


@st.composite
def mutations(draw: st.DrawFn, frames: int, ops: list[str], handshake_only: bool) -> Mutation:
    """A mutation of one of ``frames`` frames, biased to the handshake (the first four)."""
    if handshake_only:  # a command after the greeting: HELLO, WELCOME, INITIATE, READY
        index = draw(st.integers(1, min(3, frames - 1)))
    else:
        handshake = st.integers(0, min(3, frames - 1))
        index = draw(st.one_of(handshake, handshake, st.integers(0, frames - 1)))
    op = draw(st.sampled_from(ops))
    return Mutation(
        op,
        index,
        positions=tuple(draw(st.lists(st.integers(0, 2**20), min_size=1, max_size=3))),
        size=draw(
            st.one_of(
                st.integers(0, 400),
                st.sampled_from([2**64 - 1, 2**63, 2**40, 65_536, 1 << 20]),
            )
        ),
        payload=draw(hostile_bytes),
    )


# -- (a) clean sessions ------------------------------------------------------------------------


def check_handshakes(session: Session) -> None:
    client, server = session.client, session.server
    assert client.error is None, client.error
    assert server.error is None, server.error
    assert client.handshake is not None
    assert server.handshake is not None
    assert server.handshake.peer_type is client.conn.socket_type
    assert client.handshake.peer_type is server.conn.socket_type
    assert server.handshake.routing_id == client.conn.routing_id
    meta = server.handshake.metadata
    assert meta.get_ci("User-Id") == GRANTED.user_id  # ZAP's, never the client's claim
    assert meta.get_ci("Zap-Prop") == b"zap-value"


@SETTINGS
@given(
    mechanism=st.sampled_from(MECHANISMS),
    pair=st.sampled_from(SOCKET_PAIRS),
    client_items=traffic(big_frame_sizes, 10),
    server_items=traffic(big_frame_sizes, 10),
    chunks=st.tuples(chunk_lists, chunk_lists),
    use_buffer=st.tuples(st.booleans(), st.booleans()),
    in_stream=st.tuples(st.booleans(), st.booleans()),
)
def test_clean_sessions_deliver_everything_exactly(
    mechanism: str,
    pair: tuple[SocketType, SocketType, bytes],
    client_items: list[Item],
    server_items: list[Item],
    chunks: tuple[list[int], list[int]],
    use_buffer: tuple[bool, bool],
    in_stream: tuple[bool, bool],
) -> None:
    session = new_session(
        mechanism,
        pair,
        client_items,
        server_items,
        Link(chunks[0], use_buffer[0]),
        Link(chunks[1], use_buffer[1]),
        in_stream=in_stream,
    )
    check_handshakes(session)
    client, server = session.client, session.server
    to_server = expected_from(client_items, in_stream[1])
    to_client = expected_from(server_items, in_stream[0])
    server_events, server_pongs = split_pongs(server.events)
    client_events, client_pongs = split_pongs(client.events)
    assert server.messages == to_server.messages
    assert server_events == to_server.events
    assert client.messages == to_client.messages
    assert client_events == to_client.events
    assert client_pongs == to_server.pongs
    assert server_pongs == to_client.pongs


# -- (b) mutated sessions ----------------------------------------------------------------------


def frame_counts(
    mechanism: str,
    pair: tuple[SocketType, SocketType, bytes],
    client_items: list[Item],
    server_items: list[Item],
) -> tuple[int, int]:
    """Frames each side sends in a clean session (after checking that it is clean)."""
    session = new_session(
        mechanism, pair, client_items, server_items, Link([1 << 30], False), Link([1 << 30], False)
    )
    check_handshakes(session)
    return session.client.link.frames_in, session.server.link.frames_in


def check_mutated_receiver(
    session: Session, sender: Side, receiver: Side, mutation: Mutation, in_stream: bool
) -> None:
    """The oracles of (b) for the side that read the mutated stream."""
    full = expected_from(sender.items[: len(sender.item_ends)], in_stream)
    clean_items = sum(1 for end in sender.item_ends if end <= mutation.index)
    clean = expected_from(sender.items[:clean_items], in_stream)
    events, _ = split_pongs(receiver.events)
    zap_ok = granted(session.mechanism, session.server.verdict)
    if zap_ok:  # everything sent whole before the mutated frame arrives exactly
        assert receiver.messages[: len(clean.messages)] == clean.messages
        assert events[: len(clean.events)] == clean.events
    if mutation.op == "relong" and zap_ok:
        assert receiver.error is None, receiver.error
        assert receiver.messages == full.messages
        assert events == full.events
    if session.mechanism != "CURVE":
        return  # NULL and PLAIN do not protect the data: a mutated message may arrive as such
    if sender.link.mutator.gap:  # a frame taken out whole goes unnoticed (nonces still grow)
        assert is_prefix_less_one(flatten(receiver.messages), flatten(full.messages))  # type: ignore[arg-type]
        assert is_prefix_less_one(events, full.events)
    else:
        assert is_prefix(receiver.messages, full.messages)  # type: ignore[arg-type]
        assert is_prefix(events, full.events)


def mutated_session(
    mechanism: str,
    pair: tuple[SocketType, SocketType, bytes],
    client_items: list[Item],
    server_items: list[Item],
    mutate_client: bool,
    mutation: Mutation,
    verdict: Verdict,
    chunks: list[int],
    use_buffer: bool,
    in_stream: bool,
) -> None:
    links = [Link(chunks, use_buffer), Link(chunks, use_buffer)]
    links[0 if mutate_client else 1].mutator = Mutator(mutation)
    session = new_session(
        mechanism,
        pair,
        client_items,
        server_items,
        links[0],
        links[1],
        verdict=verdict,
        in_stream=(in_stream, in_stream),
    )
    client, server = session.client, session.server
    if mutate_client:
        check_mutated_receiver(session, client, server, mutation, in_stream)
    else:
        check_mutated_receiver(session, server, client, mutation, in_stream)


verdicts = st.sampled_from([200, 200, 200, 200, 300, 400, 500, None])


@st.composite
def mutated_cases(
    draw: st.DrawFn,
    mechanism: str,
    mutate_client: bool,
    ops: list[str],
    handshake_only: bool = False,
) -> dict[str, object]:
    pair = draw(st.sampled_from(SOCKET_PAIRS))
    client_items = draw(traffic(frame_sizes, 5), label="client_items")
    server_items = draw(traffic(frame_sizes, 5), label="server_items")
    frames = frame_counts(mechanism, pair, client_items, server_items)[0 if mutate_client else 1]
    return {
        "mechanism": mechanism,
        "pair": pair,
        "client_items": client_items,
        "server_items": server_items,
        "mutate_client": mutate_client,
        "mutation": draw(mutations(frames, ops, handshake_only), label="mutation"),
        "verdict": draw(verdicts, label="verdict"),
        "chunks": draw(chunk_lists, label="chunks"),
        "use_buffer": draw(st.booleans(), label="use_buffer"),
        "in_stream": draw(st.booleans(), label="in_stream"),
    }


@pytest.mark.parametrize("mechanism", MECHANISMS)
@PER_MECHANISM
@given(data=st.data())
def test_mutated_client_stream_raises_only_protocol_errors_in_the_server(
    mechanism: str, data: st.DataObject
) -> None:
    mutated_session(**data.draw(mutated_cases(mechanism, True, MUTATION_OPS)))  # type: ignore[arg-type]


@pytest.mark.parametrize("mechanism", MECHANISMS)
@PER_MECHANISM
@given(data=st.data())
def test_mutated_server_stream_raises_only_protocol_errors_in_the_client(
    mechanism: str, data: st.DataObject
) -> None:
    mutated_session(**data.draw(mutated_cases(mechanism, False, MUTATION_OPS)))  # type: ignore[arg-type]


@pytest.mark.parametrize("mechanism", MECHANISMS)
@PER_MECHANISM
@given(mutate_client=st.booleans(), data=st.data())
def test_arbitrary_bytes_at_every_stage_raise_only_protocol_errors(
    mechanism: str, mutate_client: bool, data: st.DataObject
) -> None:
    """From the greeting, HELLO, WELCOME, INITIATE, READY or any later frame on: garbage."""
    mutated_session(**data.draw(mutated_cases(mechanism, mutate_client, ["tail"])))  # type: ignore[arg-type]


@pytest.mark.parametrize("op", ["shorten", "redata", "extend"])
@pytest.mark.parametrize("mutate_client", [True, False])
@pytest.mark.parametrize("mechanism", MECHANISMS)
@PER_COMMAND
@given(data=st.data())
def test_handshake_commands_with_other_data_raise_only_protocol_errors(
    mechanism: str, mutate_client: bool, op: str, data: st.DataObject
) -> None:
    """HELLO, WELCOME, INITIATE or READY, well framed, with their data cut, replaced or grown."""
    case = data.draw(mutated_cases(mechanism, mutate_client, [op], handshake_only=True))
    mutated_session(**case)  # type: ignore[arg-type]


# -- (c) a CURVE peer with valid keys and hostile plaintexts -----------------------------------


def short_nonce(value: int) -> bytes:
    return (value % 2**64).to_bytes(8, "big")


def command_data(data: bytes, name: bytes) -> bytes:
    """The data of the one command named ``name`` in ``data`` (whole command frames)."""
    found = []
    for frame in FrameCutter().feed(bytes(64) + data)[1:]:
        body = frame[9:] if frame[0] & FLAG_LONG else frame[2:]
        assert frame[0] & FLAG_COMMAND
        if body[1 : 1 + body[0]] == name:
            found.append(body[1 + body[0] :])
    assert len(found) == 1, (name, data)
    return found[0]


def message_frame(flags: int, payload: bytes, nonce: int, prefix: bytes, key: bytes) -> bytes:
    """A CURVE MESSAGE (as a data frame) boxing ``flags`` and ``payload`` with a shared key."""
    short = short_nonce(nonce)
    sealed = nacl.crypto_box_afternm(bytes((flags,)) + payload, prefix + short, key)
    body = b"\x07MESSAGE" + short + sealed
    if len(body) < 256:
        return bytes((0, len(body))) + body
    return bytes((FLAG_LONG,)) + len(body).to_bytes(8, "big") + body


@dataclass(frozen=True)
class Boxed:
    """One frame a hostile CURVE peer boxes after the handshake."""

    flags: int  # the flags byte inside the box, any value
    payload: bytes
    nonce_step: int  # added to the last nonce: 1 is honest, 0 a replay, negative goes back


INNER_COMMANDS = [b"PING", b"PONG", b"READY", b"ERROR", b"SUBSCRIBE", b"CANCEL", b"BOGUS", b""]
inner_commands = st.tuples(
    st.sampled_from(INNER_COMMANDS),
    st.one_of(st.binary(max_size=3), st.binary(max_size=20)),
).map(lambda c: bytes((len(c[0]),)) + c[0] + c[1])
#: Mostly well-formed frames (so that later ones are reached), some garbage.
boxed_frames = st.lists(
    st.one_of(
        st.builds(Boxed, st.sampled_from([0, 1]), st.binary(max_size=40), st.just(1)),
        st.builds(Boxed, st.just(2), inner_commands, st.just(1)),
        st.builds(
            Boxed,
            st.integers(0, 255),
            st.one_of(inner_commands, st.binary(max_size=40)),
            st.integers(-2, 3),
        ),
    ),
    max_size=10,
)


@dataclass
class InnerReference:
    messages: list[Normalised] = field(default_factory=list)
    events: list[object] = field(default_factory=list)
    error: bool = False


def reference_inner(frames: list[Boxed], start_nonce: int) -> InnerReference:
    """What a READY CURVE connection makes of ``frames`` (RFC 26 + ZMTP 3.1 rules)."""
    ref = InnerReference()
    parts: list[bytes] = []
    nonce = start_nonce
    for frame in frames:
        value = (nonce + frame.nonce_step) % 2**64  # the 8 bytes on the wire
        if value <= nonce:
            ref.error = True
            return ref
        nonce = value
        more, command = frame.flags & 1, frame.flags & 2
        if command:
            body = frame.payload
            if more or parts or not body or body[0] == 0 or body[0] + 1 > len(body):
                ref.error = True
                return ref
            name, data = body[1 : 1 + body[0]], body[1 + body[0] :]
            if name == b"PING":
                if len(data) < 2:
                    ref.error = True
                    return ref
                ref.events.append(Ping(int.from_bytes(data[:2], "big"), data[2:18]))
            elif name == b"PONG":
                ref.events.append(Pong(data[:16]))
            elif name == b"SUBSCRIBE":
                ref.events.append(Subscribe(data))
            elif name == b"CANCEL":
                ref.events.append(Cancel(data))
            elif name in (b"READY", b"ERROR"):
                ref.error = True
                return ref
            else:
                ref.events.append(UnknownCommand(name))
        elif more:
            parts.append(frame.payload)
        else:
            ref.messages.append([*parts, frame.payload] if parts else frame.payload)
            parts = []
    return ref


def send_boxed(
    conn: Connection, frames: list[Boxed], nonce: int, prefix: bytes, key: bytes
) -> tuple[list[Normalised], list[object], bool]:
    """Feed ``frames`` (one receive_data each) to a READY connection; what came out."""
    msgs: list[Normalised] = []
    events: list[object] = []
    error = False
    for frame in frames:
        nonce = (nonce + frame.nonce_step) % 2**64
        try:
            conn.receive_data(message_frame(frame.flags, frame.payload, nonce, prefix, key))
        except RemoteProtocolError:
            assert conn.state is ConnectionState.CLOSED
            error = True
        while conn.messages:
            msgs.append(normalise(conn.messages.popleft()))
        event = conn.next_event()
        while event is not None:
            events.append(event)
            event = conn.next_event()
        if error:
            with pytest.raises(RemoteProtocolError):
                conn.receive_data(b"\x00\x00")
            assert not conn.messages
            break
    return msgs, events, error


def metadata_variants(peer_type: bytes) -> st.SearchStrategy[tuple[str, bytes]]:
    """(label, metadata) a peer of type ``peer_type`` may send: "ok" and "claim" (a User-Id of
    its own, ignored) must be accepted, "bad" refused, "random" either."""
    ok = {"Socket-Type": peer_type}
    bad = [
        {},
        {"Socket-Type": b"PUB"},
        {"Socket-Type": b"NOPE"},
        {"socket-type": peer_type, "Identity": b"x" * 256},
    ]
    return st.one_of(
        st.just(("ok", encode_metadata(ok))),
        st.just(("ok", encode_metadata(ok))),
        st.just(("claim", encode_metadata({**ok, "User-Id": b"claimed"}))),
        st.sampled_from(
            [encode_metadata(m) for m in bad]
            + [encode_metadata(ok) + b"\x05", encode_metadata(ok)[:-1]]
        ).map(lambda m: ("bad", m)),
        st.binary(max_size=40).map(lambda m: ("random", m)),
    )


CLIENT_FAULTS = [
    "hello-signature",  # the HELLO box holds something else than 64 zeros
    "initiate-replay",  # INITIATE reuses HELLO's short nonce
    "initiate-back",  # ... or one below it
    "key-random",  # INITIATE claims a client key that did not sign the vouch
    "key-zero",  # ... or a weak one
    "vouch-transient",  # the vouch names another C'
    "vouch-server",  # ... or another server
    "vouch-short",  # the vouch box is too short
    "truncate",  # the INITIATE plaintext is cut (in the key or vouch, or in the metadata)
    "cookie-flip",  # the cookie is not the one WELCOME gave
    "meta",  # other metadata (see metadata_variants)
    "refused",  # the handler says 400
    "no-handler",  # no handler is bound (CURVE then lets anyone in)
]


@st.composite
def hostile_client_plans(draw: st.DrawFn) -> dict[str, object]:
    """One handshake fault at most (none half of the time), then MESSAGE boxes."""
    return {
        "fault": draw(st.one_of(st.none(), st.sampled_from(CLIENT_FAULTS))),
        "hello_nonce": draw(st.sampled_from([1, 0, 1000, 2**64 - 3])),
        "metadata": draw(metadata_variants(b"PUSH")),
        "cut": draw(st.integers(0, 140)),
        "flip": draw(st.integers(0, 96 * 8 - 1)),
        "frames": draw(boxed_frames),
    }


def feed_or_refuse(conn: Connection, data: bytes) -> RemoteProtocolError | None:
    """Feed ``data``; on a refusal check that the connection is closed for good."""
    try:
        conn.receive_data(data)
    except RemoteProtocolError as exc:
        assert conn.state is ConnectionState.CLOSED
        with pytest.raises(RemoteProtocolError):
            conn.receive_data(b"\x00\x00")
        assert not conn.messages
        return exc
    return None


@SETTINGS
@given(plan=hostile_client_plans())
def test_curve_server_against_a_keyed_hostile_client(plan: dict[str, object]) -> None:
    fault = plan["fault"]
    server_security, _ = securities("CURVE")
    server = Connection(SocketType.PULL, as_server=True, security=server_security)
    server.initiate()
    assert server.data_to_send() == build_greeting(b"CURVE", True)
    transient_public, transient_secret = nacl.crypto_box_keypair()

    hello_nonce: int = plan["hello_nonce"]  # type: ignore[assignment]
    signature = b"\x01" + bytes(63) if fault == "hello-signature" else bytes(64)
    hello_short = short_nonce(hello_nonce)
    hello = (
        b"\x01\x00"
        + bytes(72)
        + transient_public
        + hello_short
        + nacl.crypto_box(
            signature, b"CurveZMQHELLO---" + hello_short, SERVER_PUBLIC, transient_secret
        )
    )
    exc = feed_or_refuse(server, build_greeting(b"CURVE", False) + encode_command(b"HELLO", hello))
    assert (exc is None) == (fault != "hello-signature"), exc
    if exc is not None:
        return
    welcome = command_data(server.data_to_send(), b"WELCOME")
    opened = nacl.crypto_box_open(
        welcome[16:], b"WELCOME-" + welcome[:16], SERVER_PUBLIC, transient_secret
    )
    server_transient, cookie = opened[:32], bytearray(opened[32:])
    if fault == "cookie-flip":
        bit: int = plan["flip"]  # type: ignore[assignment]
        cookie[bit >> 3] ^= 1 << (bit & 7)

    # INITIATE: a valid box (we hold C' and S'), with whatever plaintext the fault says
    vouch_nonce = random.randbytes(16)
    vouch_content = {
        "vouch-transient": nacl.crypto_box_keypair()[0] + SERVER_PUBLIC,
        "vouch-server": transient_public + CLIENT_PUBLIC,
        "vouch-short": transient_public[:10],
    }.get(fault, transient_public + SERVER_PUBLIC)  # type: ignore[arg-type]
    vouch = vouch_nonce + nacl.crypto_box(
        vouch_content, b"VOUCH---" + vouch_nonce, server_transient, CLIENT_SECRET
    )
    client_key = {"key-random": random.randbytes(32), "key-zero": bytes(32)}.get(
        fault,  # type: ignore[arg-type]
        CLIENT_PUBLIC,
    )
    meta_label, metadata = plan["metadata"] if fault == "meta" else ("ok", PUSH_METADATA)  # type: ignore[misc]
    plaintext = client_key + vouch + metadata
    cut: int = plan["cut"]  # type: ignore[assignment]
    if fault == "truncate":
        plaintext = plaintext[:cut]
        if cut >= 32 + 96:  # key and vouch whole: what is cut is the metadata
            meta_label = "bad"
    step = {"initiate-replay": 0, "initiate-back": -1}.get(fault, 1)  # type: ignore[arg-type]
    initiate_nonce = (hello_nonce + step) % 2**64
    initiate_short = short_nonce(initiate_nonce)
    shared = nacl.crypto_box_beforenm(server_transient, transient_secret)
    initiate = (
        bytes(cookie)
        + initiate_short
        + nacl.crypto_box_afternm(plaintext, b"CurveZMQINITIATE" + initiate_short, shared)
    )
    # hello_nonce 0 minus one wraps to the largest nonce, which is a valid next nonce
    forged = (
        fault in CLIENT_FAULTS[:10]
        and not (fault == "initiate-back" and hello_nonce == 0)
        and not (fault == "truncate" and meta_label == "bad")
    )
    exc = feed_or_refuse(server, encode_command(b"INITIATE", initiate))
    if exc is not None:
        assert forged or meta_label in ("bad", "random"), f"an honest INITIATE was refused: {exc!r}"
        return
    assert not forged, "a forged INITIATE was accepted"
    event = server.next_event()
    assert isinstance(event, ZapRequest), event
    assert event.credentials == (CLIENT_PUBLIC,)
    verdict: Verdict = {"refused": 400, "no-handler": None}.get(fault, 200)  # type: ignore[arg-type]
    try:  # the socket type is checked once the handler has let the client in
        server.zap_reply(zap_reply_for(verdict))
    except RemoteProtocolError:
        assert server.state is ConnectionState.CLOSED
        assert verdict not in (200, None) or meta_label in ("bad", "random")
        return
    assert verdict in (200, None)
    assert meta_label != "bad", "an INITIATE with bad metadata was accepted"
    event = server.next_event()
    assert isinstance(event, HandshakeComplete), event
    assert event.metadata.get_ci("User-Id") == (GRANTED.user_id if verdict == 200 else None)
    ready = command_data(server.data_to_send(), b"READY")
    nacl.crypto_box_open_afternm(ready[8:], b"CurveZMQREADY---" + ready[:8], shared)

    # MESSAGE boxes with any flags byte and payload, and nonces that may not grow
    frames: list[Boxed] = plan["frames"]  # type: ignore[assignment]
    ref = reference_inner(frames, initiate_nonce)
    msgs, events, error = send_boxed(server, frames, initiate_nonce, b"CurveZMQMESSAGEC", shared)
    assert (msgs, events, error) == (ref.messages, ref.events, ref.error)


SERVER_FAULTS = [
    "error-welcome",  # ERROR instead of WELCOME
    "error-ready",  # ERROR instead of READY
    "transient-zero",  # WELCOME names a weak S'
    "transient-random",  # ... or one whose secret we do not hold
    "welcome-long",  # the WELCOME box holds one byte too many
    "welcome-short",  # ... or too few
    "ready-replay",  # READY's short nonce is 0 (not above the client's last)
    "meta",  # other metadata (see metadata_variants)
]


@st.composite
def hostile_server_plans(draw: st.DrawFn) -> dict[str, object]:
    """One handshake fault at most (none half of the time), then MESSAGE boxes."""
    return {
        "fault": draw(st.one_of(st.none(), st.sampled_from(SERVER_FAULTS))),
        "ready_nonce": draw(st.sampled_from([1, 5, 2**64 - 3])),
        "metadata": draw(metadata_variants(b"PULL")),
        "frames": draw(boxed_frames),
        "error_reason": draw(st.binary(max_size=300)),
    }


@SETTINGS
@given(plan=hostile_server_plans())
def test_curve_client_against_a_keyed_hostile_server(plan: dict[str, object]) -> None:
    fault = plan["fault"]
    _, client_security = securities("CURVE")
    client = Connection(SocketType.PUSH, security=client_security)
    client.initiate()
    assert client.data_to_send() == build_greeting(b"CURVE", False)
    reason: bytes = plan["error_reason"]  # type: ignore[assignment]
    error_frame = encode_command(b"ERROR", bytes((min(len(reason), 255),)) + reason)
    greeting = build_greeting(b"CURVE", True)
    if fault == "error-welcome":
        exc = feed_or_refuse(client, greeting + error_frame)
        assert isinstance(exc, PeerErrorReceived), exc
        return
    assert feed_or_refuse(client, greeting) is None
    hello = command_data(client.data_to_send(), b"HELLO")
    client_transient, hello_short = hello[74:106], hello[106:114]
    signature = nacl.crypto_box_open(
        hello[114:], b"CurveZMQHELLO---" + hello_short, client_transient, SERVER_SECRET
    )
    assert signature == bytes(64)

    transient_public, transient_secret = nacl.crypto_box_keypair()
    claimed = {"transient-zero": bytes(32), "transient-random": random.randbytes(32)}.get(
        fault,  # type: ignore[arg-type]
        transient_public,
    )
    content = claimed + random.randbytes(96)  # a client never reads the cookie
    if fault == "welcome-long":
        content += b"x"
    elif fault == "welcome-short":
        content = content[:-1]
    welcome_nonce = random.randbytes(16)
    welcome = welcome_nonce + nacl.crypto_box(
        content, b"WELCOME-" + welcome_nonce, client_transient, SERVER_SECRET
    )
    exc = feed_or_refuse(client, encode_command(b"WELCOME", welcome))
    refused_here = ("transient-zero", "welcome-long", "welcome-short")
    assert (exc is None) == (fault not in refused_here), exc
    if exc is not None:
        return
    initiate = command_data(client.data_to_send(), b"INITIATE")
    shared = nacl.crypto_box_beforenm(client_transient, transient_secret)
    if fault != "transient-random":  # else INITIATE is boxed to a key whose secret nobody has
        initiate_short = initiate[96:104]
        assert initiate_short > hello_short
        plaintext = nacl.crypto_box_open_afternm(
            initiate[104:], b"CurveZMQINITIATE" + initiate_short, shared
        )
        assert plaintext[:32] == CLIENT_PUBLIC
        vouch = plaintext[32:128]
        vouched = nacl.crypto_box_open(
            vouch[16:], b"VOUCH---" + vouch[:16], CLIENT_PUBLIC, transient_secret
        )
        assert vouched == client_transient + SERVER_PUBLIC
    if fault == "error-ready":
        exc = feed_or_refuse(client, error_frame)
        assert isinstance(exc, PeerErrorReceived), exc
        assert exc.reason == reason[:255].decode("utf-8", "replace")
        return

    meta_label, metadata = plan["metadata"] if fault == "meta" else ("ok", PULL_METADATA)  # type: ignore[misc]
    ready_nonce: int = 0 if fault == "ready-replay" else plan["ready_nonce"]  # type: ignore[assignment]
    ready_short = short_nonce(ready_nonce)
    ready = ready_short + nacl.crypto_box_afternm(
        metadata, b"CurveZMQREADY---" + ready_short, shared
    )
    exc = feed_or_refuse(client, encode_command(b"READY", ready))
    forged = fault in ("transient-random", "ready-replay") or meta_label == "bad"
    if exc is not None:
        assert forged or meta_label == "random", f"an honest READY was refused: {exc!r}"
        return
    assert not forged, "a forged READY was accepted"
    event = client.next_event()
    assert isinstance(event, HandshakeComplete), event
    assert event.metadata.get_ci("User-Id") is None  # a peer's claim is never a property

    boxed: list[Boxed] = plan["frames"]  # type: ignore[assignment]
    ref = reference_inner(boxed, ready_nonce)
    msgs, events, error = send_boxed(client, boxed, ready_nonce, b"CurveZMQMESSAGES", shared)
    assert (msgs, events, error) == (ref.messages, ref.events, ref.error)


# -- (d) ZAP replies ---------------------------------------------------------------------------

buffers = st.binary(max_size=12).flatmap(
    lambda b: st.sampled_from([b, bytearray(b), memoryview(b)])
)
REQUEST_ID = b"1"


def reference_metadata(data: bytes) -> dict[str, bytes] | None:
    """RFC 23 metadata (name length, name, 4-byte value length, value), or None if it overruns."""
    props: dict[str, bytes] = {}
    pos = 0
    while pos < len(data):
        size = data[pos]
        name = data[pos + 1 : pos + 1 + size]
        value_at = pos + 1 + size + 4
        if size == 0 or value_at > len(data):
            return None
        end = value_at + int.from_bytes(data[value_at - 4 : value_at], "big")
        if end > len(data):
            return None
        props[name.decode("latin-1")] = data[value_at:end]
        pos = end
    return props


@st.composite
def zap_replies(draw: st.DrawFn) -> list[object]:
    """A valid reply, then up to three frames replaced, flipped, added, removed or cut."""
    status = draw(st.sampled_from([b"200", b"300", b"400", b"500"]))
    meta = draw(
        st.dictionaries(
            st.text("abcXYZ-", min_size=1, max_size=8), st.binary(max_size=8), max_size=3
        ).map(encode_metadata)
    )
    user_id = draw(st.binary(max_size=8))
    frames: list[object] = [b"", b"1.0", REQUEST_ID, status, b"text \xff", user_id, meta]
    for _ in range(draw(st.integers(0, 3))):
        op = draw(st.sampled_from(["replace", "flip", "insert", "delete", "truncate"]))
        if not frames and op != "insert":
            continue
        i = draw(st.integers(0, max(0, len(frames) - 1)))
        if op == "replace":
            frames[i] = draw(buffers)
        elif op == "flip" and len(frames[i]):  # type: ignore[arg-type]
            raw = bytearray(frames[i])  # type: ignore[arg-type]
            bit = draw(st.integers(0, len(raw) * 8 - 1))
            raw[bit >> 3] ^= 1 << (bit & 7)
            frames[i] = bytes(raw)
        elif op == "insert":
            frames.insert(i, draw(buffers))
        elif op == "delete":
            del frames[i]
        elif op == "truncate":
            frames[i] = bytes(frames[i])[: draw(st.integers(0, 3))]  # type: ignore[call-overload]
    return frames


@SETTINGS
@given(frames=st.one_of(st.lists(buffers, max_size=9), zap_replies()))
def test_zap_replies_raise_only_zap_error(frames: list[object]) -> None:
    raw = [bytes(f) for f in frames]  # type: ignore[call-overload]
    meta = reference_metadata(raw[6]) if len(raw) == 7 else None
    valid = (
        len(raw) == 7
        and raw[:3] == [b"", b"1.0", REQUEST_ID]
        and raw[3] in (b"200", b"300", b"400", b"500")
        and meta is not None
    )
    ascii_names = meta is not None and all(name.isascii() for name in meta)
    try:
        reply = parse_reply(frames, REQUEST_ID)  # type: ignore[arg-type]
    except ZapError:
        assert not (valid and ascii_names), "a valid reply was refused"
        return
    assert valid, "an invalid reply was accepted"
    assert reply.status_code == int(raw[3])
    assert reply.status_text == raw[4].decode("utf-8", "replace")
    assert reply.user_id == raw[5]
    assert dict(reply.metadata) == meta


def test_helpers_detect_what_they_must() -> None:
    """The oracles themselves: a missing frame, a changed one, a cutter on real streams."""
    assert is_prefix_less_one([1, 3], [1, 2, 3])
    assert is_prefix_less_one([1, 2], [1, 2, 3])
    assert not is_prefix_less_one([1, 4], [1, 2, 3])
    assert not is_prefix_less_one([2, 1], [1, 2, 3])
    assert not is_prefix_less_one([1, 3, 4], [1, 2, 3])
    assert not is_prefix([1, 3], [1, 2, 3])
    frames = FrameCutter().feed(build_greeting(b"NULL", False) + encode_command(b"READY") * 2)
    assert len(frames) == 3
    assert relong(frames[1])[0] & FLAG_LONG
    long_frames = FrameCutter().feed(bytes(64) + relong(frames[1]) + b"\x00\x01x")
    assert long_frames == [bytes(64), relong(frames[1]), b"\x00\x01x"]
    assert reference_metadata(encode_metadata({"A": b"1", "b": b""})) == {"A": b"1", "b": b""}
    assert reference_metadata(encode_metadata({"A": b"1"})[:-1]) is None
