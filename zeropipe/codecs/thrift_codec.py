"""The Thrift codecs: ``thrift-binary`` (wire id 4) and ``thrift-compact`` (wire id 5).

Both read a typed message as the Thrift struct a ``.thrift`` file with the same field ids
describes. For each message class, once, the codec builds an Apache Thrift ``thrift_spec``
tuple from its :class:`~zeropipe.codecs.model.MessageSpec` and hands the dataclass instance
straight to Apache Thrift's C accelerator, ``thrift.protocol.fastbinary`` (no generated
Thrift classes and no protocol objects per message).

How the model maps onto Thrift:

* ``int32`` -> ``i32``, ``int64`` -> ``i64``, ``double``, ``bool``, ``string`` (UTF-8),
  ``bytes`` -> ``binary``, an enum -> ``i32`` (a Thrift enum), a message -> a struct,
  ``list[X]`` -> ``list<X>``, ``dict[K, V]`` -> ``map<K, V>``;
* a field that is ``None`` is not written (Thrift's "unset"), so ``X | None`` fields are
  Thrift ``optional`` fields. A non-optional field is always written, zero values included;
* a field absent on the wire decodes as Thrift's default: the dataclass default when the
  field has one, else the zero value of its kind (0, 0.0, False, "", b"", the enum member
  with value 0, an empty list or map, a message with every field at its default); an
  optional field absent on the wire is None. A field whose wire type does not match its
  kind is skipped, as Thrift does, and then counts as absent.

Decoding is strict where a Python type is at stake and raises
:class:`~zeropipe.codecs.errors.DecodeError` (naming codec and type) for a truncated or
corrupt payload, a list or map whose element types do not match the field, an enum number
the IntEnum does not know (the field must hold a member), and bytes left over after the
struct. Invalid UTF-8 in a string field is not an error: it decodes with U+FFFD replacement
characters, as Apache Thrift does in Python (``fastbinary``) and Java. String and container
lengths are bounded by the payload size, so a forged length fails at once instead of
allocating.

Without ``fastbinary`` (a ``thrift`` installed from source without a compiler) the codecs
warn once with a RuntimeWarning and fall back to Thrift's pure-Python ``TBinaryProtocol`` /
``TCompactProtocol``: the same bytes, many times slower.
"""

from __future__ import annotations

import importlib
import io
import operator
import threading
import warnings
from collections.abc import Callable
from dataclasses import MISSING
from dataclasses import fields as dc_fields
from typing import Any, TypeVar

from .errors import DecodeError, EncodeError, MissingCodecError, why
from .model import FieldSpec, MessageSpec, spec_of
from .registry import Lazy

T = TypeVar("T")

__all__ = ["ThriftBinaryCodec", "ThriftCompactCodec", "thrift_spec_for"]

_EXTRA = "thrift"

# Thrift TType numbers (fixed by the Thrift protocol, as in thrift.Thrift.TType)
STOP, BOOL, DOUBLE, I32, I64, STRING, STRUCT, MAP, LIST = 0, 2, 4, 8, 10, 11, 12, 13, 15
_TTYPES = {
    "int32": (I32, None),
    "int64": (I64, None),
    "double": (DOUBLE, None),
    "bool": (BOOL, None),
    "string": (STRING, "UTF8"),
    "bytes": (STRING, "BINARY"),
    "enum": (I32, None),
}
_ZERO: dict[str, Any] = {
    "int32": 0,
    "int64": 0,
    "double": 0.0,
    "bool": False,
    "string": "",
    "bytes": b"",
    "enum": 0,
}


# -- compiled specs ---------------------------------------------------------------------------


class _Immutable:
    """Base of the per-class builders that fastbinary calls with the decoded fields.

    fastbinary passes the fields as keyword arguments to a struct class whose instances
    refuse attribute assignment (else it creates the class with no arguments and assigns);
    a builder's ``__new__`` then returns the message instance itself.
    """

    __slots__ = ()

    def __setattr__(self, name: str, value: Any) -> None:
        raise TypeError("immutable")


