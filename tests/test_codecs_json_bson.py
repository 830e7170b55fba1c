"""The JSON and BSON codecs: round trips of every field kind, the exact wire mapping, and
cross-checks with independent implementations.

* JSON is checked against protobuf's own canonical JSON (``json_format``) for a message
  class built here from a FileDescriptorProto written by hand (nothing from zeropipe's
  protobuf codec), in both directions.
* BSON is checked byte for byte against pymongo encoding the expected document itself, and
  by decoding our bytes with pymongo (Int64 for int64 fields, int for int32).
* Bad input of every sort raises DecodeError naming the codec and the type, never another
  exception, and never yields an object whose fields have the wrong Python types.

The JSON tests run on both backends: orjson and the stdlib fallback.
"""

from __future__ import annotations

import base64
import dataclasses
import enum
import json
import math
import sys
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from zeropipe.codecs import DecodeError, EncodeError, MissingCodecError, field, message, spec_of
from zeropipe.codecs import registry as codec_registry
from zeropipe.codecs.json_codec import JsonCodec, json_name

pytestmark = pytest.mark.timeout(60)

I32 = (-(2**31), 2**31 - 1)
I64 = (-(2**63), 2**63 - 1)


class Color(enum.IntEnum):
    COLOR_UNSPECIFIED = 0
    RED = 1
    GREEN = 2


@message("zptest.jb.Point")
class Point:
    x_pos: int = field(1, "int32", default=0)
    label: str = field(2, default="")


@message("zptest.jb.Everything")
class Everything:
    small_int: int = field(1, "int32", default=0)
    big_int: int = field(2, "int64", default=0)
    ratio: float = field(3, default=0.0)
    flag: bool = field(4, default=False)
    text: str = field(5, default="")
    blob: bytes = field(6, default=b"")
    color: Color = field(7, default=Color.COLOR_UNSPECIFIED)
    point: Point = field(8, default_factory=Point)
    maybe_int: int | None = field(9, "int32", default=None)
    maybe_big: int | None = field(10, "int64", default=None)
    maybe_ratio: float | None = field(11, default=None)
    maybe_flag: bool | None = field(12, default=None)
    maybe_text: str | None = field(13, default=None)
    maybe_blob: bytes | None = field(14, default=None)
    maybe_color: Color | None = field(15, default=None)
    maybe_point: Point | None = field(16, default=None)
    ints: list[int] = field(17, "int32", default_factory=list)
    bigs: list[int] = field(18, "int64", default_factory=list)
    ratios: list[float] = field(19, default_factory=list)
    flags: list[bool] = field(20, default_factory=list)
    texts: list[str] = field(21, default_factory=list)
    blobs: list[bytes] = field(22, default_factory=list)
    colors: list[Color] = field(23, default_factory=list)
    points: list[Point] = field(24, default_factory=list)
    count_by_name: dict[str, int] = field(25, "int32", default_factory=dict)
    name_by_id: dict[int, str] = field(26, "int64", default_factory=dict)
    point_by_slot: dict[int, Point] = field(27, "int32", default_factory=dict)
    color_by_name: dict[str, Color] = field(28, default_factory=dict)
    blob_by_name: dict[str, bytes] = field(29, default_factory=dict)
    big_by_name: dict[str, int] = field(30, "int64", default_factory=dict)


@message("zptest.jb.Wrapper")
class Wrapper:
    inner: Everything = field(1, default_factory=Everything)
    many: list[Everything] = field(2, default_factory=list)


@message("zptest.jb.Empty")
class Empty:
    pass


@message("zptest.jb.Locals")
class Locals:
    """Field names that are also the names of the generated code's locals."""

    d: int = field(1, "int32", default=0)
    f: str = field(2, default="")
    g: list[str] = field(3, default_factory=list)
    x: dict[str, int] = field(4, "int64", default_factory=dict)
    k: dict[int, str] = field(5, "int32", default_factory=dict)
    o: Point | None = field(6, default=None)
    r: float = field(7, default=0.0)


FULL = Everything(
    small_int=I32[0],
    big_int=I64[1],
    ratio=-2.5,
    flag=True,
    text='héllo, 世界 🎉 "quoted" \\ \n\t\x01',
    blob=bytes(range(256)),
    color=Color.GREEN,
    point=Point(7, "p"),
    maybe_int=0,
    maybe_big=I64[0],
    maybe_ratio=0.0,
    maybe_flag=False,
    maybe_text="",
    maybe_blob=b"",
    maybe_color=Color.COLOR_UNSPECIFIED,
    maybe_point=Point(),
    ints=[0, 1, -1, I32[0], I32[1]],
    bigs=[0, I64[0], I64[1], 2**53 + 1],
    ratios=[0.0, 1.5, -1e300, 5e-324],
    flags=[True, False, True],
    texts=["", "a", "ünïcödé"],
    blobs=[b"", b"\x00", b"\xff\xfe\xfd"],
    colors=[Color.RED, Color.COLOR_UNSPECIFIED, Color.GREEN],
    points=[Point(), Point(1, "one"), Point(I32[1], "max")],
    count_by_name={"a": 1, "": 0, "ß": I32[0]},
    name_by_id={0: "zero", I64[0]: "min", I64[1]: "max"},
    point_by_slot={-1: Point(1, "x"), 0: Point()},
    color_by_name={"r": Color.RED, "u": Color.COLOR_UNSPECIFIED},
    blob_by_name={"k": b"\x00\x01", "e": b""},
    big_by_name={"big": I64[1], "small": -1},
)

