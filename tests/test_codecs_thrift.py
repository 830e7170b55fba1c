"""The thrift-binary and thrift-compact codecs: round trips, and cross-checks with thriftpy2.

The cross-checks load a hand-written ``.thrift`` (equivalent to the messages below) with
thriftpy2, an implementation independent of Apache Thrift's ``fastbinary`` that the codecs
call, and check that our bytes decode there into the expected values, that thriftpy2's
bytes decode with our codecs, and that both encodings are byte-identical.
"""

from __future__ import annotations

import contextlib
import enum
import math
import struct
import sys
import threading
import warnings
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("thrift")

from zeropipe.codecs import thrift_codec
from zeropipe.codecs.errors import DecodeError, EncodeError, MissingCodecError
from zeropipe.codecs.model import FieldSpec, ModelError, field, message, spec_of
from zeropipe.codecs.thrift_codec import ThriftBinaryCodec, ThriftCompactCodec, thrift_spec_for

pytestmark = pytest.mark.timeout(60)

PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


class Color(enum.IntEnum):
    UNSET = 0
    RED = 1
    GREEN = 2
    NEG = -1


@message("thrifttest.Point")
class Point:
    x: int = field(1, "int32", default=0)
    y: int = field(2, "int32", default=0)
    label: str = field(3, default="")


@message("thrifttest.Scalars")
class Scalars:
    small: int = field(1, "int32", default=0)
    big: int = field(2, "int64", default=0)
    d: float = field(3, default=0.0)
    flag: bool = field(4, default=False)
    s: str = field(5, default="")
    b: bytes = field(6, default=b"")
    color: Color = field(7, default=Color.UNSET)


@message("thrifttest.Optionals")
class Optionals:
    small: int | None = field(1, "int32", default=None)
    big: int | None = field(2, "int64", default=None)
    d: float | None = field(3, default=None)
    flag: bool | None = field(4, default=None)
    s: str | None = field(5, default=None)
    b: bytes | None = field(6, default=None)
    color: Color | None = field(7, default=None)
    sub: Scalars | None = field(8, default=None)


@message("thrifttest.Containers")
class Containers:
    ints: list[int] = field(1, "int64", default_factory=list)
    smalls: list[int] = field(2, "int32", default_factory=list)
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


@message("thrifttest.Envelope")
class Envelope:
    point: Point = field(1)
    maybe: Point | None = field(2, default=None)
    scalars: Scalars = field(3, default_factory=Scalars)
    containers: Containers = field(4, default_factory=Containers)
    venue: str = field(5, default="XNAS")
    sparse: str = field(1000, default="")


@message("thrifttest.Frozen", frozen=True)
class Frozen:
    name: str = field(1)
    color: Color = field(2)
    point: Point | None = field(3, default=None)


@message("thrifttest.Empty")
class Empty:
    pass


@message("thrifttest.HasEmpty")
class HasEmpty:
    maybe: Empty | None = field(1, default=None)
    always: Empty = field(2, default_factory=Empty)
    many: list[Empty] = field(3, default_factory=list)


THRIFT_IDL = """
enum Color { UNSET = 0, RED = 1, GREEN = 2, NEG = -1 }
struct Point { 1: i32 x, 2: i32 y, 3: string label }
struct Scalars {
  1: i32 small, 2: i64 big, 3: double d, 4: bool flag, 5: string s, 6: binary b, 7: Color color
}
struct Optionals {
  1: optional i32 small, 2: optional i64 big, 3: optional double d, 4: optional bool flag,
  5: optional string s, 6: optional binary b, 7: optional Color color, 8: optional Scalars sub
}
struct Containers {
  1: list<i64> ints, 2: list<i32> smalls, 3: list<string> names, 4: list<binary> blobs,
  5: list<double> doubles, 6: list<bool> flags, 7: list<Color> colors, 8: list<Point> points,
  9: map<string, Point> by_name, 10: map<i64, string> by_id, 11: map<string, i32> counts,
  12: map<i32, Color> colors_by_id
}
struct Envelope {
  1: Point point, 2: optional Point maybe, 3: Scalars scalars, 4: Containers containers,
  5: string venue = "XNAS", 1000: string sparse
}
struct Frozen { 1: string name, 2: Color color, 3: optional Point point }
struct Empty {}
struct HasEmpty { 1: optional Empty maybe, 2: Empty always, 3: list<Empty> many }
"""

