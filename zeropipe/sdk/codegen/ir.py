"""The intermediate representation every schema source is normalised into.

``.proto`` files (read by protoc), ``.thrift`` files (read by thriftpy2) and Python message
classes all become a list of :class:`Package` (one per schema file or proto package), and every
writer (Python modules, ``.proto``/``.thrift`` text, the embedded descriptor) reads only this.

Names of messages and enums are fully qualified, proto style: ``"market.Trade"``, and a type
nested in a message is ``"market.Trade.Leg"``. Field kinds are the model's
(:mod:`zeropipe.codecs.model`): ``int32 int64 double bool string bytes`` plus ``enum`` and
``message``; for a list or a map ``kind`` is the kind of each element or value. Readers may put
a kind the model refuses (``"float"``, ``"uint32"`` ...) in the IR: :func:`check` then refuses
it with the model's own reason, naming the file, the message and the field.
"""

from __future__ import annotations

import enum
import keyword
import typing
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from dataclasses import field as _dc_field

from zeropipe.codecs.model import (
    MAX_FIELD_NUMBER,
    MESSAGES,
    REFUSED_KINDS,
    SCALAR_KINDS,
    FieldSpec,
    json_name_of,
    spec_of,
)

#: Kinds a field may have besides the scalars.
TYPED_KINDS = frozenset({"enum", "message"})
#: Kinds a map key may have.
MAP_KEY_KINDS = frozenset({"string", "int32", "int64"})


class CodegenError(Exception):
    """Codegen cannot go on; the message says why (the CLI prints it and exits with 2)."""


class MissingCodegenError(CodegenError):
    """A library that only code generation needs (grpcio-tools, thriftpy2) is not installed."""


class SchemaError(CodegenError):
    """A schema that the typed-message model cannot carry, or that its source tool refused."""

    def __init__(self, source: str, where: str, reason: str, line: int | None = None) -> None:
        self.source = source
        self.where = where
        self.reason = reason
        self.line = line
        place = source if line is None else f"{source}:{line}"
        super().__init__(f"{place}: {where}: {reason}" if where else f"{place}: {reason}")


@dataclass(frozen=True)
class Field:
    """One field of a message."""

    name: str
    number: int
    kind: str
    type_name: str | None = None  # full name of the enum or message, for those kinds
    repeated: bool = False
    key_kind: str | None = None  # maps: the kind of the keys
    optional: bool = False
    line: int | None = _dc_field(default=None, compare=False)

    @property
    def is_map(self) -> bool:
        return self.key_kind is not None


@dataclass(frozen=True)
class Enum:
    """An enum: its full name and its (name, value) pairs in declaration order."""

    name: str
    values: tuple[tuple[str, int], ...]
    line: int | None = _dc_field(default=None, compare=False)


@dataclass(frozen=True)
class Message:
    """A message: its full name and its fields in declaration order."""

    name: str
    fields: tuple[Field, ...]
    line: int | None = _dc_field(default=None, compare=False)


@dataclass
class Package:
    """The types of one schema file.

    ``source`` names the file as messages show it (``"market.proto"``, relative to its
    include directory), ``package`` is the proto package (or the thrift ``namespace py``)
    that prefixes every full name, ``module`` the Python module written for it.
    """

    source: str
    package: str
    module: str
    messages: list[Message] = _dc_field(default_factory=list)
    enums: list[Enum] = _dc_field(default_factory=list)

    def local_name(self, full_name: str) -> str:
        """``"market.Trade.Leg"`` -> ``"Trade.Leg"``."""
        if self.package and full_name.startswith(self.package + "."):
            return full_name[len(self.package) + 1 :]
        return full_name


class Index:
    """Every message and enum of a set of packages, by full name."""

    def __init__(self, packages: Iterable[Package]) -> None:
        self.packages = list(packages)
        self.messages: dict[str, tuple[Package, Message]] = {}
        self.enums: dict[str, tuple[Package, Enum]] = {}
        for pkg in self.packages:
            for msg in pkg.messages:
                self._claim(pkg, msg.name, msg.line)
                self.messages[msg.name] = (pkg, msg)
            for en in pkg.enums:
                self._claim(pkg, en.name, en.line)
                self.enums[en.name] = (pkg, en)

    def _claim(self, pkg: Package, name: str, line: int | None) -> None:
        other = self.messages.get(name) or self.enums.get(name)
        if other is not None:
            raise SchemaError(pkg.source, name, f"already defined in {other[0].source}", line)

    def owner(self, full_name: str) -> Package:
        found = self.messages.get(full_name) or self.enums.get(full_name)
        if found is None:
            raise KeyError(full_name)
        return found[0]

    def dependencies(self, pkg: Package) -> list[Package]:
        """The other packages whose types ``pkg`` uses, in first-use order."""
        out: list[Package] = []
        for msg in pkg.messages:
            for f in msg.fields:
                if f.type_name is None:
                    continue
                other = self.owner(f.type_name)
                if other is not pkg and other not in out:
                    out.append(other)
        return out