EXPECTED_TYPES = {
    "int32": int,
    "int64": int,
    "double": float,
    "bool": bool,
    "string": str,
    "bytes": bytes,
}


def assert_types(obj: Any) -> None:
    """Every field of ``obj`` (recursively) holds exactly the Python type of its kind."""
    for f in spec_of(obj).fields:
        value = getattr(obj, f.name)
        if f.optional and value is None:
            continue
        if f.is_map:
            assert type(value) is dict, f.name
            key_type = str if f.key_kind == "string" else int
            assert all(type(k) is key_type for k in value), f.name
            items = list(value.values())
        elif f.repeated:
            assert type(value) is list, f.name
            items = value
        else:
            items = [value]
        for item in items:
            if f.kind == "message":
                assert type(item) is f.type, f.name
                assert_types(item)
            elif f.kind == "enum":
                assert type(item) is f.type, f.name
            else:
                assert type(item) is EXPECTED_TYPES[f.kind], (f.name, type(item))


def comparable(obj: Any) -> Any:
    """``obj`` as plain data where NaN equals NaN and -0.0 differs from 0.0."""
    if dataclasses.is_dataclass(obj):
        return {f.name: comparable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, float):
        return ("float", repr(obj))
    if isinstance(obj, list):
        return [comparable(v) for v in obj]
    if isinstance(obj, dict):
        return {k: comparable(v) for k, v in obj.items()}
    return obj


def assert_same(a: Any, b: Any) -> None:
    assert comparable(a) == comparable(b)
    assert_types(b)


# -- codecs under test -----------------------------------------------------------------------


@pytest.fixture(params=["orjson", "stdlib"])
def json_codec(request: pytest.FixtureRequest) -> JsonCodec:
    if request.param == "orjson":
        pytest.importorskip("orjson")
        codec = JsonCodec(use_orjson=True)
    else:
        codec = JsonCodec(use_orjson=False)
    assert codec.backend == ("orjson" if request.param == "orjson" else "json")
    return codec


def _bson_module() -> Any:
    bson = pytest.importorskip("bson")
    if not hasattr(bson, "decode"):
        pytest.skip("the installed 'bson' is not pymongo's")
    return bson


@pytest.fixture
def bson_codec() -> Any:
    _bson_module()
    from zeropipe.codecs.bson_codec import BsonCodec

    return BsonCodec()


@pytest.fixture(params=["json-orjson", "json-stdlib", "bson"])
def any_codec(request: pytest.FixtureRequest) -> Any:
    if request.param == "bson":
        return request.getfixturevalue("bson_codec")
    if request.param == "json-orjson":
        pytest.importorskip("orjson")
        return JsonCodec(use_orjson=True)
    return JsonCodec(use_orjson=False)


# -- round trips -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "obj",
    [
        Everything(),
        FULL,
        Wrapper(),
        Wrapper(FULL, [Everything(), FULL]),
        Everything(ratio=math.inf, ratios=[-math.inf, math.nan, -0.0], maybe_ratio=math.nan),
        Everything(big_int=I64[0], bigs=[I64[0], I64[1], -1, 1]),
        Everything(text="\U0010ffff\u2028\u2029\x7f", texts=["\x00"]),
        Empty(),
        Locals(1, "f", ["g"], {"x": -1}, {2: "k"}, Point(3, "o"), 0.5),
    ],
    ids=[
        "empty",
        "full",
        "wrapper-empty",
        "wrapper-nested",
        "non-finite",
        "int64-extremes",
        "odd-unicode",
        "no-fields",
        "local-names",
    ],
)
def test_round_trip(any_codec: Any, obj: Any) -> None:
    data = any_codec.encode(obj)
    assert isinstance(data, bytes)
    back = any_codec.decode(type(obj), data)
    assert_same(obj, back)


def test_negative_zero_keeps_its_sign(any_codec: Any) -> None:
    back = any_codec.decode(Everything, any_codec.encode(Everything(ratio=-0.0, ratios=[-0.0])))
    assert math.copysign(1.0, back.ratio) == -1.0
    assert math.copysign(1.0, back.ratios[0]) == -1.0


def test_missing_optional_fields_stay_none(any_codec: Any) -> None:
    back = any_codec.decode(Everything, any_codec.encode(Everything(small_int=3)))
    optional = [f.name for f in spec_of(Everything).fields if f.optional]
    assert len(optional) == 8
    assert all(getattr(back, name) is None for name in optional)
    assert back.small_int == 3


def test_optional_zero_values_are_kept_apart_from_absent(any_codec: Any) -> None:
    zeros = Everything(maybe_int=0, maybe_text="", maybe_flag=False, maybe_point=Point())
    back = any_codec.decode(Everything, any_codec.encode(zeros))
    assert (back.maybe_int, back.maybe_text, back.maybe_flag) == (0, "", False)
    assert back.maybe_point == Point()


def test_decoded_objects_are_fresh(any_codec: Any) -> None:
    """Defaults of mutable fields are not shared between decoded objects."""
    data = any_codec.encode(Everything())
    a, b = any_codec.decode(Everything, data), any_codec.decode(Everything, data)
    a.ints.append(1)
    a.count_by_name["x"] = 1
    a.point.x_pos = 5
    assert b.ints == []
    assert b.count_by_name == {}
    assert b.point.x_pos == 0


def test_encode_accepts_tuples_int_subclasses_and_enum_values(any_codec: Any) -> None:
    class MyInt(int):
        pass

    obj = Everything(small_int=MyInt(4), ints=(1, 2), color=2, colors=[1], ratio=3)  # type: ignore[arg-type]
    back = any_codec.decode(Everything, any_codec.encode(obj))
    assert (back.small_int, back.ints, back.color, back.colors) == (
        4,
        [1, 2],
        Color.GREEN,
        [Color.RED],
    )
    assert back.ratio == 3.0
    assert_types(back)


