"""The protobuf codec: round trips of every field kind, and cross-checks against protoc.

The cross-checks compile a hand-written ``.proto`` (equivalent to the messages below) with the
protoc bundled in grpcio-tools, import the generated ``_pb2`` modules, and check that our
bytes parse into the expected values there, that its bytes decode with our codec, and that
both encodings are byte-identical.
"""

from __future__ import annotations

import enum
import math
import sys
import threading
from types import ModuleType
from typing import Any

import pytest
from codec_support import load_module
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("google.protobuf")

from zeropipe.codecs import protobuf_codec
from zeropipe.codecs.errors import DecodeError, EncodeError, MissingCodecError
from zeropipe.codecs.model import FieldSpec, ModelError, field, message, spec_of
from zeropipe.codecs.protobuf_codec import (
    ProtobufCodec,
    descriptor_for,
    descriptor_set_for,
    pb_class_for,
)

pytestmark = pytest.mark.timeout(60)

PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


class Color(enum.IntEnum):
    UNSET = 0
    RED = 1
    GREEN = 2
    NEG = -1


@message("pbtest.inner.Point")
class Point:
    x: int = field(1, "int32", default=0)
    y: int = field(2, "int32", default=0)
    label: str = field(3, default="")


@message("pbtest.Scalars")
class Scalars:
    i32: int = field(1, "int32", default=0)
    i64: int = field(2, "int64", default=0)
    d: float = field(3, default=0.0)
    flag: bool = field(4, default=False)
    s: str = field(5, default="")
    b: bytes = field(6, default=b"")
    color: Color = field(7, default=Color.UNSET)


@message("pbtest.Optionals")
class Optionals:
    i32: int | None = field(1, "int32", default=None)
    i64: int | None = field(2, "int64", default=None)
    d: float | None = field(3, default=None)
    flag: bool | None = field(4, default=None)
    s: str | None = field(5, default=None)
    b: bytes | None = field(6, default=None)
    color: Color | None = field(7, default=None)
    sub: Scalars | None = field(8, default=None)


@message("pbtest.Containers")
class Containers:
    ints: list[int] = field(1, "int64", default_factory=list)
    i32s: list[int] = field(2, "int32", default_factory=list)
    names: list[str] = field(3, default_factory=list)
    blobs: list[bytes] = field(4, default_factory=list)
    doubles: list[float] = field(5, default_factory=list)
    flags: list[bool] = field(6, default_factory=list)
    colors: list[Color] = field(7, default_factory=list)
    points: list[Point] = field(8, default_factory=list)
    by_name: dict[str, Point] = field(9, default_factory=dict)
    by_id: dict[int, str] = field(10, "int64", default_factory=dict)
    counts: dict[str, int] = field(11, "int32", default_factory=dict)
    colors_by_id: dict[int, Color] = field(12, "int32", default_factory=dict)


@message("pbtest.Envelope")
class Envelope:
    point: Point = field(1)
    maybe: Point | None = field(2, default=None)
    scalars: Scalars = field(3, default_factory=Scalars)
    containers: Containers = field(4, default_factory=Containers)
    sparse: str = field(1000, default="")


@message("pbtest.Frozen", frozen=True)
class Frozen:
    name: str = field(1)
    color: Color = field(2)
    point: Point | None = field(3, default=None)


ShadeA = enum.IntEnum("Shade", {"NONE": 0, "DARK": 1})
ShadeB = enum.IntEnum("Shade", {"NONE": 0, "LIGHT": 2})  # same names: a clash in one package


@message("pbtest.clash.UsesBothShades")
class UsesBothShades:
    a: ShadeA = field(1)  # type: ignore[valid-type]
    b: ShadeB = field(2)  # type: ignore[valid-type]


@message("pbtest.Empty")
class Empty:
    pass


@message("pbtest.HasEmpty")
class HasEmpty:
    maybe: Empty | None = field(1, default=None)
    always: Empty = field(2, default_factory=Empty)
    many: list[Empty] = field(3, default_factory=list)


PROTO_INNER = """
syntax = "proto3";
package pbtest.inner;
message Point { int32 x = 1; int32 y = 2; string label = 3; }
"""

