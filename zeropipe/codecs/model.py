"""Typed messages: plain dataclasses whose fields carry a field number and a wire kind.

A message is declared with :func:`message` and :func:`field`::

    @message("market.Trade")
    class Trade:
        id: int = field(1, "int64")
        symbol: str = field(2)
        price: float = field(3)
        qty: int = field(4, "int32")
        tags: list[str] = field(5, default_factory=list)
        venue: str | None = field(6, default=None)       # optional: may be absent

The kind of most fields follows from the annotation (``str`` -> string, ``bytes`` -> bytes,
``bool`` -> bool, ``float`` -> double, an ``enum.IntEnum`` -> enum, a message class ->
message, ``list[X]`` -> repeated, ``dict[K, V]`` -> map, ``X | None`` -> optional); ``int``
must say ``"int32"`` or ``"int64"``. What some codec cannot carry (unsigned and float32
kinds, field numbers outside 1..32767, map keys other than string or integers, lists of
lists, optional lists) is refused here, when the class is defined, never at send time.

Every codec reads the same :class:`MessageSpec` (see :func:`spec_of`), so any message goes
through any codec; codecs compile their own straight-line code from it once per class.
"""

from __future__ import annotations

import dataclasses
import enum
import sys
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

T = TypeVar("T")

if TYPE_CHECKING:
    from typing_extensions import dataclass_transform
else:

    def dataclass_transform(**_: Any) -> Callable[[T], T]:
        return lambda decorated: decorated


SCALAR_KINDS = frozenset({"int32", "int64", "double", "bool", "string", "bytes"})
#: Kinds that look reasonable but that some codec cannot carry (Thrift and BSON).
REFUSED_KINDS = {
    "uint32": "unsigned integers (Thrift and BSON have none): use int64",
    "uint64": "unsigned integers (Thrift and BSON have none): use int64",
    "fixed32": "unsigned integers (Thrift and BSON have none): use int32",
    "fixed64": "unsigned integers (Thrift and BSON have none): use int64",
    "sint32": "zigzag integers are protobuf-only: use int32",
    "sint64": "zigzag integers are protobuf-only: use int64",
    "sfixed32": "fixed-width integers are protobuf-only: use int32",
    "sfixed64": "fixed-width integers are protobuf-only: use int64",
    "float": "float32 (Thrift and BSON have none): use double",
    "float32": "float32 (Thrift and BSON have none): use double",
}
MAX_FIELD_NUMBER = 32767
INT32_RANGE = (-(2**31), 2**31 - 1)
INT64_RANGE = (-(2**63), 2**63 - 1)
_META = "zeropipe"


class ModelError(TypeError):
    """A message class that some codec could not carry, refused at definition time."""


@dataclass(frozen=True)
class FieldSpec:
    """One field: where it goes on every wire, and what it holds.

    ``kind`` is the kind of the value, or of each element for a list, or of each value for a
    map (``key_kind`` is then the kind of the keys). ``type`` is the enum or message class
    for those kinds, else None.
    """

    name: str
    number: int
    kind: str
    type: Any = None
    repeated: bool = False
    key_kind: str | None = None
    optional: bool = False

    @property
    def is_map(self) -> bool:
        return self.key_kind is not None


@dataclass(frozen=True)
class MessageSpec:
    """A message type: its fully qualified name, class and fields (in number order)."""

    full_name: str
    cls: type
    fields: tuple[FieldSpec, ...]

    @property
    def package(self) -> str:
        return self.full_name.rpartition(".")[0]

    @property
    def name(self) -> str:
        return self.full_name.rpartition(".")[2]


#: Every message class by fully qualified name (what a typed frame header names).
MESSAGES: dict[str, type] = {}


def field(
    number: int,
    kind: str | None = None,
    *,
    default: Any = dataclasses.MISSING,
    default_factory: Callable[[], Any] | Any = dataclasses.MISSING,
) -> Any:
    """A message field with its number (1..32767) and, where the annotation leaves it open
    (``int``, or a list/map of ``int``), its kind (``"int32"`` or ``"int64"``)."""
    return dataclasses.field(
        default=default,
        default_factory=default_factory,
        metadata={_META: (number, kind)},
    )


@dataclass_transform(field_specifiers=(field,))
def message(full_name: str | None = None, *, frozen: bool = False) -> Callable[[type[T]], type[T]]:
    """Make ``cls`` a dataclass and a typed message named ``full_name`` ("package.Name";
    default: the class's module and name)."""

    def wrap(cls: type[T]) -> type[T]:
        dc = dataclasses.dataclass(cls, frozen=frozen) if not dataclasses.is_dataclass(cls) else cls
        name = full_name or f"{cls.__module__}.{cls.__qualname__}"
        spec = MessageSpec(name, dc, _fields(dc))
        dc.__zeropipe_message__ = spec  # type: ignore[attr-defined]
        existing = MESSAGES.get(name)
        if existing is not None and existing.__qualname__ != dc.__qualname__:
            raise ModelError(f"two message classes are called {name!r}")
        MESSAGES[name] = dc
        return dc

    return wrap


