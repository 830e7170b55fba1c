"""The JSON codec (wire id 1, ``application/json``): proto3's canonical JSON mapping.

A message is a JSON object whose keys are the fields' lowerCamelCase JSON names (protobuf's
``json_name``: ``trade_id`` -> ``tradeId``), as protobuf's ``json_format.MessageToJson``
writes it:

* int32 -> number; int64 -> decimal string (``"9223372036854775807"``: JavaScript numbers
  lose integers above 2**53); double -> number, non-finite as ``"NaN"``, ``"Infinity"``,
  ``"-Infinity"``; bool -> true/false; string -> string; bytes -> standard base64 with
  padding; enum -> the member's NAME; message -> object; list -> array; map -> object whose
  keys are strings (int keys in decimal).
* Fields holding their proto3 default (0, "", empty bytes, false, the enum's 0 member, an
  empty list or map) are omitted, as protobuf does; a non-optional message field is always
  written (``{}`` when all its fields are defaults); an optional (``X | None``) field is
  omitted when None and written otherwise, even when it holds 0.

Decoding is as lenient as protobuf's parser where it is safe and strict everywhere else:
keys may be the JSON name or the Python field name; a missing or ``null`` field takes its
proto3 default (None when optional); unknown keys are ignored (newer peers may add fields);
int64 accepts a number or a decimal string; bytes accept URL-safe base64 and missing padding;
enums accept the name or the number; double accepts an integer and the three strings above.
Everything else of the wrong JSON type (a string for an int32, a float for an int64, an int
out of range, an unknown enum name) raises :class:`DecodeError` naming the field.

orjson is used when it imports, stdlib ``json`` otherwise; both give the same objects and the
same bytes (compact, UTF-8, no ASCII escaping), except that a float needing an exponent may be
spelt differently (``1e-07`` / ``1e-7``), which every JSON parser reads as the same number.

The adapters are compiled once per message class (straight-line Python built from its
:class:`~zeropipe.codecs.model.MessageSpec`); the BSON codec compiles its own from the same
machinery (:class:`DocumentCompiler`).
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import enum
import functools
import math
import re
import threading
from collections.abc import Callable, Mapping
from typing import Any, NoReturn, TypeVar

from .errors import DecodeError, EncodeError
from .model import INT32_RANGE, INT64_RANGE, FieldSpec, MessageSpec, spec_of
from .model import json_name_of as json_name

T = TypeVar("T")

I32_MIN, I32_MAX = INT32_RANGE
I64_MIN, I64_MAX = INT64_RANGE
_U64_MAX = 2**64 - 1


class _Bad(Exception):
    """A value that does not fit its field; ``path`` is filled innermost field first."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.path: list[str] = []

    def describe(self) -> str:
        where = ".".join(reversed(self.path))
        return f"field {where!r}: {self.reason}" if where else self.reason


def _show(value: Any) -> str:
    text = repr(value)
    if len(text) > 40:
        text = text[:37] + "..."
    return f"{type(value).__name__} {text}"


# -- slow paths of the generated code: normalise an unusual but valid value, or raise _Bad ----


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def e_int32(x: Any) -> int:
    if not _is_int(x):
        raise _Bad(f"expected an int (int32), got {_show(x)}")
    if not I32_MIN <= x <= I32_MAX:
        raise _Bad(f"{int(x)} is outside the int32 range")
    return int(x)


def e_int64(x: Any) -> int:
    if not _is_int(x):
        raise _Bad(f"expected an int (int64), got {_show(x)}")
    if not I64_MIN <= x <= I64_MAX:
        raise _Bad(f"{int(x)} is outside the int64 range")
    return int(x)


def e_double(x: Any) -> float:
    if isinstance(x, float) or _is_int(x):
        try:
            return float(x)
        except OverflowError:
            raise _Bad(f"{x} is too large for a double") from None
    raise _Bad(f"expected a float, got {_show(x)}")