PROTO_MAIN = """
syntax = "proto3";
package pbtest;
import "pbtest_inner.proto";
enum Color { UNSET = 0; RED = 1; GREEN = 2; NEG = -1; }
message Scalars {
  int32 i32 = 1; int64 i64 = 2; double d = 3; bool flag = 4;
  string s = 5; bytes b = 6; Color color = 7;
}
message Optionals {
  optional int32 i32 = 1; optional int64 i64 = 2; optional double d = 3; optional bool flag = 4;
  optional string s = 5; optional bytes b = 6; optional Color color = 7; Scalars sub = 8;
}
message Containers {
  repeated int64 ints = 1; repeated int32 i32s = 2; repeated string names = 3;
  repeated bytes blobs = 4; repeated double doubles = 5; repeated bool flags = 6;
  repeated Color colors = 7; repeated pbtest.inner.Point points = 8;
  map<string, pbtest.inner.Point> by_name = 9; map<int64, string> by_id = 10;
  map<string, int32> counts = 11; map<int32, Color> colors_by_id = 12;
}
message Envelope {
  pbtest.inner.Point point = 1; pbtest.inner.Point maybe = 2; Scalars scalars = 3;
  Containers containers = 4; string sparse = 1000;
}
message Frozen { string name = 1; Color color = 2; pbtest.inner.Point point = 3; }
message Empty {}
message HasEmpty { Empty maybe = 1; Empty always = 2; repeated Empty many = 3; }
"""

UNICODE = "h\u00e9llo \u4e16\u754c \U0001f600 \x00 end"

FULL_ENVELOPE = Envelope(
    Point(1, 2, "one"),
    Point(0, 0, ""),
    Scalars(s="nested", color=Color.GREEN),
    Containers(names=["n"], points=[Point(label="deep")], by_name={"": Point()}),
    sparse="field 1000",
)

SAMPLES: list[Any] = [
    Scalars(),
    Scalars(1, 2, 0.5, True, "x", b"y", Color.RED),
    Scalars(INT32_MAX, INT64_MAX, -1e308, True, UNICODE, bytes(range(256)), Color.NEG),
    Scalars(INT32_MIN, INT64_MIN, 5e-324, False, "", b"\x00", Color.GREEN),
    Scalars(-1, -(2**53) - 1, math.inf, False, "a" * 1000, b"\xff" * 1000, Color.UNSET),
    Optionals(),
    Optionals(0, 0, 0.0, False, "", b"", Color.UNSET, Scalars()),
    Optionals(-5, INT64_MIN, -0.5, True, UNICODE, b"\x01", Color.NEG, Scalars(i64=7)),
    Optionals(i64=2**40, s="only some"),
    Containers(),
    Containers(
        ints=[0, -1, INT64_MAX, INT64_MIN],
        i32s=[INT32_MIN, 0, INT32_MAX],
        names=["", UNICODE, "x"],
        blobs=[b"", b"\x00\xff"],
        doubles=[0.0, -1.5, math.inf],
        flags=[True, False, True],
        colors=[Color.RED, Color.NEG, Color.UNSET],
        points=[Point(), Point(1, -2, "p")],
        by_name={"a": Point(3, 4, "q")},
        by_id={INT64_MAX: "max"},
        counts={UNICODE: INT32_MIN},
        colors_by_id={-7: Color.GREEN},
    ),
    Envelope(Point()),
    FULL_ENVELOPE,
    Frozen("f", Color.RED),
    Frozen("", Color.UNSET, Point(9, 9, "nine")),
    Empty(),
    HasEmpty(),
    HasEmpty(Empty(), Empty(), [Empty(), Empty()]),
]


def _id(obj: Any) -> str:
    return type(obj).__name__


@pytest.fixture(scope="module")
def codec() -> ProtobufCodec:
    return ProtobufCodec()


# -- protoc-generated reference classes -------------------------------------------------------

_PB2: dict[str, ModuleType] = {}


