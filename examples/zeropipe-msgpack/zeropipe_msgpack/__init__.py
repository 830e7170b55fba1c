"""A msgpack codec for zeropipe typed messages (an example plugin; wire id 128)."""

from __future__ import annotations

from typing import Any, TypeVar

from zeropipe.codecs import DecodeError, EncodeError, MissingCodecError, spec_of
from zeropipe.codecs.model import INT32_RANGE, INT64_RANGE, FieldSpec

T = TypeVar("T")

_RANGES = {"int32": INT32_RANGE, "int64": INT64_RANGE}
_TYPES: dict[str, type] = {"double": float, "bool": bool, "string": str, "bytes": bytes}


class _Bad(Exception):
    pass


class MsgpackCodec:
    name = "msgpack"
    wire_id = 128
    content_type = "application/msgpack"
    extra = ""  # not a zeropipe extra: this package depends on msgpack itself

    def __init__(self) -> None:
        try:
            import msgpack  # type: ignore[import-untyped]
        except ImportError:
            raise MissingCodecError("msgpack", "", "msgpack") from None
        self._packb = msgpack.packb
        self._unpackb = msgpack.unpackb

    def encode(self, obj: Any) -> bytes:
        try:
            data: bytes = self._packb(_to_doc(obj), use_bin_type=True)
            return data
        except Exception as e:
            raise EncodeError(self.name, type(obj).__qualname__, str(e)) from e

    def decode(self, cls: type[T], data: bytes) -> T:
        name = spec_of(cls).full_name
        try:
            doc = self._unpackb(data, raw=False, strict_map_key=False)
            result: T = _from_doc(cls, doc)
            return result
        except Exception as e:
            raise DecodeError(self.name, name, f"{type(e).__name__}: {e}") from e


def _to_doc(obj: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {}
    for f in spec_of(obj).fields:
        value = getattr(obj, f.name)
        if value is None and f.optional:
            continue
        if f.is_map:
            doc[f.name] = {k: _out(f, v) for k, v in value.items()}
        elif f.repeated:
            doc[f.name] = [_out(f, v) for v in value]
        else:
            doc[f.name] = _out(f, value)
    return doc


def _out(f: FieldSpec, value: Any) -> Any:
    if f.kind == "message":
        return _to_doc(value)
    if f.kind == "enum":
        return int(f.type(value))
    return _check(f, value)


def _from_doc(cls: type, doc: Any) -> Any:
    if not isinstance(doc, dict):
        raise _Bad(f"expected a map for {cls.__qualname__}, got {type(doc).__name__}")
    values = {}
    for f in spec_of(cls).fields:
        value = doc.get(f.name)
        if value is None:
            values[f.name] = None if f.optional else _zero(f)
        elif f.is_map:
            values[f.name] = {_key(f, k): _in(f, v) for k, v in _typed(dict, value).items()}
        elif f.repeated:
            values[f.name] = [_in(f, v) for v in _typed(list, value)]
        else:
            values[f.name] = _in(f, value)
    return cls(**values)


def _in(f: FieldSpec, value: Any) -> Any:
    if f.kind == "message":
        return _from_doc(f.type, value)
    if f.kind == "enum":
        return f.type(_check_int("int32", value))
    return _check(f, value)


def _check(f: FieldSpec, value: Any) -> Any:
    if f.kind in _RANGES:
        return _check_int(f.kind, value)
    return _typed(_TYPES[f.kind], value)


def _check_int(kind: str, value: Any) -> int:
    lo, hi = _RANGES[kind]
    if type(value) is not int or not lo <= value <= hi:
        raise _Bad(f"expected an {kind}, got {value!r}")
    return value


def _typed(t: type, value: Any) -> Any:
    if type(value) is not t:
        raise _Bad(f"expected {t.__name__}, got {type(value).__name__}")
    return value


def _key(f: FieldSpec, key: Any) -> Any:
    return _typed(str, key) if f.key_kind == "string" else _check_int(f.key_kind or "int64", key)


def _zero(f: FieldSpec) -> Any:
    if f.repeated:
        return []
    if f.is_map:
        return {}
    if f.kind == "message":
        return _from_doc(f.type, {})
    if f.kind == "enum":
        return f.type(0)
    return {"int32": 0, "int64": 0, "double": 0.0, "bool": False, "string": "", "bytes": b""}[
        f.kind
    ]