def is_message(obj: Any) -> bool:
    """True for a message class or instance."""
    return hasattr(obj, "__zeropipe_message__")


def spec_of(cls_or_obj: Any) -> MessageSpec:
    """The spec of a message class (or of an instance's class)."""
    spec = getattr(cls_or_obj, "__zeropipe_message__", None)
    if not isinstance(spec, MessageSpec):
        raise ModelError(f"{cls_or_obj!r} is not a typed message (declare it with @message)")
    return spec


def _fields(cls: type) -> tuple[FieldSpec, ...]:
    hints = typing.get_type_hints(cls, globalns=vars(sys.modules[cls.__module__]))
    seen: dict[int, str] = {}
    json_names: dict[str, str] = {}
    out = []
    for f in dataclasses.fields(cls):
        meta = f.metadata.get(_META)
        where = f"{cls.__qualname__}.{f.name}"
        if not f.name.isascii():
            raise ModelError(f"{where}: field names must be ASCII (protobuf, Thrift)")
        json_name = json_name_of(f.name)
        if json_name in json_names:
            raise ModelError(
                f"{where}: its JSON name {json_name!r} is also {json_names[json_name]}'s"
            )
        json_names[json_name] = f.name
        if meta is None:
            raise ModelError(f"{where} has no field number: declare it with field(number)")
        number, kind = meta
        if not isinstance(number, int) or not 1 <= number <= MAX_FIELD_NUMBER:
            raise ModelError(f"{where}: field number {number!r} is outside 1..{MAX_FIELD_NUMBER}")
        if number in seen:
            raise ModelError(f"{where}: field number {number} is already {seen[number]}")
        seen[number] = f.name
        out.append(_field_spec(where, f.name, number, kind, hints[f.name]))
    return tuple(sorted(out, key=lambda s: s.number))


def json_name_of(name: str) -> str:
    """A field's name in JSON, as protobuf derives it: lowerCamelCase of the snake_case name."""
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def _field_spec(where: str, name: str, number: int, kind: str | None, hint: Any) -> FieldSpec:
    optional = False
    args = typing.get_args(hint)
    if _is_union(hint):
        rest = [a for a in args if a is not type(None)]
        if len(rest) != 1 or len(args) != 2:
            raise ModelError(f"{where}: only `X | None` unions are supported, not {hint!r}")
        optional, hint = True, rest[0]
    origin = typing.get_origin(hint)
    if origin is list:
        if optional:
            raise ModelError(f"{where}: a list cannot be optional (an empty list is absent)")
        (item,) = typing.get_args(hint)
        item_kind, item_type = _value_kind(where, kind, item)
        return FieldSpec(name, number, item_kind, item_type, repeated=True)
    if origin is dict:
        if optional:
            raise ModelError(f"{where}: a map cannot be optional (an empty map is absent)")
        key, value = typing.get_args(hint)
        key_kind = {str: "string", int: "int64", bool: "bool"}.get(key)
        if key_kind is None or key is bool:
            raise ModelError(f"{where}: map keys must be str or int, not {key!r}")
        if key is int and kind in ("int32", "int64") and not _is_int(value):
            key_kind = kind
        value_kind, value_type = _value_kind(where, kind if _is_int(value) else None, value)
        return FieldSpec(name, number, value_kind, value_type, key_kind=key_kind)
    value_kind, value_type = _value_kind(where, kind, hint)
    return FieldSpec(name, number, value_kind, value_type, optional=optional)


def _is_int(hint: Any) -> bool:
    return hint is int


def _is_union(hint: Any) -> bool:
    origin = typing.get_origin(hint)
    return origin is typing.Union or (
        sys.version_info >= (3, 10) and isinstance(hint, types.UnionType)
    )


def _value_kind(where: str, kind: str | None, hint: Any) -> tuple[str, Any]:
    if kind in REFUSED_KINDS:
        raise ModelError(f"{where}: kind {kind!r} is refused: {REFUSED_KINDS[kind]}")
    if typing.get_origin(hint) in (list, dict) or _is_union(hint):
        raise ModelError(f"{where}: {hint!r} nests a container: wrap the inner one in a message")
    if hint is int:
        if kind not in ("int32", "int64"):
            raise ModelError(f'{where}: an int field needs its kind: field(n, "int32" or "int64")')
        return kind, None
    if kind is not None and kind not in SCALAR_KINDS:
        raise ModelError(f"{where}: unknown kind {kind!r}")
    if isinstance(hint, type) and issubclass(hint, enum.IntEnum):
        if 0 not in {m.value for m in hint}:
            raise ModelError(f"{where}: enum {hint.__name__} needs a member with value 0 (proto3)")
        return "enum", hint
    if isinstance(hint, type) and is_message(hint):
        return "message", hint
    simple = {str: "string", bytes: "bytes", bool: "bool", float: "double"}.get(hint)
    if simple is None:
        raise ModelError(f"{where}: {hint!r} is not a message field type")
    if kind is not None and kind != simple:
        raise ModelError(f"{where}: kind {kind!r} does not fit {hint.__name__}")
    return simple, None