@pytest.fixture(scope="module")
def pb2(tmp_path_factory: pytest.TempPathFactory) -> ModuleType:
    """The protoc-generated module of PROTO_MAIN (built once per process: its types go into
    protobuf's default pool, which refuses a second file of the same name)."""
    protoc = pytest.importorskip("grpc_tools.protoc")
    if "main" in _PB2:
        return _PB2["main"]
    out = tmp_path_factory.mktemp("protoc")
    (out / "pbtest_inner.proto").write_text(PROTO_INNER)
    (out / "pbtest_main.proto").write_text(PROTO_MAIN)
    args = ["protoc", f"-I{out}", f"--python_out={out}", "pbtest_inner.proto", "pbtest_main.proto"]
    assert protoc.main(args) == 0
    sys.path.insert(0, str(out))
    try:
        _PB2["inner"] = load_module(out / "pbtest_inner_pb2.py", "pbtest_inner_pb2")
        _PB2["main"] = load_module(out / "pbtest_main_pb2.py", "pbtest_main_pb2")
    finally:
        sys.path.remove(str(out))
    return _PB2["main"]


def _protoc_class(obj_or_cls: Any) -> Any:
    spec = spec_of(obj_or_cls)
    module = _PB2["inner"] if spec.package == "pbtest.inner" else _PB2["main"]
    return getattr(module, spec.name)


def to_protoc(obj: Any) -> Any:
    """``obj`` as a message of the protoc-generated class (built with keyword arguments)."""
    kwargs: dict[str, Any] = {}
    for f in spec_of(obj).fields:
        value = getattr(obj, f.name)
        if value is None:
            continue
        if f.kind == "message":
            if f.is_map:
                value = {k: to_protoc(v) for k, v in value.items()}
            elif f.repeated:
                value = [to_protoc(v) for v in value]
            else:
                value = to_protoc(value)
        kwargs[f.name] = value
    return _protoc_class(obj)(**kwargs)


def assert_matches(pb: Any, obj: Any) -> None:
    """The protoc-generated message ``pb`` holds exactly the values of ``obj``."""
    for f in spec_of(obj).fields:
        value = getattr(obj, f.name)
        got = getattr(pb, f.name)
        where = f"{spec_of(obj).full_name}.{f.name}"
        if f.kind == "message":
            if f.is_map:
                assert set(got) == set(value), where
                for k, v in value.items():
                    assert_matches(got[k], v)
            elif f.repeated:
                assert len(got) == len(value), where
                for g, v in zip(got, value, strict=True):
                    assert_matches(g, v)
            elif value is None:
                assert not pb.HasField(f.name), where
            else:
                assert pb.HasField(f.name), where
                assert_matches(got, value)
        elif f.is_map:
            assert dict(got) == value, where
        elif f.repeated:
            assert list(got) == value, where
        elif f.optional and value is None:
            assert not pb.HasField(f.name), where
        else:
            if f.optional:
                assert pb.HasField(f.name), where
            assert got == value, where
            assert type(got) is type(value) or f.kind == "enum", where


# -- round trips ------------------------------------------------------------------------------


def test_backend_is_upb() -> None:
    assert protobuf_codec.backend() == "upb"


def test_codec_attributes(codec: ProtobufCodec) -> None:
    assert (codec.name, codec.wire_id, codec.content_type, codec.extra) == (
        "protobuf",
        3,
        "application/x-protobuf",
        "protobuf",
    )


def test_registry_serves_this_codec() -> None:
    registry = pytest.importorskip("zeropipe.codecs.registry")
    assert isinstance(registry.get("protobuf"), ProtobufCodec)
    assert registry.get(3).name == "protobuf"


@pytest.mark.parametrize("obj", SAMPLES, ids=_id)
def test_round_trip(codec: ProtobufCodec, obj: Any) -> None:
    data = codec.encode(obj)
    assert isinstance(data, bytes)
    back = codec.decode(type(obj), data)
    assert back == obj
    assert_well_typed(back)


def test_round_trip_nan(codec: ProtobufCodec) -> None:
    back = codec.decode(Scalars, codec.encode(Scalars(d=math.nan)))
    assert math.isnan(back.d)