class _UnknownEnum(ValueError):
    def __str__(self) -> str:
        return f"enum value {self.args[0]!r} is not known"


class _Compiled:
    __slots__ = ("builder", "spec", "type_args")

    def __init__(self, spec: MessageSpec, builder: type, type_args: list[Any]) -> None:
        self.spec = spec
        self.builder = builder  # builder(**wire_fields) -> message instance
        self.type_args = type_args  # [builder, thrift_spec]: fastbinary's struct type args


_COMPILED: dict[type, _Compiled] = {}
_COMPILE_LOCK = threading.RLock()


def _compiled(cls: type) -> _Compiled:
    compiled = _COMPILED.get(cls)
    if compiled is None:
        with _COMPILE_LOCK:
            compiled = _compile(spec_of(cls), ())
    return compiled


def thrift_spec_for(cls: type) -> tuple[Any, ...]:
    """The Apache Thrift ``thrift_spec`` tuple of message class ``cls`` (indexed by field
    id; ``(id, ttype, name, type_args, default)``; nested structs as ``[builder, spec]``)."""
    spec: tuple[Any, ...] = _compiled(cls).type_args[1]
    return spec


def _compile(spec: MessageSpec, stack: tuple[type, ...]) -> _Compiled:
    done = _COMPILED.get(spec.cls)
    if done is not None:
        return done
    if spec.cls in stack:
        raise TypeError(f"{spec.full_name} contains itself")
    subs: dict[int, _Compiled] = {}
    for f in spec.fields:
        if f.kind == "message":
            subs[f.number] = _compile(spec_of(f.type), (*stack, spec.cls))
    size = max((f.number for f in spec.fields), default=0) + 1
    items: list[Any] = [None] * size
    for f in spec.fields:
        value_type, value_args = _value_type(f, subs)
        item: tuple[Any, ...]
        if f.is_map:
            key_type, key_args = _TTYPES[f.key_kind or ""]
            item = (f.number, MAP, f.name, (key_type, key_args, value_type, value_args, False))
        elif f.repeated:
            item = (f.number, LIST, f.name, (value_type, value_args, False))
        else:
            item = (f.number, value_type, f.name, value_args)
        items[f.number] = (*item, None)
    thrift_spec = tuple(items)
    builder = _builder(spec, subs)
    compiled = _Compiled(spec, builder, [builder, thrift_spec])
    _COMPILED[spec.cls] = compiled
    return compiled


def _value_type(f: FieldSpec, subs: dict[int, _Compiled]) -> tuple[int, Any]:
    if f.kind == "message":
        return STRUCT, subs[f.number].type_args
    return _TTYPES[f.kind]