def message_deps(msg: Message) -> Iterator[str]:
    """Full names of the messages ``msg``'s fields hold."""
    for f in msg.fields:
        if f.kind == "message" and f.type_name is not None:
            yield f.type_name


# -- checks: the model's rules, applied to a schema ------------------------------------------


def check(packages: list[Package]) -> Index:
    """Refuse what the typed-message model refuses, naming file, message and field.

    The rules are the model's (:mod:`zeropipe.codecs.model`): no unsigned, float32, zigzag or
    fixed-width kinds, field numbers 1..32767, map keys string/int32/int64, no nested
    containers, no optional lists or maps, enums with a 0 value; plus what a schema can say
    and a class cannot: no recursive messages, no enum aliases, no enum value names or JSON
    names that clash where protobuf scopes them.
    """
    index = Index(packages)
    for pkg in packages:
        for en in pkg.enums:
            _check_enum(pkg, en)
        _check_enum_scopes(pkg)
        for msg in pkg.messages:
            _check_message(pkg, msg, index)
    _check_cycles(index)
    return index


def _check_enum(pkg: Package, en: Enum) -> None:
    if not en.values:
        raise SchemaError(pkg.source, en.name, "an enum needs at least one value", en.line)
    names: set[str] = set()
    numbers: dict[int, str] = {}
    for name, number in en.values:
        if name in names:
            raise SchemaError(pkg.source, en.name, f"value {name} is declared twice", en.line)
        if number in numbers:
            raise SchemaError(
                pkg.source,
                en.name,
                f"{name} and {numbers[number]} share the value {number} "
                "(enum aliases are not supported)",
                en.line,
            )
        if not -(2**31) <= number < 2**31:
            raise SchemaError(pkg.source, en.name, f"{name} = {number} is not an int32", en.line)
        names.add(name)
        numbers[number] = name
    if 0 not in numbers:
        raise SchemaError(
            pkg.source, en.name, "an enum needs a value equal to 0 (proto3's default)", en.line
        )


def _check_enum_scopes(pkg: Package) -> None:
    """Protobuf puts enum values beside their enum (C++ scoping): two enums of one scope
    cannot both have a value ``UNKNOWN``, and the ``.proto`` we emit must compile."""
    seen: dict[tuple[str, str], str] = {}
    for en in pkg.enums:
        scope = en.name.rpartition(".")[0]
        for name, _ in en.values:
            other = seen.setdefault((scope, name), en.name)
            if other != en.name:
                raise SchemaError(
                    pkg.source,
                    en.name,
                    f"value {name} is also a value of {other}: protobuf scopes enum values "
                    "by package, so rename one of them",
                    en.line,
                )


def _check_message(pkg: Package, msg: Message, index: Index) -> None:
    names: dict[str, Field] = {}
    numbers: dict[int, Field] = {}
    jsons: dict[str, Field] = {}
    for f in msg.fields:
        where = f"{msg.name}.{f.name}"

        def refuse(reason: str, where: str = where, f: Field = f) -> SchemaError:
            return SchemaError(pkg.source, where, reason, f.line or msg.line)

        if f.name in names:
            raise refuse("the field name is used twice")
        if not f.name.isascii():
            raise refuse("field names must be ASCII (protobuf, Thrift)")
        if not 1 <= f.number <= MAX_FIELD_NUMBER:
            raise refuse(f"field number {f.number} is outside 1..{MAX_FIELD_NUMBER}")
        if f.number in numbers:
            raise refuse(f"field number {f.number} is already {numbers[f.number].name}")
        json_name = json_name_of(f.name)
        other = jsons.get(json_name)
        if other is not None:
            raise refuse(f"its JSON name {json_name!r} is also the one of {other.name}")
        names[f.name] = numbers[f.number] = jsons[json_name] = f
        _check_kind(f.kind, refuse)
        if f.kind in TYPED_KINDS:
            table: dict[str, typing.Any] = index.enums if f.kind == "enum" else index.messages
            if f.type_name not in table:
                raise refuse(f"unknown {f.kind} type {f.type_name!r}")
        if f.is_map:
            if f.repeated or f.optional:
                raise refuse("a map cannot be repeated or optional")
            if f.key_kind in REFUSED_KINDS:
                raise refuse(f"map key kind {f.key_kind!r} is refused: {REFUSED_KINDS[f.key_kind]}")
            if f.key_kind not in MAP_KEY_KINDS:
                raise refuse(f"map keys must be string, int32 or int64, not {f.key_kind}")
            if f.key_kind == "int32" and f.kind in ("int32", "int64"):
                raise refuse(
                    "a map with int32 keys and integer values cannot be declared in the model "
                    "(one kind names both): use int64 keys"
                )
        if f.repeated and f.optional:
            raise refuse("a list cannot be optional (an empty list is absent)")


def _check_kind(kind: str, refuse: typing.Callable[[str], SchemaError]) -> None:
    if kind in REFUSED_KINDS:
        raise refuse(f"kind {kind!r} is refused: {REFUSED_KINDS[kind]}")
    if kind not in SCALAR_KINDS and kind not in TYPED_KINDS:
        raise refuse(f"type {kind!r} is not supported")