def test_enums_decode_as_members(codec: ProtobufCodec) -> None:
    obj = Containers(colors=[Color.NEG], colors_by_id={1: Color.RED})
    back = codec.decode(Containers, codec.encode(obj))
    assert type(back.colors[0]) is Color
    assert type(back.colors_by_id[1]) is Color
    scalars = codec.decode(Scalars, codec.encode(Scalars(color=Color.GREEN)))
    assert scalars.color is Color.GREEN


def test_missing_optional_fields_are_none_and_zero_values_are_present(
    codec: ProtobufCodec,
) -> None:
    assert codec.encode(Optionals()) == b""
    assert codec.decode(Optionals, b"") == Optionals()
    zeros = Optionals(0, 0, 0.0, False, "", b"", Color.UNSET)
    data = codec.encode(zeros)
    assert data != b""  # explicit presence: a set zero is on the wire
    assert codec.decode(Optionals, data) == zeros


def test_absent_fields_decode_as_defaults(codec: ProtobufCodec) -> None:
    assert codec.decode(Scalars, b"") == Scalars()
    assert codec.decode(Containers, b"") == Containers()
    envelope = codec.decode(Envelope, b"")
    assert envelope == Envelope(Point())  # a non-optional message field: all defaults
    assert envelope.maybe is None


def test_accepts_bytes_like_payloads(codec: ProtobufCodec) -> None:
    obj = Scalars(i32=5, s="x")
    data = codec.encode(obj)
    assert codec.decode(Scalars, bytearray(data)) == obj
    assert codec.decode(Scalars, memoryview(data)) == obj


def test_a_new_class_compiles_under_concurrent_use(codec: ProtobufCodec) -> None:
    @message("pbtest.concurrency.Fresh")
    class Fresh:
        n: int = field(1, "int64", default=0)
        color: Color = field(2, default=Color.UNSET)
        point: Point | None = field(3, default=None)

    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def work(i: int) -> None:
        try:
            start.wait(timeout=10)
            for j in range(50):
                obj = Fresh(i * 1000 + j, Color.RED, Point(i, j))
                assert codec.decode(Fresh, codec.encode(obj)) == obj
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not any(t.is_alive() for t in threads)
    assert errors == []


# -- property tests ---------------------------------------------------------------------------


def _scalar(kind: str, typ: Any) -> st.SearchStrategy[Any]:
    if kind == "int32":
        return st.integers(INT32_MIN, INT32_MAX)
    if kind == "int64":
        return st.integers(INT64_MIN, INT64_MAX)
    if kind == "double":
        return st.floats(allow_nan=False)
    if kind == "bool":
        return st.booleans()
    if kind == "string":
        return st.text(max_size=20)
    if kind == "bytes":
        return st.binary(max_size=20)
    if kind == "enum":
        return st.sampled_from(list(typ))
    return objects(typ)


def _field(f: FieldSpec) -> st.SearchStrategy[Any]:
    value = _scalar(f.kind, f.type)
    if f.is_map:
        key = _scalar(f.key_kind or "", None)
        return st.dictionaries(key, value, max_size=3)
    if f.repeated:
        return st.lists(value, max_size=3)
    if f.optional:
        return st.none() | value
    return value


def objects(cls: type) -> st.SearchStrategy[Any]:
    """Any instance of message class ``cls``."""
    return st.builds(cls, **{f.name: _field(f) for f in spec_of(cls).fields})


def assert_well_typed(obj: Any) -> None:
    """Every field of ``obj`` holds a value of its declared kind (recursively)."""
    checks = {
        "int32": lambda v: type(v) is int and INT32_MIN <= v <= INT32_MAX,
        "int64": lambda v: type(v) is int and INT64_MIN <= v <= INT64_MAX,
        "double": lambda v: type(v) is float,
        "bool": lambda v: type(v) is bool,
        "string": lambda v: type(v) is str,
        "bytes": lambda v: type(v) is bytes,
    }

    def check(f: FieldSpec, kind: str, v: Any) -> None:
        if kind == "enum":
            assert type(v) is f.type, (f, v)
        elif kind == "message":
            assert type(v) is f.type, (f, v)
            assert_well_typed(v)
        else:
            assert checks[kind](v), (f, v)

    for f in spec_of(obj).fields:
        value = getattr(obj, f.name)
        if f.is_map:
            assert type(value) is dict, f
            for k, v in value.items():
                check(f, f.key_kind or "", k)
                check(f, f.kind, v)
        elif f.repeated:
            assert type(value) is list, f
            for v in value:
                check(f, f.kind, v)
        elif not (f.optional and value is None):
            check(f, f.kind, value)