def e_bool(x: Any) -> bool:
    raise _Bad(f"expected a bool, got {_show(x)}")


def e_string(x: Any) -> str:
    if isinstance(x, str):
        return str.__str__(x)
    raise _Bad(f"expected a str, got {_show(x)}")


def e_bytes(x: Any) -> bytes:
    if isinstance(x, (bytes, bytearray, memoryview)):
        return bytes(x)
    raise _Bad(f"expected bytes, got {_show(x)}")


def e_member(enum_cls: type[enum.IntEnum], x: Any) -> enum.IntEnum:
    """The ``enum_cls`` member ``x`` is (a member, or the int value of one)."""
    if isinstance(x, enum_cls):
        return x
    if _is_int(x):
        try:
            return enum_cls(x)
        except ValueError:
            raise _Bad(f"{x} is not a value of {enum_cls.__name__}") from None
    raise _Bad(f"expected a {enum_cls.__name__} member, got {_show(x)}")


def e_instance(cls: type, x: Any) -> Any:
    if isinstance(x, cls):
        return x
    raise _Bad(f"expected a {cls.__name__}, got {_show(x)}")


def e_list(v: Any) -> list[Any]:
    if isinstance(v, (list, tuple)):
        return list(v)
    raise _Bad(f"expected a list, got {_show(v)}")


def e_map(v: Any) -> dict[Any, Any]:
    if isinstance(v, Mapping):
        return dict(v)
    raise _Bad(f"expected a dict, got {_show(v)}")


def e_items(slow: Callable[[Any], Any], v: list[Any]) -> list[Any]:
    return [slow(x) for x in v]


def e_map_items(
    key_slow: Callable[[Any], Any], slow: Callable[[Any], Any], v: dict[Any, Any]
) -> dict[Any, Any]:
    return {key_slow(k): slow(x) for k, x in v.items()}


def d_bad(x: Any, expected: str) -> NoReturn:
    raise _Bad(f"expected {expected}, got {_show(x)}")


def _d_int(x: Any, kind: str, lo: int, hi: int) -> int:
    if not _is_int(x):
        d_bad(x, f"an integer ({kind})")
    if not lo <= x <= hi:
        raise _Bad(f"{int(x)} is outside the {kind} range")
    return int(x)


def d_int32(x: Any) -> int:
    return _d_int(x, "int32", I32_MIN, I32_MAX)


def d_int64(x: Any) -> int:
    return _d_int(x, "int64", I64_MIN, I64_MAX)


def d_double(x: Any) -> float:
    """A double from an integer (a peer may write 0 for 0.0)."""
    if _is_int(x):
        try:
            return float(x)
        except OverflowError:
            raise _Bad(f"{x} is too large for a double") from None
    d_bad(x, "a number")


def d_bool(x: Any) -> NoReturn:
    d_bad(x, "a boolean")


def d_string(x: Any) -> NoReturn:
    d_bad(x, "a string")


def d_dict(x: Any) -> NoReturn:
    d_bad(x, "an object (a message)")


def d_list(x: Any) -> NoReturn:
    d_bad(x, "an array (a list)")


def d_map(x: Any) -> NoReturn:
    d_bad(x, "an object (a map)")


_DECIMAL = re.compile(r"-?[0-9]+")


def d_key_int32(k: str) -> int:
    if _DECIMAL.fullmatch(k) is None:
        raise _Bad(f"map key {k!r} is not a decimal integer")
    return d_int32(int(k))


def d_key_int64(k: str) -> int:
    if _DECIMAL.fullmatch(k) is None:
        raise _Bad(f"map key {k!r} is not a decimal integer")
    return d_int64(int(k))


def d_member(enum_cls: type[enum.IntEnum], by_value: Mapping[int, Any], x: Any) -> Any:
    """The member of ``enum_cls`` with value ``x``."""
    if _is_int(x):
        member = by_value.get(x)
        if member is not None:
            return member
        raise _Bad(f"{x} is not a value of {enum_cls.__name__}")
    if isinstance(x, str):
        raise _Bad(f"{x!r} is not a name in {enum_cls.__name__}")
    d_bad(x, f"a {enum_cls.__name__} name or number")


