"""Typed messages and the codecs that put them on the wire.

Declare a message with :func:`message` and :func:`field`, then encode it with any codec::

    from zeropipe import codecs

    data = codecs.encode(trade, "json")             # or "bson", "protobuf", "thrift-binary"...
    trade = codecs.decode(Trade, data, "json")

    frames = codecs.encode_message(trade, "protobuf")   # [header, payload]: two ZeroMQ frames
    trade = codecs.decode_message(frames, expected=Trade, max_size=1 << 20)

Codec libraries are optional extras, imported only when their codec is first used. This
package imports nothing from the rest of zeropipe. See docs/typed-messages.md.
"""

from .errors import CodecError, DecodeError, EncodeError, MissingCodecError
from .header import decode_message, encode_message, pack_header, parse_header
from .model import MESSAGES, FieldSpec, MessageSpec, ModelError, field, is_message, message, spec_of
from .registry import Codec, available, decode, encode, get, register

__all__ = [
    "MESSAGES",
    "Codec",
    "CodecError",
    "DecodeError",
    "EncodeError",
    "FieldSpec",
    "MessageSpec",
    "MissingCodecError",
    "ModelError",
    "available",
    "decode",
    "decode_message",
    "encode",
    "encode_message",
    "field",
    "get",
    "is_message",
    "message",
    "pack_header",
    "parse_header",
    "register",
    "spec_of",
]