@PROPERTY
@given(st.sampled_from([Scalars, Optionals, Containers, Envelope, Frozen]).flatmap(objects))
def test_round_trip_property(codec: ProtobufCodec, obj: Any) -> None:
    back = codec.decode(type(obj), codec.encode(obj))
    assert back == obj
    assert_well_typed(back)


@PROPERTY
@given(st.binary(max_size=200), st.sampled_from([Scalars, Optionals, Containers, Envelope]))
def test_random_bytes_raise_decode_error_or_decode_well_typed(
    codec: ProtobufCodec, data: bytes, cls: type
) -> None:
    try:
        obj = codec.decode(cls, data)
    except DecodeError as exc:
        error: DecodeError | None = exc
    else:
        error = None
        assert type(obj) is cls
        assert_well_typed(obj)
    if error is not None:
        assert (error.codec, error.type_name) == ("protobuf", spec_of(cls).full_name)


@PROPERTY
@given(objects(Envelope), st.data())
def test_truncated_or_corrupted_payloads(codec: ProtobufCodec, obj: Any, data: Any) -> None:
    payload = codec.encode(obj)
    cut = data.draw(st.integers(0, len(payload)))
    mutated = bytearray(payload[:cut])
    if mutated:
        at = data.draw(st.integers(0, len(mutated) - 1))
        mutated[at] = data.draw(st.integers(0, 255))
    try:
        back = codec.decode(Envelope, bytes(mutated))
    except DecodeError:
        return
    assert_well_typed(back)


# -- cross-checks with protoc -----------------------------------------------------------------


@pytest.mark.parametrize("obj", SAMPLES, ids=_id)
def test_protoc_class_parses_our_bytes(codec: ProtobufCodec, pb2: ModuleType, obj: Any) -> None:
    parsed = _protoc_class(obj).FromString(codec.encode(obj))
    assert_matches(parsed, obj)


@pytest.mark.parametrize("obj", SAMPLES, ids=_id)
def test_we_decode_protoc_bytes(codec: ProtobufCodec, pb2: ModuleType, obj: Any) -> None:
    data = to_protoc(obj).SerializeToString()
    assert codec.decode(type(obj), data) == obj


@pytest.mark.parametrize("obj", SAMPLES, ids=_id)
def test_bytes_identical_to_protoc(codec: ProtobufCodec, pb2: ModuleType, obj: Any) -> None:
    assert codec.encode(obj) == to_protoc(obj).SerializeToString()


@PROPERTY
@given(st.sampled_from([Scalars, Optionals, Containers, Envelope]).flatmap(objects))
def test_protoc_agrees_property(codec: ProtobufCodec, pb2: ModuleType, obj: Any) -> None:
    ours = codec.encode(obj)
    assert_matches(_protoc_class(obj).FromString(ours), obj)
    theirs = to_protoc(obj).SerializeToString(deterministic=True)
    assert codec.decode(type(obj), theirs) == obj


def test_unknown_enum_value_is_a_decode_error(codec: ProtobufCodec, pb2: ModuleType) -> None:
    data = pb2.Scalars(color=7).SerializeToString()  # proto3 enums are open: protoc sends it
    with pytest.raises(DecodeError) as info:
        codec.decode(Scalars, data)
    assert (info.value.codec, info.value.type_name) == ("protobuf", "pbtest.Scalars")
    assert "7" in str(info.value)
    repeated = pb2.Containers(colors=[1, 9]).SerializeToString()
    with pytest.raises(DecodeError):
        codec.decode(Containers, repeated)
    in_map = pb2.Containers(colors_by_id={1: 9}).SerializeToString()
    with pytest.raises(DecodeError):
        codec.decode(Containers, in_map)


