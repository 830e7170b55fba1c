"""Cutting a ZMTP byte stream into frames, and mutating one frame of it.

Shared by tests/test_mechanism_fuzz.py (in memory, hypothesis) and the socket-level harness
(tests/fuzz/socket_fuzz.py, random-based). Frames are whole wire frames, header included; the
first "frame" of a stream is the 64-byte greeting.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

FLAG_MORE = 0x01
FLAG_LONG = 0x02
FLAG_COMMAND = 0x04
GREETING_SIZE = 64

#: Every mutation (see ``Mutator.gap`` for those that may take a whole frame out).
OPS = (
    "flip",  # flip 1-3 bits
    "truncate",  # keep the first bytes of the frame, then go on with the next frame
    "cut",  # keep the first bytes of the frame, then send nothing more
    "drop",
    "dup",
    "swap",  # send the next frame first
    "replace",  # other bytes instead of the frame
    "insert",  # other bytes before the frame
    "resize",  # a size field that lies
    "relong",  # a short frame re-sent with a long header: the same frame
    "shorten",  # command data (a data frame's body) cut, with a true size field
    "redata",  # command data replaced, with a true size field
    "extend",  # command data grown, with a true size field
    "tail",  # other bytes instead of the frame and everything after it
)
#: Ops that rewrite a frame's header or data; on the greeting they flip bits instead.
FRAME_OPS = frozenset({"resize", "shorten", "redata", "extend"})


class FrameCutter:
    """Cuts a sender's byte stream into the greeting and whole frames (headers included)."""

    def __init__(self) -> None:
        self.buf = b""
        self.greeted = False

    def feed(self, data: bytes) -> list[bytes]:
        """Add ``data``; return the frames it completes."""
        self.buf += data
        out: list[bytes] = []
        if not self.greeted:
            if len(self.buf) < GREETING_SIZE:
                return out
            out.append(self.buf[:GREETING_SIZE])
            self.buf = self.buf[GREETING_SIZE:]
            self.greeted = True
        buf, pos = self.buf, 0
        while pos + 2 <= len(buf):
            if buf[pos] & FLAG_LONG:
                if pos + 9 > len(buf):
                    break
                end = pos + 9 + int.from_bytes(buf[pos + 1 : pos + 9], "big")
            else:
                end = pos + 2 + buf[pos + 1]
            if end > len(buf):
                break
            out.append(buf[pos:end])
            pos = end
        self.buf = buf[pos:]
        return out


def split_frame(frame: bytes) -> tuple[int, bytes]:
    """(flags, body) of a whole frame."""
    flags = frame[0]
    return flags, frame[9:] if flags & FLAG_LONG else frame[2:]


def build_frame(flags: int, body: bytes) -> bytes:
    """A frame with a true size field (long only when it must be)."""
    if len(body) > 255:
        return bytes((flags | FLAG_LONG,)) + len(body).to_bytes(8, "big") + body
    return bytes((flags & ~FLAG_LONG, len(body))) + body


def command_frame(name: bytes, data: bytes, flags: int = FLAG_COMMAND) -> bytes:
    return build_frame(flags, bytes((len(name),)) + name + data)


def resize(frame: bytes, size: int) -> bytes:
    """``frame`` with a size field that lies (same flags, same body)."""
    flags, body = split_frame(frame)
    if flags & FLAG_LONG:
        return bytes((flags,)) + (size % 2**64).to_bytes(8, "big") + body
    return bytes((flags, size & 0xFF)) + body


def relong(frame: bytes) -> bytes:
    """A short frame re-encoded with a long (8-byte) size: the same frame."""
    flags = frame[0]
    if flags & FLAG_LONG:
        return frame
    return bytes((flags | FLAG_LONG,)) + frame[1].to_bytes(8, "big") + frame[2:]


def redata(frame: bytes, data: bytes) -> bytes:
    """``frame`` with its command's data (a data frame's body) replaced, and a true size."""
    flags, body = split_frame(frame)
    head = b""
    if flags & FLAG_COMMAND and body and body[0] + 1 <= len(body):
        head = body[: 1 + body[0]]
    return build_frame(flags, head + data)


def command_data(frame: bytes) -> bytes:
    """A command frame's data (a data frame's body)."""
    flags, body = split_frame(frame)
    if flags & FLAG_COMMAND and body and body[0] + 1 <= len(body):
        return body[1 + body[0] :]
    return body


@dataclass(frozen=True)
class Mutation:
    """One change to the frame numbered ``index`` of a stream (0 is the greeting).

    ``positions`` are bit numbers (flip), ``size`` a length (truncate, cut, shorten) or the lie
    (resize), ``payload`` the bytes that replace, precede or extend.
    """

    op: str
    index: int
    positions: tuple[int, ...] = (0,)
    size: int = 0
    payload: bytes = b""


