"""Read ``.proto`` files (proto3) with the protoc bundled in grpcio-tools, into the IR.

protoc runs in process (``grpc_tools.protoc.main``) with ``--descriptor_set_out``, so its
semantic checks (unknown types, duplicate field numbers, bad imports) apply; what it reports
on its standard error becomes the message of a :class:`~.ir.SchemaError`. The resulting
``FileDescriptorSet`` is then mapped onto the IR, refusing what the typed-message model cannot
carry (see :func:`.ir.check`).
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
import tempfile
from collections.abc import Iterator, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from zeropipe.codecs.kinds import LABEL_REPEATED
from zeropipe.codecs.model import json_name_of
from zeropipe.sdk.codegen.ir import (
    CodegenError,
    Enum,
    Field,
    Message,
    MissingCodegenError,
    Package,
    SchemaError,
)

#: FieldDescriptorProto.Type -> kind; the model refuses some of them (see ir.check).
PROTO_KINDS = {
    1: "double",
    2: "float",
    3: "int64",
    4: "uint64",
    5: "int32",
    6: "fixed64",
    7: "fixed32",
    8: "bool",
    9: "string",
    10: "group",
    11: "message",
    12: "bytes",
    13: "uint32",
    14: "enum",
    15: "sfixed32",
    16: "sfixed64",
    17: "sint32",
    18: "sint64",
}
_WELL_KNOWN = "google/protobuf/"
_EXTRA = "pip install 'zeropipe[codegen]'"


def _import(name: str) -> Any:
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise MissingCodegenError(
            f"reading .proto files needs grpcio-tools (and protobuf): {_EXTRA} ({exc})"
        ) from None


def module_name(source: str, suffix: str) -> str:
    """The Python module written for a schema file: ``market.proto`` -> ``market_proto``."""
    stem = source.rsplit(".", 1)[0]
    name = "".join(ch if ch.isalnum() or ch == "_" else "_" for ch in stem) + "_" + suffix
    return name if name[0].isalpha() or name[0] == "_" else "m_" + name


def compile_descriptor_set(files: Sequence[Path]) -> Any:
    """Run protoc on ``files`` and return the ``FileDescriptorSet`` (with source info and
    every import). Each file is named relative to its own directory, which is on the
    include path."""
    protoc = _import("grpc_tools.protoc")
    descriptor_pb2 = _import("google.protobuf.descriptor_pb2")
    include = str(resources.files("grpc_tools") / "_proto")
    roots: list[str] = []
    names: list[str] = []
    for path in files:
        if not path.is_file():
            raise CodegenError(f"{path}: no such file")
        root = str(path.resolve().parent)
        if root not in roots:
            roots.append(root)
        names.append(path.name)
    with tempfile.TemporaryDirectory(prefix="zeropipe-codegen-") as tmp:
        out = os.path.join(tmp, "set.pb")
        args = [
            "protoc",
            *(f"-I{root}" for root in roots),
            f"-I{include}",
            "--include_imports",
            "--include_source_info",
            f"--descriptor_set_out={out}",
            *names,
        ]
        with _captured_stderr() as err:
            rc = protoc.main(args)
        report = b"".join(err).decode("utf-8", "replace").strip()
        if rc != 0:
            detail = report or "protoc failed without a message"
            raise SchemaError(
                ", ".join(names),
                "",
                "protoc refused the schema:\n  " + (detail.replace("\n", "\n  ")),
            )
        if report:  # warnings, such as an unused import
            print(report, file=sys.stderr)
        return descriptor_pb2.FileDescriptorSet.FromString(Path(out).read_bytes())


@contextlib.contextmanager
def _captured_stderr() -> Iterator[list[bytes]]:
    """protoc writes its diagnostics to file descriptor 2 from C++: catch them there (the
    list holds them once the block is left)."""
    sys.stderr.flush()
    captured: list[bytes] = []
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield captured
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            captured.append(sink.read())


def read_proto(files: Sequence[Path]) -> list[Package]:
    """The IR of ``files`` and of the ``.proto`` files they import."""
    fds = compile_descriptor_set(files)
    return packages_from_descriptor_set(fds)


def packages_from_descriptor_set(fds: Any) -> list[Package]:
    """Map a ``FileDescriptorSet`` onto the IR (well-known types are refused)."""
    packages = []
    for fdp in fds.file:
        if fdp.name.startswith(_WELL_KNOWN):
            continue
        packages.append(_FileReader(fdp).read())
    return packages


class _FileReader:
    def __init__(self, fdp: Any) -> None:
        self.fdp = fdp
        self.source = str(fdp.name)
        self.lines: dict[tuple[int, ...], int] = {}
        for loc in fdp.source_code_info.location:
            if loc.span:
                self.lines.setdefault(tuple(loc.path), int(loc.span[0]) + 1)
        self.pkg = Package(self.source, str(fdp.package), module_name(self.source, "proto"))

    def refuse(self, where: str, reason: str, path: tuple[int, ...] = ()) -> SchemaError:
        return SchemaError(self.source, where, reason, self.lines.get(path))

    def read(self) -> Package:
        fdp = self.fdp
        if fdp.syntax != "proto3":
            raise self.refuse("", f"only proto3 is supported, not {fdp.syntax or 'proto2'}")
        for dep in fdp.dependency:
            if dep.startswith(_WELL_KNOWN):
                raise self.refuse(
                    "",
                    f"import {dep!r}: well-known types are not supported "
                    "(for a time, use int64 nanoseconds)",
                )
        prefix = fdp.package + "." if fdp.package else ""
        for i, en in enumerate(fdp.enum_type):
            self.read_enum(prefix + en.name, en, (5, i))
        for i, msg in enumerate(fdp.message_type):
            self.read_message(prefix + msg.name, msg, (4, i))
        return self.pkg

    def read_enum(self, full_name: str, en: Any, path: tuple[int, ...]) -> None:
        if en.options.allow_alias:
            raise self.refuse(full_name, "enum aliases (allow_alias) are not supported", path)
        values = tuple((str(v.name), int(v.number)) for v in en.value)
        self.pkg.enums.append(Enum(full_name, values, self.lines.get(path)))

    def read_message(self, full_name: str, msg: Any, path: tuple[int, ...]) -> None:
        entries = {}
        for nested in msg.nested_type:
            if nested.options.map_entry:
                entries[f".{full_name}.{nested.name}"] = nested
        for i, en in enumerate(msg.enum_type):
            self.read_enum(f"{full_name}.{en.name}", en, (*path, 4, i))
        for i, nested in enumerate(msg.nested_type):
            if not nested.options.map_entry:
                self.read_message(f"{full_name}.{nested.name}", nested, (*path, 3, i))
        real_oneofs = {f.oneof_index for f in msg.field if f.HasField("oneof_index")} - {
            f.oneof_index for f in msg.field if f.proto3_optional
        }
        if real_oneofs:
            oneof = msg.oneof_decl[min(real_oneofs)].name
            raise self.refuse(
                f"{full_name}.{oneof}",
                "oneof is not supported (not in v1): use optional fields",
                (*path, 8, min(real_oneofs)),
            )
        if msg.extension or msg.extension_range:
            raise self.refuse(full_name, "extensions are not supported", path)
        fields = []
        for i, f in enumerate(msg.field):
            fields.append(self.read_field(full_name, f, entries, (*path, 2, i)))
        self.pkg.messages.append(Message(full_name, tuple(fields), self.lines.get(path)))

    def read_field(
        self, msg_name: str, f: Any, entries: dict[str, Any], path: tuple[int, ...]
    ) -> Field:
        where = f"{msg_name}.{f.name}"
        line = self.lines.get(path)
        if f.json_name and f.json_name != json_name_of(f.name):
            raise self.refuse(where, f"a custom json_name ({f.json_name!r}) is not supported", path)
        entry = entries.get(f.type_name) if f.type == 11 else None
        if entry is not None:
            key, value = entry.field[0], entry.field[1]
            return Field(
                name=f.name,
                number=f.number,
                kind=PROTO_KINDS[value.type],
                type_name=_strip(value.type_name),
                key_kind=PROTO_KINDS[key.type],
                line=line,
            )
        return Field(
            name=f.name,
            number=f.number,
            kind=PROTO_KINDS.get(f.type, f"type {f.type}"),
            type_name=_strip(f.type_name),
            repeated=f.label == LABEL_REPEATED,
            optional=bool(f.proto3_optional),
            line=line,
        )


def _strip(type_name: str) -> str | None:
    return type_name[1:] if type_name.startswith(".") else (type_name or None)