def _text(codec_name: str) -> st.SearchStrategy[str]:
    # BSON keys are C strings: no NUL inside a map key
    return (
        st.text(max_size=8).filter(lambda s: "\x00" not in s)
        if codec_name == "bson"
        else st.text(max_size=8)
    )


def _value(kind: str, cls: Any, codec_name: str) -> st.SearchStrategy[Any]:
    if kind == "int32":
        return st.integers(*I32)
    if kind == "int64":
        return st.integers(*I64)
    if kind == "double":
        return st.floats(allow_nan=False)
    if kind == "bool":
        return st.booleans()
    if kind == "string":
        return st.text(max_size=8)
    if kind == "bytes":
        return st.binary(max_size=8)
    if kind == "enum":
        return st.sampled_from(list(cls))
    return messages(cls, codec_name)


def messages(cls: type, codec_name: str) -> st.SearchStrategy[Any]:
    """Any instance of ``cls``, built from its MessageSpec."""
    fields: dict[str, st.SearchStrategy[Any]] = {}
    for f in spec_of(cls).fields:
        value = _value(f.kind, f.type, codec_name)
        if f.is_map:
            key = (
                _text(codec_name) if f.key_kind == "string" else _value(f.key_kind or "", None, "")
            )
            fields[f.name] = st.dictionaries(key, value, max_size=3)
        elif f.repeated:
            fields[f.name] = st.lists(value, max_size=3)
        elif f.optional:
            fields[f.name] = st.none() | value
        else:
            fields[f.name] = value
    return st.builds(cls, **fields)


@pytest.mark.parametrize("codec_name", ["json-orjson", "json-stdlib", "bson"])
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_round_trip_property(codec_name: str, data: st.DataObject) -> None:
    if codec_name == "bson":
        _bson_module()
        from zeropipe.codecs.bson_codec import BsonCodec

        codec: Any = BsonCodec()
    else:
        codec = JsonCodec(use_orjson=codec_name == "json-orjson" and _has_orjson())
    obj = data.draw(messages(Everything, codec_name.split("-")[0]))
    assert_same(obj, codec.decode(Everything, codec.encode(obj)))


def _has_orjson() -> bool:
    try:
        import orjson  # noqa: F401
    except ImportError:
        return False
    return True


# -- the JSON mapping ------------------------------------------------------------------------


def test_json_names_follow_protobuf() -> None:
    assert json_name("small_int") == "smallInt"
    assert json_name("x") == "x"
    assert json_name("a_b_c") == "aBC"
    assert json_name("foo__bar") == "fooBar"
    assert json_name("field_1") == "field1"
    assert json_name("alreadyCamel") == "alreadyCamel"


def test_json_exact_mapping(json_codec: JsonCodec) -> None:
    obj = Everything(
        small_int=-5,
        big_int=2**53 + 1,
        ratio=math.nan,
        flag=True,
        blob=b"\xfb\xff",
        color=Color.RED,
        maybe_int=0,
        ratios=[math.inf, -math.inf, 0.5],
        name_by_id={-3: "x"},
        colors=[Color.COLOR_UNSPECIFIED],
    )
    data = json_codec.encode(obj)
    assert json.loads(data) == {
        "smallInt": -5,
        "bigInt": "9007199254740993",
        "ratio": "NaN",
        "flag": True,
        "blob": "+/8=",
        "color": "RED",
        "point": {},
        "maybeInt": 0,
        "ratios": ["Infinity", "-Infinity", 0.5],
        "colors": ["COLOR_UNSPECIFIED"],
        "nameById": {"-3": "x"},
    }
    assert data.startswith(b'{"smallInt":-5,"bigInt":"9007199254740993",')  # compact, in order
    assert json_codec.encode(Everything()) == b'{"point":{}}'


def test_json_both_backends_write_the_same_bytes() -> None:
    pytest.importorskip("orjson")
    sample = dataclasses.replace(FULL, ratios=[0.0, 1.5, -2.25, 123456.789])
    assert JsonCodec(use_orjson=True).encode(sample) == JsonCodec(use_orjson=False).encode(sample)


def test_json_falls_back_to_stdlib_without_orjson(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "orjson", None)
    codec = JsonCodec()
    assert codec.backend == "json"
    assert_same(FULL, codec.decode(Everything, codec.encode(FULL)))
    with pytest.raises(MissingCodecError, match=r"zeropipe\[json\]"):
        JsonCodec(use_orjson=True)


def test_json_decoder_accepts_what_protobuf_parsers_accept(json_codec: JsonCodec) -> None:
    doc = {
        "small_int": 3,  # the original field name
        "bigInt": -12,  # a number for an int64
        "maybeBig": "-9223372036854775808",
        "ratio": 2,  # an integer for a double
        "ratios": ["NaN", "-Infinity", 1],
        "blob": base64.urlsafe_b64encode(b"\xfb\xff\xfe").decode().rstrip("="),  # URL-safe, no pad
        "blobs": ["+/8", "AA=="],
        "color": 2,  # a number for an enum
        "colors": ["RED", 0],
        "text": None,  # null: the default
        "maybeText": None,  # null: absent
        "point": {"xPos": 1, "unknown": [1, {"deep": True}]},
        "nameById": {"7": "seven", "-1": "minus"},
        "somethingNew": {"a": 1},  # unknown keys are ignored
    }
    obj = json_codec.decode(Everything, json.dumps(doc).encode())
    assert obj.small_int == 3
    assert obj.big_int == -12
    assert obj.maybe_big == I64[0]
    assert obj.ratio == 2.0
    assert math.isnan(obj.ratios[0])
    assert obj.ratios[1:] == [-math.inf, 1.0]
    assert obj.blob == b"\xfb\xff\xfe"
    assert obj.blobs == [b"\xfb\xff", b"\x00"]
    assert obj.color is Color.GREEN
    assert obj.colors == [Color.RED, Color.COLOR_UNSPECIFIED]
    assert obj.text == ""
    assert obj.maybe_text is None
    assert obj.point == Point(1, "")
    assert obj.name_by_id == {7: "seven", -1: "minus"}
    assert_types(obj)


