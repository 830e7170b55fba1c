"""Read ``.thrift`` files with thriftpy2's parser, into the IR.

thriftpy2 gives each struct a ``thrift_spec`` dict (id -> ttype, name, type arguments,
required). It does not tell an ``optional`` field from one of default requiredness, so the
``optional`` keyword is found with thriftpy2's own lexer. Mapping, and what is refused:

* ``bool i32 i64 double string binary`` -> ``bool int32 int64 double string bytes``;
  ``list<T>`` -> a list, ``map<K, V>`` -> a map, a struct -> a message, an enum -> an enum;
* ``optional`` -> an optional field (``X | None``); ``required`` and default requiredness ->
  a plain field with proto3's zero value as default; ``optional list<...>``/``map<...>`` -> a
  plain list or map (the model has no optional containers: an empty one is absent);
* ``i16`` and ``byte``/``i8`` are **refused**, not widened: widening would change their wire
  type, and a peer decoding with the original ``.thrift`` would no longer read our bytes;
* ``set``, ``union``, ``uuid``, nested containers, defaults other than the zero value (proto3
  has no defaults: the value would change when a message goes through protobuf) and fields
  without an explicit id are refused; services, exceptions, constants and typedefs (resolved)
  are not types to generate and are left out.

The package of a file is its ``namespace py``, else its ``namespace *``, else its file name.
"""

from __future__ import annotations

import importlib
import itertools
import os
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from zeropipe.sdk.codegen.ir import (
    CodegenError,
    Enum,
    Field,
    Message,
    MissingCodegenError,
    Package,
    SchemaError,
)
from zeropipe.sdk.codegen.proto_reader import module_name

# thrift wire types (TType; BINARY is thriftpy2's pseudo-type for binary strings)
BOOL, BYTE, DOUBLE, I16, I32, I64 = 2, 3, 4, 6, 8, 10
STRING, STRUCT, MAP, SET, LIST, BINARY = 11, 12, 13, 14, 15, 18
_SCALARS = {
    BOOL: "bool",
    DOUBLE: "double",
    I32: "int32",
    I64: "int64",
    STRING: "string",
    BINARY: "bytes",
}
_REFUSED = {
    BYTE: "byte/i8 is not in the common subset (protobuf has no 8-bit integer): use i32",
    I16: "i16 is not in the common subset (protobuf has no 16-bit integer): use i32",
    SET: "set is not supported (protobuf and BSON have none): use a list",
}
_ZERO: dict[str, object] = {
    "bool": False,
    "double": 0.0,
    "int32": 0,
    "int64": 0,
    "string": "",
    "bytes": b"",
    "enum": 0,
}
_counter = itertools.count()


def _import(name: str) -> Any:
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise MissingCodegenError(
            f"reading .thrift files needs thriftpy2: pip install 'zeropipe[codegen]' ({exc})"
        ) from None


def read_thrift(files: Sequence[Path]) -> list[Package]:
    """The IR of ``files`` and of the ``.thrift`` files they include."""
    parser = _import("thriftpy2.parser.parser")
    # a module name of our own keeps thriftpy2's cache of included files from serving a
    # file parsed by an earlier run (it caches them by module name, for the process)
    prefix = f"_zeropipe_codegen_{os.getpid()}_{next(_counter)}"
    modules: dict[str, Any] = {}  # real path -> parsed thrift module
    roots: dict[str, Path] = {}  # real path -> directory the source is named relative to
    try:
        for path in files:
            if not path.is_file():
                raise CodegenError(f"{path}: no such file")
            real = os.path.realpath(path)
            name = f"{prefix}.{module_name(path.name, 'thrift')}"
            try:
                mod = parser.parse(str(path), module_name=name, enable_cache=False)
            except RecursionError:
                raise SchemaError(path.name, "", "the file includes itself") from None
            except Exception as exc:  # ThriftParserError, and whatever else the parser raises
                raise SchemaError(path.name, "", f"thriftpy2 refused the schema: {exc}") from None
            todo = [(real, mod, path.resolve().parent)]
            while todo:
                real, mod, root = todo.pop()
                if real in modules:
                    continue
                modules[real] = mod
                roots[real] = root
                for child in mod.__thrift_meta__.get("includes", []):
                    todo.append((os.path.realpath(child.__thrift_file__), child, root))
    finally:
        cache = getattr(parser, "_thrift_cache", None)
        if isinstance(cache, dict):
            for key in [k for k in cache if isinstance(k, str) and k.startswith(prefix)]:
                del cache[key]
    names = {real: os.path.relpath(real, roots[real]) for real in modules}
    packages = {real: _package_of(names[real], mod) for real, mod in modules.items()}
    for real, mod in modules.items():
        _FileReader(real, mod, packages).read()
    return list(packages.values())


def _package_of(source: str, mod: Any) -> Package:
    spaces = getattr(mod, "__thrift_namespaces__", {})
    stem = os.path.basename(source).rsplit(".", 1)[0]
    package = spaces.get("py") or spaces.get("*") or stem
    return Package(source.replace(os.sep, "/"), str(package), module_name(source, "thrift"))


def _optional_fields(text: str) -> set[tuple[str, int]]:
    """(struct, field id) of the fields declared ``optional``, found with thriftpy2's lexer."""
    lex = _import("ply.lex")
    rules = _import("thriftpy2.parser.lexer")
    lexer = lex.lex(module=rules)
    lexer.input(text)
    tokens = list(iter(lexer.token, None))
    out: set[tuple[str, int]] = set()
    struct: str | None = None
    depth = 0
    for i, tok in enumerate(tokens):
        kind = tok.type
        if kind in ("STRUCT", "UNION", "EXCEPTION") and depth == 0 and i + 1 < len(tokens):
            struct = str(tokens[i + 1].value)
        elif kind == "SERVICE" and depth == 0:
            struct = None
        elif kind == "{":
            depth += 1
        elif kind == "}":
            depth -= 1
            if depth == 0:
                struct = None
        elif (
            kind == "INTCONSTANT"
            and struct is not None
            and depth == 1
            and i + 2 < len(tokens)
            and tokens[i + 1].type == ":"
            and tokens[i + 2].type == "OPTIONAL"
        ):
            out.add((struct, int(tok.value)))
    return out