def _builder(spec: MessageSpec, subs: dict[int, _Compiled]) -> type:
    """A class whose ``__new__(**wire_fields)`` returns the message instance (see
    :class:`_Immutable`): defaults for absent fields, enum numbers to members."""
    ns: dict[str, Any] = {"_zp_Cls": spec.cls, "_zp_Base": _Immutable}
    by_name = {f.name: f for f in spec.fields}
    params: list[str] = []
    args: list[str] = []
    for dcf in dc_fields(spec.cls):
        f = by_name[dcf.name]
        n = f.number
        name = f.name
        if f.kind == "enum":
            ns[f"_zp_E{n}"] = {int(m.value): m for m in f.type}
        if f.kind == "message":
            ns[f"_zp_B{n}"] = subs[n].builder
        # the default of an absent field: None is the placeholder for what must be made anew
        if f.optional:
            default, fresh = None, "None"
        elif dcf.default is not MISSING:
            default, fresh = dcf.default, "None"
        elif dcf.default_factory is not MISSING:
            ns[f"_zp_F{n}"] = dcf.default_factory
            default, fresh = None, f"_zp_F{n}()"
        elif f.is_map:
            default, fresh = None, "{}"
        elif f.repeated:
            default, fresh = None, "[]"
        elif f.kind == "message":
            default, fresh = None, f"_zp_B{n}()"
        else:
            default, fresh = _ZERO[f.kind], "None"
        ns[f"_zp_D{n}"] = default
        params.append(f"{name}=_zp_D{n}")
        value = name if fresh == "None" else f"({fresh} if {name} is None else {name})"
        if f.kind == "enum":
            e = f"_zp_E{n}"
            if f.is_map:
                value = f"{{k: {e}[x] for k, x in {value}.items()}}"
            elif f.repeated:
                value = f"[{e}[x] for x in {value}]"
            elif f.optional:
                value = f"(None if {name} is None else {e}[{name}])"
            else:
                value = f"{e}[{value}]"
        args.append(value)
    body = [f"        return _zp_Cls({', '.join(args)})"]
    if any(f.kind == "enum" for f in spec.fields):
        ns["_zp_Unknown"] = _UnknownEnum
        body = [
            "        try:",
            f"    {body[0]}",
            "        except KeyError as e:",
            "            raise _zp_Unknown(e.args[0]) from None",
        ]
    src = "\n".join(
        [
            "class Builder(_zp_Base):",
            "    __slots__ = ()",
            f"    def __new__(_zp_cls, {', '.join(params)}):",
            *body,
        ]
    )
    exec(compile(src, f"<zeropipe thrift codec for {spec.full_name}>", "exec"), ns)
    builder: type = ns["Builder"]
    builder.__qualname__ = builder.__name__ = f"{spec.cls.__name__}Builder"
    return builder


# -- runtime: fastbinary, or the pure-Python protocols -------------------------------------


class _Input:
    """What ``fastbinary.decode_*`` reads: it is the protocol (length limits), and its own
    transport (``trans``) that fastbinary reads through ``cstringio_buf`` (a BytesIO)."""

    __slots__ = ("container_length_limit", "cstringio_buf", "string_length_limit")

    def __init__(self, data: bytes) -> None:
        self.cstringio_buf = io.BytesIO(data)
        # a string or container cannot be longer than the payload holding it
        self.string_length_limit = self.container_length_limit = len(data)

    @property
    def trans(self) -> _Input:
        return self

    def cstringio_refill(self, partial: bytes, wanted: int) -> Any:
        raise EOFError(f"payload truncated: {wanted} bytes wanted, {len(partial)} left")


_WARNED = False


class _Runtime:
    """The ``thrift`` package's parts the codecs use, imported once."""

    def __init__(self) -> None:
        global _WARNED
        try:
            transport = importlib.import_module("thrift.transport.TTransport")
            binary = importlib.import_module("thrift.protocol.TBinaryProtocol")
            compact = importlib.import_module("thrift.protocol.TCompactProtocol")
        except ImportError as exc:
            raise MissingCodecError("thrift-binary", _EXTRA, "thrift") from exc
        self.memory_buffer = transport.TMemoryBuffer
        self.binary_protocol = binary.TBinaryProtocol
        self.compact_protocol = compact.TCompactProtocol
        try:
            self.fastbinary: Any = importlib.import_module("thrift.protocol.fastbinary")
        except ImportError:
            self.fastbinary = None
            if not _WARNED:
                _WARNED = True
                warnings.warn(
                    "zeropipe's thrift codecs cannot import thrift.protocol.fastbinary (the C "
                    "accelerator of the 'thrift' package; it was installed without it, e.g. "
                    "built from source without a C compiler): falling back to pure-Python "
                    "Thrift protocols, the same bytes but 10 to 15 times slower. Reinstall "
                    "'thrift' from a wheel (pip install --force-reinstall 'zeropipe[thrift]')",
                    RuntimeWarning,
                    stacklevel=4,
                )


_runtime = Lazy(_Runtime)


