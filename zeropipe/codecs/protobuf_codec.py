"""The protobuf codec (wire id 3): typed messages as proto3 binary, through upb.

For each message class, once, the codec builds a proto3 ``FileDescriptorProto`` from its
:class:`~zeropipe.codecs.model.MessageSpec`, adds it to a private descriptor pool (the
referenced message classes first, each in a file of its own, so references across packages
work), gets the upb message class, and generates two straight-line converters (dataclass
-> upb message by attribute assignment, upb message -> dataclass by one positional
constructor call). No reflection happens per message.

How the model maps onto proto3:

* ``int32``/``int64``/``double``/``bool``/``string``/``bytes`` are the proto3 scalars of the
  same name; an enum field is a proto3 enum, a message field a message;
* ``X | None`` scalars and enums are proto3 ``optional`` fields (explicit presence, with
  the synthetic oneof protoc makes); ``None`` is absent on the wire. A message field always
  has presence: ``Inner | None`` that is None is absent; a non-optional message field absent
  on the wire decodes as a message with every field at its default;
* ``list[X]`` is a repeated field (scalars packed, the proto3 default), ``dict[K, V]`` a
  map (a nested ``<Name>Entry`` type with the ``map_entry`` option, as protoc makes it);
* an enum becomes a top-level enum in the package of the first message that uses it,
  named like its Python class, values named like its members, value 0 first. Names are
  not on the binary wire; when a name is taken in that package already the enum gets a
  ``_2`` suffix, and when a value name is taken the values get the protobuf style-guide
  prefix (``SIDE_BUY``), since proto enum values share their package's namespace.

Decoding is closed over enums: proto3 would keep an enum number that the Python IntEnum
does not know, but a field typed ``Side`` must hold a ``Side``, so such a payload raises
:class:`~zeropipe.codecs.errors.DecodeError` (a schema mismatch between peers), like every
other malformed payload (truncated or corrupt wire data, invalid UTF-8 in a string).

:func:`descriptor_for` gives the descriptor of a class (for tooling), :func:`pb_class_for`
the upb class itself, for hot paths that want to skip the conversion. Creating a
:class:`ProtobufCodec` raises :class:`~zeropipe.codecs.errors.MissingCodecError` when the
``protobuf`` package is not installed, and warns when its backend is not upb.
"""

from __future__ import annotations

import enum
import importlib
import threading
import warnings
from dataclasses import fields as dc_fields
from typing import Any, TypeVar

from .errors import CodecError, DecodeError, EncodeError, MissingCodecError, why
from .kinds import add_fields
from .model import MESSAGES, FieldSpec, MessageSpec, spec_of
from .registry import Lazy

T = TypeVar("T")

__all__ = ["ProtobufCodec", "descriptor_for", "descriptor_set_for", "pb_class_for"]

_EXTRA = "protobuf"
_FILE_PREFIX = "zeropipe/runtime/"


def _import_protobuf() -> tuple[Any, Any, Any]:
    """``descriptor_pb2``, ``descriptor_pool`` and ``message_factory``, or MissingCodecError."""
    try:
        descriptor_pb2 = importlib.import_module("google.protobuf.descriptor_pb2")
        descriptor_pool = importlib.import_module("google.protobuf.descriptor_pool")
        message_factory = importlib.import_module("google.protobuf.message_factory")
    except ImportError as exc:
        raise MissingCodecError("protobuf", _EXTRA, "protobuf") from exc
    if backend() != "upb":
        warnings.warn(
            f"zeropipe's protobuf codec runs on the slow {backend()!r} protobuf backend, not "
            "upb (PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION set? an old protobuf?): it works, "
            "but tens of times slower",
            RuntimeWarning,
            stacklevel=3,
        )
    return descriptor_pb2, descriptor_pool, message_factory


def backend() -> str:
    """The protobuf backend in use: ``"upb"`` is the fast one this codec is written for."""
    api = importlib.import_module("google.protobuf.internal.api_implementation")
    return str(api.Type())


class _Compiled:
    """What the codec keeps per message class."""

    __slots__ = ("dec", "enc", "fdp", "fill", "from_pb", "pb_class", "spec")

    def __init__(
        self,
        spec: MessageSpec,
        fdp: Any,
        pb_class: Any,
        fill: Any,
        from_pb: Any,
        enc: Any,
        dec: Any,
    ) -> None:
        self.spec = spec
        self.fdp = fdp  # this class's own FileDescriptorProto (dependencies are by name)
        self.pb_class = pb_class
        self.fill = fill  # fill(pb_message, obj): copies obj's fields into pb_message
        self.from_pb = from_pb  # from_pb(pb_message) -> obj
        self.enc = enc  # enc(obj) -> bytes
        self.dec = dec  # dec(bytes) -> obj


