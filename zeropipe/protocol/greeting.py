"""The 64-byte ZMTP 3.x greeting.

We send all 64 bytes at once (RFC 23 allows it). When reading the peer's we
are lenient where libzmq is: the padding (bytes 1-8), the as-server byte and
the filler are not checked, and any minor version is accepted. A ZMTP 1.0 or
2.0 peer is detected only to be refused; we never downgrade.
"""

from __future__ import annotations

from dataclasses import dataclass

from zeropipe.protocol.errors import RemoteProtocolError

GREETING_SIZE = 64
SIGNATURE_SIZE = 10
VERSION_MAJOR = 3
VERSION_MINOR = 1


def build_greeting(mechanism: bytes, as_server: bool) -> bytes:
    """Return our 64-byte greeting announcing ZMTP 3.1."""
    if len(mechanism) > 20:
        raise ValueError(f"mechanism name {mechanism!r} is longer than 20 bytes")
    return (
        b"\xff"
        + b"\x00" * 8
        + b"\x7f"
        + bytes((VERSION_MAJOR, VERSION_MINOR))
        + mechanism.ljust(20, b"\x00")
        + (b"\x01" if as_server else b"\x00")
        + b"\x00" * 31
    )


@dataclass(frozen=True)
class PeerGreeting:
    """What we keep of the peer's greeting."""

    major: int
    minor: int
    mechanism: bytes
    as_server: bool


def check_signature(data: bytes) -> None:
    """Refuse anything but a ZMTP 3.x signature in the first bytes seen.

    ``data`` may be shorter than the signature; only what is there is checked,
    so garbage is refused as early as possible.
    """
    if data and data[0] != 0xFF:
        raise RemoteProtocolError("peer is not speaking ZMTP 3.x (ZMTP 1.0 or garbage)")
    if len(data) >= SIGNATURE_SIZE and not data[9] & 0x01:
        raise RemoteProtocolError("peer sent a ZMTP 1.0 long-form greeting")
    if len(data) > SIGNATURE_SIZE and data[10] < VERSION_MAJOR:
        raise RemoteProtocolError(f"peer speaks ZMTP {data[10]}.x; only 3.x is supported")


def parse_greeting(data: bytes) -> PeerGreeting:
    """Parse a complete 64-byte greeting."""
    check_signature(data)
    mechanism = bytes(data[12:32]).rstrip(b"\x00")
    return PeerGreeting(
        major=data[10], minor=data[11], mechanism=mechanism, as_server=data[32] == 1
    )