class _FileReader:
    def __init__(self, real: str, mod: Any, packages: dict[str, Package]) -> None:
        self.real = real
        self.mod = mod
        self.packages = packages
        self.pkg = packages[real]
        self.source = self.pkg.source
        self.optional = _optional_fields(Path(real).read_text(encoding="utf-8"))
        meta = mod.__thrift_meta__
        self.unions = {self.key(c) for m in self.all_modules() for c in m.__thrift_meta__["unions"]}
        self.exceptions = {
            self.key(c) for m in self.all_modules() for c in m.__thrift_meta__["exceptions"]
        }
        self.structs = list(meta.get("structs", []))
        self.enums = list(meta.get("enums", []))

    def all_modules(self) -> list[Any]:
        out, todo = [], [self.mod]
        while todo:
            m = todo.pop()
            if m not in out:
                out.append(m)
                todo.extend(m.__thrift_meta__.get("includes", []))
        return out

    @staticmethod
    def key(cls: Any) -> tuple[str, str]:
        return os.path.realpath(cls.__thrift_file__), cls.__name__

    def full_name(self, cls: Any) -> str:
        pkg = self.packages[os.path.realpath(cls.__thrift_file__)]
        return f"{pkg.package}.{cls.__name__}" if pkg.package else str(cls.__name__)

    def read(self) -> None:
        unions = self.mod.__thrift_meta__.get("unions", [])
        if unions:
            un = unions[0]
            raise SchemaError(
                self.source,
                self.full_name(un),
                "union is not supported (not in v1): use a struct of optional fields",
                getattr(un, "__thrift_lineno__", None),
            )
        for en in self.enums:
            values = tuple((str(k), int(v)) for k, v in en._NAMES_TO_VALUES.items())
            line = getattr(en, "__thrift_lineno__", None)
            self.pkg.enums.append(Enum(self.full_name(en), values, line))
        for st in self.structs:
            self.read_struct(st)

    def read_struct(self, cls: Any) -> None:
        name = self.full_name(cls)
        lines = getattr(cls, "__thrift_field_linenos__", {})
        defaults = dict(getattr(cls, "default_spec", []))
        fields = []
        for number, spec in cls.thrift_spec.items():  # in declaration order
            fname = str(spec[1])
            line = lines.get(fname)
            where = f"{name}.{fname}"
            if number < 1:
                raise SchemaError(
                    self.source, where, "the field needs an explicit id (1: ...)", line
                )
            ttype, args = spec[0], (spec[2] if len(spec) == 4 else None)
            field = self.read_type(where, line, ttype, args)
            optional = (cls.__name__, number) in self.optional
            if field.repeated or field.is_map:
                optional = False  # an empty container is absent: no optional containers
            default = defaults.get(fname)
            if default is not None and default != _ZERO.get(field.kind):
                raise SchemaError(
                    self.source,
                    where,
                    f"the default {default!r} is not supported: only the zero value "
                    "(proto3 has no defaults); drop it or make the field optional",
                    line,
                )
            fields.append(
                Field(
                    name=fname,
                    number=int(number),
                    kind=field.kind,
                    type_name=field.type_name,
                    repeated=field.repeated,
                    key_kind=field.key_kind,
                    optional=optional,
                    line=line,
                )
            )
        self.pkg.messages.append(
            Message(name, tuple(fields), getattr(cls, "__thrift_lineno__", None))
        )

    def read_type(self, where: str, line: int | None, ttype: int, args: Any) -> Field:
        """A Field (name and number left blank) for a thrift type."""
        if ttype == LIST:
            item = self.read_value(where, line, args)
            return Field("", 0, item.kind, item.type_name, repeated=True)
        if ttype == MAP:
            key = self.read_value(where, line, args[0])
            if key.kind in ("enum", "message"):
                raise SchemaError(self.source, where, "map keys must be string, i32 or i64", line)
            value = self.read_value(where, line, args[1])
            return Field("", 0, value.kind, value.type_name, key_kind=key.kind)
        return self.read_value(where, line, (ttype, args) if args is not None else ttype)

    def read_value(self, where: str, line: int | None, spec: Any) -> Field:
        """A Field for a list element, map key/value, or a plain field (no containers)."""
        ttype, arg = (spec[0], spec[1]) if isinstance(spec, tuple) else (spec, None)
        arg = typing.cast(Any, arg)
        if ttype in (LIST, MAP):
            raise SchemaError(
                self.source,
                where,
                "nested containers are not supported: wrap the inner one in a struct",
                line,
            )
        if ttype in _REFUSED:
            raise SchemaError(self.source, where, _REFUSED[ttype], line)
        if ttype == I32 and arg is not None:
            return Field("", 0, "enum", self.full_name(arg))
        if ttype == STRUCT:
            if self.key(arg) in self.unions:
                raise SchemaError(
                    self.source, where, f"union {arg.__name__} is not supported (not in v1)", line
                )
            if self.key(arg) in self.exceptions:
                raise SchemaError(
                    self.source, where, f"{arg.__name__} is an exception, not a struct", line
                )
            return Field("", 0, "message", self.full_name(arg))
        kind = _SCALARS.get(ttype)
        if kind is None:
            raise SchemaError(self.source, where, f"thrift type {ttype} is not supported", line)
        return Field("", 0, kind)