# JSON-only conversions


def e_special(x: float) -> str:
    """The proto3 JSON spelling of a non-finite double."""
    if x != x:
        return "NaN"
    return "Infinity" if x > 0 else "-Infinity"


def d_int64_json(x: Any) -> int:
    if type(x) is str:
        if _DECIMAL.fullmatch(x) is None:
            raise _Bad(f"expected an int64 (a number or a decimal string), got {_show(x)}")
        x = int(x)
    return d_int64(x)


_SPECIAL_DOUBLES = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def d_double_json(x: Any) -> float:
    if type(x) is str and x in _SPECIAL_DOUBLES:
        return _SPECIAL_DOUBLES[x]
    if _is_int(x):
        return d_double(x)
    d_bad(x, 'a number (or "NaN", "Infinity", "-Infinity")')


_URLSAFE = str.maketrans("-_", "+/")


def d_base64(x: Any) -> bytes:
    if type(x) is not str:
        d_bad(x, "a base64 string")
    text = x.translate(_URLSAFE) if ("-" in x or "_" in x) else x
    text = text.rstrip("=")
    if len(text) % 4 == 1:
        raise _Bad("not valid base64 (bad length)")
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except ValueError:
        raise _Bad(f"not valid base64: {_show(x)}") from None


# -- the compiler ----------------------------------------------------------------------------


class _Namespace:
    def __init__(self) -> None:
        self.values: dict[str, Any] = {"_Bad": _Bad, "_setattr": object.__setattr__}
        self._ids: dict[int, str] = {}

    def add(self, value: Any, hint: str = "c") -> str:
        """A name under which the generated code sees ``value``."""
        name = self._ids.get(id(value))
        if name is None:
            name = f"_{hint}{len(self.values)}"
            self.values[name] = value
            self._ids[id(value)] = name
        return name


@dataclasses.dataclass(frozen=True)
class Encoding:
    """How a value of some kind goes into a document. Expressions read the local ``x``.

    ``ok``: true when ``x`` is valid as it is; ``slow``: the name of a function that returns
    a valid ``x`` for an unusual but acceptable value (an int subclass, a tuple...) or raises
    _Bad; ``emit``: the document value of a valid ``x``; ``nonzero``: true when a valid ``x``
    is not its proto3 default (None: always written)."""

    ok: str
    slow: str
    emit: str = "x"
    nonzero: str | None = "x"


@dataclasses.dataclass(frozen=True)
class Decoding:
    """How a document value ``x`` (not None) becomes a value of some kind: ``conv`` when
    ``ok`` holds, else ``slow(x)``, a function that converts or raises _Bad."""

    ok: str
    slow: str
    conv: str = "x"


_ZEROS = {
    "int32": "0",
    "int64": "0",
    "double": "0.0",
    "bool": "False",
    "string": "''",
    "bytes": "b''",
}