class Mutator:
    """Passes a stream's frames through, applying one mutation to one of them."""

    def __init__(self, mutation: Mutation | None) -> None:
        self.mutation = mutation
        self.frames_in = 0
        self.held: bytes | None = None
        self.stopped = False
        self.applied = False
        #: The mutated frame was taken out whole and the stream went on (drop, swap, or a
        #: truncation or replacement to nothing): the receiver may just miss that frame.
        self.gap = False

    def frame(self, frame: bytes) -> bytes:
        """The bytes to send for the next frame of the stream."""
        index = self.frames_in
        self.frames_in += 1
        if self.stopped:
            return b""
        m = self.mutation
        if m is not None and index == m.index:
            self.applied = True
            out = self._mutate(m, frame)
            self.gap = not out and not self.stopped
            return out
        if self.held is not None:
            frame, self.held = frame + self.held, None
        return frame

    def _mutate(self, m: Mutation, frame: bytes) -> bytes:
        op = m.op
        if m.index == 0 and op in FRAME_OPS:
            op = "flip"
        if op == "flip":
            flipped = bytearray(frame)
            for pos in m.positions:
                flipped[(pos >> 3) % len(flipped)] ^= 1 << (pos & 7)
            return bytes(flipped)
        if op == "truncate":
            return frame[: m.size % len(frame)]
        if op == "cut":
            self.stopped = True
            return frame[: m.size % len(frame)]
        if op == "drop":
            return b""
        if op == "dup":
            return frame + frame
        if op == "swap":
            self.held = frame
            return b""
        if op == "replace":
            return m.payload
        if op == "insert":
            return m.payload + frame
        if op == "resize":
            return resize(frame, m.size)
        if op == "relong":
            return frame if m.index == 0 else relong(frame)
        if op == "shorten":
            data = command_data(frame)
            return redata(frame, data[: m.size % (len(data) + 1)])
        if op == "redata":
            return redata(frame, m.payload)
        if op == "extend":
            return redata(frame, command_data(frame) + (m.payload[:8] or b"\x00"))
        if op == "tail":
            self.stopped = True
            return m.payload
        raise ValueError(f"unknown mutation {op!r}")


# -- random-based generation (the socket harness) ----------------------------------------------

#: Command names of the handshakes and of ZMTP 3.1, and one nobody knows.
COMMAND_NAMES = (
    b"HELLO",
    b"WELCOME",
    b"INITIATE",
    b"READY",
    b"ERROR",
    b"MESSAGE",
    b"PING",
    b"PONG",
    b"SUBSCRIBE",
    b"CANCEL",
    b"BOGUS",
)
#: Data sizes that pass the mechanisms' size checks (so that the crypto is reached).
PLAUSIBLE_SIZES = (0, 1, 2, 17, 24, 33, 160, 194, 248, 249, 300)
#: Sizes a lying header may declare.
LYING_SIZES = (2**64 - 1, 2**63, 2**63 - 1, 2**40, 65_535, 65_536, 1 << 20, 0, 1, 255, 256)


def random_frame(rng: random.Random) -> bytes:
    """One hostile frame: a handshake command with data of a plausible size, a garbage CURVE
    MESSAGE or PLAIN ERROR, or random flags and body; now and then with a lying size."""
    kind = rng.randrange(4)
    if kind == 0:
        name = rng.choice(COMMAND_NAMES)
        size = rng.choice(PLAUSIBLE_SIZES) if rng.random() < 0.5 else rng.randrange(60)
        body = bytes((len(name),)) + name + rng.randbytes(size)
        flags = rng.choice((FLAG_COMMAND, FLAG_COMMAND, FLAG_COMMAND | FLAG_MORE, 0))
    elif kind == 1:
        body = rng.choice((b"^RROR", b"\x07MESSAGE")) + rng.randbytes(rng.randrange(60))
        flags = rng.choice((FLAG_COMMAND, 0, FLAG_MORE))
    else:
        body = rng.randbytes(rng.randrange(80))
        flags = rng.choice((0, 1, 4, 5, rng.randrange(256)))
    size = len(body)
    if rng.random() < 0.1:
        size = rng.choice(LYING_SIZES) if rng.random() < 0.5 else rng.randrange(300)
    if flags & FLAG_LONG or size > 255:
        return bytes((flags | FLAG_LONG,)) + size.to_bytes(8, "big") + body
    return bytes((flags, size)) + body


def random_bytes(rng: random.Random) -> bytes:
    """Hostile bytes: plain random ones, or a few hostile frames."""
    if rng.random() < 0.4:
        return rng.randbytes(rng.choice((0, 1, 2, 9, 10, 11, 64, rng.randrange(400))))
    return b"".join(random_frame(rng) for _ in range(rng.randrange(1, 6)))


def random_mutation(rng: random.Random, frames: int, ops: tuple[str, ...] = OPS) -> Mutation:
    """A mutation of one of ``frames`` frames, half of the time in the handshake (first four)."""
    index = rng.randrange(min(4, frames) if rng.random() < 0.5 else frames)
    return Mutation(
        rng.choice(ops),
        index,
        positions=tuple(rng.randrange(2**20) for _ in range(rng.randrange(1, 4))),
        size=rng.choice(LYING_SIZES) if rng.random() < 0.2 else rng.randrange(400),
        payload=random_bytes(rng),
    )
