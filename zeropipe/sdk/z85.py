"""Z85, the printable encoding of ZeroMQ keys (https://rfc.zeromq.org/spec/32/).

Every 4 bytes (a big-endian 32-bit number) become 5 characters, the number's base-85 digits
most significant first, each written with the alphabet :data:`Z85CHARS`.
"""

from __future__ import annotations

import struct
from typing import Final

RawBytes = bytes | bytearray | memoryview

Z85CHARS: Final = (
    b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#"
)

_INVALID: Final = 0xFF
# byte -> its digit value, or _INVALID for a byte outside the alphabet (for bytes.translate)
_DIGIT_OF: Final = bytes(Z85CHARS.find(bytes([b])) & 0xFF for b in range(256))
# 0..84 -> one character; 0..85**2-1 -> its two characters
_ONE: Final = [Z85CHARS[i : i + 1] for i in range(85)]
_TWO: Final = [bytes((Z85CHARS[i // 85], Z85CHARS[i % 85])) for i in range(85 * 85)]
_85_2: Final = 85**2
_85_4: Final = 85**4
_MAX_GROUP: Final = 0xFFFF_FFFF


def encode(rawbytes: RawBytes) -> bytes:
    """Encode ``rawbytes`` (a multiple of 4 bytes long) as Z85."""
    data = memoryview(rawbytes).cast("B")
    if len(data) % 4:
        raise ValueError(f"Z85 encodes a multiple of 4 bytes, not {len(data)}")
    groups = struct.unpack(f">{len(data) // 4}I", data)
    return b"".join([_ONE[v // _85_4] + _TWO[v // _85_2 % _85_2] + _TWO[v % _85_2] for v in groups])


def decode(z85bytes: str | RawBytes) -> bytes:
    """Decode Z85 text (``bytes`` or an ASCII ``str``, a multiple of 5 characters long)."""
    if isinstance(z85bytes, str):
        try:
            text = z85bytes.encode("ascii")
        except UnicodeEncodeError as exc:
            bad = z85bytes[exc.start]
            raise ValueError(f"invalid Z85 character {bad!r} at offset {exc.start}") from None
    else:
        text = bytes(z85bytes)
    if len(text) % 5:
        raise ValueError(f"Z85 text must be a multiple of 5 characters long, not {len(text)}")
    digits = text.translate(_DIGIT_OF)
    bad_at = digits.find(_INVALID)
    if bad_at >= 0:
        bad_char = chr(text[bad_at])
        raise ValueError(f"invalid Z85 character {bad_char!r} at offset {bad_at}")
    groups = [
        (((a * 85 + b) * 85 + c) * 85 + d) * 85 + e
        for a, b, c, d, e in zip(
            digits[0::5], digits[1::5], digits[2::5], digits[3::5], digits[4::5], strict=True
        )
    ]
    if groups and max(groups) > _MAX_GROUP:
        at = 5 * next(i for i, v in enumerate(groups) if v > _MAX_GROUP)
        group = text[at : at + 5].decode("ascii")
        raise ValueError(f"Z85 group {group!r} at offset {at} is larger than 2**32 - 1")
    return struct.pack(f">{len(groups)}I", *groups)


__all__ = ["Z85CHARS", "decode", "encode"]