class DocumentCompiler:
    """Compiles, once per message class, an encoder (message -> dict of document values) and
    a decoder (dict -> message) for a document format; subclasses say how each kind looks.

    The generated code is straight-line Python per field: a type check that is the whole
    cost for a valid value, and a call to a slow path only for anything else.
    """

    codec_name = "document"
    omit_defaults = False

    def __init__(self) -> None:
        self._encoders: dict[type, Callable[[Any], dict[str, Any]]] = {}
        self._decoders: dict[type, Callable[[Any], Any]] = {}
        self._lock = threading.RLock()

    # -- per-format hooks

    def key(self, f: FieldSpec) -> str:
        return f.name

    def other_key(self, f: FieldSpec) -> str | None:
        """A second key the decoder accepts for ``f``, or None."""
        return None

    def encoding(self, kind: str, f: FieldSpec, ns: _Namespace) -> Encoding:
        raise NotImplementedError

    def decoding(self, kind: str, f: FieldSpec, ns: _Namespace) -> Decoding:
        raise NotImplementedError

    # -- what every format shares

    def scalar_encoding(self, kind: str, ns: _Namespace) -> Encoding:
        """int32, int64, bool, string as themselves (a format adjusts ``emit``)."""
        if kind in ("int32", "int64"):
            lo, hi = INT32_RANGE if kind == "int32" else INT64_RANGE
            slow = e_int32 if kind == "int32" else e_int64
            return Encoding(f"type(x) is int and {lo} <= x <= {hi}", ns.add(slow))
        if kind == "double":
            return Encoding("type(x) is float", ns.add(e_double))
        if kind == "bool":
            return Encoding("type(x) is bool", ns.add(e_bool))
        if kind == "string":
            return Encoding("type(x) is str", ns.add(e_string))
        return Encoding("type(x) is bytes", ns.add(e_bytes))

    def enum_encoding(self, f: FieldSpec, ns: _Namespace) -> Encoding:
        cls = ns.add(f.type, "E")
        return Encoding(f"type(x) is {cls}", ns.add(functools.partial(e_member, f.type)))

    def message_encoding(self, f: FieldSpec, ns: _Namespace) -> Encoding:
        cls = ns.add(f.type, "M")
        enc = ns.add(self._encoder_ref(f.type), "enc")
        slow = ns.add(functools.partial(e_instance, f.type))
        return Encoding(f"type(x) is {cls}", slow, f"{enc}(x)", None)

    def message_decoding(self, f: FieldSpec, ns: _Namespace) -> Decoding:
        dec = ns.add(self._decoder_ref(f.type), "dec")
        return Decoding("type(x) is dict", ns.add(d_dict), f"{dec}(x)")

    def key_encoding(self, key_kind: str, ns: _Namespace) -> Encoding:
        """Map keys: always strings in a document."""
        if key_kind == "string":
            return Encoding("type(x) is str", ns.add(e_string))
        enc = self.scalar_encoding(key_kind, ns)
        return Encoding(enc.ok, enc.slow, "str(x)")

    def key_decoder(self, key_kind: str, ns: _Namespace) -> str | None:
        """The function turning a document key into a map key, None for string keys."""
        if key_kind == "string":
            return None
        return ns.add(d_key_int32 if key_kind == "int32" else d_key_int64)

    # -- compiled functions

    def encoder(self, cls: type) -> Callable[[Any], dict[str, Any]]:
        """The compiled message -> document function of ``cls``."""
        found = self._encoders.get(cls)
        if found is None:
            with self._lock:
                found = self._encoders.get(cls) or self._compile_encoder(spec_of(cls))
        return found

    def decoder(self, cls: type[T]) -> Callable[[Any], T]:
        """The compiled document -> message function of ``cls``."""
        found = self._decoders.get(cls)
        if found is None:
            with self._lock:
                found = self._decoders.get(cls) or self._compile_decoder(spec_of(cls))
        return found

    def _encoder_ref(self, cls: type) -> Callable[[Any], Any]:
        return self._encoders.get(cls) or self.encoder(cls)

    def _decoder_ref(self, cls: type) -> Callable[[Any], Any]:
        return self._decoders.get(cls) or self.decoder(cls)

    def _compile_encoder(self, spec: MessageSpec) -> Callable[[Any], dict[str, Any]]:
        ns = _Namespace()
        out = ["def encode(o):", "    d = {}", "    f = ''", "    try:", "        pass"]
        for f in spec.fields:
            key = repr(self.key(f))
            e = self.encoding(f.kind, f, ns)
            out.append(f"        f = {f.name!r}")
            if f.repeated or f.is_map:
                out += self._encode_container(f, key, e, ns)
                continue
            out.append(f"        x = o.{f.name}")
            if f.optional:
                out.append("        if x is not None:")
                out.append(f"            if not ({e.ok}): x = {e.slow}(x)")
                out.append(f"            d[{key}] = {e.emit}")
                continue
            out.append(f"        if not ({e.ok}): x = {e.slow}(x)")
            if self.omit_defaults and e.nonzero is not None:
                out.append(f"        if {e.nonzero}: d[{key}] = {e.emit}")
            else:
                out.append(f"        d[{key}] = {e.emit}")
        out += [
            "    except _Bad as e:",
            "        e.path.append(f)",
            "        raise",
            "    return d",
        ]
        fn: Callable[[Any], dict[str, Any]] = self._build(spec, "encode", out, ns)
        self._encoders[spec.cls] = fn
        return fn

    def _encode_container(self, f: FieldSpec, key: str, e: Encoding, ns: _Namespace) -> list[str]:
        out = [f"        v = o.{f.name}"]
        if f.is_map:
            k = self.key_encoding(f.key_kind or "string", ns)
            redo = ns.add(functools.partial(e_map_items, ns.values[k.slow], ns.values[e.slow]))
            k_ok = _reads(k.ok, "k")
            out += [
                f"        if type(v) is not dict: v = {ns.add(e_map)}(v)",
                "        for k, x in v.items():",
                f"            if not ({k_ok} and {e.ok}):",
                f"                v = {redo}(v)",
                "                break",
            ]
            if k.emit == "x" and e.emit == "x":
                value = "v"
            else:
                value = f"{{{_reads(k.emit, 'k')}: {e.emit} for k, x in v.items()}}"
        else:
            redo = ns.add(functools.partial(e_items, ns.values[e.slow]))
            out += [
                f"        if type(v) is not list: v = {ns.add(e_list)}(v)",
                "        for x in v:",
                f"            if not ({e.ok}):",
                f"                v = {redo}(v)",
                "                break",
            ]
            value = "v" if e.emit == "x" else f"[{e.emit} for x in v]"
        when = "if v: " if self.omit_defaults else ""
        return [*out, f"        {when}d[{key}] = {value}"]

    def _compile_decoder(self, spec: MessageSpec) -> Callable[[Any], Any]:
        ns = _Namespace()
        out = [
            "def decode(d):",
            f"    if type(d) is not dict: {ns.add(d_dict)}(d)",
            "    g = d.get",
            "    f = ''",
            "    try:",
            "        pass",
        ]
        for i, f in enumerate(spec.fields):
            a = f"a{i}"
            dec = self.decoding(f.kind, f, ns)
            item = f"{dec.conv} if {dec.ok} else {dec.slow}(x)"
            out.append(f"        f = {f.name!r}")
            out.append(f"        x = g({self.key(f)!r})")
            other = self.other_key(f)
            if other is not None and other != self.key(f):
                out.append(f"        if x is None: x = g({other!r})")
            if f.is_map:
                kdec = self.key_decoder(f.key_kind or "string", ns)
                k = "k" if kdec is None else f"{kdec}(k)"
                out.append(f"        if x is None: {a} = {{}}")
                out.append(
                    f"        elif type(x) is dict: {a} = {{{k}: {item} for k, x in x.items()}}"
                )
                out.append(f"        else: {ns.add(d_map)}(x)")
            elif f.repeated:
                out.append(f"        if x is None: {a} = []")
                if dec.conv == "x":  # check the items, keep the list the parser made
                    out += [
                        "        elif type(x) is list:",
                        f"            {a} = x",
                        "            for y in x:",
                        f"                if not ({_reads(dec.ok, 'y')}):",
                        f"                    {a} = [{item} for x in x]",
                        "                    break",
                    ]
                else:
                    out.append(f"        elif type(x) is list: {a} = [{item} for x in x]")
                out.append(f"        else: {ns.add(d_list)}(x)")
            else:
                zero = "None" if f.optional else self._zero(f, ns)
                out.append(f"        {a} = {zero} if x is None else {item}")
        out += ["    except _Bad as e:", "        e.path.append(f)", "        raise"]
        out += self._construct(spec, ns)
        fn: Callable[[Any], Any] = self._build(spec, "decode", out, ns)
        self._decoders[spec.cls] = fn
        return fn

    def _zero(self, f: FieldSpec, ns: _Namespace) -> str:
        if f.kind == "message":
            return f"{ns.add(self._decoder_ref(f.type), 'dec')}({ns.add({}, 'empty')})"
        if f.kind == "enum":
            return ns.add(f.type(0), "zero")
        return _ZEROS[f.kind]

    def _construct(self, spec: MessageSpec, ns: _Namespace) -> list[str]:
        local = {f.name: f"a{i}" for i, f in enumerate(spec.fields)}
        fields = dataclasses.fields(spec.cls)
        args = ", ".join(local[f.name] for f in fields if f.init)
        out = [f"    r = {ns.add(spec.cls, 'C')}({args})"]
        out += [f"    _setattr(r, {f.name!r}, {local[f.name]})" for f in fields if not f.init]
        return [*out, "    return r"]

    def _build(self, spec: MessageSpec, what: str, lines: list[str], ns: _Namespace) -> Any:
        source = "\n".join(lines) + "\n"
        filename = f"<zeropipe {self.codec_name} {what} {spec.full_name}>"
        exec(compile(source, filename, "exec"), ns.values)
        fn = ns.values[what]
        fn.__qualname__ = f"{what}_{spec.name}"
        fn.__source__ = source
        return fn