# -- JSON against protobuf's json_format -----------------------------------------------------


def _protobuf() -> Any:
    pytest.importorskip("google.protobuf")
    from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory

    return descriptor_pb2, descriptor_pool, json_format, message_factory


_PB_TYPES = {
    "int32": "TYPE_INT32",
    "int64": "TYPE_INT64",
    "double": "TYPE_DOUBLE",
    "bool": "TYPE_BOOL",
    "string": "TYPE_STRING",
    "bytes": "TYPE_BYTES",
}


def _pb_field(proto: Any, F: Any, name: str, number: int, kind: str, type_name: str) -> Any:
    f = proto.field.add(name=name, number=number, label=F.LABEL_OPTIONAL)
    if kind == "message":
        f.type, f.type_name = F.TYPE_MESSAGE, type_name
    elif kind == "enum":
        f.type, f.type_name = F.TYPE_ENUM, type_name
    else:
        f.type = getattr(F, _PB_TYPES[kind])
    return f


@pytest.fixture(scope="module")
def pb_classes() -> dict[str, Any]:
    """protobuf classes equivalent to Point, Everything, Wrapper, built from a hand-written
    FileDescriptorProto (proto3, package zptest.jb)."""
    descriptor_pb2, descriptor_pool, _, message_factory = _protobuf()
    F = descriptor_pb2.FieldDescriptorProto
    fdp = descriptor_pb2.FileDescriptorProto(
        name="zptest_jb.proto", package="zptest.jb", syntax="proto3"
    )
    color = fdp.enum_type.add(name="Color")
    for member in Color:
        color.value.add(name=member.name, number=member.value)
    types = {"enum": ".zptest.jb.Color", "message": ".zptest.jb.Point"}

    point = fdp.message_type.add(name="Point")
    _pb_field(point, F, "x_pos", 1, "int32", "")
    _pb_field(point, F, "label", 2, "string", "")

    every = fdp.message_type.add(name="Everything")
    for f in spec_of(Everything).fields:
        type_name = types.get(f.kind, "")
        if f.is_map:
            entry_name = "".join(p.title() for p in f.name.split("_")) + "Entry"
            entry = every.nested_type.add(name=entry_name)
            entry.options.map_entry = True
            _pb_field(entry, F, "key", 1, f.key_kind or "", "")
            _pb_field(entry, F, "value", 2, f.kind, type_name)
            pf = _pb_field(
                every, F, f.name, f.number, "message", f".zptest.jb.Everything.{entry_name}"
            )
            pf.label = F.LABEL_REPEATED
        else:
            pf = _pb_field(every, F, f.name, f.number, f.kind, type_name)
            if f.repeated:
                pf.label = F.LABEL_REPEATED
            elif f.optional and f.kind != "message":
                every.oneof_decl.add(name=f"_{f.name}")
                pf.proto3_optional = True
                pf.oneof_index = len(every.oneof_decl) - 1

    wrapper = fdp.message_type.add(name="Wrapper")
    _pb_field(wrapper, F, "inner", 1, "message", ".zptest.jb.Everything")
    many = _pb_field(wrapper, F, "many", 2, "message", ".zptest.jb.Everything")
    many.label = F.LABEL_REPEATED

    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    return {
        name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"zptest.jb.{name}"))
        for name in ("Point", "Everything", "Wrapper")
    }


def to_pb(obj: Any, classes: dict[str, Any]) -> Any:
    """The protobuf message holding the same values as ``obj``."""
    pb = classes[type(obj).__name__]()
    for f in spec_of(obj).fields:
        value = getattr(obj, f.name)
        target = getattr(pb, f.name) if (f.repeated or f.is_map or f.kind == "message") else None
        if f.is_map:
            for k, v in value.items():
                if f.kind == "message":
                    target[k].CopyFrom(to_pb(v, classes))
                else:
                    target[k] = int(v) if f.kind == "enum" else v
        elif f.repeated:
            if f.kind == "message":
                for v in value:
                    target.add().CopyFrom(to_pb(v, classes))
            else:
                target.extend(int(v) if f.kind == "enum" else v for v in value)
        elif f.kind == "message":
            if value is not None:
                target.SetInParent()
                target.CopyFrom(to_pb(value, classes))
        elif value is not None:
            setattr(pb, f.name, int(value) if f.kind == "enum" else value)
    return pb


PB_SAMPLES = [
    Everything(),
    FULL,
    Everything(ratio=math.nan, ratios=[math.inf, -0.0, 1e-7, 1e16], maybe_ratio=-math.inf),
    Everything(ratio=-0.0),
    Wrapper(FULL, [Everything(), Everything(point=Point(0, "")), FULL]),
]


