"""``zeropipe codegen``: schemas -> typed-message modules -> schemas.

The generated package for schemas/ is compared with tests/codegen_golden/; after a deliberate
change of the generator, regenerate it with::

    ZEROPIPE_UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/test_codegen.py -k golden

Descriptors are compared with what protoc (grpcio-tools) makes of the same schema, thrift
types with what thriftpy2 makes of it, so the generator is checked against the tools that
peers in other languages use, not against itself.
"""

from __future__ import annotations

import ast
import difflib
import importlib
import importlib.util
import os
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

pytest.importorskip("grpc_tools.protoc")
pytest.importorskip("thriftpy2")
descriptor_pb2: Any = pytest.importorskip("google.protobuf.descriptor_pb2")
descriptor_pool: Any = pytest.importorskip("google.protobuf.descriptor_pool")
message_factory: Any = pytest.importorskip("google.protobuf.message_factory")

from zeropipe.cli.codegen import write_files  # noqa: E402
from zeropipe.cli.main import main  # noqa: E402
from zeropipe.codecs.model import MESSAGES, spec_of  # noqa: E402
from zeropipe.sdk.codegen import emit_schemas, generate_python  # noqa: E402
from zeropipe.sdk.codegen.proto_reader import compile_descriptor_set  # noqa: E402
from zeropipe.sdk.codegen.thrift_reader import _optional_fields  # noqa: E402

pytestmark = pytest.mark.timeout(60)

ROOT = Path(__file__).resolve().parents[1]
SCHEMAS = ROOT / "schemas"
GOLDEN = Path(__file__).resolve().parent / "codegen_golden"
UPDATE_GOLDEN = os.environ.get("ZEROPIPE_UPDATE_GOLDEN") == "1"

LABEL_OPTIONAL, LABEL_REPEATED = 1, 3
T_DOUBLE, T_INT64, T_INT32, T_BOOL, T_STRING, T_MESSAGE, T_BYTES, T_ENUM = 1, 3, 5, 8, 9, 11, 12, 14

# -- example schemas beyond schemas/: nesting, imports across files, every kind --------------

RICH_PROTO = {
    "common.proto": """
        syntax = "proto3";
        package shop.common;
        enum Currency { CURRENCY_UNSPECIFIED = 0; EUR = 1; USD = 2; }
        message Money { int64 units = 1; Currency currency = 2; }
    """,
    "orders.proto": """
        syntax = "proto3";
        package shop;
        import "common.proto";
        message Order {
          enum Status { STATUS_UNSPECIFIED = 0; OPEN = 1; DONE = 2; }
          message Line { string sku = 1; int32 qty = 2; shop.common.Money price = 3; }
          int64 id = 1;
          Status status = 2;
          repeated Line lines = 3;
          map<int64, string> notes = 4;
          map<string, shop.common.Money> totals = 5;
          map<int32, Status> by_step = 6;
          optional shop.common.Money discount = 7;
          bytes blob = 8;
          bool paid = 9;
          repeated int32 ranks = 10;
          repeated double weights = 11;
          repeated shop.common.Currency accepted = 12;
          optional bool gift = 13;
          Line first_line = 14;
          map<string, int32> counts = 15;
          optional int64 parent = 16;
        }
        message Empty {}
    """,
}

RICH_THRIFT = {
    "common.thrift": """
        namespace py shop.common
        enum Currency { CURRENCY_UNSPECIFIED = 0, EUR = 1, USD = 2 }
        struct Money { 1: i64 units, 2: Currency currency }
    """,
    "orders.thrift": """
        namespace py shop
        include "common.thrift"
        enum Status { STATUS_UNSPECIFIED = 0, OPEN = 1, DONE = 2 }
        struct Line { 1: string sku, 2: i32 qty, 3: common.Money price }
        struct Order {
          1: i64 id,
          2: Status status,
          3: list<Line> lines,
          4: map<i64, string> notes,
          5: map<string, common.Money> totals,
          6: map<i32, Status> by_step,
          7: optional common.Money discount,
          8: binary blob,
          9: bool paid = false,
          10: list<i32> ranks,
          11: list<double> weights,
          12: list<common.Currency> accepted,
          13: optional bool gift,
          14: Line first_line,
          15: map<string, i32> counts,
          16: optional i64 parent,
          17: required string note,
          18: optional list<string> labels,
        }
        struct Empty {}
    """,
}

USER_MODULE = '''
"""Hand-written messages (the Python-first way)."""

import enum

from zeropipe.codecs.model import field, message


class Color(enum.IntEnum):
    NONE = 0
    RED = 1


@message("paint.Score")
class Score:
    home: int = field(1, "int32", default=0)


@message("paint.Outer.Score")
class OuterScore:
    note: str = field(1, default="")


@message("paint.Outer")
class Outer:
    top: Score = field(1, default_factory=Score)
    inner: OuterScore = field(2, default_factory=OuterScore)
    tags: list[str] = field(3, default_factory=list)
    by_id: dict[int, str] = field(4, "int32", default_factory=dict)
    counts: dict[str, int] = field(5, "int64", default_factory=dict)
    maybe: Score | None = field(6, default=None)
    blobs: list[bytes] = field(7, default_factory=list)
    color: Color = field(8, default=Color.NONE)
'''