def _reads(expr: str, name: str) -> str:
    """``expr`` reading the local ``name`` instead of ``x``."""
    return re.sub(r"\bx\b", name, expr)


class JsonCompiler(DocumentCompiler):
    """proto3 JSON: lowerCamelCase keys, int64 as strings, bytes as base64, enums by name."""

    codec_name = "json"
    omit_defaults = True

    def key(self, f: FieldSpec) -> str:
        return json_name(f.name)

    def other_key(self, f: FieldSpec) -> str | None:
        return f.name

    def encoding(self, kind: str, f: FieldSpec, ns: _Namespace) -> Encoding:
        if kind == "message":
            return self.message_encoding(f, ns)
        if kind == "enum":
            e = self.enum_encoding(f, ns)
            names = ns.add({m: m.name for m in f.type}, "names")
            return dataclasses.replace(e, emit=f"{names}[x]")
        e = self.scalar_encoding(kind, ns)
        if kind == "int64":
            return dataclasses.replace(e, emit="str(x)")
        if kind == "double":
            emit = f"x if x - x == 0.0 else {ns.add(e_special)}(x)"  # NaN, ±inf as strings
            nonzero = f"x or {ns.add(math.copysign)}(1.0, x) < 0.0"  # -0.0 is written
            return dataclasses.replace(e, emit=f"({emit})", nonzero=nonzero)
        if kind == "bytes":
            b2a = ns.add(binascii.b2a_base64)
            return dataclasses.replace(e, emit=f"{b2a}(x, newline=False).decode()")
        return e

    def decoding(self, kind: str, f: FieldSpec, ns: _Namespace) -> Decoding:
        if kind == "int32":
            return Decoding(f"type(x) is int and {I32_MIN} <= x <= {I32_MAX}", ns.add(d_int32))
        if kind == "int64":  # usually a decimal string of at most 19 digits
            ok = (
                "type(x) is str and (len(x) < 19 or len(x) == 19 and x <= '9223372036854775807')"
                " and x.isdigit() and x.isascii()"
            )
            return Decoding(ok, ns.add(d_int64_json), "int(x)")
        if kind == "double":
            return Decoding("type(x) is float", ns.add(d_double_json))
        if kind == "bool":
            return Decoding("type(x) is bool", ns.add(d_bool))
        if kind == "string":
            return Decoding("type(x) is str", ns.add(d_string))
        if kind == "bytes":
            return Decoding("False", ns.add(d_base64))
        if kind == "enum":
            by_name = ns.add(dict(f.type.__members__), "by_name")
            by_value = {m.value: m for m in f.type}
            slow = ns.add(functools.partial(d_member, f.type, by_value))
            return Decoding(f"type(x) is str and x in {by_name}", slow, f"{by_name}[x]")
        return self.message_decoding(f, ns)