@pytest.mark.parametrize("obj", PB_SAMPLES, ids=["empty", "full", "doubles", "neg-zero", "wrapper"])
def test_json_equals_protobuf_message_to_json(
    json_codec: JsonCodec, pb_classes: dict[str, Any], obj: Any
) -> None:
    _, _, json_format, _ = _protobuf()
    pb = to_pb(obj, pb_classes)
    ours = json.loads(json_codec.encode(obj))
    theirs = json.loads(json_format.MessageToJson(pb))
    assert comparable(ours) == comparable(theirs)
    assert list(ours) == list(theirs)  # same fields, same (field number) order


@pytest.mark.parametrize("obj", PB_SAMPLES, ids=["empty", "full", "doubles", "neg-zero", "wrapper"])
def test_protobuf_parses_our_json(
    json_codec: JsonCodec, pb_classes: dict[str, Any], obj: Any
) -> None:
    _, _, json_format, _ = _protobuf()
    parsed = json_format.Parse(json_codec.encode(obj), pb_classes[type(obj).__name__]())
    expected = to_pb(obj, pb_classes)
    assert parsed.SerializeToString(deterministic=True) == expected.SerializeToString(
        deterministic=True
    )


@pytest.mark.parametrize("obj", PB_SAMPLES, ids=["empty", "full", "doubles", "neg-zero", "wrapper"])
@pytest.mark.parametrize(
    "options",
    [{}, {"preserving_proto_field_name": True}, {"always_print_fields_with_no_presence": True}],
    ids=["default", "proto-names", "with-defaults"],
)
def test_we_parse_protobuf_json(
    json_codec: JsonCodec, pb_classes: dict[str, Any], obj: Any, options: dict[str, bool]
) -> None:
    _, _, json_format, _ = _protobuf()
    text = json_format.MessageToJson(to_pb(obj, pb_classes), **options)
    assert_same(obj, json_codec.decode(type(obj), text.encode()))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_json_matches_protobuf_property(pb_classes: dict[str, Any], data: st.DataObject) -> None:
    _, _, json_format, _ = _protobuf()
    obj = data.draw(messages(Everything, "json"))
    pb = to_pb(obj, pb_classes)
    ours = JsonCodec().encode(obj)
    assert comparable(json.loads(ours)) == comparable(json.loads(json_format.MessageToJson(pb)))
    parsed = json_format.Parse(ours, pb_classes["Everything"]())
    assert parsed.SerializeToString(deterministic=True) == pb.SerializeToString(deterministic=True)


# -- JSON bad input --------------------------------------------------------------------------

BAD_JSON = {
    "truncated": b'{"smallInt": 1',
    "empty": b"",
    "not-utf8": b'{"text": "\xff"}',
    "lone-surrogate": b'{"text": "\\ud800"}',
    "nan-literal": b'{"ratio": NaN}',
    "array-not-object": b"[1, 2]",
    "number-not-object": b"12",
    "string-for-int32": b'{"smallInt": "12"}',
    "float-for-int32": b'{"smallInt": 1.5}',
    "integral-float-for-int32": b'{"smallInt": 1.0}',
    "bool-for-int32": b'{"smallInt": true}',
    "int32-too-big": b'{"smallInt": 2147483648}',
    "int32-too-small": b'{"smallInt": -2147483649}',
    "int64-too-big-string": b'{"bigInt": "9223372036854775808"}',
    "int64-too-big-number": b'{"bigInt": 9223372036854775808}',
    "int64-beyond-64-bits": b'{"bigInt": 18446744073709551616}',
    "int64-not-decimal": b'{"bigInt": "12a"}',
    "int64-float": b'{"bigInt": 1.5}',
    "int64-spaces": b'{"bigInt": " 12"}',
    "int64-unicode-digits": '{"bigInt": "١٢"}'.encode(),
    "string-for-double": b'{"ratio": "1.5"}',
    "bool-for-double": b'{"ratio": false}',
    "number-for-bool": b'{"flag": 1}',
    "number-for-string": b'{"text": 5}',
    "bad-base64": b'{"blob": "***"}',
    "base64-bad-length": b'{"blob": "AAAAA"}',
    "number-for-bytes": b'{"blob": 5}',
    "unknown-enum-name": b'{"color": "PURPLE"}',
    "unknown-enum-number": b'{"color": 7}',
    "bool-for-enum": b'{"color": true}',
    "scalar-for-message": b'{"point": 3}',
    "list-for-message": b'{"point": []}',
    "scalar-for-list": b'{"ints": 3}',
    "null-in-list": b'{"ints": [1, null]}',
    "string-in-int-list": b'{"ints": [1, "2"]}',
    "list-for-map": b'{"countByName": [1]}',
    "bad-map-value": b'{"countByName": {"a": "b"}}',
    "bad-map-key": b'{"nameById": {"x": "y"}}',
    "map-key-out-of-range": b'{"pointBySlot": {"2147483648": {}}}',
    "nested-bad": b'{"points": [{"xPos": "no"}]}',
}


@pytest.mark.parametrize("payload", list(BAD_JSON.values()), ids=list(BAD_JSON))
def test_json_bad_input_raises_decode_error(json_codec: JsonCodec, payload: bytes) -> None:
    with pytest.raises(DecodeError) as info:
        json_codec.decode(Everything, payload)
    err = info.value
    assert (err.codec, err.type_name) == ("json", "zptest.jb.Everything")
    assert "json could not decode zptest.jb.Everything" in str(err)
    assert isinstance(err, ValueError)


