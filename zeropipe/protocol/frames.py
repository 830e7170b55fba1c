"""ZMTP 3.x framing: a flags byte, a 1- or 8-byte size, then the body.

Encoding helpers append to a caller-owned list of chunks so that many frames
can be written with one syscall; the hot path uses the precomputed headers.
"""

from __future__ import annotations

from collections.abc import Sequence

from zeropipe.protocol.errors import LocalProtocolError

FLAG_MORE = 0x01
FLAG_LONG = 0x02
FLAG_COMMAND = 0x04

#: Largest size a ZMTP long frame may carry (the top bit must be clear).
MAX_FRAME_SIZE = (1 << 63) - 1

Buffer = bytes | bytearray | memoryview

#: ``SHORT_HEADER[n]`` and ``SHORT_HEADER_MORE[n]`` are the 2-byte headers of a
#: short frame of n bytes, last or not-last.
SHORT_HEADER: tuple[bytes, ...] = tuple(bytes((0, n)) for n in range(256))
SHORT_HEADER_MORE: tuple[bytes, ...] = tuple(bytes((FLAG_MORE, n)) for n in range(256))


def frame_header(size: int, more: bool = False, command: bool = False) -> bytes:
    """Return the header of one frame of ``size`` bytes."""
    flags = (FLAG_MORE if more else 0) | (FLAG_COMMAND if command else 0)
    if size < 256:
        return bytes((flags, size))
    if size > MAX_FRAME_SIZE:
        raise LocalProtocolError(f"frame of {size} bytes is too large for ZMTP")
    return bytes((flags | FLAG_LONG,)) + size.to_bytes(8, "big")


def encode_frames(out: list[Buffer], frames: Sequence[Buffer]) -> int:
    """Append the frames of one message to ``out``; return the bytes added."""
    total = 0
    last = len(frames) - 1
    for i, body in enumerate(frames):
        size = len(body) if not isinstance(body, memoryview) else body.nbytes
        if size < 256:
            out.append(SHORT_HEADER_MORE[size] if i < last else SHORT_HEADER[size])
            total += size + 2
        else:
            out.append(frame_header(size, more=i < last))
            total += size + 9
        out.append(body)
    return total


def encode_command(name: bytes, data: bytes = b"") -> bytes:
    """Return a whole command frame: header, name length, name, data."""
    if not 0 < len(name) < 256:
        raise LocalProtocolError(f"bad command name {name!r}")
    body = bytes((len(name),)) + name + data
    return frame_header(len(body), command=True) + body