# -- the JSON libraries ----------------------------------------------------------------------


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _stdlib_int(text: str) -> int | float:
    value = int(text)
    return value if -_U64_MAX - 1 <= value <= _U64_MAX else float(text)


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89abcdefABCDEF]")


class _Backend:
    """dumps/loads of orjson or the stdlib, with the same results."""

    def __init__(self, use_orjson: bool | None) -> None:
        orjson: Any = None
        if use_orjson is not False:
            try:
                import orjson
            except ImportError:
                if use_orjson:
                    from .errors import MissingCodecError

                    raise MissingCodecError("json", "json", "orjson") from None
        if orjson is not None:
            self.name = "orjson"
            self._orjson = orjson
            self.dumps: Callable[[Any], bytes] = orjson.dumps
            self.dumps_value = self._dumps_value_orjson
            self.loads: Callable[[Any], Any] = orjson.loads
            self.loads_value = orjson.loads
            self._value_options = orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_PASSTHROUGH_DATETIME
        else:
            import json

            self.name = "json"
            self._encoder = json.JSONEncoder(
                ensure_ascii=False, separators=(",", ":"), allow_nan=False, default=_no_default
            )
            self._decoder = json.JSONDecoder(parse_constant=_reject_constant)
            # orjson reads an integer beyond 64 bits as a float
            self._value_decoder = json.JSONDecoder(
                parse_constant=_reject_constant, parse_int=_stdlib_int
            )
            self.dumps = self._dumps_stdlib
            self.dumps_value = self._dumps_stdlib
            self.loads = self._loads_stdlib
            self.loads_value = self._loads_value_stdlib

    def _dumps_value_orjson(self, value: Any) -> bytes:
        out: bytes = self._orjson.dumps(value, default=_no_default, option=self._value_options)
        return out

    def _dumps_stdlib(self, value: Any) -> bytes:
        return self._encoder.encode(value).encode("utf-8")

    def _loads_stdlib(self, data: Any, decoder: Any = None) -> Any:
        text = data if isinstance(data, str) else bytes(data).decode("utf-8")
        value = (decoder or self._decoder).decode(text)
        if _SURROGATE_ESCAPE.search(text) is not None:
            _check_utf8(value)  # orjson refuses a lone surrogate; so do we
        return value

    def _loads_value_stdlib(self, data: Any) -> Any:
        return self._loads_stdlib(data, self._value_decoder)