def test_json_error_names_the_field_path(json_codec: JsonCodec) -> None:
    with pytest.raises(DecodeError, match=r"'points\.xPos'|'points\.x_pos'"):
        json_codec.decode(Everything, BAD_JSON["nested-bad"])
    with pytest.raises(DecodeError, match=r"'inner\.point\.x_pos'.*int32"):
        json_codec.decode(Wrapper, b'{"inner": {"point": {"xPos": 1.5}}}')


@settings(max_examples=200, deadline=None)
@given(payload=st.binary(max_size=64) | st.text(max_size=40).map(str.encode))
def test_json_random_bytes_only_raise_decode_error(payload: bytes) -> None:
    for codec in (JsonCodec(use_orjson=False), JsonCodec()):
        try:
            obj = codec.decode(Everything, payload)
        except DecodeError:
            continue
        assert_types(obj)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_json_mutated_documents_only_raise_decode_error(data: st.DataObject) -> None:
    """Valid documents with one value replaced by arbitrary JSON: a DecodeError, or an object
    whose fields all have the right types."""
    doc = json.loads(JsonCodec().encode(FULL))
    key = data.draw(st.sampled_from(sorted(doc)))
    junk = st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
        lambda inner: (
            st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
        ),
        max_leaves=5,
    )
    doc[key] = data.draw(junk)
    payload = json.dumps(doc).encode()
    for codec in (JsonCodec(use_orjson=False), JsonCodec()):
        try:
            obj = codec.decode(Everything, payload)
        except DecodeError as e:
            error = e
        else:
            assert_types(obj)
            continue
        assert (error.codec, error.type_name) == ("json", "zptest.jb.Everything")


BAD_VALUES = {
    "str-for-int32": {"small_int": "1"},
    "float-for-int32": {"small_int": 1.0},
    "bool-for-int32": {"small_int": True},
    "int32-range": {"small_int": 2**31},
    "int64-range": {"big_int": -(2**63) - 1},
    "str-for-double": {"ratio": "1.0"},
    "huge-int-for-double": {"ratio": 10**400},
    "int-for-bool": {"flag": 1},
    "bytes-for-str": {"text": b"x"},
    "str-for-bytes": {"blob": "x"},
    "bad-enum-value": {"color": 9},
    "wrong-enum": {"color": HealthCheck.too_slow},
    "none-for-required": {"text": None},
    "none-for-message": {"point": None},
    "wrong-message": {"point": Everything()},
    "str-for-list": {"texts": "abc"},
    "bad-list-item": {"ints": [1, "2"]},
    "list-for-map": {"count_by_name": [("a", 1)]},
    "bad-map-key": {"name_by_id": {"1": "x"}},
    "bad-map-value": {"count_by_name": {"a": 1.5}},
    "bad-nested": {"points": [Point(x_pos="x")]},  # type: ignore[arg-type]
}


@pytest.mark.parametrize("changes", list(BAD_VALUES.values()), ids=list(BAD_VALUES))
def test_encode_refuses_wrong_values(any_codec: Any, changes: dict[str, Any]) -> None:
    obj = dataclasses.replace(Everything(), **changes)
    with pytest.raises(EncodeError) as info:
        any_codec.encode(obj)
    assert info.value.codec == any_codec.name
    assert info.value.type_name == "zptest.jb.Everything"
    assert next(iter(changes)) in str(info.value)  # the field is named


def test_encode_refuses_a_non_message(any_codec: Any) -> None:
    with pytest.raises(EncodeError, match="not a typed message"):
        any_codec.encode({"small_int": 1})


# -- JSON plain values -----------------------------------------------------------------------


PLAIN = [
    None,
    True,
    0,
    -(2**63),
    2**64 - 1,
    1.5,
    "",
    "ünï 🎉",
    [],
    {},
    [1, "a", None, [2.5, {"k": [True]}]],
    {"a": {"b": {"c": []}}, "": 0},
]


@pytest.mark.parametrize("value", PLAIN, ids=[repr(v)[:20] for v in PLAIN])
def test_plain_values_round_trip(json_codec: JsonCodec, value: Any) -> None:
    data = json_codec.encode_value(value)
    assert json.loads(data) == value
    assert json_codec.decode_value(data) == value


def test_plain_value_tuples_become_lists(json_codec: JsonCodec) -> None:
    assert json_codec.decode_value(json_codec.encode_value((1, (2, 3)))) == [1, [2, 3]]


@pytest.mark.parametrize(
    "value",
    [
        b"bytes",
        math.nan,
        [math.inf],
        {"x": -math.inf},
        {1: "int key"},
        2**64,
        -(2**63) - 1,
        object(),
    ],
    ids=["bytes", "nan", "inf-in-list", "inf-in-dict", "int-key", "too-big", "too-small", "object"],
)
def test_plain_values_refused(json_codec: JsonCodec, value: Any) -> None:
    with pytest.raises(EncodeError):
        json_codec.encode_value(value)


def test_plain_value_null_is_not_taken_for_nan(json_codec: JsonCodec) -> None:
    assert json_codec.encode_value([None, "null"]) == b'[null,"null"]'


@pytest.mark.parametrize("payload", [b"", b"[1,", b"NaN", b"[Infinity]", b"\xff", b'"\\udc00"'])
def test_plain_bad_json_raises_decode_error(json_codec: JsonCodec, payload: bytes) -> None:
    with pytest.raises(DecodeError) as info:
        json_codec.decode_value(payload)
    assert info.value.codec == "json"


def test_plain_beyond_64_bits_reads_as_float_on_both_backends(json_codec: JsonCodec) -> None:
    assert json_codec.decode_value(b"18446744073709551616") == 2.0**64
    assert json_codec.decode_value(b"18446744073709551615") == 2**64 - 1