class _ThriftCodec:
    name = ""
    wire_id = 0
    content_type = "application/x-thrift"
    extra = _EXTRA
    _compact = False

    def __init__(self) -> None:
        try:
            rt = _runtime()
        except MissingCodecError as exc:
            raise MissingCodecError(self.name, _EXTRA, "thrift") from exc
        self.accelerated = rt.fastbinary is not None
        self._encode: Callable[[Any, list[Any]], bytes]
        self._decode: Callable[[Any, Any, list[Any]], Any]
        if rt.fastbinary is not None:
            fb = rt.fastbinary
            self._encode = fb.encode_compact if self._compact else fb.encode_binary
            self._decode = fb.decode_compact if self._compact else fb.decode_binary
        else:
            slow = _PurePython(rt, self._compact)
            self._encode, self._decode = slow.encode, slow.decode

    def encode(self, obj: Any) -> bytes:
        try:
            type_args = _COMPILED[type(obj)].type_args
        except KeyError:
            type_args = _compiled(type(obj)).type_args
        try:
            return self._encode(obj, type_args)
        except Exception as exc:
            raise EncodeError(self.name, spec_of(obj).full_name, why(exc)) from exc

    def decode(self, cls: type[T], data: bytes) -> T:
        try:
            compiled = _COMPILED[cls]
        except KeyError:
            compiled = _compiled(cls)
        try:
            if type(data) is not bytes:
                data = bytes(data)
            source = _Input(data)
            obj: T = self._decode(None, source, compiled.type_args)
            left = len(data) - source.cstringio_buf.tell()
        except Exception as exc:
            raise DecodeError(self.name, compiled.spec.full_name, why(exc)) from exc
        if left:
            reason = f"{left} bytes left over after the struct"
            raise DecodeError(self.name, compiled.spec.full_name, reason)
        return obj


class ThriftBinaryCodec(_ThriftCodec):
    """Typed messages as Thrift structs in the binary protocol (``TBinaryProtocol``)."""

    name = "thrift-binary"
    wire_id = 4


class ThriftCompactCodec(_ThriftCodec):
    """Typed messages as Thrift structs in the compact protocol (``TCompactProtocol``)."""

    name = "thrift-compact"
    wire_id = 5
    _compact = True


# -- the pure-Python fallback -----------------------------------------------------------------

_MAX_DEPTH = 64