def _no_default(value: Any) -> Any:
    raise TypeError(f"Type is not JSON serializable: {type(value).__name__}")


def _check_utf8(value: Any) -> None:
    if isinstance(value, str):
        value.encode("utf-8")
    elif isinstance(value, list):
        for item in value:
            _check_utf8(item)
    elif isinstance(value, dict):
        for k, item in value.items():
            _check_utf8(k)
            _check_utf8(item)


_COMPILER = JsonCompiler()


class JsonCodec:
    """The ``json`` codec. ``use_orjson``: None (default) uses orjson when it imports;
    False forces the stdlib ``json``; True requires orjson (MissingCodecError without it)."""

    name = "json"
    wire_id = 1
    content_type = "application/json"
    extra = "json"

    def __init__(self, use_orjson: bool | None = None) -> None:
        self._backend = _Backend(use_orjson)
        self.backend = self._backend.name
        self._dumps = self._backend.dumps
        self._loads = self._backend.loads
        self._encoders = _COMPILER._encoders
        self._decoders = _COMPILER._decoders

    def __repr__(self) -> str:
        return f"<JsonCodec backend={self.backend}>"

    def encode(self, obj: Any) -> bytes:
        """``obj`` (a ``@message`` instance) as proto3 canonical JSON (compact UTF-8)."""
        cls = obj.__class__
        try:
            enc = self._encoders.get(cls) or _COMPILER.encoder(cls)
            return self._dumps(enc(obj))
        except _Bad as e:
            raise EncodeError(self.name, _type_name(cls), e.describe()) from None
        except Exception as e:
            raise EncodeError(self.name, _type_name(cls), f"{type(e).__name__}: {e}") from e

    def decode(self, cls: type[T], data: bytes) -> T:
        """A ``cls`` from JSON bytes; raises DecodeError for anything that does not fit."""
        dec = self._decoders.get(cls) or _COMPILER.decoder(cls)
        try:
            return dec(self._loads(data))  # type: ignore[no-any-return]
        except _Bad as e:
            raise DecodeError(self.name, _type_name(cls), e.describe()) from None
        except Exception as e:
            raise DecodeError(self.name, _type_name(cls), _reason(e)) from e

    def encode_value(self, value: Any) -> bytes:
        """Plain data as JSON: None, bool, int (within -2**63..2**64-1), finite float, str, and
        lists, tuples and str-keyed dicts of those. Anything else (bytes included: JSON has
        no bytes type) raises EncodeError rather than being guessed at."""
        try:
            out = self._backend.dumps_value(value)
        except Exception as e:
            raise EncodeError(self.name, "value", f"{type(e).__name__}: {e}") from e
        if self.backend == "orjson" and b"null" in out:
            _check_plain(value)  # orjson writes NaN and infinities as null
        elif self.backend == "json":
            _check_plain(value)
        return out

    def decode_value(self, data: bytes) -> Any:
        """Plain data from JSON bytes (objects become dicts, arrays lists)."""
        try:
            return self._backend.loads_value(data)
        except Exception as e:
            raise DecodeError(self.name, "value", _reason(e)) from e