def test_module_level_value_helpers() -> None:
    from zeropipe.codecs.json_codec import decode_value, encode_value

    assert decode_value(encode_value({"a": [1, 2.5, "x"]})) == {"a": [1, 2.5, "x"]}


# -- BSON ------------------------------------------------------------------------------------


def _expected_doc(bson: Any) -> dict[str, Any]:
    """FULL as the document pymongo users would write by hand."""
    Int64 = bson.int64.Int64

    def point(p: Point) -> dict[str, Any]:
        return {"x_pos": p.x_pos, "label": p.label}

    f = FULL
    return {
        "small_int": f.small_int,
        "big_int": Int64(f.big_int),
        "ratio": f.ratio,
        "flag": f.flag,
        "text": f.text,
        "blob": bson.binary.Binary(f.blob, 0),
        "color": int(f.color),
        "point": point(f.point),
        "maybe_int": 0,
        "maybe_big": Int64(f.maybe_big),
        "maybe_ratio": 0.0,
        "maybe_flag": False,
        "maybe_text": "",
        "maybe_blob": bson.binary.Binary(b"", 0),
        "maybe_color": 0,
        "maybe_point": point(Point()),
        "ints": f.ints,
        "bigs": [Int64(v) for v in f.bigs],
        "ratios": f.ratios,
        "flags": f.flags,
        "texts": f.texts,
        "blobs": [bson.binary.Binary(b, 0) for b in f.blobs],
        "colors": [int(c) for c in f.colors],
        "points": [point(p) for p in f.points],
        "count_by_name": f.count_by_name,
        "name_by_id": {str(k): v for k, v in f.name_by_id.items()},
        "point_by_slot": {str(k): point(v) for k, v in f.point_by_slot.items()},
        "color_by_name": {k: int(v) for k, v in f.color_by_name.items()},
        "blob_by_name": {k: bson.binary.Binary(v, 0) for k, v in f.blob_by_name.items()},
        "big_by_name": {k: Int64(v) for k, v in f.big_by_name.items()},
    }


def test_bson_bytes_equal_pymongo_encoding_the_expected_document(bson_codec: Any) -> None:
    bson = _bson_module()
    assert bson_codec.encode(FULL) == bson.encode(_expected_doc(bson))


def test_pymongo_decodes_our_bson_with_int64_kept(bson_codec: Any) -> None:
    bson = _bson_module()
    doc = bson.decode(bson_codec.encode(Everything(small_int=5, big_int=5, bigs=[1], maybe_big=2)))
    Int64 = bson.int64.Int64
    assert type(doc["small_int"]) is int
    assert doc["small_int"] == 5
    assert type(doc["big_int"]) is Int64
    assert doc["big_int"] == 5
    assert [type(v) for v in doc["bigs"]] == [Int64]
    assert type(doc["maybe_big"]) is Int64
    assert doc["maybe_int"] is None if "maybe_int" in doc else True
    assert "maybe_int" not in doc  # absent optional: no key at all
    assert type(doc["ratio"]) is float
    assert type(doc["flag"]) is bool
    assert doc["blob"] == b""
    assert doc["color"] == 0
    assert doc["point"] == {"x_pos": 0, "label": ""}
    assert doc["ints"] == []
    assert doc["count_by_name"] == {}


def test_bson_element_types_on_the_wire(bson_codec: Any) -> None:
    """The BSON element type bytes, read without pymongo: 0x10 int32, 0x12 int64,
    0x01 double, 0x08 bool, 0x02 string, 0x05 binary (subtype 0), 0x03 document, 0x04 array."""
    data = bson_codec.encode(Point(3, "x"))
    assert data == (
        b"\x1d\x00\x00\x00\x10x_pos\x00\x03\x00\x00\x00\x02label\x00\x02\x00\x00\x00x\x00\x00"
    )
    data = bson_codec.encode(Everything(big_int=1, blob=b"z"))
    assert b"\x12big_int\x00\x01\x00\x00\x00\x00\x00\x00\x00" in data
    assert b"\x05blob\x00\x01\x00\x00\x00\x00z" in data
    assert b"\x01ratio\x00" + bytes(8) in data
    assert b"\x08flag\x00\x00" in data
    assert b"\x03point\x00" in data
    assert b"\x04ints\x00" in data


def test_bson_decodes_documents_written_by_other_peers(bson_codec: Any) -> None:
    bson = _bson_module()
    Int64 = bson.int64.Int64
    doc = {
        "small_int": Int64(7),  # an int64 holding an int32 field's value
        "big_int": 3,  # an int32 for an int64 field
        "ratio": 2,  # an integer for a double
        "ratios": [1, Int64(2), 0.5],
        "text": None,  # null: the default
        "maybe_text": None,  # null: absent
        "color": Int64(1),
        "point": {"x_pos": 1, "extra": "ignored"},
        "name_by_id": {"9": "nine"},
        "unknown": {"a": [1]},
    }
    obj = bson_codec.decode(Everything, bson.encode(doc))
    assert (obj.small_int, obj.big_int, obj.ratio) == (7, 3, 2.0)
    assert obj.ratios == [1.0, 2.0, 0.5]
    assert obj.text == ""
    assert obj.maybe_text is None
    assert obj.color is Color.RED
    assert obj.point == Point(1, "")
    assert obj.name_by_id == {9: "nine"}
    assert obj.ints == []
    assert obj.maybe_point is None
    assert_types(obj)


