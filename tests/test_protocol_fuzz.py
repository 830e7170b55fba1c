"""Property tests of the sans-I/O ZMTP layer (hypothesis).

(a) Any list of messages and PINGs, encoded by ``encode_frames`` and fed to a READY
    ``Connection`` cut at arbitrary points (optionally through ``get_buffer``/``buffer_updated``
    as the tcp transport does), gives exactly the messages, events and PONGs that were sent.
(b) Arbitrary bytes after a valid greeting + READY either raise ``RemoteProtocolError`` or are
    accepted; nothing else is ever raised, and what is delivered is exactly what a small
    reference decoder of the ZMTP 3.1 rules says (so never a partial multipart message).
(c) Arbitrary bytes as the greeting raise nothing but ``RemoteProtocolError``.

The default example counts keep each test to a few seconds. ``make fuzz`` runs this module with
``--hypothesis-profile=long`` (20,000 examples, no deadline); that profile is registered in
tests/conftest.py, because hypothesis's pytest plugin loads it before test modules are imported.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from zeropipe.protocol import (
    Cancel,
    Connection,
    ConnectionState,
    HandshakeComplete,
    Ping,
    Pong,
    RemoteProtocolError,
    SocketType,
    Subscribe,
    UnknownCommand,
    encode_frames,
)
from zeropipe.protocol.commands import encode_metadata
from zeropipe.protocol.frames import (
    FLAG_COMMAND,
    FLAG_LONG,
    FLAG_MORE,
    MAX_FRAME_SIZE,
    encode_command,
)
from zeropipe.protocol.greeting import build_greeting

# The default profile keeps each test to seconds (global 60 s timeout as a backstop); the
# "long" profile runs 20,000 examples per test, so the timeout is lifted there.
LONG_RUN = settings.get_current_profile_name() == "long"
pytestmark = pytest.mark.timeout(0 if LONG_RUN else 60)

SETTINGS = settings(
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

GREETING = build_greeting(b"NULL", False)
READY_PUSH = encode_command(b"READY", encode_metadata({"Socket-Type": b"PUSH"}))

Normalised = bytes | list[bytes]


# -- helpers ---------------------------------------------------------------------------------


def ready_connection(max_msg_size: int = -1) -> Connection:
    """A PULL Connection whose handshake with a PUSH peer has completed."""
    conn = Connection(SocketType.PULL, as_server=True, max_msg_size=max_msg_size)
    conn.initiate()
    conn.receive_data(GREETING + READY_PUSH)
    assert conn.state is ConnectionState.READY
    event = conn.next_event()
    assert isinstance(event, HandshakeComplete)
    assert conn.next_event() is None
    conn.data_to_send()
    return conn


def drain(conn: Connection) -> tuple[list[Normalised], list[object]]:
    msgs: list[Normalised] = []
    while conn.messages:
        msg = conn.messages.popleft()
        msgs.append([bytes(f) for f in msg] if isinstance(msg, list) else bytes(msg))
    evs = []
    event = conn.next_event()
    while event is not None:
        evs.append(event)
        event = conn.next_event()
    return msgs, evs


def feed_in_pieces(conn: Connection, data: bytes, cuts: list[int], use_buffer: bool) -> None:
    """Feed ``data`` cut at ``cuts``; a large frame may be filled through get_buffer()."""
    bounds = [*sorted({c for c in cuts if 0 < c < len(data)}), len(data)]
    pos = 0
    for end in bounds:
        while pos < end:
            want = conn.want_buffer() if use_buffer else 0
            if want:
                view = conn.get_buffer()
                try:
                    n = min(len(view), end - pos)
                    view[:n] = data[pos : pos + n]
                finally:
                    view.release()
                pos += n
                conn.buffer_updated(n)
            else:
                conn.receive_data(data[pos:end])
                pos = end


def body_of(size: int, seed: int) -> bytes:
    return random.Random(seed * 1_000_003 + size).randbytes(size)


def parse_command(body: bytes) -> tuple[bytes, bytes] | None:
    if not body or body[0] == 0 or body[0] + 1 > len(body):
        return None
    return body[1 : 1 + body[0]], body[1 + body[0] :]


@dataclass
class Reference:
    messages: list[Normalised]
    events: list[object]
    pongs: list[bytes]
    error: bool


def reference_decode(data: bytes, max_msg_size: int = -1) -> Reference:
    """What a READY PULL must make of ``data``, from the ZMTP 3.1 rules zeropipe follows.

    Frames are refused by their header (size above 2**63-1, over MAXMSGSIZE, command with MORE,
    command inside a multipart message) or, for commands, by their body (malformed, PING without
    TTL, ERROR, a second READY); unknown commands and reserved flag bits are accepted.
    """
    msgs: list[Normalised] = []
    evs: list[object] = []
    pongs: list[bytes] = []
    parts: list[bytes] = []
    parts_size = 0
    pos, end = 0, len(data)

    def result(error: bool) -> Reference:
        return Reference(msgs, evs, pongs, error)

    while pos + 2 <= end:
        flags = data[pos]
        if flags & FLAG_LONG:
            if pos + 9 > end:
                break
            size = int.from_bytes(data[pos + 1 : pos + 9], "big")
            start = pos + 9
        else:
            size = data[pos + 1]
            start = pos + 2
        if size > MAX_FRAME_SIZE:
            return result(True)
        is_command = bool(flags & FLAG_COMMAND)
        if is_command and (flags & FLAG_MORE or parts):
            return result(True)
        if not is_command and max_msg_size >= 0 and parts_size + size > max_msg_size:
            return result(True)
        if start + size > end:
            break
        body = data[start : start + size]
        pos = start + size
        if is_command:
            parsed = parse_command(body)
            if parsed is None:
                return result(True)
            name, cdata = parsed
            if name == b"PING":
                if len(cdata) < 2:
                    return result(True)
                evs.append(Ping(int.from_bytes(cdata[:2], "big"), cdata[2:18]))
                pongs.append(encode_command(b"PONG", cdata[2:18]))
            elif name == b"PONG":
                evs.append(Pong(cdata[:16]))
            elif name == b"SUBSCRIBE":
                evs.append(Subscribe(cdata))
            elif name == b"CANCEL":
                evs.append(Cancel(cdata))
            elif name in (b"ERROR", b"READY"):
                return result(True)
            else:
                evs.append(UnknownCommand(name))
        elif flags & FLAG_MORE:
            parts.append(body)
            parts_size += size
        else:
            msgs.append([*parts, body] if parts else body)
            parts = []
            parts_size = 0
    return result(False)


def run(conn: Connection, data: bytes, cuts: list[int], use_buffer: bool) -> Reference:
    """Feed ``data``; report what came out and whether RemoteProtocolError was raised."""
    error = False
    try:
        feed_in_pieces(conn, data, cuts, use_buffer)
    except RemoteProtocolError:
        error = True
        assert conn.state is ConnectionState.CLOSED
    msgs, evs = drain(conn)
    pongs = [] if error else _split_pongs(conn.data_to_send())
    return Reference(msgs, evs, pongs, error)


def _split_pongs(out: bytes) -> list[bytes]:
    """Our output after the handshake is only PONG commands (all short here)."""
    pongs = []
    pos = 0
    while pos < len(out):
        assert out[pos] == FLAG_COMMAND
        size = out[pos + 1]
        pongs.append(out[pos : pos + 2 + size])
        pos += 2 + size
    return pongs


# -- strategies ------------------------------------------------------------------------------

# mostly 0-300 bytes (both sides of the short/long boundary), now and then 70,000 (> LARGE_FRAME)
frame_sizes = st.integers(0, 320).map(lambda n: 70_000 if n > 300 else n)
frame_bodies = st.builds(body_of, frame_sizes, st.integers(0, 2**16))
data_messages = st.lists(frame_bodies, min_size=1, max_size=4).map(lambda f: ("msg", f))
pings = st.tuples(st.integers(0, 0xFFFF), st.binary(max_size=24)).map(lambda p: ("ping", p))
traffic = st.lists(st.one_of(data_messages, data_messages, pings), max_size=12)
short_traffic = st.lists(st.one_of(data_messages, pings), max_size=3)


def encode_traffic(items: list[tuple[str, object]]) -> tuple[bytes, Reference]:
    chunks: list[bytes] = []
    expected = Reference([], [], [], False)
    for kind, value in items:
        if kind == "msg":
            frames: list[bytes] = value  # type: ignore[assignment]
            out: list[bytes] = []
            encode_frames(out, frames)  # type: ignore[arg-type]
            chunks.extend(out)
            expected.messages.append(frames[0] if len(frames) == 1 else list(frames))
        else:
            ttl, context = value  # type: ignore[misc]
            chunks.append(encode_command(b"PING", ttl.to_bytes(2, "big") + context))
            expected.events.append(Ping(ttl, context[:16]))
            expected.pongs.append(encode_command(b"PONG", context[:16]))
    return b"".join(chunks), expected


def cut_points(data: st.DataObject, length: int) -> list[int]:
    return data.draw(
        st.one_of(
            st.lists(st.integers(0, length), max_size=30),
            st.integers(1, 64).map(lambda step: list(range(step, length, step))),
        ),
        label="cuts",
    )


command_names = st.sampled_from(
    [b"PING", b"PONG", b"SUBSCRIBE", b"CANCEL", b"ERROR", b"READY", b"BOGUS", b""]
)


@st.composite
def hostile_frame(draw: st.DrawFn) -> bytes:
    flags = draw(
        st.one_of(st.sampled_from([0, 1, 2, 3, 4, 5, 6, 7, 0xF0, 0xF1]), st.integers(0, 255))
    )
    if flags & FLAG_COMMAND and draw(st.booleans()):
        name = draw(command_names)
        body = bytes((len(name),)) + name + draw(st.binary(max_size=24))
    else:
        body = draw(st.binary(max_size=40))
    size = len(body)
    if draw(st.integers(0, 9)) == 0:  # lie about the size
        size = draw(
            st.one_of(
                st.integers(0, 300),
                st.sampled_from([2**64 - 1, 2**63, 2**63 - 1, 2**40, 65_535, 65_536]),
            )
        )
    if flags & FLAG_LONG:
        header = bytes((flags,)) + size.to_bytes(8, "big")
    else:
        header = bytes((flags, size & 0xFF))
    return header + body


hostile_bytes = st.one_of(
    st.binary(max_size=300),
    st.lists(hostile_frame(), max_size=10).map(b"".join),
)


# -- (a) splitting never changes the result --------------------------------------------------


@SETTINGS
@given(items=traffic, use_buffer=st.booleans(), data=st.data())
def test_split_feeding_gives_the_same_messages_and_events(
    items: list[tuple[str, object]], use_buffer: bool, data: st.DataObject
) -> None:
    wire, expected = encode_traffic(items)
    whole = run(ready_connection(), wire, [], use_buffer=False)
    assert whole == expected
    split = run(ready_connection(), wire, cut_points(data, len(wire)), use_buffer)
    assert split == expected


@SETTINGS
@given(items=traffic, limit=st.integers(0, 300_000), data=st.data())
def test_maxmsgsize_refuses_exactly_the_oversized_messages(
    items: list[tuple[str, object]], limit: int, data: st.DataObject
) -> None:
    wire, _ = encode_traffic(items)
    expected = reference_decode(wire, limit)
    got = run(ready_connection(limit), wire, cut_points(data, len(wire)), use_buffer=True)
    assert got.error == expected.error
    assert got.messages == expected.messages
    assert got.events == expected.events


# -- (b) garbage after the handshake ---------------------------------------------------------


@SETTINGS
@given(
    prefix=short_traffic,
    garbage=hostile_bytes,
    use_buffer=st.booleans(),
    data=st.data(),
)
def test_garbage_after_handshake_is_refused_or_decoded_exactly(
    prefix: list[tuple[str, object]], garbage: bytes, use_buffer: bool, data: st.DataObject
) -> None:
    good, _ = encode_traffic(prefix)
    wire = good + garbage
    expected = reference_decode(wire)
    conn = ready_connection()
    try:
        got = run(conn, wire, cut_points(data, len(wire)), use_buffer)
    finally:
        conn.messages.clear()
    assert got.error == expected.error
    assert got.messages == expected.messages  # whole messages only, never a partial multipart
    assert got.events == expected.events
    if not got.error:
        assert got.pongs == expected.pongs


# -- (c) garbage as the greeting -------------------------------------------------------------

greeting_like = st.builds(
    lambda pad, major, minor, mech, srv, rest: (
        b"\xff" + pad + b"\x7f" + bytes((major, minor)) + mech.ljust(20, b"\x00")[:20] + srv + rest
    ),
    st.binary(min_size=8, max_size=8),
    st.integers(0, 255),
    st.integers(0, 255),
    st.sampled_from([b"NULL", b"PLAIN", b"CURVE", b"", b"NULL\x00X"]) | st.binary(max_size=20),
    st.binary(min_size=1, max_size=1),
    st.binary(max_size=120),
)
greeting_bytes = st.one_of(
    st.binary(max_size=200),
    greeting_like,
    st.tuples(greeting_like, hostile_bytes).map(lambda t: t[0] + t[1]),
    hostile_bytes.map(lambda g: GREETING + g),
    hostile_bytes.map(lambda g: GREETING + READY_PUSH[:5] + g),
)


@SETTINGS
@given(
    raw=greeting_bytes,
    socket_type=st.sampled_from([SocketType.PULL, SocketType.PUSH, SocketType.PAIR]),
    as_server=st.booleans(),
    data=st.data(),
)
def test_garbage_greeting_raises_only_remote_protocol_error(
    raw: bytes, socket_type: SocketType, as_server: bool, data: st.DataObject
) -> None:
    conn = Connection(socket_type, as_server=as_server)
    conn.initiate()
    conn.data_to_send()
    try:
        feed_in_pieces(conn, raw, cut_points(data, len(raw)), use_buffer=True)
    except RemoteProtocolError:
        assert conn.state is ConnectionState.CLOSED
        with pytest.raises(RemoteProtocolError):
            conn.receive_data(b"\x00\x00")
        return
    if raw[:1] not in (b"", b"\xff"):
        pytest.fail("a first byte other than 0xFF must be refused at once")
    if len(raw) > 10 and raw[10] < 3:
        pytest.fail("a ZMTP major version below 3 must be refused")
    if conn.state is not ConnectionState.READY:
        assert not conn.messages, "no data before the handshake completes"


# -- (d) runs of equal-size messages (the run parser) ----------------------------------------

run_traffic = st.lists(
    st.one_of(
        st.tuples(
            st.sampled_from([0, 1, 16, 255, 256, 1024]),  # size of the run's messages
            st.integers(1, 80),  # run length
            st.booleans(),  # one odd message (other size, multipart or PING) after the run
        ),
        # The largest frames below the buffered-read limit, in short runs (long ones only
        # make the test slow, not more thorough).
        st.tuples(st.just(65_535), st.integers(1, 4), st.booleans()),
    ),
    min_size=1,
    max_size=6,
)


@SETTINGS
@given(runs=run_traffic, data=st.data())
def test_runs_of_equal_messages_split_anywhere(
    runs: list[tuple[int, int, bool]], data: st.DataObject
) -> None:
    items: list[tuple[str, object]] = []
    for n, (size, length, odd) in enumerate(runs):
        items.extend(("msg", [body_of(size, n * 1000 + i)]) for i in range(length))
        if odd:
            items.append(("msg", [body_of(size + 1, n), body_of(size, n)]))
            items.append(("ping", (n, b"ctx")))
    wire, expected = encode_traffic(items)
    assert run(ready_connection(), wire, [], use_buffer=False) == expected
    split = run(ready_connection(), wire, cut_points(data, len(wire)), use_buffer=True)
    assert split == expected