class _PurePython:
    """fastbinary's ``encode_*(obj, type_args)`` and ``decode_*(None, source, type_args)``
    written over Thrift's pure-Python protocols, with fastbinary's checks and semantics."""

    def __init__(self, rt: _Runtime, compact: bool) -> None:
        self.rt = rt
        self.protocol = rt.compact_protocol if compact else rt.binary_protocol

    def encode(self, obj: Any, type_args: list[Any]) -> bytes:
        trans = self.rt.memory_buffer()
        self._write_struct(self.protocol(trans), obj, type_args[1], 0)
        data: bytes = trans.getvalue()
        return data

    def decode(self, out: None, source: _Input, type_args: list[Any]) -> Any:
        buf = source.cstringio_buf
        trans = self.rt.memory_buffer(buf.getvalue(), buf.tell())
        prot = self.protocol(
            trans,
            string_length_limit=source.string_length_limit,
            container_length_limit=source.container_length_limit,
        )
        obj = self._read_struct(prot, type_args, 0)
        buf.seek(trans.cstringio_buf.tell())
        return obj

    def _write_struct(self, prot: Any, obj: Any, spec: tuple[Any, ...], depth: int) -> None:
        if depth > _MAX_DEPTH:
            raise ValueError("structs nested too deep")
        prot.writeStructBegin(type(obj).__name__)
        for item in spec:
            if item is None:
                continue
            number, ttype, name, args, _ = item
            value = getattr(obj, name)
            if value is None:
                continue
            prot.writeFieldBegin(name, ttype, number)
            self._write_value(prot, ttype, args, value, depth)
            prot.writeFieldEnd()
        prot.writeFieldStop()
        prot.writeStructEnd()

    def _write_value(self, prot: Any, ttype: int, args: Any, value: Any, depth: int) -> None:
        if ttype == BOOL:
            prot.writeBool(bool(value))
        elif ttype == I32:
            prot.writeI32(_checked_int(value, 32))
        elif ttype == I64:
            prot.writeI64(_checked_int(value, 64))
        elif ttype == DOUBLE:
            if isinstance(value, (str, bytes)):
                raise TypeError(f"must be real number, not {type(value).__name__}")
            prot.writeDouble(float(value))
        elif ttype == STRING:
            if isinstance(value, str):
                value = value.encode("utf-8")
            elif not isinstance(value, (bytes, bytearray, memoryview)):
                raise TypeError(f"expected bytes, {type(value).__name__} found")
            prot.writeBinary(bytes(value))
        elif ttype == STRUCT:
            self._write_struct(prot, value, args[1], depth + 1)
        elif ttype == LIST:
            elem_type, elem_args, _ = args
            prot.writeListBegin(elem_type, len(value))
            for item in value:
                self._write_value(prot, elem_type, elem_args, item, depth)
            prot.writeListEnd()
        elif ttype == MAP:
            key_type, key_args, value_type, value_args, _ = args
            prot.writeMapBegin(key_type, value_type, len(value))
            for k, v in value.items():
                self._write_value(prot, key_type, key_args, k, depth)
                self._write_value(prot, value_type, value_args, v, depth)
            prot.writeMapEnd()
        else:  # pragma: no cover - the specs hold no other types
            raise TypeError(f"unexpected ttype {ttype}")

    def _read_struct(self, prot: Any, type_args: list[Any], depth: int) -> Any:
        if depth > _MAX_DEPTH:
            raise ValueError("structs nested too deep")
        builder, spec = type_args
        kwargs: dict[str, Any] = {}
        prot.readStructBegin()
        while True:
            _, ttype, number = prot.readFieldBegin()
            if ttype == STOP:
                break
            item = spec[number] if 0 <= number < len(spec) else None
            if item is None or item[1] != ttype:
                prot.skip(ttype)
            else:
                kwargs[item[2]] = self._read_value(prot, ttype, item[3], depth)
            prot.readFieldEnd()
        prot.readStructEnd()
        return builder(**kwargs)

    def _read_value(self, prot: Any, ttype: int, args: Any, depth: int) -> Any:
        if ttype == BOOL:
            return bool(prot.readBool())
        if ttype == I32:
            return prot.readI32()
        if ttype == I64:
            return prot.readI64()
        if ttype == DOUBLE:
            return prot.readDouble()
        if ttype == STRING:
            raw = prot.readBinary()
            return raw.decode("utf-8", "replace") if args == "UTF8" else bytes(raw)
        if ttype == STRUCT:
            return self._read_struct(prot, args, depth + 1)
        if ttype == LIST:
            elem_type, elem_args, _ = args
            got, size = prot.readListBegin()
            if size and got != elem_type:
                raise TypeError(f"list of ttype {got}, expected {elem_type}")
            items = [self._read_value(prot, elem_type, elem_args, depth) for _ in range(size)]
            prot.readListEnd()
            return items
        if ttype == MAP:
            key_type, key_args, value_type, value_args, _ = args
            got_key, got_value, size = prot.readMapBegin()
            if size and (got_key, got_value) != (key_type, value_type):
                raise TypeError(
                    f"map of ttypes {got_key}/{got_value}, expected {key_type}/{value_type}"
                )
            out = {}
            for _ in range(size):
                k = self._read_value(prot, key_type, key_args, depth)
                out[k] = self._read_value(prot, value_type, value_args, depth)
            prot.readMapEnd()
            return out
        raise TypeError(f"unexpected ttype {ttype}")  # pragma: no cover


def _checked_int(value: Any, bits: int) -> int:
    """``value`` as an int that fits ``bits`` signed bits (fastbinary's rules: any int,
    IntEnum and bool included; no floats or strings)."""
    n = operator.index(value)
    limit = 1 << (bits - 1)
    if not -limit <= n < limit:
        raise OverflowError("int out of range")
    return n
