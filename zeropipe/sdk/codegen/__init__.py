"""Schema-driven code generation for typed messages (``zeropipe codegen``).

* :func:`generate_python`: ``.proto`` (proto3, checked by the protoc of grpcio-tools) and
  ``.thrift`` files (parsed by thriftpy2) -> one Python module of ``@message`` dataclasses per
  schema file (``market.proto`` -> ``market_proto.py``, ``market.thrift`` ->
  ``market_thrift.py``: the suffix keeps both apart when a schema exists in both languages).
* :func:`emit_schemas`: ``@message`` classes -> ``.proto`` or ``.thrift`` text for peers in
  other languages.

Both go through one small intermediate representation (:mod:`.ir`) that refuses what the
typed-message model refuses. grpcio-tools and thriftpy2 (the ``zeropipe[codegen]`` extra) are
imported only here, never by generated modules nor by :mod:`zeropipe.codecs`.
"""

from __future__ import annotations

import importlib
import sys
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

from zeropipe.sdk.codegen import ir
from zeropipe.sdk.codegen.ir import CodegenError, MissingCodegenError, Package, SchemaError
from zeropipe.sdk.codegen.python_writer import package_init, python_module
from zeropipe.sdk.codegen.schema_writer import (
    proto_file_name,
    proto_text,
    thrift_file_name,
    thrift_text,
)

__all__ = [
    "CodegenError",
    "MissingCodegenError",
    "SchemaError",
    "emit_schemas",
    "generate_python",
    "read_schemas",
    "schema_files",
]

SUFFIXES = (".proto", ".thrift")


def schema_files(sources: Iterable[Path]) -> list[Path]:
    """The schema files named by ``sources``: files as given, directories for the ``.proto``
    and ``.thrift`` files directly in them (sorted)."""
    out: list[Path] = []
    for src in sources:
        if src.is_dir():
            found = sorted(p for p in src.iterdir() if p.suffix in SUFFIXES and p.is_file())
            if not found:
                raise CodegenError(f"{src}: no .proto or .thrift file in this directory")
            out += found
        elif not src.exists():
            raise CodegenError(f"{src}: no such file or directory")
        elif src.suffix not in SUFFIXES:
            raise CodegenError(f"{src}: not a .proto or .thrift file")
        else:
            out.append(src)
    return list(dict.fromkeys(out))


def read_schemas(sources: Iterable[Path]) -> list[tuple[list[Package], ir.Index]]:
    """Read and check the schemas named by ``sources``: the packages read from ``.proto``
    files, and those from ``.thrift`` files, each with its index (the two may define the same
    message names: a schema written in both languages)."""
    files = schema_files(sources)
    out = []
    protos = [p for p in files if p.suffix == ".proto"]
    thrifts = [p for p in files if p.suffix == ".thrift"]
    if protos:
        from zeropipe.sdk.codegen.proto_reader import read_proto

        packages = read_proto(protos)
        out.append((packages, ir.check(packages)))
    if thrifts:
        from zeropipe.sdk.codegen.thrift_reader import read_thrift

        packages = read_thrift(thrifts)
        out.append((packages, ir.check(packages)))
    return out


def generate_python(sources: Iterable[Path]) -> dict[str, str]:
    """File name -> text of the Python package generated from ``sources`` (with its
    ``__init__.py``). Raises :class:`CodegenError` (a :class:`SchemaError` names the file,
    message and field) before anything is written."""
    files: dict[str, str] = {}
    everything: list[Package] = []
    owners: dict[str, str] = {}
    for packages, index in read_schemas(sources):
        for pkg in packages:
            other = owners.setdefault(pkg.module, pkg.source)
            if other != pkg.source:
                raise CodegenError(
                    f"{pkg.source} and {other} would both be the module {pkg.module}.py: "
                    "generate them into different packages"
                )
            files[f"{pkg.module}.py"] = python_module(pkg, index)
            everything.append(pkg)
    files["__init__.py"] = package_init(everything)
    return files


def emit_schemas(classes: Sequence[type], fmt: str, origin: str) -> dict[str, str]:
    """File name -> ``.proto`` (``fmt="proto"``) or ``.thrift`` text for ``classes`` and the
    messages they hold, one file per proto package; checked by protoc or thriftpy2 when
    installed."""
    if fmt not in ("proto", "thrift"):
        raise CodegenError(f"cannot emit {fmt!r}: choose proto or thrift")
    if not classes:
        raise CodegenError(f"no @message classes in {origin}")
    packages = ir.packages_from_classes(classes)
    index = ir.check(packages)
    files: dict[str, str] = {}
    for pkg in packages:
        if fmt == "proto":
            files[proto_file_name(pkg)] = proto_text(pkg, index, origin)
        else:
            files[thrift_file_name(pkg)] = thrift_text(pkg, index, origin)
    _validate(files, fmt)
    return files


def _validate(files: dict[str, str], fmt: str) -> None:
    """Have protoc / thriftpy2 read what we emit; skipped (with a note) when not installed."""
    try:
        importlib.import_module("grpc_tools.protoc" if fmt == "proto" else "thriftpy2")
    except ImportError:
        print(
            f"zeropipe codegen: note: the emitted .{fmt} files were not checked "
            f"({'grpcio-tools' if fmt == 'proto' else 'thriftpy2'} is not installed)",
            file=sys.stderr,
        )
        return
    with tempfile.TemporaryDirectory(prefix="zeropipe-emit-") as tmp:
        paths = []
        for name, text in files.items():
            path = Path(tmp) / name
            path.write_text(text, encoding="utf-8")
            paths.append(path)
        try:
            if fmt == "proto":
                from zeropipe.sdk.codegen.proto_reader import compile_descriptor_set

                compile_descriptor_set(paths)
            else:
                from zeropipe.sdk.codegen.thrift_reader import read_thrift

                read_thrift(paths)
        except SchemaError as exc:
            tool = "protoc" if fmt == "proto" else "thriftpy2"
            raise CodegenError(f"{tool} refuses the emitted .{fmt}: {exc}") from None