def test_unknown_fields_are_skipped(codec: ProtobufCodec, pb2: ModuleType) -> None:
    # an Envelope read as a Point: field 1 (a message) has the wrong wire type for Point.x
    data = to_protoc(Envelope(Point(1), sparse="x")).SerializeToString()
    assert codec.decode(Point, data) == Point()


# -- descriptors --------------------------------------------------------------------------------


def test_descriptor_for_describes_the_message() -> None:
    fdp = descriptor_for(Optionals)
    assert fdp.syntax == "proto3"
    assert fdp.package == "pbtest"
    (msg,) = fdp.message_type
    assert msg.name == "Optionals"
    by_name = {f.name: f for f in msg.field}
    assert by_name["i32"].proto3_optional
    assert msg.oneof_decl[by_name["i32"].oneof_index].name == "_i32"
    assert not by_name["sub"].proto3_optional  # message fields have presence already
    assert by_name["color"].type_name.startswith(".pbtest.")
    descriptor_for(Optionals).package = "changed"  # a copy: the codec's stays as it was
    assert descriptor_for(Optionals).package == "pbtest"


def test_descriptor_of_maps_and_cross_package_references() -> None:
    fdp = descriptor_for(Containers)
    (msg,) = fdp.message_type
    entry = {t.name: t for t in msg.nested_type}["ByNameEntry"]
    assert entry.options.map_entry
    assert [f.name for f in entry.field] == ["key", "value"]
    assert entry.field[1].type_name == ".pbtest.inner.Point"
    by_name = {f.name: f for f in msg.field}
    assert by_name["by_name"].type_name == ".pbtest.Containers.ByNameEntry"
    assert by_name["colors_by_id"].json_name == "colorsById"
    assert descriptor_for(Point).name in fdp.dependency


def test_descriptor_set_builds_an_independent_pool(codec: ProtobufCodec) -> None:
    from google.protobuf import descriptor_pool, message_factory

    pool = descriptor_pool.DescriptorPool()
    for fdp in descriptor_set_for(Envelope).file:
        pool.Add(fdp)
    cls = message_factory.GetMessageClass(pool.FindMessageTypeByName("pbtest.Envelope"))
    obj = FULL_ENVELOPE
    parsed = cls.FromString(codec.encode(obj))
    assert_matches(parsed, obj)


def test_pb_class_for_and_raw_conversions(codec: ProtobufCodec) -> None:
    obj = FULL_ENVELOPE
    pb_cls = pb_class_for(Envelope)
    raw = codec.to_pb(obj)
    assert isinstance(raw, pb_cls)
    assert raw.SerializeToString() == codec.encode(obj)
    assert codec.from_pb(Envelope, pb_cls.FromString(codec.encode(obj))) == obj
    with pytest.raises(TypeError):
        codec.from_pb(Envelope, pb_class_for(Point)())


def test_enum_names_that_clash_in_a_package_are_renamed(codec: ProtobufCodec) -> None:
    obj = UsesBothShades(ShadeA.DARK, ShadeB.LIGHT)
    assert codec.decode(UsesBothShades, codec.encode(obj)) == obj
    fdps = {f.name: f for f in descriptor_set_for(UsesBothShades).file}
    enums = {e.name: [v.name for v in e.value] for f in fdps.values() for e in f.enum_type}
    assert enums == {"Shade": ["NONE", "DARK"], "Shade_2": ["SHADE_2_NONE", "SHADE_2_LIGHT"]}


# -- bad input ------------------------------------------------------------------------------------

BAD_PAYLOADS = [
    pytest.param(b"\x2a\x05ab", id="string-cut-short"),
    pytest.param(b"\x2a\x01\xff", id="string-invalid-utf8"),
    pytest.param(b"\x2a\xff\xff\xff\xff\x07abcd", id="string-length-2**31"),
    pytest.param(b"\x32\xff\xff\xff\xff\x0f", id="bytes-length-huge"),
    pytest.param(b"\x08" + b"\xff" * 11, id="varint-too-long"),
    pytest.param(b"\x08", id="varint-missing"),
    pytest.param(b"\x19\x00\x00", id="fixed64-cut-short"),
    pytest.param(b"\x00\x01", id="field-number-zero"),
    pytest.param(b"\x0c", id="end-group-without-start"),
    pytest.param(b"\x0f\x00", id="wire-type-7"),
    pytest.param(b"\x0b" * 100_000, id="groups-nested-deep"),
    pytest.param(b"\x42\x02\x0a\x00" * 3 + b"\x42\x80\x80\x80\x80\x08", id="unknown-length-2**31"),
]