UNICODE = "h\u00e9llo \u4e16\u754c \U0001f600 \x00 end"

FULL_ENVELOPE = Envelope(
    Point(1, 2, "one"),
    Point(0, 0, ""),
    Scalars(s="nested", color=Color.GREEN),
    Containers(names=["n"], points=[Point(label="deep")], by_name={"": Point()}),
    venue="",
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
    Optionals(-5, INT64_MIN, -0.5, True, UNICODE, b"\x01", Color.NEG, Scalars(big=7)),
    Optionals(big=2**40, s="only some"),
    Containers(),
    Containers(
        ints=[0, -1, INT64_MAX, INT64_MIN],
        smalls=[INT32_MIN, 0, INT32_MAX],
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

CODECS = [ThriftBinaryCodec, ThriftCompactCodec]


def _id(obj: Any) -> str:
    return type(obj).__name__


@pytest.fixture(scope="module", params=CODECS, ids=["binary", "compact"])
def codec(request: pytest.FixtureRequest) -> Any:
    return request.param()


# -- the thriftpy2 reference -------------------------------------------------------------------

_TP: dict[str, Any] = {}


@pytest.fixture(scope="module")
def tp(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The module thriftpy2 builds from THRIFT_IDL (once per process)."""
    thriftpy2 = pytest.importorskip("thriftpy2")
    if "module" not in _TP:
        path = tmp_path_factory.mktemp("thrift") / "thrifttest.thrift"
        path.write_text(THRIFT_IDL)
        _TP["module"] = thriftpy2.load(str(path), module_name="zeropipe_thrifttest_thrift")
    return _TP["module"]


def _factories(codec_name: str) -> list[Any]:
    protocol = pytest.importorskip("thriftpy2.protocol")
    if codec_name == "thrift-compact":
        return [protocol.TCompactProtocolFactory()]
    return [protocol.TBinaryProtocolFactory(), protocol.TCyBinaryProtocolFactory()]


def to_tp(tp: Any, obj: Any) -> Any:
    """``obj`` as an instance of thriftpy2's class of the same name."""
    kwargs: dict[str, Any] = {}
    for f in spec_of(obj).fields:
        value = getattr(obj, f.name)
        if value is not None and f.kind == "message":
            if f.is_map:
                value = {k: to_tp(tp, v) for k, v in value.items()}
            elif f.repeated:
                value = [to_tp(tp, v) for v in value]
            else:
                value = to_tp(tp, value)
        elif value is not None and f.kind == "enum":
            value = (
                {k: int(v) for k, v in value.items()}
                if f.is_map
                else [int(v) for v in value]
                if f.repeated
                else int(value)
            )
        kwargs[f.name] = value
    return getattr(tp, spec_of(obj).name)(**kwargs)


def assert_matches(got: Any, obj: Any) -> None:
    """The thriftpy2 struct ``got`` holds exactly the values of ``obj``."""
    for f in spec_of(obj).fields:
        value = getattr(obj, f.name)
        theirs = getattr(got, f.name)
        where = f"{spec_of(obj).full_name}.{f.name}"
        if value is None:
            assert theirs is None, where
        elif f.kind == "message":
            if f.is_map:
                assert set(theirs) == set(value), where
                for k, v in value.items():
                    assert_matches(theirs[k], v)
            elif f.repeated:
                assert len(theirs) == len(value), where
                for g, v in zip(theirs, value, strict=True):
                    assert_matches(g, v)
            else:
                assert_matches(theirs, value)
        else:
            assert theirs == value, where
            scalar = {"string": str, "bytes": bytes}.get(f.kind)
            if scalar is not None and not (f.repeated or f.is_map):
                assert type(theirs) is scalar, where


# -- round trips ------------------------------------------------------------------------------


def test_fastbinary_is_used() -> None:
    pytest.importorskip("thrift.protocol.fastbinary")
    assert ThriftBinaryCodec().accelerated
    assert ThriftCompactCodec().accelerated


def test_codec_attributes() -> None:
    binary, compact = ThriftBinaryCodec(), ThriftCompactCodec()
    assert (binary.name, binary.wire_id, binary.content_type, binary.extra) == (
        "thrift-binary",
        4,
        "application/x-thrift",
        "thrift",
    )
    assert (compact.name, compact.wire_id, compact.content_type, compact.extra) == (
        "thrift-compact",
        5,
        "application/x-thrift",
        "thrift",
    )


def test_registry_serves_these_codecs() -> None:
    registry = pytest.importorskip("zeropipe.codecs.registry")
    assert isinstance(registry.get("thrift-binary"), ThriftBinaryCodec)
    assert isinstance(registry.get(5), ThriftCompactCodec)


@pytest.mark.parametrize("obj", SAMPLES, ids=_id)
def test_round_trip(codec: Any, obj: Any) -> None:
    data = codec.encode(obj)
    assert isinstance(data, bytes)
    back = codec.decode(type(obj), data)
    assert back == obj
    assert_well_typed(back)


def test_round_trip_nan(codec: Any) -> None:
    back = codec.decode(Scalars, codec.encode(Scalars(d=math.nan)))
    assert math.isnan(back.d)


def test_binary_and_compact_differ() -> None:
    obj = Scalars(5, 6, 1.0, True, "x", b"y", Color.RED)
    assert ThriftBinaryCodec().encode(obj) != ThriftCompactCodec().encode(obj)


def test_enums_decode_as_members(codec: Any) -> None:
    obj = Containers(colors=[Color.NEG], colors_by_id={1: Color.RED})
    back = codec.decode(Containers, codec.encode(obj))
    assert type(back.colors[0]) is Color
    assert type(back.colors_by_id[1]) is Color
    assert codec.decode(Scalars, codec.encode(Scalars(color=Color.GREEN))).color is Color.GREEN


def test_enum_is_written_as_i32() -> None:
    # field 7, type I32 (8), value 2
    assert b"\x08\x00\x07\x00\x00\x00\x02" in ThriftBinaryCodec().encode(Scalars(color=Color.GREEN))


def test_optional_none_fields_are_absent_and_zero_values_present(codec: Any) -> None:
    empty = codec.encode(Optionals())
    assert empty == b"\x00"  # just the struct's stop byte
    assert codec.decode(Optionals, empty) == Optionals()
    zeros = Optionals(0, 0, 0.0, False, "", b"", Color.UNSET, Scalars())
    assert codec.decode(Optionals, codec.encode(zeros)) == zeros


def test_absent_fields_decode_as_defaults(codec: Any) -> None:
    assert codec.decode(Scalars, b"\x00") == Scalars()
    assert codec.decode(Containers, b"\x00") == Containers()
    envelope = codec.decode(Envelope, b"\x00")
    assert envelope == Envelope(Point())  # a non-optional message: every field at its default
    assert envelope.venue == "XNAS"  # the dataclass default
    assert envelope.maybe is None
    assert codec.decode(Empty, b"\x00") == Empty()
    frozen = codec.decode(Frozen, b"\x00")  # no dataclass defaults: zero values
    assert frozen == Frozen("", Color.UNSET)


def test_none_in_a_non_optional_field_is_absent_on_the_wire(codec: Any) -> None:
    data = codec.encode(Envelope(Point(), venue=None))  # type: ignore[arg-type]
    assert codec.decode(Envelope, data).venue == "XNAS"


def test_field_of_the_wrong_wire_type_is_skipped() -> None:
    codec = ThriftBinaryCodec()
    # Scalars.small (i32) sent as a string, then big (i64) = 7
    data = b"\x0b\x00\x01\x00\x00\x00\x01a" + b"\x0a\x00\x02" + struct.pack(">q", 7) + b"\x00"
    assert codec.decode(Scalars, data) == Scalars(big=7)


def test_unknown_fields_are_skipped(codec: Any) -> None:
    # an Envelope read as a Point: field 1 (a struct) has the wrong type for Point.x
    data = codec.encode(FULL_ENVELOPE)
    assert codec.decode(Point, data) == Point()


def test_invalid_utf8_is_replaced_as_thrift_does(codec: Any) -> None:
    # Apache Thrift (Python's fastbinary, Java) decodes strings with replacement characters
    data = codec.encode(Optionals(b=b"ok \xff\xfe end"))
    header = {
        "thrift-binary": (b"\x0b\x00\x06", b"\x0b\x00\x05"),
        "thrift-compact": (b"\x68", b"\x58"),
    }
    binary_header, string_header = header[codec.name]
    assert data.startswith(binary_header)
    as_string = string_header + data[len(binary_header) :]  # the same bytes in field 5: s
    assert codec.decode(Optionals, as_string) == Optionals(s="ok \ufffd\ufffd end")


def test_accepts_bytes_like_payloads(codec: Any) -> None:
    obj = Scalars(small=5, s="x")
    data = codec.encode(obj)
    assert codec.decode(Scalars, bytearray(data)) == obj
    assert codec.decode(Scalars, memoryview(data)) == obj


def test_thrift_spec_layout() -> None:
    from thrift.Thrift import TType

    spec = thrift_spec_for(Scalars)
    assert spec[0] is None
    assert spec[1] == (1, TType.I32, "small", None, None)
    assert spec[2] == (2, TType.I64, "big", None, None)
    assert spec[5] == (5, TType.STRING, "s", "UTF8", None)
    assert spec[6] == (6, TType.STRING, "b", "BINARY", None)
    assert spec[7] == (7, TType.I32, "color", None, None)
    containers = thrift_spec_for(Containers)
    assert containers[3] == (3, TType.LIST, "names", (TType.STRING, "UTF8", False), None)
    number, ttype, name, args, _ = containers[9]
    assert (number, ttype, name) == (9, TType.MAP, "by_name")
    assert args[:2] == (TType.STRING, "UTF8")
    assert args[2] == TType.STRUCT
    assert args[3][1] is thrift_spec_for(Point)
    envelope = thrift_spec_for(Envelope)
    assert len(envelope) == 1001
    assert envelope[6:1000] == (None,) * 994
    assert envelope[1][1] == TType.STRUCT


def test_a_new_class_compiles_under_concurrent_use() -> None:
    @message("thrifttest.concurrency.Fresh")
    class Fresh:
        n: int = field(1, "int64", default=0)
        color: Color = field(2, default=Color.UNSET)
        point: Point | None = field(3, default=None)

    codecs = [ThriftBinaryCodec(), ThriftCompactCodec()]
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def work(i: int) -> None:
        try:
            start.wait(timeout=10)
            for j in range(50):
                obj = Fresh(i * 1000 + j, Color.RED, Point(i, j))
                c = codecs[j % 2]
                assert c.decode(Fresh, c.encode(obj)) == obj
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
        return st.dictionaries(_scalar(f.key_kind or "", None), value, max_size=3)
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
        if kind in ("enum", "message"):
            assert type(v) is f.type, (f, v)
            if kind == "message":
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


MESSAGE_CLASSES = [Scalars, Optionals, Containers, Envelope, Frozen]


@PROPERTY
@given(st.sampled_from(MESSAGE_CLASSES).flatmap(objects))
def test_round_trip_property(codec: Any, obj: Any) -> None:
    back = codec.decode(type(obj), codec.encode(obj))
    assert back == obj
    assert_well_typed(back)


def _decode_or_error(codec: Any, cls: type, data: bytes) -> None:
    """Decoding ``data`` either gives a well-typed ``cls`` or raises DecodeError naming both."""
    try:
        obj = codec.decode(cls, data)
    except DecodeError as exc:
        error: DecodeError | None = exc
    else:
        error = None
        assert type(obj) is cls
        assert_well_typed(obj)
    if error is not None:
        assert (error.codec, error.type_name) == (codec.name, spec_of(cls).full_name)


@PROPERTY
@given(st.binary(max_size=200), st.sampled_from(MESSAGE_CLASSES))
def test_random_bytes_raise_decode_error_or_decode_well_typed(
    codec: Any, data: bytes, cls: type
) -> None:
    _decode_or_error(codec, cls, data)


@PROPERTY
@given(objects(Envelope), st.data())
def test_corrupted_payloads(codec: Any, obj: Any, data: Any) -> None:
    payload = bytearray(codec.encode(obj))
    for _ in range(data.draw(st.integers(1, 3))):
        at = data.draw(st.integers(0, len(payload) - 1))
        payload[at] = data.draw(st.integers(0, 255))
    _decode_or_error(codec, Envelope, bytes(payload))


@pytest.mark.parametrize("obj", [FULL_ENVELOPE, SAMPLES[10], SAMPLES[2]], ids=_id)
def test_every_truncation_is_a_decode_error(codec: Any, obj: Any) -> None:
    payload = codec.encode(obj)
    for cut in range(len(payload)):
        with pytest.raises(DecodeError):
            codec.decode(type(obj), payload[:cut])


# -- cross-checks with thriftpy2 -------------------------------------------------------------


@pytest.mark.parametrize("obj", SAMPLES, ids=_id)
def test_thriftpy2_decodes_our_bytes(codec: Any, tp: Any, obj: Any) -> None:
    from thriftpy2.utils import deserialize

    data = codec.encode(obj)
    for factory in _factories(codec.name):
        got = deserialize(getattr(tp, spec_of(obj).name)(), data, factory)
        assert_matches(got, obj)


@pytest.mark.parametrize("obj", SAMPLES, ids=_id)
def test_we_decode_thriftpy2_bytes(codec: Any, tp: Any, obj: Any) -> None:
    from thriftpy2.utils import serialize

    for factory in _factories(codec.name):
        data = serialize(to_tp(tp, obj), factory)
        assert codec.decode(type(obj), data) == obj


@pytest.mark.parametrize("obj", SAMPLES, ids=_id)
def test_bytes_identical_to_thriftpy2(codec: Any, tp: Any, obj: Any) -> None:
    from thriftpy2.utils import serialize

    for factory in _factories(codec.name):
        assert codec.encode(obj) == serialize(to_tp(tp, obj), factory)


@PROPERTY
@given(st.sampled_from(MESSAGE_CLASSES).flatmap(objects))
def test_thriftpy2_agrees_property(codec: Any, tp: Any, obj: Any) -> None:
    from thriftpy2.utils import deserialize, serialize

    ours = codec.encode(obj)
    for factory in _factories(codec.name):
        assert_matches(deserialize(getattr(tp, spec_of(obj).name)(), ours, factory), obj)
        assert codec.decode(type(obj), serialize(to_tp(tp, obj), factory)) == obj


def test_unknown_enum_value_is_a_decode_error(codec: Any, tp: Any) -> None:
    from thriftpy2.utils import serialize

    factory = _factories(codec.name)[0]
    bad = [
        (Scalars, tp.Scalars(color=7)),
        (Containers, tp.Containers(colors=[1, 9])),
        (Containers, tp.Containers(colors_by_id={1: 9})),
        (Optionals, tp.Optionals(color=123456)),
    ]
    for cls, tp_obj in bad:
        with pytest.raises(DecodeError) as info:
            codec.decode(cls, serialize(tp_obj, factory))
        assert (info.value.codec, info.value.type_name) == (codec.name, spec_of(cls).full_name)
        assert "not known" in str(info.value)


# -- bad input ------------------------------------------------------------------------------------


def _binary_bad_payloads() -> list[Any]:
    i32 = struct.Struct(">i").pack
    return [
        pytest.param(b"", id="empty"),
        pytest.param(b"\x0b\x00\x05" + i32(2**31 - 1) + b"abc", id="string-length-2**31"),
        pytest.param(b"\x0b\x00\x05" + i32(-5) + b"abc", id="string-length-negative"),
        pytest.param(b"\x0b\x00\x05" + i32(5) + b"ab", id="string-cut-short"),
        pytest.param(b"\x0a\x00\x02\x00\x00", id="i64-cut-short"),
        pytest.param(b"\x08\x00\x07" + i32(9) + b"\x00", id="unknown-enum"),
        pytest.param(b"\x00\x00", id="bytes-after-stop"),
        pytest.param(b"\x63\x00\x01\x00", id="unknown-ttype"),
        pytest.param(b"\x0c\x00\x63" * 5000, id="unknown-structs-nested-deep"),
    ]


@pytest.mark.parametrize("data", _binary_bad_payloads())
def test_corrupt_binary_payloads_raise_decode_error(data: bytes) -> None:
    codec = ThriftBinaryCodec()
    with pytest.raises(DecodeError) as info:
        codec.decode(Scalars, data)
    assert (info.value.codec, info.value.type_name) == ("thrift-binary", "thrifttest.Scalars")
    assert isinstance(info.value, ValueError)
    assert "thrifttest.Scalars" in str(info.value)
    assert "thrift-binary" in str(info.value)


@pytest.mark.parametrize(
    "data",
    [
        # Containers.names: list<string> with 2**31-1 elements declared in 10 bytes
        pytest.param(b"\x0f\x00\x03\x0b\x7f\xff\xff\xff\x00\x00", id="list-length-2**31"),
        pytest.param(b"\x0d\x00\x0b\x0b\x0c\x7f\xff\xff\xff\x00", id="map-length-2**31"),
        pytest.param(b"\x0f\x00\x03\x0b\xff\xff\xff\xff\x00\x00", id="list-length-negative"),
        pytest.param(b"\x0f\x00\x03\x08\x00\x00\x00\x01\x00\x00\x00\x05\x00", id="list-elem-type"),
        pytest.param(
            b"\x0d\x00\x0b\x08\x0b\x00\x00\x00\x01\x00\x00\x00\x05\x00\x00\x00\x00\x00",
            id="map-key-type",
        ),
    ],
)
def test_corrupt_binary_containers_raise_decode_error(data: bytes) -> None:
    with pytest.raises(DecodeError):
        ThriftBinaryCodec().decode(Containers, data)


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"", id="empty"),
        # field 5 (string), length varint 2**31-1, 3 bytes of data
        pytest.param(b"\x58\xff\xff\xff\xff\x07abc", id="string-length-2**31"),
        pytest.param(b"\x58\x05ab", id="string-cut-short"),
        pytest.param(b"\x16" + b"\xff" * 12, id="varint-too-long"),
        pytest.param(b"\x00\x00", id="bytes-after-stop"),
        pytest.param(b"\x1c" * 5000, id="unknown-structs-nested-deep"),
    ],
)
def test_corrupt_compact_payloads_raise_decode_error(data: bytes) -> None:
    with pytest.raises(DecodeError) as info:
        ThriftCompactCodec().decode(Scalars, data)
    assert (info.value.codec, info.value.type_name) == ("thrift-compact", "thrifttest.Scalars")