def _bad_bson_docs(bson: Any) -> dict[str, Any]:
    Int64 = bson.int64.Int64
    return {
        "string-for-int32": {"small_int": "1"},
        "double-for-int32": {"small_int": 1.0},
        "bool-for-int32": {"small_int": True},
        "int64-out-of-int32-range": {"small_int": Int64(2**31)},
        "string-for-int64": {"big_int": "5"},
        "double-for-int64": {"big_int": 5.0},
        "string-for-double": {"ratio": "1"},
        "int-for-bool": {"flag": 1},
        "int-for-string": {"text": 1},
        "string-for-bytes": {"blob": "x"},
        "unknown-enum": {"color": 9},
        "string-enum": {"color": "RED"},
        "array-for-message": {"point": [1]},
        "doc-for-array": {"ints": {"0": 1}},
        "bad-item": {"texts": ["a", 1]},
        "array-for-map": {"count_by_name": [1]},
        "bad-map-key": {"name_by_id": {"one": "x"}},
        "map-key-range": {"point_by_slot": {"9999999999": {}}},
        "datetime-for-int64": {"big_int": __import__("datetime").datetime(2020, 1, 1)},
        "nested": {"points": [{"x_pos": "a"}]},
    }


def test_bson_wrong_types_raise_decode_error(bson_codec: Any) -> None:
    bson = _bson_module()
    for name, doc in _bad_bson_docs(bson).items():
        with pytest.raises(DecodeError) as info:
            bson_codec.decode(Everything, bson.encode(doc))
        err = info.value
        assert (err.codec, err.type_name) == ("bson", "zptest.jb.Everything"), name
        assert "bson could not decode zptest.jb.Everything" in str(err), name
        assert next(iter(doc)) in str(err), name  # the field is named


@pytest.mark.parametrize(
    "payload",
    [b"", b"\x05\x00\x00", b"\xff" * 20, b"\x0c\x00\x00\x00\x10a\x00\x01\x00", b"not bson at all"],
    ids=["empty", "short", "garbage", "truncated-element", "text"],
)
def test_bson_corrupt_payload_raises_decode_error(bson_codec: Any, payload: bytes) -> None:
    with pytest.raises(DecodeError) as info:
        bson_codec.decode(Everything, payload)
    assert (info.value.codec, info.value.type_name) == ("bson", "zptest.jb.Everything")


def test_bson_truncations_and_trailing_bytes(bson_codec: Any) -> None:
    data = bson_codec.encode(FULL)
    for cut in range(0, len(data), 7):
        with pytest.raises(DecodeError):
            bson_codec.decode(Everything, data[:cut])
    with pytest.raises(DecodeError):
        bson_codec.decode(Everything, data + b"\x00")


@settings(max_examples=200, deadline=None)
@given(payload=st.binary(max_size=80))
def test_bson_random_bytes_only_raise_decode_error(payload: bytes) -> None:
    _bson_module()
    from zeropipe.codecs.bson_codec import BsonCodec

    try:
        obj = BsonCodec().decode(Everything, payload)
    except DecodeError:
        return
    assert_types(obj)


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_bson_bit_flips_only_raise_decode_error(data: st.DataObject) -> None:
    _bson_module()
    from zeropipe.codecs.bson_codec import BsonCodec

    codec = BsonCodec()
    payload = bytearray(codec.encode(FULL))
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(payload) - 1))
        payload[i] = data.draw(st.integers(0, 255))
    try:
        obj = codec.decode(Everything, bytes(payload))
    except DecodeError:
        return
    assert_types(obj)


def test_bson_refuses_a_nul_in_a_map_key(bson_codec: Any) -> None:
    with pytest.raises(EncodeError, match=r"count_by_name|NULL|null"):
        bson_codec.encode(Everything(count_by_name={"a\x00b": 1}))


# -- missing libraries -----------------------------------------------------------------------


@pytest.fixture
def fresh_registry() -> Iterator[None]:
    codec_registry._reset()
    yield
    codec_registry._reset()


@pytest.mark.usefixtures("fresh_registry")
def test_missing_pymongo_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "bson", None)
    from zeropipe.codecs.bson_codec import BsonCodec

    with pytest.raises(MissingCodecError, match=r"pip install 'zeropipe\[bson\]'") as info:
        BsonCodec()
    assert "pymongo" in str(info.value)
    with pytest.raises(MissingCodecError, match=r"zeropipe\[bson\]"):
        codec_registry.get("bson")
    assert codec_registry.get("json").encode(Point(1, "a")) == b'{"xPos":1,"label":"a"}'


@pytest.mark.usefixtures("fresh_registry")
def test_missing_orjson_is_not_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "orjson", None)
    codec = codec_registry.get("json")
    assert isinstance(codec, JsonCodec)
    assert codec.backend == "json"
    assert codec.decode(Point, codec.encode(Point(2, "b"))) == Point(2, "b")


def test_registry_helpers_round_trip(any_codec: Any) -> None:
    data = codec_registry.encode(FULL, any_codec)
    assert_same(FULL, codec_registry.decode(Everything, data, any_codec))


def _compiled_sources() -> Callable[[], str]:
    from zeropipe.codecs.json_codec import _COMPILER

    return lambda: str(getattr(_COMPILER.decoder(Everything), "__source__", ""))


def test_adapters_are_compiled_once_per_class() -> None:
    from zeropipe.codecs.json_codec import _COMPILER

    assert _COMPILER.encoder(Everything) is _COMPILER.encoder(Everything)
    assert _COMPILER.decoder(Everything) is _COMPILER.decoder(Everything)
    assert "getattr" not in _compiled_sources()()  # straight-line: no reflection per call
