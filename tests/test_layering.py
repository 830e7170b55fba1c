"""Layering rules, checked on the source (AST) without importing anything.

protocol <- transports <- patterns <- sdk:

* zeropipe.protocol is sans-I/O: none of its modules imports socket, selectors, threading,
  asyncio or select (nor their C halves), nor anything from zeropipe outside zeropipe.protocol;
* zeropipe.transports does not import zeropipe.patterns, .sdk, .pipelines or .cli;
* zeropipe.patterns does not import zeropipe.sdk, .pipelines or .cli;
* zeropipe.sdk does not import zeropipe.pipelines or .cli, and .pipelines not .cli;
* zeropipe.errors imports nothing from zeropipe;
* zeropipe.codecs imports nothing from the other zeropipe layers.

Every import counts, including function-local ones and those under ``if TYPE_CHECKING:``,
and ``importlib.import_module("...")`` / ``__import__("...")`` with a literal name.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import zeropipe

pytestmark = pytest.mark.timeout(20)

PACKAGE_DIR = Path(zeropipe.__file__).resolve().parent
ROOT = "zeropipe"

IO_MODULES = frozenset(
    {"socket", "_socket", "ssl", "selectors", "select", "threading", "_thread", "asyncio"}
)


@dataclass(frozen=True)
class Import:
    module: str  # the imported module, fully qualified
    line: int

    def is_within(self, package: str) -> bool:
        return self.module == package or self.module.startswith(package + ".")


def module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE_DIR.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules_under(subpackage: str) -> list[Path]:
    """Source files of ``zeropipe.<subpackage>`` (a package or a single module)."""
    base = PACKAGE_DIR / subpackage
    if base.is_dir():
        return sorted(base.rglob("*.py"))
    single = base.with_suffix(".py")
    return [single] if single.exists() else []


def is_zeropipe_module(name: str) -> bool:
    """True when ``name`` is a module or package file inside zeropipe."""
    rel = Path(*name.split(".")[1:]) if name != ROOT else Path()
    target = PACKAGE_DIR / rel
    return target.with_suffix(".py").exists() or (target / "__init__.py").exists()


def resolve(path: Path, node: ast.ImportFrom) -> str:
    """The absolute module a ``from ... import`` statement refers to."""
    if node.level == 0:
        return node.module or ""
    package = module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    if node.level > 1:
        package = package[: len(package) - (node.level - 1)]
    return ".".join([*package, *([node.module] if node.module else [])])


def imports_of(path: Path) -> Iterator[Import]:
    return imports_in(path.read_text(encoding="utf-8"), path)


def imports_in(source: str, path: Path) -> Iterator[Import]:
    """Imports in ``source``, relative ones resolved as if it were the module at ``path``."""
    tree = ast.parse(source, filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(alias.name, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            base = resolve(path, node)
            for alias in node.names:
                # "from zeropipe import errors" imports the module zeropipe.errors;
                # "from zeropipe import Context" imports (and runs) the package zeropipe
                candidate = f"{base}.{alias.name}"
                if candidate.startswith(ROOT + ".") and is_zeropipe_module(candidate):
                    yield Import(candidate, node.lineno)
                else:
                    yield Import(base, node.lineno)
        elif isinstance(node, ast.Call) and _is_dynamic_import(node.func) and node.args:
            first = node.args[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                yield Import(first.value, node.lineno)


def _is_dynamic_import(func: ast.expr) -> bool:
    if isinstance(func, ast.Name):
        return func.id in ("__import__", "import_module")
    return isinstance(func, ast.Attribute) and func.attr == "import_module"


def breaks_rule(imp: Import, allowed: str | None, forbidden: list[str]) -> bool:
    """True for an import of zeropipe outside ``allowed`` (if given) or inside ``forbidden``."""
    if not imp.is_within(ROOT):
        return False
    if allowed is not None:
        return not imp.is_within(allowed)
    # the bare package root runs zeropipe/__init__.py, which pulls in every layer
    return imp.module == ROOT or any(imp.is_within(f"{ROOT}.{layer}") for layer in forbidden)


def violations(paths: list[Path], allowed: str | None, forbidden: list[str]) -> list[str]:
    return [
        f"{path.relative_to(PACKAGE_DIR.parent)}:{imp.line} imports {imp.module}"
        for path in paths
        for imp in imports_of(path)
        if breaks_rule(imp, allowed, forbidden)
    ]


def ids(paths: list[Path]) -> list[str]:
    return [str(p.relative_to(PACKAGE_DIR)) for p in paths]


PROTOCOL_MODULES = modules_under("protocol")


# -- the checker itself ----------------------------------------------------------------------


def test_checker_sees_imports() -> None:
    """Guards against a vacuous pass: known imports of a transport module are found."""
    found = {imp.module for imp in imports_of(PACKAGE_DIR / "transports" / "stream.py")}
    assert "socket" in found
    assert any(name.startswith("zeropipe.protocol") for name in found)


def test_checker_resolves_relative_dynamic_and_local_imports() -> None:
    source = (
        "from . import frames\n"
        "from .mechanisms import null\n"
        "from .. import errors\n"
        "from ..transports import stream\n"
        "from zeropipe import Context\n"
        "import importlib\n"
        "importlib.import_module('selectors')\n"
        "def f():\n"
        "    import threading\n"
        "    __import__('asyncio')\n"
    )
    found = {imp.module for imp in imports_in(source, PACKAGE_DIR / "protocol" / "connection.py")}
    assert found == {
        "zeropipe.protocol.frames",
        "zeropipe.protocol.mechanisms.null",
        "zeropipe.errors",
        "zeropipe.transports.stream",
        "zeropipe",
        "importlib",
        "selectors",
        "threading",
        "asyncio",
    }


@pytest.mark.parametrize(
    ("module", "allowed", "forbidden", "broken"),
    [
        ("zeropipe.protocol.frames", "zeropipe.protocol", [], False),
        ("zeropipe.protocolx", "zeropipe.protocol", [], True),
        ("zeropipe.errors", "zeropipe.protocol", [], True),
        ("zeropipe", "zeropipe.protocol", [], True),
        ("socket", "zeropipe.protocol", [], False),
        ("zeropipe.sdk.socket", None, ["sdk", "cli"], True),
        ("zeropipe.cli", None, ["sdk", "cli"], True),
        ("zeropipe.protocol", None, ["sdk", "cli"], False),
        ("zeropipe", None, ["sdk", "cli"], True),
    ],
)
def test_rule_checker(module: str, allowed: str | None, forbidden: list[str], broken: bool) -> None:
    assert breaks_rule(Import(module, 1), allowed, forbidden) is broken


# -- the rules -------------------------------------------------------------------------------


def test_protocol_package_is_found() -> None:
    names = {module_name(p) for p in PROTOCOL_MODULES}
    assert {"zeropipe.protocol", "zeropipe.protocol.connection", "zeropipe.protocol.frames"} <= (
        names
    )


@pytest.mark.parametrize("path", PROTOCOL_MODULES, ids=ids(PROTOCOL_MODULES))
def test_protocol_is_sans_io(path: Path) -> None:
    bad = [
        f"line {imp.line}: {imp.module}"
        for imp in imports_of(path)
        if imp.module.split(".")[0] in IO_MODULES
    ]
    assert not bad, f"{module_name(path)} imports I/O modules: {bad}"


@pytest.mark.parametrize("path", PROTOCOL_MODULES, ids=ids(PROTOCOL_MODULES))
def test_protocol_imports_only_protocol(path: Path) -> None:
    assert not violations([path], allowed=f"{ROOT}.protocol", forbidden=[])


@pytest.mark.parametrize(
    ("layer", "forbidden"),
    [
        ("transports", ["patterns", "sdk", "pipelines", "cli"]),
        ("patterns", ["sdk", "pipelines", "cli"]),
        ("sdk", ["pipelines", "cli"]),
        ("pipelines", ["cli"]),
    ],
)
def test_layer_order(layer: str, forbidden: list[str]) -> None:
    paths = modules_under(layer)
    assert paths, f"zeropipe.{layer} not found"
    bad = violations(paths, allowed=None, forbidden=forbidden)
    assert not bad, "\n".join(bad)


def test_errors_module_is_a_leaf() -> None:
    paths = modules_under("errors")
    assert paths == [PACKAGE_DIR / "errors.py"]
    bad = [f"line {imp.line}: {imp.module}" for imp in imports_of(paths[0]) if imp.is_within(ROOT)]
    assert not bad, f"zeropipe.errors imports from zeropipe: {bad}"


def test_codecs_do_not_import_other_layers() -> None:
    paths = modules_under("codecs")
    if not paths:
        pytest.skip("zeropipe.codecs does not exist yet")
    bad = violations(paths, allowed=f"{ROOT}.codecs", forbidden=[])
    assert not bad, "\n".join(bad)