class _Runtime:
    """The private descriptor pool and everything compiled into it (one per process)."""

    def __init__(self) -> None:
        self.descriptor_pb2, pool_mod, self.message_factory = _import_protobuf()
        self.pool = pool_mod.DescriptorPool()
        self.upb = backend() == "upb"
        self.lock = threading.RLock()
        self.compiled: dict[type, _Compiled] = {}
        # enum class -> (its full name, the name of the file declaring it)
        self.enums: dict[type[enum.IntEnum], tuple[str, str]] = {}
        self.enum_fdps: dict[str, Any] = {}  # file name -> FileDescriptorProto
        self.symbols: set[str] = set()  # every full name declared in the pool

    def get(self, cls: type) -> _Compiled:
        """The compiled form of message class ``cls``: ModelError if it is not one, and
        CodecError if protobuf cannot describe it (a name protobuf refuses)."""
        compiled = self.compiled.get(cls)
        if compiled is None:
            spec = spec_of(cls)
            with self.lock:
                try:
                    compiled = self._compile(spec, ())
                except Exception as exc:
                    raise CodecError(
                        f"protobuf cannot describe {spec.full_name}: {why(exc)}"
                    ) from exc
        return compiled

    # -- descriptors ---------------------------------------------------------------------

    def _compile(self, spec: MessageSpec, stack: tuple[type, ...]) -> _Compiled:
        done = self.compiled.get(spec.cls)
        if done is not None:
            return done
        if spec.cls in stack:
            raise TypeError(f"{spec.full_name} contains itself: protobuf files cannot do that")
        deps: dict[str, None] = {}
        for f in spec.fields:
            if f.kind == "message":
                dep = self._compile(spec_of(f.type), (*stack, spec.cls))
                deps[dep.fdp.name] = None
            elif f.kind == "enum":
                deps[self._enum(f.type, spec.package)[1]] = None
        fdp = self._message_file(spec, list(deps))
        self.pool.Add(fdp)
        self.symbols.add(spec.full_name)
        desc = self.pool.FindMessageTypeByName(spec.full_name)
        pb_class = self.message_factory.GetMessageClass(desc)
        compiled = _Compiled(spec, fdp, pb_class, *_generate(spec, pb_class, self))
        self.compiled[spec.cls] = compiled
        return compiled

    def _message_file(self, spec: MessageSpec, deps: list[str]) -> Any:
        fdp = self.descriptor_pb2.FileDescriptorProto(
            name=_FILE_PREFIX + spec.full_name.replace(".", "/") + ".proto",
            package=spec.package,
            syntax="proto3",
            dependency=deps,
        )
        msg = fdp.message_type.add(name=spec.name)
        typed = ((f, self._type_name(f, spec.package)) for f in spec.fields)
        add_fields(msg, spec.full_name, typed, optional_messages=False)
        return fdp

    def _type_name(self, f: FieldSpec, package: str) -> str | None:
        """The full name of the message or enum type of ``f`` (None for a scalar)."""
        if f.kind == "message":
            return spec_of(f.type).full_name
        if f.kind == "enum":
            return self._enum(f.type, package)[0]
        return None

    def _enum(self, enum_cls: type[enum.IntEnum], package: str) -> tuple[str, str]:
        """(full name, file name) of the enum type of an IntEnum, declared on first use."""
        known = self.enums.get(enum_cls)
        if known is not None:
            return known
        prefix = package + "." if package else ""
        base = enum_cls.__name__
        name, n = base, 1
        while prefix + name in self.symbols or prefix + name in MESSAGES:
            n += 1
            name = f"{base}_{n}"
        full_name = prefix + name
        members = sorted(enum_cls, key=_nonzero)  # members only, not aliases
        value_names = [m.name for m in members]
        if any(prefix + v in self.symbols for v in value_names):
            value_prefix = _upper_snake(name) + "_"
            value_names = [value_prefix + v for v in value_names]
        file_name = _FILE_PREFIX + full_name.replace(".", "/") + ".enum.proto"
        fdp = self.descriptor_pb2.FileDescriptorProto(
            name=file_name, package=package, syntax="proto3"
        )
        enum_type = fdp.enum_type.add(name=name)
        for member, value_name in zip(members, value_names, strict=True):
            enum_type.value.add(name=value_name, number=int(member.value))
        self.pool.Add(fdp)
        self.symbols.add(full_name)
        self.symbols.update(prefix + v for v in value_names)
        self.enum_fdps[file_name] = fdp
        self.enums[enum_cls] = (full_name, file_name)
        return full_name, file_name

    def files_for(self, cls: type) -> list[Any]:
        """The FileDescriptorProtos ``cls`` needs, dependencies first."""
        out: dict[str, Any] = {}

        def visit(c: type) -> None:
            compiled = self.get(c)
            for f in compiled.spec.fields:
                if f.kind == "message":
                    visit(f.type)
                elif f.kind == "enum":
                    file_name = self.enums[f.type][1]
                    out.setdefault(file_name, self.enum_fdps[file_name])
            out.setdefault(compiled.fdp.name, compiled.fdp)

        visit(cls)
        return list(out.values())