def _check_cycles(index: Index) -> None:
    state: dict[str, int] = {}  # 1: on the path, 2: done

    def visit(name: str, path: list[str]) -> None:
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            loop = [*path[path.index(name) :], name]
            pkg, msg = index.messages[name]
            raise SchemaError(
                pkg.source,
                name,
                "recursive messages are not supported: " + " -> ".join(loop),
                msg.line,
            )
        state[name] = 1
        for dep in message_deps(index.messages[name][1]):
            visit(dep, [*path, name])
        state[name] = 2

    for name in index.messages:
        visit(name, [])
    # generated modules import each other: their imports must not loop either
    mod_state: dict[str, int] = {}

    def visit_pkg(pkg: Package, path: list[str]) -> None:
        if mod_state.get(pkg.source) == 2:
            return
        if mod_state.get(pkg.source) == 1:
            loop = [*path[path.index(pkg.source) :], pkg.source]
            raise SchemaError(pkg.source, "", "schema files use each other: " + " -> ".join(loop))
        mod_state[pkg.source] = 1
        for dep in index.dependencies(pkg):
            visit_pkg(dep, [*path, pkg.source])
        mod_state[pkg.source] = 2

    for pkg in index.packages:
        visit_pkg(pkg, [])


def ordered_messages(pkg: Package, index: Index) -> list[Message]:
    """``pkg``'s messages, each after the messages of ``pkg`` it holds (else as declared)."""
    out: list[Message] = []
    done: set[str] = set()

    def visit(msg: Message) -> None:
        if msg.name in done:
            return
        done.add(msg.name)
        for dep in message_deps(msg):
            owner, dep_msg = index.messages[dep]
            if owner is pkg:
                visit(dep_msg)
        out.append(msg)

    for msg in pkg.messages:
        visit(msg)
    return out


# -- from Python message classes -------------------------------------------------------------


def packages_from_classes(classes: Iterable[type]) -> list[Package]:
    """The IR of some ``@message`` classes and of every message and enum they hold.

    One :class:`Package` per proto package (the full name of each message, less its nesting
    in other messages of the set). An enum's full name is its ``__zeropipe_enum__`` (what
    generated modules set), else its class name in the package of the first message that
    holds it.
    """
    specs = []
    seen: set[type] = set()
    todo = list(classes)
    while todo:
        cls = todo.pop(0)
        if cls in seen:
            continue
        seen.add(cls)
        spec = spec_of(cls)
        specs.append(spec)
        todo.extend(f.type for f in spec.fields if f.kind == "message")
    names = {spec.full_name for spec in specs}
    packages: dict[str, Package] = {}
    enum_names: dict[type, str] = {}

    def package_of(full_name: str) -> str:
        outer = full_name.rpartition(".")[0]
        while outer in names:
            outer = outer.rpartition(".")[0]
        return outer

    def enum_name(cls: type, user: str) -> str:
        if cls not in enum_names:
            declared = getattr(cls, "__zeropipe_enum__", None)
            if isinstance(declared, str):
                enum_names[cls] = declared
            else:
                pkg = package_of(user)
                local = cls.__qualname__.replace(".", "_")
                enum_names[cls] = f"{pkg}.{local}" if pkg else local
        return enum_names[cls]

    def pkg_for(full_name: str) -> Package:
        name = package_of(full_name)
        if name not in packages:
            packages[name] = Package(source=f"{name or 'messages'}.proto", package=name, module="")
        return packages[name]

    enums: dict[str, type] = {}
    for spec in sorted(specs, key=lambda s: _definition_order(s.cls)):
        fields = []
        for fs in spec.fields:
            type_name = None
            if fs.kind == "message":
                type_name = spec_of(fs.type).full_name
            elif fs.kind == "enum":
                type_name = enum_name(fs.type, spec.full_name)
                enums.setdefault(type_name, fs.type)
            fields.append(_field_from_spec(fs, type_name))
        pkg_for(spec.full_name).messages.append(Message(spec.full_name, tuple(fields)))
    for full_name, cls in enums.items():
        members = list(typing.cast("type[enum.IntEnum]", cls))
        values = tuple((m.name, int(m.value)) for m in members)
        pkg_for(full_name).enums.append(Enum(full_name, values))
    return list(packages.values())


def _definition_order(cls: type) -> int:
    """Registration order in MESSAGES: a class is defined after the classes it holds."""
    names = list(MESSAGES)
    spec = spec_of(cls)
    return names.index(spec.full_name) if spec.full_name in MESSAGES else len(names)


def _field_from_spec(fs: FieldSpec, type_name: str | None) -> Field:
    return Field(
        name=fs.name,
        number=fs.number,
        kind=fs.kind,
        type_name=type_name,
        repeated=fs.repeated,
        key_kind=fs.key_kind,
        optional=fs.optional,
    )


def python_identifier_problem(name: str) -> str | None:
    """Why ``name`` cannot be a Python attribute or class name, or None."""
    if not name.isidentifier():
        return f"{name!r} is not a Python identifier"
    if keyword.iskeyword(name):
        return f"{name!r} is a Python keyword"
    return None