def write_schemas(directory: Path, files: dict[str, str]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (directory / name).write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return directory


# -- running the command ---------------------------------------------------------------------


def run_python(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """``python ARGS`` as a real process that imports this checkout's zeropipe."""
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    return subprocess.run(
        [sys.executable, *args],
        capture_output=True,
        text=True,
        timeout=50,
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": path},
        check=False,
    )


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """``zeropipe codegen ARGS`` as a real process."""
    return run_python("-m", "zeropipe.cli", "codegen", *args, cwd=cwd)


def run_main(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """``zeropipe codegen ARGS`` in this process: (exit code, stdout, stderr)."""
    rc = main(["codegen", *args])
    out = capsys.readouterr()
    return rc, out.out, out.err


class Loader:
    """Generates packages under a private sys.path entry and imports them."""

    def __init__(self, site: Path) -> None:
        self.site = site

    def write(self, *sources: Path) -> tuple[str, Path]:
        name = f"zpgen_{uuid.uuid4().hex[:10]}"
        directory = self.site / name
        write_files(directory, generate_python(list(sources)))
        return name, directory

    def load(self, *sources: Path) -> dict[str, ModuleType]:
        """Generate a package from ``sources`` and import its modules (by module name)."""
        name, directory = self.write(*sources)
        return {
            path.stem: importlib.import_module(f"{name}.{path.stem}")
            for path in sorted(directory.glob("*.py"))
            if path.stem != "__init__"
        }

    def user_module(self, text: str) -> tuple[str, Path]:
        name = f"zpuser_{uuid.uuid4().hex[:10]}"
        path = self.site / f"{name}.py"
        path.write_text(text, encoding="utf-8")
        return name, path


@pytest.fixture
def loader(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Loader]:
    """Imports generated modules with the message registry of this process set aside (the
    generated classes must not replace those of other tests, nor clash with them)."""
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    saved = dict(MESSAGES)
    MESSAGES.clear()
    before = set(sys.modules)
    try:
        yield Loader(site)
    finally:
        MESSAGES.clear()
        MESSAGES.update(saved)
        for name in set(sys.modules) - before:
            if name.startswith(("zpgen_", "zpuser_")):
                del sys.modules[name]


# -- comparing schemas -----------------------------------------------------------------------


def proto_shape(files: Any) -> dict[str, Any]:
    """Messages (field name -> number, label, type, type name, proto3 optional; maps as key and
    value types) and enums (values) of FileDescriptorProtos, by full name."""
    out: dict[str, Any] = {}

    def walk(scope: str, messages: Any, enums: Any) -> None:
        for en in enums:
            out[f"{scope}.{en.name}"] = [(v.name, v.number) for v in en.value]
        for msg in messages:
            full = f"{scope}.{msg.name}"
            entries = {f".{full}.{n.name}": n for n in msg.nested_type if n.options.map_entry}
            fields: dict[str, tuple[Any, ...]] = {}
            for f in msg.field:
                entry = entries.get(f.type_name)
                if entry is not None:
                    key, value = entry.field
                    fields[f.name] = (f.number, "map", key.type, value.type, value.type_name)
                else:
                    fields[f.name] = (f.number, f.label, f.type, f.type_name, f.proto3_optional)
            out[full] = fields
            nested = [n for n in msg.nested_type if not n.options.map_entry]
            walk(full, nested, msg.enum_type)

    for fdp in files:
        if not fdp.name.startswith("google/"):
            walk(fdp.package, fdp.message_type, fdp.enum_type)
    return out


def protoc_shape(*paths: Path) -> dict[str, Any]:
    return proto_shape(compile_descriptor_set(list(paths)).file)


def thrift_shape(*paths: Path) -> dict[str, Any]:
    """Structs (id -> ttype, name, type arguments by type name, required, optional) and enums
    of thrift files, as thriftpy2 parses them, by type name."""
    parser: Any = importlib.import_module("thriftpy2.parser.parser")
    out: dict[str, Any] = {}

    def describe(arg: Any) -> Any:
        if isinstance(arg, tuple):
            return tuple(describe(a) for a in arg)
        if isinstance(arg, type):
            kind = "enum" if hasattr(arg, "_VALUES_TO_NAMES") else "struct"
            return (kind, arg.__name__)
        return arg

    for path in paths:
        mod = parser.parse(str(path), module_name=f"zpt_{uuid.uuid4().hex}_thrift")
        optional = _optional_fields(path.read_text(encoding="utf-8"))
        for en in mod.__thrift_meta__["enums"]:
            out[en.__name__] = dict(en._NAMES_TO_VALUES)
        for st in mod.__thrift_meta__["structs"]:
            out[st.__name__] = {
                number: (
                    spec[0],
                    spec[1],
                    describe(spec[2]) if len(spec) == 4 else None,
                    spec[-1],
                    (st.__name__, number) in optional,
                )
                for number, spec in st.thrift_spec.items()
            }
    return out


def spec_rows(cls: type) -> list[tuple[Any, ...]]:
    """A message class's spec, with classes by their message / enum names."""
    rows = []
    for f in spec_of(cls).fields:
        if f.kind == "message":
            type_name = spec_of(f.type).full_name
        elif f.kind == "enum":
            type_name = getattr(f.type, "__zeropipe_enum__", f.type.__name__)
        else:
            type_name = None
        rows.append((f.name, f.number, f.kind, type_name, f.repeated, f.key_kind, f.optional))
    return rows


def canonical_descriptor(fdp: Any) -> Any:
    """``fdp`` without source info, nested types sorted by name (protoc lists map entries where
    the map field is declared)."""
    copy = descriptor_pb2.FileDescriptorProto.FromString(fdp.SerializeToString())
    copy.ClearField("source_code_info")

    def sort(messages: Any) -> None:
        for msg in messages:
            nested = sorted(
                (
                    descriptor_pb2.DescriptorProto.FromString(n.SerializeToString())
                    for n in msg.nested_type
                ),
                key=lambda d: d.name,
            )
            del msg.nested_type[:]
            for n in nested:
                msg.nested_type.add().CopyFrom(n)
            sort(msg.nested_type)

    sort(copy.message_type)
    return copy


def embedded_descriptor(module: ModuleType) -> Any:
    return descriptor_pb2.FileDescriptorProto.FromString(module._PROTO_DESCRIPTOR)


# -- golden files ----------------------------------------------------------------------------


def test_golden_python_for_the_example_schemas() -> None:
    files = generate_python([SCHEMAS])
    assert set(files) == {
        "__init__.py",
        "football_proto.py",
        "football_thrift.py",
        "market_proto.py",
        "market_thrift.py",
    }
    if UPDATE_GOLDEN:
        GOLDEN.mkdir(exist_ok=True)
        for old in GOLDEN.glob("*.py"):
            old.unlink()
        for name, text in files.items():
            (GOLDEN / name).write_text(text, encoding="utf-8")
        pytest.skip("golden files regenerated")
    assert sorted(p.name for p in GOLDEN.glob("*.py")) == sorted(files)
    for name, text in files.items():
        golden = (GOLDEN / name).read_text(encoding="utf-8")
        if golden != text:
            diff = "".join(
                difflib.unified_diff(
                    golden.splitlines(True), text.splitlines(True), f"golden/{name}", name
                )
            )
            pytest.fail(
                f"{name} differs from its golden file "
                f"(ZEROPIPE_UPDATE_GOLDEN=1 regenerates it):\n{diff}"
            )


def test_cli_process_writes_the_golden_package(tmp_path: Path) -> None:
    out = tmp_path / "pkg"
    done = cli(str(SCHEMAS), "-o", str(out))
    assert done.returncode == 0, done.stderr
    written = {Path(line).name for line in done.stdout.split()}
    assert written == {p.name for p in GOLDEN.glob("*.py")}
    for path in GOLDEN.glob("*.py"):
        assert (out / path.name).read_text(encoding="utf-8") == path.read_text(encoding="utf-8")


# -- the generated code ----------------------------------------------------------------------


def test_generated_classes_carry_the_schema(loader: Loader) -> None:
    mods = loader.load(SCHEMAS / "market.proto", SCHEMAS / "football.proto")
    market, football = mods["market_proto"], mods["football_proto"]
    assert spec_rows(market.Trade) == [
        ("id", 1, "int64", None, False, None, False),
        ("symbol", 2, "string", None, False, None, False),
        ("price", 3, "double", None, False, None, False),
        ("qty", 4, "int32", None, False, None, False),
        ("ts", 5, "int64", None, False, None, False),
        ("tags", 6, "string", None, True, None, False),
        ("venue", 7, "string", None, False, None, False),
        ("side", 8, "enum", "market.Side", False, None, False),
    ]
    assert spec_rows(market.Snapshot) == [
        ("seq", 1, "int64", None, False, None, False),
        ("quotes", 2, "message", "market.Quote", False, "string", False),
        ("trades", 3, "message", "market.Trade", True, None, False),
        ("complete", 4, "bool", None, False, None, False),
        ("checksum", 5, "bytes", None, False, None, False),
    ]
    assert spec_rows(market.Quote)[-1] == ("last", 8, "double", None, False, None, True)
    assert spec_of(football.MatchEvent).full_name == "football.MatchEvent"
    assert MESSAGES["market.Trade"] is market.Trade
    # keywords alone build a message; defaults are proto3's zero values
    trade = market.Trade(id=7, tags=["lit"])
    assert (trade.id, trade.symbol, trade.price, trade.qty, trade.tags) == (7, "", 0.0, 0, ["lit"])
    assert trade.side is market.Side.SIDE_UNSPECIFIED
    assert market.Quote().last is None
    snap = market.Snapshot()
    assert (snap.quotes, snap.trades, snap.complete, snap.checksum) == ({}, [], False, b"")
    assert market.Snapshot().trades is not snap.trades
    event = football.MatchEvent(kind=football.EventKind.GOAL, minute=90)
    assert event.score == football.Score(home=0, away=0)
    assert football.MatchEvent().score is not event.score
    assert [(k.name, k.value) for k in football.EventKind] == [
        ("UNSPECIFIED", 0),
        ("GOAL", 1),
        ("CARD", 2),
        ("SUBSTITUTION", 3),
        ("KICK_OFF", 4),
        ("FULL_TIME", 5),
    ]
    assert market.__zeropipe_schema__ == "market.proto"


def test_rich_proto_generates_nested_and_imported_types(tmp_path: Path, loader: Loader) -> None:
    src = write_schemas(tmp_path / "rich", RICH_PROTO)
    mods = loader.load(src)
    orders, common = mods["orders_proto"], mods["common_proto"]
    assert spec_rows(orders.Order) == [
        ("id", 1, "int64", None, False, None, False),
        ("status", 2, "enum", "shop.Order.Status", False, None, False),
        ("lines", 3, "message", "shop.Order.Line", True, None, False),
        ("notes", 4, "string", None, False, "int64", False),
        ("totals", 5, "message", "shop.common.Money", False, "string", False),
        ("by_step", 6, "enum", "shop.Order.Status", False, "int32", False),
        ("discount", 7, "message", "shop.common.Money", False, None, True),
        ("blob", 8, "bytes", None, False, None, False),
        ("paid", 9, "bool", None, False, None, False),
        ("ranks", 10, "int32", None, True, None, False),
        ("weights", 11, "double", None, True, None, False),
        ("accepted", 12, "enum", "shop.common.Currency", True, None, False),
        ("gift", 13, "bool", None, False, None, True),
        ("first_line", 14, "message", "shop.Order.Line", False, None, False),
        ("counts", 15, "int32", None, False, "string", False),
        ("parent", 16, "int64", None, False, None, True),
    ]
    assert spec_of(orders.Empty).fields == ()
    line = orders.Order_Line(sku="x", qty=2, price=common.Money(units=5))
    order = orders.Order(lines=[line], status=orders.Order_Status.OPEN)
    assert order.lines[0].price.currency is common.Currency.CURRENCY_UNSPECIFIED
    assert order.discount is None
    assert order.gift is None
    assert order.parent is None


def test_thrift_and_proto_schemas_generate_the_same_messages(loader: Loader) -> None:
    mods = loader.load(SCHEMAS)
    for stem, names in (
        ("market", ("Trade", "Quote", "Snapshot")),
        ("football", ("Score", "MatchEvent")),
    ):
        proto, thrift = mods[f"{stem}_proto"], mods[f"{stem}_thrift"]
        for name in names:
            assert spec_rows(getattr(proto, name)) == spec_rows(getattr(thrift, name)), name
        # the same schema: the same embedded descriptor
        assert embedded_descriptor(thrift) == embedded_descriptor(proto)


def test_generated_modules_import_only_the_model() -> None:
    for path in GOLDEN.glob("*_*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        imported = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                imported |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                imported.add("." * node.level + (node.module or ""))
        assert imported <= {"dataclasses", "enum", "zeropipe.codecs.model", "."}, path.name


def test_generated_modules_run_without_codegen_libraries(tmp_path: Path) -> None:
    """grpcio-tools, thriftpy2 (and protobuf) are blocked: the modules still import, and
    neither they nor zeropipe import the codegen package."""
    write_files(tmp_path / "gen", generate_python([SCHEMAS]))
    write_files(tmp_path / "rich", generate_python([write_schemas(tmp_path / "r", RICH_PROTO)]))
    code = textwrap.dedent(
        f"""
        import sys
        for blocked in ("grpc_tools", "thriftpy2", "ply", "google.protobuf"):
            sys.modules[blocked] = None  # any import of them raises ImportError
        sys.path.insert(0, {str(tmp_path)!r})
        from gen import market_proto, football_thrift
        from rich import orders_proto
        trade = market_proto.Trade(id=1, tags=["a"])
        assert trade.side is market_proto.Side.SIDE_UNSPECIFIED
        assert football_thrift.MatchEvent().score.home == 0
        assert orders_proto.Order(id=2).lines == []
        prefixes = ("zeropipe.sdk.codegen", "grpc", "thrift", "google")
        loaded = [m for m, mod in sys.modules.items() if m.startswith(prefixes) and mod]
        assert not loaded, loaded
        print("ok")
        """
    )
    done = run_python("-c", code)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_cli_entry_does_not_import_codegen_libraries() -> None:
    code = (
        "import sys; import zeropipe.cli.main; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('grpc_tools', 'thriftpy2', 'ply')))"
    )
    done = run_python("-c", code)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


MYPY_OK = """
from gen import common_proto
from gen.football_thrift import EventKind, MatchEvent, Score
from gen.market_proto import Quote, Side, Snapshot, Trade
from gen.orders_proto import Order, Order_Line, Order_Status


def make() -> Snapshot:
    trade = Trade(id=1, symbol="AAPL", price=1.5, qty=3, ts=2, tags=["a"], venue="X", side=Side.BUY)
    quote = Quote(symbol="AAPL", last=None)
    price = common_proto.Money(units=5, currency=common_proto.Currency.EUR)
    order = Order(id=1, lines=[Order_Line(sku="x", qty=1, price=price)], notes={1: "n"})
    status: Order_Status = order.status
    units: int = order.lines[0].price.units
    maybe: common_proto.Money | None = order.discount
    event = MatchEvent(kind=EventKind.GOAL, score=Score(home=1), detail=None)
    assert status is not None and units >= 0 and maybe is None and event.minute == 0
    return Snapshot(seq=1, quotes={"X": quote}, trades=[trade], complete=True, checksum=b"")
"""

MYPY_BAD = """
from gen.market_proto import Trade

Trade(id="x")
Trade(nope=1)
Trade().tags = "x"
Trade().venu = "x"
"""


def test_generated_code_passes_mypy_strict(tmp_path: Path) -> None:
    if importlib.util.find_spec("mypy") is None:
        pytest.skip("mypy is not installed (the lint extra)")
    write_files(
        tmp_path / "gen", generate_python([SCHEMAS, write_schemas(tmp_path / "r", RICH_PROTO)])
    )
    (tmp_path / "use_ok.py").write_text(MYPY_OK, encoding="utf-8")
    (tmp_path / "use_bad.py").write_text(MYPY_BAD, encoding="utf-8")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--python-version",
            "3.10",
            "--cache-dir",
            str(tmp_path / ".mypy_cache"),
            "--no-error-summary",
            "gen",
            "use_ok.py",
            "use_bad.py",
        ],
        capture_output=True,
        text=True,
        timeout=55,
        cwd=tmp_path,
        env={**os.environ, "MYPYPATH": str(ROOT)},
        check=False,
    )
    errors = [line for line in done.stdout.splitlines() if ": error:" in line]
    # every error is one of the mistakes of use_bad.py: the generated code has none, and
    # its annotations are precise enough to catch all four
    assert {line.split(":")[0] for line in errors} == {"use_bad.py"}, done.stdout + done.stderr
    assert {int(line.split(":")[1]) for line in errors} == {4, 5, 6, 7}, done.stdout


LONG = "AMessageNameLongEnoughThatTheGeneratedCodeMustWrapSomeOfItsLinesToo"
DEP = "DependencyMessageWithALongerName"


def _long_schemas(directory: Path) -> Path:
    """Names long enough for every way the writer wraps a line (the wrapped lines must still
    be what ruff format writes, and fit in 100 columns)."""
    files = {
        f"dependency_with_a_long_file_name_{i}.proto": f"""
            syntax = "proto3";
            package deps{i};
            message {DEP}{i} {{ int32 x = 1; }}
        """
        for i in range(4)
    }
    imports = "".join(f'import "dependency_with_a_long_file_name_{i}.proto";\n' for i in range(4))
    uses = "".join(f"deps{i}.{DEP}{i} d{i} = {10 + i};\n" for i in range(4))
    files["long.proto"] = (
        'syntax = "proto3";\n'
        "package long_pkg_name.with.parts;\n"
        + imports
        + f"message {LONG} {{ int32 x = 1; }}\n"
        + "message Holder {\n"
        + f"  map<string, {LONG}> m = 1;\n"
        + f"  {LONG} v = 2;\n"
        + "  int64 a_field_name_long_enough_that_the_call_arguments_need_a_line_of_their_own = 3;\n"
        + uses
        + "}\n"
    )
    return write_schemas(directory, files)


def test_generated_code_passes_ruff(tmp_path: Path) -> None:
    if importlib.util.find_spec("ruff") is None:
        pytest.skip("ruff is not installed (the lint extra)")
    sources = [SCHEMAS, write_schemas(tmp_path / "r", RICH_PROTO), _long_schemas(tmp_path / "l")]
    out = tmp_path / "gen"
    write_files(out, generate_python(sources))
    text = (out / "long_proto.py").read_text(encoding="utf-8")
    # the wrapped forms ran
    assert "from . import (\n" in text
    assert f'@message(\n    "long_pkg_name.with.parts.{LONG}"\n)' in text
    assert "    m: dict" in text
    assert f"        default_factory=dependency_with_a_long_file_name_0_proto.{DEP}0,\n" in text
    config = str(ROOT / "pyproject.toml")
    for args in (["check"], ["format", "--check", "--diff"]):
        done = subprocess.run(
            [sys.executable, "-m", "ruff", *args, "--config", config, str(out)],
            capture_output=True,
            text=True,
            timeout=50,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr


def test_long_names_import_and_keep_their_fields(tmp_path: Path, loader: Loader) -> None:
    mods = loader.load(_long_schemas(tmp_path / "l"))
    holder = mods["long_proto"].Holder
    assert [f.number for f in spec_of(holder).fields] == [1, 2, 3, 10, 11, 12, 13]


# -- descriptors -----------------------------------------------------------------------------


@pytest.mark.parametrize("which", ["schemas", "rich"])
def test_embedded_descriptor_is_what_protoc_makes(
    tmp_path: Path, loader: Loader, which: str
) -> None:
    src = SCHEMAS if which == "schemas" else write_schemas(tmp_path / "r", RICH_PROTO)
    protos = sorted(src.glob("*.proto"))
    by_name = {f.name: f for f in compile_descriptor_set(protos).file}
    mods = loader.load(*protos)
    pool = descriptor_pool.DescriptorPool()
    for module in sorted(mods.values(), key=lambda m: len(embedded_descriptor(m).dependency)):
        mine = embedded_descriptor(module)
        assert canonical_descriptor(mine) == canonical_descriptor(by_name[mine.name])
        pool.Add(mine)
    # and it loads: a runtime class encodes a message (no protoc, no _pb2 module)
    name = "market.Trade" if which == "schemas" else "shop.Order"
    cls = message_factory.GetMessageClass(pool.FindMessageTypeByName(name))
    assert cls(id=5).SerializeToString() == b"\x08\x05"


# -- the generated classes on the wire: as protoc's and thriftpy2's classes see them --------


def test_protobuf_codec_bytes_are_those_of_the_original_proto(
    tmp_path: Path, loader: Loader
) -> None:
    """Generated classes through zeropipe's protobuf codec <-> classes built by protobuf from
    protoc's descriptors of the original .proto files."""
    from zeropipe import codecs

    json_format: Any = pytest.importorskip("google.protobuf.json_format")
    protos = sorted(write_schemas(tmp_path / "r", RICH_PROTO).glob("*.proto"))
    pool = descriptor_pool.DescriptorPool()
    for fdp in compile_descriptor_set(protos).file:  # dependencies first
        pool.Add(fdp)
    order_pb = message_factory.GetMessageClass(pool.FindMessageTypeByName("shop.Order"))
    mods = loader.load(*protos)
    o, c = mods["orders_proto"], mods["common_proto"]
    obj = o.Order(
        id=1,
        status=o.Order_Status.OPEN,
        lines=[o.Order_Line(sku="s", qty=2, price=c.Money(units=3, currency=c.Currency.EUR))],
        notes={5: "n"},
        totals={"t": c.Money(units=1)},
        by_step={3: o.Order_Status.DONE},
        discount=c.Money(units=-1),
        blob=b"b",
        paid=True,
        ranks=[1, -2],
        weights=[0.5],
        accepted=[c.Currency.USD],
        gift=False,
        first_line=o.Order_Line(sku="f"),
        counts={"a": 1},
        parent=2**40,
    )
    parsed = order_pb.FromString(codecs.encode(obj, "protobuf"))
    assert json_format.MessageToDict(parsed) == {
        "id": "1",
        "status": "OPEN",
        "lines": [{"sku": "s", "qty": 2, "price": {"units": "3", "currency": "EUR"}}],
        "notes": {"5": "n"},
        "totals": {"t": {"units": "1"}},
        "byStep": {"3": "DONE"},
        "discount": {"units": "-1"},
        "blob": "Yg==",
        "paid": True,
        "ranks": [1, -2],
        "weights": [0.5],
        "accepted": ["USD"],
        "gift": False,
        "firstLine": {"sku": "f", "price": {}},  # a plain message field is always present
        "counts": {"a": 1},
        "parent": str(2**40),
    }
    assert codecs.decode(o.Order, parsed.SerializeToString(), "protobuf") == obj


@pytest.mark.parametrize("codec", ["thrift-binary", "thrift-compact"])
def test_thrift_codec_bytes_are_those_of_the_original_thrift(
    tmp_path: Path, loader: Loader, codec: str
) -> None:
    """Generated classes through zeropipe's thrift codecs <-> thriftpy2's classes loaded from
    the original .thrift files."""
    from zeropipe import codecs

    pytest.importorskip("thrift")  # the library of zeropipe's thrift codecs
    parser: Any = importlib.import_module("thriftpy2.parser.parser")
    protocol: Any = importlib.import_module("thriftpy2.protocol")
    utils: Any = importlib.import_module("thriftpy2.utils")
    factory = (
        protocol.TBinaryProtocolFactory()
        if codec == "thrift-binary"
        else protocol.TCompactProtocolFactory()
    )
    src = write_schemas(tmp_path / "r", RICH_THRIFT)
    mods = loader.load(*sorted(src.glob("*.thrift")))
    o, c = mods["orders_thrift"], mods["common_thrift"]
    t = parser.parse(str(src / "orders.thrift"), module_name=f"zpx{uuid.uuid4().hex}.orders_thrift")
    obj = o.Order(
        id=1,
        status=o.Status.OPEN,
        lines=[o.Line(sku="s", qty=2, price=c.Money(units=3, currency=c.Currency.EUR))],
        notes={5: "n"},
        totals={"t": c.Money(units=1)},
        by_step={3: o.Status.DONE},
        discount=c.Money(units=-1),
        blob=b"b",
        paid=True,
        ranks=[1, -2],
        weights=[0.5],
        accepted=[c.Currency.USD],
        gift=False,
        first_line=o.Line(sku="f"),
        counts={"a": 1},
        parent=2**40,
        note="n",
        labels=["l"],
    )
    money = t.common.Money
    expected = t.Order(
        id=1,
        status=t.Status.OPEN,
        lines=[t.Line(sku="s", qty=2, price=money(units=3, currency=t.common.Currency.EUR))],
        notes={5: "n"},
        totals={"t": money(units=1, currency=0)},
        by_step={3: t.Status.DONE},
        discount=money(units=-1, currency=0),
        blob=b"b",
        paid=True,
        ranks=[1, -2],
        weights=[0.5],
        accepted=[t.common.Currency.USD],
        gift=False,
        first_line=t.Line(sku="f", qty=0, price=money(units=0, currency=0)),
        counts={"a": 1},
        parent=2**40,
        note="n",
        labels=["l"],
    )
    data = codecs.encode(obj, codec)
    assert utils.deserialize(t.Order(), data, factory) == expected
    assert codecs.decode(o.Order, utils.serialize(expected, factory), codec) == obj


# -- round trips -----------------------------------------------------------------------------


def _emit(classes: list[type], fmt: str, directory: Path) -> list[Path]:
    files = emit_schemas(classes, fmt, origin="test")
    return write_files(directory, files)


def _classes_of(*modules: ModuleType) -> list[type]:
    names = {m.__name__ for m in modules}
    return [cls for cls in MESSAGES.values() if cls.__module__ in names]


@pytest.mark.parametrize("which", ["market", "football", "rich"])
def test_proto_round_trip(tmp_path: Path, loader: Loader, which: str) -> None:
    """.proto -> Python -> --emit proto -> protoc: the same messages, fields and enums."""
    if which == "rich":
        protos = sorted(write_schemas(tmp_path / "r", RICH_PROTO).glob("*.proto"))
    else:
        protos = [SCHEMAS / f"{which}.proto"]
    original = protoc_shape(*protos)
    mods = loader.load(*protos)
    emitted = _emit(_classes_of(*mods.values()), "proto", tmp_path / "emitted")
    assert protoc_shape(*emitted) == original
    assert original  # not vacuous


@pytest.mark.parametrize("which", ["market", "football", "rich"])
def test_thrift_round_trip(tmp_path: Path, loader: Loader, which: str) -> None:
    """.thrift -> Python -> --emit thrift -> thriftpy2: the same structs, fields and enums."""
    if which == "rich":
        thrifts = sorted(write_schemas(tmp_path / "r", RICH_THRIFT).glob("*.thrift"))
    else:
        thrifts = [SCHEMAS / f"{which}.thrift"]
    original = thrift_shape(*thrifts)
    mods = loader.load(*thrifts)
    emitted = _emit(_classes_of(*mods.values()), "thrift", tmp_path / "emitted")
    again = thrift_shape(*emitted)
    if which == "rich":
        # what the model cannot say: `required` becomes default requiredness, an optional list
        # a plain one (an empty list is absent)
        assert original["Order"][17] == (11, "note", None, True, False)
        assert again["Order"][17] == (11, "note", None, False, False)
        assert original["Order"][18] == (15, "labels", 11, False, True)
        assert again["Order"][18] == (15, "labels", 11, False, False)
        for n in (17, 18):
            del original["Order"][n], again["Order"][n]
    assert again == original
    assert original


@pytest.mark.parametrize("stem", ["market", "football"])
def test_example_proto_and_thrift_schemas_agree(tmp_path: Path, loader: Loader, stem: str) -> None:
    """The .proto emitted from the .thrift's classes is the .proto, and the reverse."""
    mods = loader.load(SCHEMAS / f"{stem}.thrift")
    emitted = _emit(_classes_of(*mods.values()), "proto", tmp_path / "p")
    assert protoc_shape(*emitted) == protoc_shape(SCHEMAS / f"{stem}.proto")
    MESSAGES.clear()
    mods = loader.load(SCHEMAS / f"{stem}.proto")
    emitted = _emit(_classes_of(*mods.values()), "thrift", tmp_path / "t")
    assert thrift_shape(*emitted) == thrift_shape(SCHEMAS / f"{stem}.thrift")


def test_rich_proto_emits_thrift_that_thriftpy2_reads(tmp_path: Path, loader: Loader) -> None:
    mods = loader.load(write_schemas(tmp_path / "r", RICH_PROTO))
    emitted = _emit(_classes_of(*mods.values()), "thrift", tmp_path / "t")
    assert sorted(p.name for p in emitted) == ["shop.thrift", "shop_common.thrift"]
    shape = thrift_shape(*emitted)
    # nested types are flattened: Order.Line -> Order_Line
    assert shape["Order_Line"][3] == (12, "price", ("struct", "Money"), False, False)
    assert shape["Order"][6] == (13, "by_step", (8, (8, ("enum", "Order_Status"))), False, False)
    assert shape["Order"][7] == (12, "discount", ("struct", "Money"), False, True)


def test_emit_from_hand_written_classes(tmp_path: Path, loader: Loader) -> None:
    """A Python-first module, through a real process: protoc and thriftpy2 read the result
    as written here, and generating Python back from it gives the same specs."""
    _, module_path = loader.user_module(USER_MODULE)
    done = cli("--emit", "proto", str(module_path), "-o", str(tmp_path / "p"))
    assert done.returncode == 0, done.stderr
    assert protoc_shape(tmp_path / "p" / "paint.proto") == {
        "paint.Color": [("NONE", 0), ("RED", 1)],
        "paint.Score": {"home": (1, LABEL_OPTIONAL, T_INT32, "", False)},
        "paint.Outer.Score": {"note": (1, LABEL_OPTIONAL, T_STRING, "", False)},
        "paint.Outer": {
            # inside Outer, "Score" would be Outer.Score: the emitter must qualify it
            "top": (1, LABEL_OPTIONAL, T_MESSAGE, ".paint.Score", False),
            "inner": (2, LABEL_OPTIONAL, T_MESSAGE, ".paint.Outer.Score", False),
            "tags": (3, LABEL_REPEATED, T_STRING, "", False),
            "by_id": (4, "map", T_INT32, T_STRING, ""),
            "counts": (5, "map", T_STRING, T_INT64, ""),
            "maybe": (6, LABEL_OPTIONAL, T_MESSAGE, ".paint.Score", True),
            "blobs": (7, LABEL_REPEATED, T_BYTES, "", False),
            "color": (8, LABEL_OPTIONAL, T_ENUM, ".paint.Color", False),
        },
    }
    done = cli("--emit", "thrift", str(module_path), "-o", str(tmp_path / "t"))
    assert done.returncode == 0, done.stderr
    assert thrift_shape(tmp_path / "t" / "paint.thrift") == {
        "Color": {"NONE": 0, "RED": 1},
        "Score": {1: (8, "home", None, False, False)},
        "Outer_Score": {1: (11, "note", None, False, False)},
        "Outer": {
            1: (12, "top", ("struct", "Score"), False, False),
            2: (12, "inner", ("struct", "Outer_Score"), False, False),
            3: (15, "tags", 11, False, False),
            4: (13, "by_id", (8, 11), False, False),
            5: (13, "counts", (11, 10), False, False),
            6: (12, "maybe", ("struct", "Score"), False, True),
            7: (15, "blobs", 18, False, False),
            8: (8, "color", ("enum", "Color"), False, False),
        },
    }
    user = importlib.import_module(module_path.stem)
    MESSAGES.clear()  # the generated classes have the same message names
    back = loader.load(tmp_path / "p" / "paint.proto")["paint_proto"]
    for cls, again in ((user.Outer, back.Outer), (user.OuterScore, back.Outer_Score)):
        assert [r[:3] + r[4:] for r in spec_rows(cls)] == [r[:3] + r[4:] for r in spec_rows(again)]


def test_emit_a_package_walks_its_modules(
    tmp_path: Path, loader: Loader, capsys: pytest.CaptureFixture[str]
) -> None:
    name, _ = loader.write(SCHEMAS / "market.proto")
    rc, out, err = run_main(capsys, "--emit", "proto", name, "-o", str(tmp_path / "p"))
    assert rc == 0, err
    assert out.split() == [str(tmp_path / "p" / "market.proto")]
    assert set(protoc_shape(tmp_path / "p" / "market.proto")) == {
        "market.Side",
        "market.Trade",
        "market.Quote",
        "market.Snapshot",
    }


# -- errors ----------------------------------------------------------------------------------

ERRORS = [
    # (file, text, fragments the message must hold)
    (
        "bad.proto",
        'syntax = "proto3";\nmessage A { Nope x = 1; }\n',
        ["bad.proto:2", '"Nope" is not defined'],
    ),
    (
        "bad.proto",
        'syntax = "proto3";\nmessage A { int32 x = 1; int32 y = 1; }\n',
        ["bad.proto:2", "Field number 1 has already been used"],
    ),
    (
        "bad.proto",
        'syntax = "proto3";\npackage p;\nmessage A {\n'
        "  oneof choice { int32 a = 1; string b = 2; }\n}\n",
        ["bad.proto:4", "p.A.choice", "oneof"],
    ),
    (
        "bad.proto",
        'syntax = "proto3";\nmessage A {\n  float x = 1;\n}\n',
        ["bad.proto:3", "A.x", "float32"],
    ),
    ("bad.proto", 'syntax = "proto3";\nmessage A { uint32 x = 1; }\n', ["A.x", "unsigned"]),
    ("bad.proto", 'syntax = "proto3";\nmessage A { sint64 x = 1; }\n', ["A.x", "zigzag"]),
    ("bad.proto", 'syntax = "proto3";\nmessage A { fixed32 x = 1; }\n', ["A.x", "'fixed32'"]),
    (
        "bad.proto",
        'syntax = "proto3";\nmessage A { int32 x = 40000; }\n',
        ["A.x", "outside 1..32767"],
    ),
    (
        "bad.proto",
        'syntax = "proto3";\nmessage A { map<int32, int64> m = 1; }\n',
        ["A.m", "int64 keys"],
    ),
    (
        "bad.proto",
        'syntax = "proto3";\nmessage A { map<bool, string> m = 1; }\n',
        ["A.m", "map keys"],
    ),
    (
        "bad.proto",
        'syntax = "proto3";\nmessage A { repeated A kids = 1; }\n',
        ["A", "recursive", "A -> A"],
    ),
    (
        "bad.proto",
        'syntax = "proto3";\nmessage A { B b = 1; }\nmessage B { A a = 1; }\n',
        ["recursive", "A -> B -> A"],
    ),
    (
        "bad.proto",
        'syntax = "proto3";\nmessage A { string class = 1; }\n',
        ["A.class", "Python keyword"],
    ),
    ("bad.proto", 'syntax = "proto3";\nmessage A { string field = 1; }\n', ["A.field", "needs"]),
    ("bad.proto", 'syntax = "proto3";\nmessage str { int32 x = 1; }\n', ["str", "Python class"]),
    (
        "bad.proto",
        'syntax = "proto3";\nmessage A { string b = 1 [json_name = "c"]; }\n',
        ["A.b", "json_name"],
    ),
    (
        "bad.proto",
        'syntax = "proto2";\nmessage A { optional int32 x = 1; }\n',
        ["bad.proto", "only proto3"],
    ),
    (
        "bad.proto",
        'syntax = "proto3";\nimport "google/protobuf/timestamp.proto";\n'
        "message A { google.protobuf.Timestamp t = 1; }\n",
        ["bad.proto", "well-known"],
    ),
    ("bad.proto", 'syntax = "proto3";\nmessage A {\n  int32 x = 1;\n', ["bad.proto", "protoc"]),
    ("bad.thrift", "enum E { A = 1, B = 2 }\n", ["bad.thrift:1", "bad.E", "equal to 0"]),
    ("bad.thrift", "struct A {\n  1: i16 x\n}\n", ["bad.thrift:2", "bad.A.x", "i16"]),
    ("bad.thrift", "struct A { 1: byte x }\n", ["bad.A.x", "byte"]),
    ("bad.thrift", "struct A { 1: set<string> x }\n", ["bad.A.x", "set"]),
    ("bad.thrift", "union U { 1: i32 a, 2: string b }\n", ["bad.U", "union"]),
    ("bad.thrift", "struct A { 1: list<list<i32>> x }\n", ["bad.A.x", "nested containers"]),
    ("bad.thrift", "struct A { 1: map<string, list<i32>> x }\n", ["bad.A.x", "nested containers"]),
    ("bad.thrift", "struct A { 1: i32 x = 5 }\n", ["bad.A.x", "default 5"]),
    ("bad.thrift", "struct A { i32 x }\n", ["bad.A.x", "explicit id"]),
    ("bad.thrift", "struct A { 1: i32 x, 40000: i32 y }\n", ["bad.A.y", "outside 1..32767"]),
    ("bad.thrift", "struct A { 1: map<bool, i32> m }\n", ["bad.A.m", "map keys"]),
    (
        "bad.thrift",
        "enum E { Z = 0, X = 1 }\nenum F { Z = 0 }\n",
        ["bad.F", "Z", "scopes enum values"],
    ),
    ("bad.thrift", "enum E { Z = 0, Y = 0 }\n", ["bad.E", "share the value 0"]),
    ("bad.thrift", "struct A { 1: i32 x\n", ["bad.thrift", "thriftpy2 refused"]),
    ("bad.thrift", "struct A { 1: float x }\n", ["bad.thrift", "thriftpy2 refused"]),
]


@pytest.mark.parametrize(
    ("name", "text", "fragments"), ERRORS, ids=[f"{i}-{e[2][-1]}" for i, e in enumerate(ERRORS)]
)
def test_refused_schemas_exit_2_naming_file_and_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, text: str, fragments: list[str]
) -> None:
    (tmp_path / name).write_text(text, encoding="utf-8")
    out = tmp_path / "out"
    rc, stdout, err = run_main(capsys, str(tmp_path / name), "-o", str(out))
    assert rc == 2
    assert err.startswith("zeropipe codegen: error: "), err
    for fragment in fragments:
        assert fragment in err, err
    assert not out.exists()  # nothing is written when anything is refused
    assert stdout == ""


def test_missing_sources(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope.proto"
    rc, _, err = run_main(capsys, str(missing), "-o", str(tmp_path / "o"))
    assert rc == 2
    assert f"{missing}: no such file" in err
    (tmp_path / "empty").mkdir()
    rc, _, err = run_main(capsys, str(tmp_path / "empty"), "-o", str(tmp_path / "o"))
    assert rc == 2
    assert "no .proto or .thrift file" in err
    (tmp_path / "x.json").write_text("{}", encoding="utf-8")
    rc, _, err = run_main(capsys, str(tmp_path / "x.json"), "-o", str(tmp_path / "o"))
    assert rc == 2
    assert "not a .proto or .thrift file" in err


def test_errors_from_a_real_process(tmp_path: Path) -> None:
    (tmp_path / "bad.proto").write_text(
        'syntax = "proto3";\nmessage A { float x = 1; }\n', encoding="utf-8"
    )
    done = cli(str(tmp_path / "bad.proto"), "-o", str(tmp_path / "o"))
    assert done.returncode == 2
    assert "bad.proto:2: A.x: kind 'float' is refused" in done.stderr
    assert "Traceback" not in done.stderr
    done = cli(str(tmp_path / "nope.thrift"), "-o", str(tmp_path / "o"))
    assert done.returncode == 2
    assert "no such file" in done.stderr
    done = cli("--emit", "proto", "no_such_module_zp", "-o", str(tmp_path / "o"))
    assert done.returncode == 2
    assert "cannot import no_such_module_zp" in done.stderr
    done = cli("--emit", "xml", "x", "-o", str(tmp_path / "o"))  # argparse: usage error
    assert done.returncode == 2
    assert "invalid choice" in done.stderr
    done = cli(str(tmp_path))  # -o is required
    assert done.returncode == 2
    assert "-o" in done.stderr


def test_emit_refusals(tmp_path: Path, loader: Loader, capsys: pytest.CaptureFixture[str]) -> None:
    empty, _ = loader.user_module("X = 1\n")
    rc, _, err = run_main(capsys, "--emit", "proto", empty, "-o", str(tmp_path / "o"))
    assert rc == 2
    assert "no @message classes" in err
    clash, _ = loader.user_module(
        textwrap.dedent(
            """
            import enum
            from zeropipe.codecs.model import field, message

            class Side(enum.IntEnum):
                NONE = 0

            class Kind(enum.IntEnum):
                NONE = 0

            @message("clash.M")
            class M:
                side: Side = field(1, default=Side.NONE)
                kind: Kind = field(2, default=Kind.NONE)
            """
        )
    )
    rc, _, err = run_main(capsys, "--emit", "proto", clash, "-o", str(tmp_path / "o"))
    assert rc == 2
    assert "clash.Kind" in err
    assert "NONE" in err
    assert "clash.Side" in err
    assert not (tmp_path / "o").exists()
    broken, _ = loader.user_module("raise RuntimeError('boom')\n")
    rc, _, err = run_main(capsys, "--emit", "thrift", broken, "-o", str(tmp_path / "o"))
    assert rc == 2
    assert "RuntimeError: boom" in err


# -- details ---------------------------------------------------------------------------------


def test_thrift_optional_fields_are_found_by_tokens() -> None:
    text = """
        // optional in a comment: 9: optional i32 nothing
        struct A { 1: optional i32 a /* optional */, 2: i32 b, # optional
          3: optional string c (x = "optional"), 4: map<i32, i32> m = {1: 2, 3: 4},
          5: optional list<i32> l }
        service S { void f(1: optional i32 x) }
        exception E { 1: optional string why }
        struct B {
          1: required i32 r
          2: optional B_ o
        }
    """
    assert _optional_fields(textwrap.dedent(text)) == {
        ("A", 1),
        ("A", 3),
        ("A", 5),
        ("E", 1),
        ("B", 2),
    }


def test_user_init_is_kept_and_generated_init_replaced(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "pkg"
    out.mkdir()
    (out / "__init__.py").write_text('"""Mine."""\n', encoding="utf-8")
    rc, stdout, err = run_main(capsys, str(SCHEMAS / "market.proto"), "-o", str(out))
    assert rc == 0, err
    assert (out / "__init__.py").read_text(encoding="utf-8") == '"""Mine."""\n'
    assert str(out / "__init__.py") not in stdout.split()
    other = tmp_path / "pkg2"
    assert run_main(capsys, str(SCHEMAS / "market.proto"), "-o", str(other))[0] == 0
    assert run_main(capsys, str(SCHEMAS / "football.thrift"), "-o", str(other))[0] == 0
    init = (other / "__init__.py").read_text(encoding="utf-8")
    assert "football_thrift" in init
    assert "market_proto" not in init


def test_sources_and_options_may_mix(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "pkg"
    rc, stdout, err = run_main(
        capsys, str(SCHEMAS / "market.proto"), "-o", str(out), str(SCHEMAS / "football.thrift")
    )
    assert rc == 0, err
    assert sorted(Path(p).name for p in stdout.split()) == [
        "__init__.py",
        "football_thrift.py",
        "market_proto.py",
    ]


@pytest.mark.parametrize(
    ("blocked", "schema"), [("grpc_tools", "market.proto"), ("thriftpy2", "market.thrift")]
)
def test_missing_codegen_extra_names_it(tmp_path: Path, blocked: str, schema: str) -> None:
    code = textwrap.dedent(
        f"""
        import sys
        sys.modules[{blocked!r}] = None
        from zeropipe.cli.main import main
        raise SystemExit(main(["codegen", {str(SCHEMAS / schema)!r}, "-o", {str(tmp_path)!r}]))
        """
    )
    done = run_python("-c", code)
    assert done.returncode == 2, done.stderr
    assert "pip install 'zeropipe[codegen]'" in done.stderr
    assert "Traceback" not in done.stderr