def _nonzero(member: Any) -> bool:
    return int(member.value) != 0


def _upper_snake(name: str) -> str:
    out: list[str] = []
    for i, c in enumerate(name):
        if c.isupper() and i and not name[i - 1].isupper() and name[i - 1] != "_":
            out.append("_")
        out.append(c.upper())
    return "".join(out)


# -- converters ------------------------------------------------------------------------------


def _generate(spec: MessageSpec, pb_class: Any, rt: _Runtime) -> tuple[Any, Any, Any, Any]:
    """Straight-line ``fill(m, o)``, ``from_pb(m)``, ``enc(o) -> bytes`` and ``dec(bytes)``
    for one message class."""
    ns: dict[str, Any] = {"_PB": pb_class, "_Cls": spec.cls}
    fill = ["def fill(m, o):"]
    by_name = {f.name: f for f in spec.fields}
    args: list[str] = []
    for f in spec.fields:
        a = f"o.{f.name}"
        if f.kind == "message":
            sub = rt.compiled[f.type]
            ns[f"_fill_{f.number}"] = sub.fill
            ns[f"_from_{f.number}"] = sub.from_pb
            mark = not _always_sets(sub.spec)
            if f.is_map:
                fill += [
                    f"    v = {a}",
                    "    if v:",
                    f"        mm = m.{f.name}",
                    "        for k, x in v.items():",
                    f"            _fill_{f.number}(mm[k], x)",
                ]
            elif f.repeated:
                fill += [
                    f"    add = m.{f.name}.add",
                    f"    for x in {a}:",
                    f"        _fill_{f.number}(add(), x)",
                ]
            else:
                body = [f"s = m.{f.name}"]
                if mark:
                    body.append("s.SetInParent()")
                body.append(f"_fill_{f.number}(s, v)")
                if f.optional:
                    fill += [f"    v = {a}", "    if v is not None:"]
                    fill += [f"        {line}" for line in body]
                else:
                    fill += [f"    v = {a}"] + [f"    {line}" for line in body]
        elif f.is_map or f.repeated:
            # upb's MergeFrom takes a list, checks it like extend, and is twice as fast
            method = "update" if f.is_map else "MergeFrom" if rt.upb else "extend"
            fill += [f"    v = {a}", "    if v:", f"        m.{f.name}.{method}(v)"]
        elif f.optional:
            fill += [f"    v = {a}", "    if v is not None:", f"        m.{f.name} = v"]
        else:
            fill.append(f"    m.{f.name} = {a}")
    # positional constructor arguments, in the dataclass's own field order
    for dcf in dc_fields(spec.cls):
        f = by_name[dcf.name]
        if f.kind == "enum":
            ns[f"_E{f.number}"] = {int(m.value): m for m in f.type}
            args.append(_read(f, f"_E{f.number}[{{}}]"))
        elif f.kind == "message":
            args.append(_read(f, f"_from_{f.number}({{}})"))
        elif f.is_map or f.repeated:
            args.append(f"dict(m.{f.name})" if f.is_map else f"m.{f.name}[:]")
        else:
            args.append(_read(f, "{}"))
    if len(fill) == 1:
        fill.append("    pass")
    src = "\n".join(
        [
            *fill,
            "def from_pb(m):",
            f"    return _Cls({', '.join(args)})",
            "def dec(data):",
            "    m = _PB.FromString(data)",
            f"    return _Cls({', '.join(args)})",
            "def enc(o):",
            "    m = _PB()",
            *fill[1:],
            "    return m.SerializeToString()",
        ]
    )
    exec(compile(src, f"<zeropipe protobuf codec for {spec.full_name}>", "exec"), ns)
    return ns["fill"], ns["from_pb"], ns["enc"], ns["dec"]