@pytest.mark.parametrize("data", BAD_PAYLOADS)
def test_corrupt_payloads_raise_decode_error(codec: ProtobufCodec, data: bytes) -> None:
    with pytest.raises(DecodeError) as info:
        codec.decode(Scalars, data)
    assert info.value.codec == "protobuf"
    assert info.value.type_name == "pbtest.Scalars"
    assert isinstance(info.value, ValueError)
    assert "pbtest.Scalars" in str(info.value)
    assert "protobuf" in str(info.value)


def test_corrupt_nested_payload_names_the_outer_type(codec: ProtobufCodec) -> None:
    with pytest.raises(DecodeError) as info:
        codec.decode(Envelope, b"\x0a\x03\x1a\x05a")  # Point.label cut short inside point
    assert info.value.type_name == "pbtest.Envelope"


@pytest.mark.parametrize(
    "obj",
    [
        pytest.param(Scalars(i32=2**31), id="int32-overflow"),
        pytest.param(Scalars(i64=2**63), id="int64-overflow"),
        pytest.param(Scalars(i32="1"), id="str-for-int"),  # type: ignore[arg-type]
        pytest.param(Scalars(s=5), id="int-for-str"),  # type: ignore[arg-type]
        pytest.param(Scalars(s="\udc80"), id="lone-surrogate"),
        pytest.param(Scalars(i64=None), id="none-for-int"),  # type: ignore[arg-type]
        pytest.param(Containers(i32s=[2**40]), id="repeated-overflow"),
        pytest.param(Containers(names=[1]), id="repeated-wrong-type"),  # type: ignore[list-item]
        pytest.param(Containers(counts={"a": "b"}), id="map-wrong-type"),  # type: ignore[dict-item]
        pytest.param(Envelope(None), id="none-for-message"),  # type: ignore[arg-type]
    ],
)
def test_bad_values_raise_encode_error(codec: ProtobufCodec, obj: Any) -> None:
    with pytest.raises(EncodeError) as info:
        codec.encode(obj)
    assert info.value.codec == "protobuf"
    assert info.value.type_name == spec_of(obj).full_name


def test_names_protobuf_cannot_describe_are_refused_at_definition() -> None:
    """Two fields with one proto3 JSON name, or a non-ASCII name: refused by @message itself."""
    with pytest.raises(ModelError, match="JSON name"):

        @message("pbtest.bad.JsonNames")
        class JsonNames:
            foo_bar: int = field(1, "int32", default=0)
            fooBar: int = field(2, "int32", default=0)

    with pytest.raises(ModelError, match="ASCII"):

        @message("pbtest.bad.Accent")
        class Accent:
            café: int = field(1, "int32", default=0)


def test_not_a_message_is_refused(codec: ProtobufCodec) -> None:
    with pytest.raises(ModelError):
        codec.encode(object())
    with pytest.raises(ModelError):
        codec.decode(int, b"")


def test_a_slow_backend_warns(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(protobuf_codec, "backend", lambda: "python")
    monkeypatch.setattr(protobuf_codec._runtime, "value", None)
    with pytest.warns(RuntimeWarning, match="upb"):
        codec = ProtobufCodec()
    obj = Containers(names=["a"], colors=[Color.RED])  # repeated fields go through extend
    assert codec.decode(Containers, codec.encode(obj)) == obj


def test_missing_protobuf_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "google.protobuf.descriptor_pool", None)
    monkeypatch.setattr(protobuf_codec._runtime, "value", None)
    with pytest.raises(MissingCodecError) as info:
        ProtobufCodec()
    assert "pip install 'zeropipe[protobuf]'" in str(info.value)
