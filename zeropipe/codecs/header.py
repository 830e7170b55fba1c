"""The typed-frame wire format: which codec and which message type a payload frame holds.

A typed message travels as two ZeroMQ frames (one multipart message), header first::

    header frame:  b"ZP"  0x01  <codec wire id: 1 byte>  <type name: 1..255 bytes of UTF-8>
    payload frame: the message encoded by that codec

The type name is the message's fully qualified name (``market.Trade``); it runs to the end of
the frame, whose length ZeroMQ already carries, so it has no length prefix or terminator.
Wire ids are those of :mod:`zeropipe.codecs.registry` (1 json, 2 bson, 3 protobuf,
4 thrift-binary, 5 thrift-compact, 128..255 plugins). docs/typed-messages.md specifies it
for peers in other languages.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .errors import CodecError, DecodeError, EncodeError, MissingCodecError
from .model import MESSAGES, MessageSpec
from .registry import Codec, get

MAGIC = b"ZP"
VERSION = 1
MAX_TYPE_NAME = 255
_PREFIX_LEN = 4  # magic, version, codec id
_CACHE_LIMIT = 4096  # distinct headers remembered; beyond that they are parsed every time

_packed: dict[tuple[str | int, str], bytes] = {}
_parsed: dict[bytes, tuple[int, str]] = {}


def pack_header(codec: str | int | Codec, full_name: str) -> bytes:
    """The header frame for a ``full_name`` message encoded with ``codec`` (a name, wire id
    or codec). The result is cached: a hot sender pays one dict lookup per message."""
    if not isinstance(codec, (str, int)):
        codec = get(codec).wire_id  # a codec object need not be hashable
    header = _packed.get((codec, full_name))
    if header is None:
        header = _pack(codec, full_name)
    return header


def _pack(codec: str | int, full_name: str) -> bytes:
    wire_id = get(codec).wire_id
    try:
        name = full_name.encode("utf-8")
    except (AttributeError, UnicodeError):
        raise EncodeError(
            "", str(full_name), "a type name is a str that encodes to UTF-8"
        ) from None
    if not 1 <= len(name) <= MAX_TYPE_NAME:
        raise EncodeError(
            "", full_name, f"a type name is 1..{MAX_TYPE_NAME} bytes of UTF-8, not {len(name)}"
        )
    header = MAGIC + bytes((VERSION, wire_id)) + name
    if len(_packed) < _CACHE_LIMIT:
        _packed[(codec, full_name)] = header
    return header


def parse_header(frame: Any) -> tuple[int, str]:
    """``(codec wire id, type name)`` of a header frame (bytes, bytearray, memoryview or a
    Frame). Raises DecodeError for a frame that is not a version-1 typed-frame header or
    names a codec that is not available here."""
    data = _as_bytes(frame, "header")
    found = _parsed.get(data)
    if found is None:
        found = _parse(data)
    return found


def _parse(data: bytes) -> tuple[int, str]:
    if len(data) < _PREFIX_LEN or data[:2] != MAGIC:
        raise DecodeError(
            "",
            "",
            f"not a zeropipe typed frame: a header frame starts with {MAGIC!r}, "
            f"this one is {_preview(data)}",
        )
    if data[2] != VERSION:
        raise DecodeError(
            "",
            "",
            f"unsupported typed-frame version {data[2]} (this zeropipe reads version {VERSION})",
        )
    wire_id = data[3]
    raw = data[_PREFIX_LEN:]
    try:
        name = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise DecodeError("", "", f"the type name is not UTF-8: {_preview(raw)}") from None
    if not name:
        raise DecodeError("", "", "the typed-frame header has an empty type name")
    if len(raw) > MAX_TYPE_NAME:
        raise DecodeError(
            "", name[:60], f"the type name is longer than {MAX_TYPE_NAME} bytes ({len(raw)})"
        )
    codec = _codec_of(wire_id, name)
    found = (codec.wire_id, name)
    if len(_parsed) < _CACHE_LIMIT:
        _parsed[data] = found
    return found


def _codec_of(wire_id: int, type_name: str) -> Codec:
    try:
        return get(wire_id)
    except MissingCodecError as e:
        raise DecodeError(e.codec, type_name, str(e)) from e
    except CodecError as e:
        raise DecodeError("", type_name, f"unknown codec wire id {wire_id}: {e}") from e


def encode_message(obj: Any, codec: str | int | Codec = "json") -> list[bytes]:
    """``[header, payload]``: the two frames of the typed message ``obj`` (a ``@message``
    instance) encoded with ``codec``."""
    spec = getattr(obj.__class__, "__zeropipe_message__", None)
    if not isinstance(spec, MessageSpec):
        raise EncodeError(
            "", type(obj).__qualname__, "not a typed message (declare its class with @message)"
        )
    c = get(codec)
    return [pack_header(c.wire_id, spec.full_name), c.encode(obj)]


def decode_message(
    frames: Sequence[Any],
    expected: type | tuple[type, ...] | None = None,
    max_size: int | None = None,
) -> Any:
    """The message in ``[header, payload]`` frames.

    The type named by the header must be a ``@message`` class known here (imported), and
    a subclass of ``expected`` when given. A payload longer than ``max_size`` bytes is refused
    before it is decoded. Every failure is a DecodeError naming the codec and the type.
    """
    if len(frames) != 2:
        raise DecodeError(
            "", "", f"a typed message is two frames (header, payload), not {len(frames)}"
        )
    wire_id, name = parse_header(frames[0])
    codec = _codec_of(wire_id, name)
    cls = MESSAGES.get(name)
    if cls is None:
        raise DecodeError(
            codec.name, name, f"unknown message type {name!r}: no @message class has that name"
        )
    if expected is not None and not issubclass(cls, expected):
        raise DecodeError(codec.name, name, f"expected {_names(expected)}, got {name}")
    payload = _as_bytes(frames[1], "payload")
    if max_size is not None and len(payload) > max_size:
        raise DecodeError(
            codec.name,
            name,
            f"message over the size limit: {len(payload)} bytes > max_size {max_size}",
        )
    return codec.decode(cls, payload)


def _as_bytes(frame: Any, what: str) -> bytes:
    if frame.__class__ is bytes:
        return frame
    if isinstance(frame, (bytes, bytearray, memoryview)):
        return bytes(frame)
    data = getattr(frame, "bytes", None)  # a zeropipe or pyzmq Frame
    if isinstance(data, bytes):
        return data
    raise DecodeError("", "", f"the {what} frame is not bytes: {type(frame).__name__}")


def _preview(data: bytes) -> str:
    return repr(data[:16]) + ("..." if len(data) > 16 else "")


def _names(expected: type | tuple[type, ...]) -> str:
    types = expected if isinstance(expected, tuple) else (expected,)
    names = [
        spec.full_name
        if isinstance(spec := getattr(t, "__zeropipe_message__", None), MessageSpec)
        else t.__qualname__
        for t in types
    ]
    return names[0] if len(names) == 1 else "one of " + ", ".join(names)