@pytest.mark.parametrize(
    "obj",
    [
        pytest.param(Scalars(small=2**31), id="int32-overflow"),
        pytest.param(Scalars(big=2**63), id="int64-overflow"),
        pytest.param(Scalars(small="1"), id="str-for-int"),  # type: ignore[arg-type]
        pytest.param(Scalars(small=1.5), id="float-for-int"),  # type: ignore[arg-type]
        pytest.param(Scalars(s=5), id="int-for-str"),  # type: ignore[arg-type]
        pytest.param(Scalars(d="x"), id="str-for-double"),  # type: ignore[arg-type]
        pytest.param(Scalars(s="\udc80"), id="lone-surrogate"),
        pytest.param(Containers(smalls=[2**40]), id="list-overflow"),
        pytest.param(Containers(names=[1]), id="list-wrong-type"),  # type: ignore[list-item]
        pytest.param(Containers(counts={"a": "b"}), id="map-wrong-type"),  # type: ignore[dict-item]
        pytest.param(Envelope(Point(), scalars=object()), id="wrong-object"),  # type: ignore[arg-type]
    ],
)
def test_bad_values_raise_encode_error(codec: Any, obj: Any) -> None:
    with pytest.raises(EncodeError) as info:
        codec.encode(obj)
    assert (info.value.codec, info.value.type_name) == (codec.name, spec_of(obj).full_name)


