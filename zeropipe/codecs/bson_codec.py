"""The BSON codec (wire id 2, ``application/bson``), on pymongo's ``bson`` package.

A message is one BSON document whose keys are the Python field names (not JSON names: the
document is what a MongoDB user stores and queries). Kinds map to BSON types as follows:

    int32 -> int32 (0x10)          int64 -> int64 (0x12, bson.Int64 even for small values)
    double -> double (0x01)        bool -> boolean (0x08)     string -> UTF-8 string (0x02)
    bytes -> binary subtype 0      enum -> int32 (the member's value)
    message -> embedded document   list -> array              map -> embedded document
                                                               (int keys in decimal)

Every field is written, defaults included (a document that omits them is harder to query),
except optional (``X | None``) fields holding None, which are absent. Decoding accepts a
missing or null field as its proto3 default (None when optional), ignores unknown keys, and
widens where no value can be lost (an int64 holding an int32 field's value in range, an
integer for a double); anything else of the wrong BSON type raises DecodeError.

pymongo is the ``bson`` extra (``pip install 'zeropipe[bson]'``); the unrelated PyPI
package also called ``bson`` is detected and refused.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, TypeVar

from .errors import DecodeError, EncodeError, MissingCodecError
from .json_codec import (
    I32_MAX,
    I32_MIN,
    Decoding,
    DocumentCompiler,
    Encoding,
    _Bad,
    _Namespace,
    _reason,
    _type_name,
    d_bad,
    d_bool,
    d_double,
    d_int32,
    d_int64,
    d_member,
    d_string,
)
from .model import FieldSpec

T = TypeVar("T")


def _import_bson() -> Any:
    try:
        import bson
        from bson import int64
    except ImportError:
        raise MissingCodecError("bson", "bson", "pymongo") from None
    if not hasattr(bson, "decode") or not hasattr(bson, "encode"):
        raise MissingCodecError("bson", "bson", "pymongo (the installed 'bson' is another package)")
    return bson, int64.Int64


def d_bytes_bson(x: Any) -> bytes:
    if isinstance(x, bytes):
        return bytes(x)
    return d_bad(x, "binary data")


class BsonCompiler(DocumentCompiler):
    """Documents keyed by Python field names, int64 as ``bson.Int64``."""

    codec_name = "bson"
    omit_defaults = False

    def __init__(self, int64_type: type) -> None:
        super().__init__()
        self.int64_type = int64_type

    def encoding(self, kind: str, f: FieldSpec, ns: _Namespace) -> Encoding:
        if kind == "message":
            return self.message_encoding(f, ns)
        if kind == "enum":
            e = self.enum_encoding(f, ns)
            values = ns.add({m: int(m.value) for m in f.type}, "values")
            return dataclasses.replace(e, emit=f"{values}[x]")
        e = self.scalar_encoding(kind, ns)
        if kind == "int64":
            return dataclasses.replace(e, emit=f"{ns.add(self.int64_type, 'Int64')}(x)")
        return e

    def decoding(self, kind: str, f: FieldSpec, ns: _Namespace) -> Decoding:
        if kind == "int32":
            return Decoding(f"type(x) is int and {I32_MIN} <= x <= {I32_MAX}", ns.add(d_int32))
        if kind == "int64":  # an int64 comes back as bson.Int64, an int32 as int
            Int64 = ns.add(self.int64_type, "Int64")
            return Decoding(f"type(x) is {Int64} or type(x) is int", ns.add(d_int64), "int(x)")
        if kind == "double":
            return Decoding("type(x) is float", ns.add(d_double))
        if kind == "bool":
            return Decoding("type(x) is bool", ns.add(d_bool))
        if kind == "string":
            return Decoding("type(x) is str", ns.add(d_string))
        if kind == "bytes":
            return Decoding("type(x) is bytes", ns.add(d_bytes_bson))
        if kind == "enum":
            by_value = {m.value: m for m in f.type}
            table = ns.add(by_value, "by_value")
            slow = ns.add(functools.partial(d_member, f.type, by_value))
            return Decoding(f"type(x) is int and x in {table}", slow, f"{table}[x]")
        return self.message_decoding(f, ns)


class BsonCodec:
    """The ``bson`` codec (pymongo's ``bson``, with its C extension when present)."""

    name = "bson"
    wire_id = 2
    content_type = "application/bson"
    extra = "bson"

    def __init__(self) -> None:
        bson, int64_type = _import_bson()
        self._bson_encode = bson.encode
        self._bson_decode = bson.decode
        self._compiler = BsonCompiler(int64_type)
        self._encoders = self._compiler._encoders
        self._decoders = self._compiler._decoders

    def encode(self, obj: Any) -> bytes:
        """``obj`` (a ``@message`` instance) as one BSON document."""
        cls = obj.__class__
        try:
            enc = self._encoders.get(cls) or self._compiler.encoder(cls)
            out: bytes = self._bson_encode(enc(obj))
            return out
        except _Bad as e:
            raise EncodeError(self.name, _type_name(cls), e.describe()) from None
        except Exception as e:
            raise EncodeError(self.name, _type_name(cls), f"{type(e).__name__}: {e}") from e

    def decode(self, cls: type[T], data: bytes) -> T:
        """A ``cls`` from a BSON document; raises DecodeError for anything that does not fit."""
        dec = self._decoders.get(cls) or self._compiler.decoder(cls)
        try:
            doc = self._bson_decode(data)
        except Exception as e:
            raise DecodeError(
                self.name, _type_name(cls), f"not a BSON document: {_reason(e)}"
            ) from e
        try:
            return dec(doc)  # type: ignore[no-any-return]
        except _Bad as e:
            raise DecodeError(self.name, _type_name(cls), e.describe()) from None
        except Exception as e:
            raise DecodeError(self.name, _type_name(cls), _reason(e)) from e
