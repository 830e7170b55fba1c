"""Command bodies: READY/ERROR metadata, SUBSCRIBE/CANCEL and PING/PONG."""

from __future__ import annotations

from collections.abc import Mapping

from zeropipe.protocol.errors import RemoteProtocolError

READY = b"READY"
ERROR = b"ERROR"
SUBSCRIBE = b"SUBSCRIBE"
CANCEL = b"CANCEL"
PING = b"PING"
PONG = b"PONG"

#: How libzmq's PLAIN writes ERROR: its C literal "\x05ERROR" is read as the hex
#: escape \x05E, so the name's length byte and first letter become one "^". Its
#: PLAIN peers expect that form; zeropipe's PLAIN server sends it and both sides read it.
LIBZMQ_PLAIN_ERROR = b"^RROR"

#: PONG echoes at most this much of a PING's context (RFC 37).
MAX_PING_CONTEXT = 16


class Metadata(dict[str, bytes]):
    """Connection properties; lookups ignore the case of the name (RFC 23)."""

    def get_ci(self, name: str) -> bytes | None:
        """Return the property called ``name`` in any case, or None."""
        wanted = name.lower()
        for key, value in self.items():
            if key.lower() == wanted:
                return value
        return None


def split_command(body: bytes) -> tuple[bytes, bytes]:
    """Split a command frame body into its name and its data."""
    if not body:
        raise RemoteProtocolError("empty command frame")
    size = body[0]
    if size == 0 or size + 1 > len(body):
        raise RemoteProtocolError("command name length overruns the frame")
    return bytes(body[1 : 1 + size]), bytes(body[1 + size :])


def encode_metadata(properties: Mapping[str, bytes]) -> bytes:
    """Encode properties as READY/INITIATE metadata."""
    parts = []
    for name, value in properties.items():
        raw = name.encode("ascii")
        if not 0 < len(raw) < 256:
            raise ValueError(f"property name {name!r} must be 1..255 ASCII bytes")
        parts.append(bytes((len(raw),)) + raw + len(value).to_bytes(4, "big") + value)
    return b"".join(parts)


def decode_metadata(data: bytes) -> Metadata:
    """Decode READY metadata, refusing any length that overruns the body."""
    props = Metadata()
    pos, end = 0, len(data)
    while pos < end:
        size = data[pos]
        pos += 1
        if size == 0 or pos + size + 4 > end:
            raise RemoteProtocolError("metadata property name overruns the command")
        try:
            name = data[pos : pos + size].decode("ascii")
        except UnicodeDecodeError:
            raise RemoteProtocolError("metadata property name is not ASCII") from None
        pos += size
        vsize = int.from_bytes(data[pos : pos + 4], "big")
        pos += 4
        if pos + vsize > end:
            raise RemoteProtocolError(f"metadata property {name!r} overruns the command")
        props[name] = bytes(data[pos : pos + vsize])
        pos += vsize
    return props


def decode_error(data: bytes) -> str:
    """Return the reason carried by an ERROR command (lenient on overruns)."""
    if not data:
        return ""
    return data[1 : 1 + data[0]].decode("utf-8", "replace")


def encode_error(reason: str) -> bytes:
    """Return the data of an ERROR command."""
    raw = reason.encode("utf-8")[:255]
    return bytes((len(raw),)) + raw


def parse_ping(data: bytes) -> tuple[int, bytes]:
    """Return (TTL in deciseconds, context) of a PING."""
    if len(data) < 2:
        raise RemoteProtocolError("PING shorter than its TTL field")
    return int.from_bytes(data[:2], "big"), data[2 : 2 + MAX_PING_CONTEXT]