def _check_plain(value: Any) -> None:
    """Raise EncodeError for what :meth:`JsonCodec.encode_value` refuses."""
    stack = [value]
    while stack:
        v = stack.pop()
        if v is None or isinstance(v, (bool, str)):
            continue
        if isinstance(v, int):
            if not -(2**63) <= v <= _U64_MAX:
                raise EncodeError("json", "value", f"{v} is outside the 64-bit range")
        elif isinstance(v, float):
            if v - v != 0.0:
                raise EncodeError("json", "value", f"{v} is not a JSON number")
        elif isinstance(v, (list, tuple)):
            stack.extend(v)
        elif isinstance(v, dict):
            for k, item in v.items():
                if not isinstance(k, str):
                    raise EncodeError("json", "value", f"dict key {k!r} is not a str")
                stack.append(item)
        else:
            raise EncodeError("json", "value", f"{type(v).__name__} is not JSON data")


def _type_name(cls: Any) -> str:
    spec = getattr(cls, "__zeropipe_message__", None)
    if isinstance(spec, MessageSpec):
        return spec.full_name
    return getattr(cls, "__qualname__", repr(cls))


def _reason(e: Exception) -> str:
    if isinstance(e, UnicodeDecodeError):
        return f"not UTF-8: {e.reason} at byte {e.start}"
    if isinstance(e, ValueError) and e.__class__.__name__ == "JSONDecodeError":
        return f"not valid JSON: {e}"
    return f"{type(e).__name__}: {e}"


_default: JsonCodec | None = None


def _default_codec() -> JsonCodec:
    global _default
    if _default is None:
        _default = JsonCodec()
    return _default


def encode_value(value: Any) -> bytes:
    """Plain Python data as JSON bytes (see :meth:`JsonCodec.encode_value`)."""
    return _default_codec().encode_value(value)


def decode_value(data: bytes) -> Any:
    """Plain Python data from JSON bytes (see :meth:`JsonCodec.decode_value`)."""
    return _default_codec().decode_value(data)