def _read(f: FieldSpec, one: str) -> str:
    """The expression reading field ``f`` of pb message ``m``; ``one`` converts one value
    (``{}`` stands for it)."""
    r = f"m.{f.name}"
    if f.is_map:
        return f"{{k: {one.format('x')} for k, x in {r}.items()}}"
    if f.repeated:
        return f"[{one.format('x')} for x in {r}]"
    if f.optional:
        return f'({one.format(r)} if m.HasField("{f.name}") else None)'
    return one.format(r)


def _always_sets(spec: MessageSpec) -> bool:
    """Whether filling a message of this spec always assigns a field (so marks presence)."""
    return any(not (f.optional or f.repeated or f.is_map) for f in spec.fields)


# -- public API ------------------------------------------------------------------------------


_runtime = Lazy(_Runtime)


def descriptor_for(cls: type) -> Any:
    """A copy of the proto3 ``FileDescriptorProto`` the codec built for message class ``cls``.

    It declares ``cls`` only; the messages and enums it uses are in files of their own, named
    in its ``dependency`` list (see :func:`descriptor_set_for` for all of them)."""
    rt = _runtime()
    fdp = rt.descriptor_pb2.FileDescriptorProto()
    fdp.CopyFrom(rt.get(cls).fdp)
    return fdp


def descriptor_set_for(cls: type) -> Any:
    """A ``FileDescriptorSet`` with every file ``cls`` needs, dependencies first."""
    rt = _runtime()
    fds = rt.descriptor_pb2.FileDescriptorSet()
    for fdp in rt.files_for(cls):
        fds.file.add().CopyFrom(fdp)
    return fds


def pb_class_for(cls: type) -> Any:
    """The upb message class for message class ``cls`` (its bytes are the codec's bytes)."""
    return _runtime().get(cls).pb_class


class ProtobufCodec:
    """Typed messages as proto3 binary (see the module docstring for the mapping)."""

    name = "protobuf"
    wire_id = 3
    content_type = "application/x-protobuf"
    extra = _EXTRA

    def __init__(self) -> None:
        self._rt = _runtime()

    def encode(self, obj: Any) -> bytes:
        try:
            enc = self._rt.compiled[type(obj)].enc
        except KeyError:
            enc = self._compile(type(obj), EncodeError).enc
        try:
            data: bytes = enc(obj)
        except Exception as exc:
            raise EncodeError(self.name, spec_of(obj).full_name, why(exc)) from exc
        return data

    def decode(self, cls: type[T], data: bytes) -> T:
        try:
            compiled = self._rt.compiled[cls]
        except KeyError:
            compiled = self._compile(cls, DecodeError)
        try:
            obj: T = compiled.dec(data)
        except KeyError as exc:
            raise DecodeError(
                self.name, compiled.spec.full_name, f"enum value {exc.args[0]} is not known"
            ) from exc
        except Exception as exc:
            raise DecodeError(self.name, compiled.spec.full_name, why(exc)) from exc
        return obj

    def _compile(self, cls: type, error: type[EncodeError | DecodeError]) -> _Compiled:
        try:
            return self._rt.get(cls)
        except CodecError as exc:
            raise error(self.name, spec_of(cls).full_name, str(exc)) from exc

    def to_pb(self, obj: Any) -> Any:
        """``obj`` as a new upb message of :func:`pb_class_for` its class."""
        compiled = self._rt.get(type(obj))
        m = compiled.pb_class()
        try:
            compiled.fill(m, obj)
        except Exception as exc:
            raise EncodeError(self.name, compiled.spec.full_name, why(exc)) from exc
        return m

    def from_pb(self, cls: type[T], m: Any) -> T:
        """A message of class ``cls`` from a upb message of :func:`pb_class_for` ``cls``."""
        compiled = self._rt.get(cls)
        if not isinstance(m, compiled.pb_class):
            raise TypeError(f"expected a {compiled.spec.full_name} protobuf message, got {m!r}")
        try:
            obj: T = compiled.from_pb(m)
        except KeyError as exc:
            raise DecodeError(
                self.name, compiled.spec.full_name, f"enum value {exc.args[0]} is not known"
            ) from exc
        return obj