def test_not_a_message_is_refused(codec: Any) -> None:
    with pytest.raises(ModelError):
        codec.encode(object())
    with pytest.raises(ModelError):
        codec.decode(int, b"\x00")


# -- without fastbinary ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def accelerated() -> dict[type, Any]:
    """Codecs on fastbinary (made before any test takes it away)."""
    pytest.importorskip("thrift.protocol.fastbinary")
    return {cls: cls() for cls in CODECS}


@contextlib.contextmanager
def _without_fastbinary() -> Iterator[None]:
    """The thrift package as installed without its C accelerator."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(sys.modules, "thrift.protocol.fastbinary", None)
        mp.setattr(thrift_codec._runtime, "value", None)
        mp.setattr(thrift_codec, "_WARNED", False)
        yield


@pytest.fixture
def no_fastbinary(accelerated: dict[type, Any]) -> Iterator[None]:
    with _without_fastbinary():
        yield


@pytest.mark.parametrize("cls", CODECS, ids=["binary", "compact"])
def test_without_fastbinary_warns_once_and_writes_the_same_bytes(
    accelerated: dict[type, Any], no_fastbinary: None, cls: Any
) -> None:
    with pytest.warns(RuntimeWarning, match="fastbinary"):
        slow = cls()
    assert not slow.accelerated
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert not cls().accelerated  # and no second warning
    reference = accelerated[cls]
    assert reference.accelerated
    for obj in SAMPLES:
        data = reference.encode(obj)
        assert slow.encode(obj) == data
        assert slow.decode(type(obj), data) == obj
    whole = reference.encode(FULL_ENVELOPE)
    for cut in range(len(whole)):
        with pytest.raises(DecodeError):
            slow.decode(Envelope, whole[:cut])
    with pytest.raises(EncodeError):
        slow.encode(Scalars(small=2**31))
    with pytest.raises(DecodeError):
        slow.decode(Scalars, b"\x00\x00")


@pytest.mark.parametrize("cls", CODECS, ids=["binary", "compact"])
@PROPERTY
@given(data=st.binary(max_size=100))
def test_without_fastbinary_random_bytes(
    accelerated: dict[type, Any], cls: Any, data: bytes
) -> None:
    with _without_fastbinary(), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        slow = cls()
        for message_cls in MESSAGE_CLASSES:
            _decode_or_error(slow, message_cls, data)


def test_missing_thrift_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "thrift.transport.TTransport", None)
    monkeypatch.setattr(thrift_codec._runtime, "value", None)
    for cls, name in ((ThriftBinaryCodec, "thrift-binary"), (ThriftCompactCodec, "thrift-compact")):
        with pytest.raises(MissingCodecError) as info:
            cls()
        assert info.value.codec == name
        assert "pip install 'zeropipe[thrift]'" in str(info.value)
