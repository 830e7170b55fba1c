"""The codec registry, its entry-point plugins, the codec errors and the typed-frame header.

The plugin tests install nothing: they put a fake distribution (a ``*.dist-info`` directory
with an ``entry_points.txt``) and the example plugin package examples/zeropipe-msgpack on
sys.path, exactly what ``pip install`` leaves behind.
"""

from __future__ import annotations

import enum
import importlib
import pickle
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from deadlines import term_with_deadline

import zeropipe
from zeropipe import codecs
from zeropipe.codecs import (
    CodecError,
    DecodeError,
    EncodeError,
    MissingCodecError,
    decode_message,
    encode_message,
    field,
    message,
    pack_header,
    parse_header,
)
from zeropipe.codecs import registry as reg
from zeropipe.codecs.json_codec import JsonCodec

pytestmark = pytest.mark.timeout(30)

REPO = Path(__file__).resolve().parent.parent
PLUGIN_DIR = REPO / "examples" / "zeropipe-msgpack"
TIMEOUT_MS = 5000


class Side(enum.IntEnum):
    SIDE_UNSPECIFIED = 0
    BUY = 1
    SELL = 2


@message("zptest.reg.Leg")
class Leg:
    venue: str = field(1, default="")
    qty: int = field(2, "int32", default=0)


@message("zptest.reg.Order")
class Order:
    id: int = field(1, "int64", default=0)
    side: Side = field(2, default=Side.SIDE_UNSPECIFIED)
    price: float = field(3, default=0.0)
    tags: list[str] = field(4, default_factory=list)
    legs: list[Leg] = field(5, default_factory=list)
    attrs: dict[str, bytes] = field(6, default_factory=dict)
    by_slot: dict[int, Leg] = field(7, "int32", default_factory=dict)
    note: str | None = field(8, default=None)


ORDER = Order(
    id=2**63 - 1,
    side=Side.SELL,
    price=101.25,
    tags=["a", "ü"],
    legs=[Leg("XNAS", 5), Leg()],
    attrs={"k": b"\x00\xff"},
    by_slot={-2: Leg("x", 1)},
    note="n",
)


@pytest.fixture(autouse=True)
def fresh_registry() -> Iterator[None]:
    """Every test starts from the built-ins, none created yet, no plugin loaded."""
    reg._reset()
    yield
    reg._reset()


class FakeCodec:
    """A minimal codec: the message's repr, just enough to register."""

    content_type = "text/plain"
    extra = ""

    def __init__(self, name: str = "fake", wire_id: int = 200) -> None:
        self.name = name
        self.wire_id = wire_id

    def encode(self, obj: Any) -> bytes:
        return repr(obj).encode()

    def decode(self, cls: type, data: bytes) -> Any:
        raise DecodeError(self.name, codecs.spec_of(cls).full_name, "write-only")


# -- built-ins -------------------------------------------------------------------------------

BUILTINS = [
    ("json", 1, "application/json", "json", None),
    ("bson", 2, "application/bson", "bson", "bson"),
    ("protobuf", 3, "application/x-protobuf", "protobuf", "google.protobuf"),
    ("thrift-binary", 4, "application/x-thrift", "thrift", "thrift"),
    ("thrift-compact", 5, "application/x-thrift", "thrift", "thrift"),
]


def _builtin_or_skip(name: str, library: str | None) -> Any:
    if library is not None:
        pytest.importorskip(library)
    try:
        return reg.get(name)
    except CodecError as e:
        if "not part of this build" in str(e):
            pytest.skip(str(e))
        raise


@pytest.mark.parametrize(
    ("name", "wire_id", "content_type", "extra", "library"),
    BUILTINS,
    ids=[b[0] for b in BUILTINS],
)
def test_builtin_codecs_by_name_and_wire_id(
    name: str, wire_id: int, content_type: str, extra: str, library: str | None
) -> None:
    codec = _builtin_or_skip(name, library)
    assert (codec.name, codec.wire_id, codec.content_type, codec.extra) == (
        name,
        wire_id,
        content_type,
        extra,
    )
    assert reg.get(wire_id) is codec
    assert reg.get(name) is codec  # created once
    assert isinstance(codec, reg.Codec)


def test_builtins_are_created_lazily() -> None:
    assert reg._by_name == {}
    reg.get("json")
    assert list(reg._by_name) == ["json"]


def test_get_returns_a_codec_object_as_is() -> None:
    codec = FakeCodec()
    assert reg.get(codec) is codec


def test_unknown_codec_lists_the_known_ones() -> None:
    with pytest.raises(CodecError, match=r"unknown codec 'yaml'") as info:
        reg.get("yaml")
    for name in ("bson", "json", "protobuf", "thrift-binary", "thrift-compact"):
        assert name in str(info.value)
    with pytest.raises(CodecError, match=r"unknown codec wire id 99"):
        reg.get(99)


@pytest.mark.parametrize("key", [True, 1.0, None, b"json", ["json"]])
def test_get_refuses_other_keys(key: Any) -> None:
    with pytest.raises(CodecError):
        reg.get(key)


def test_available_lists_usable_codecs_in_wire_id_order() -> None:
    names = reg.available()
    assert names[0] == "json"
    ids = [reg.get(n).wire_id for n in names]
    assert ids == sorted(ids)
    try:
        import bson

        has_pymongo = hasattr(bson, "decode")
    except ImportError:
        has_pymongo = False
    assert ("bson" in names) == has_pymongo


def test_encode_and_decode_helpers_default_to_json() -> None:
    data = codecs.encode(ORDER)
    assert data.startswith(b'{"id":"9223372036854775807"')
    assert codecs.decode(Order, data) == ORDER
    assert codecs.decode(Order, codecs.encode(ORDER, 1), "json") == ORDER


# -- registration ----------------------------------------------------------------------------


def test_register_a_codec() -> None:
    codec = reg.register(FakeCodec())
    assert reg.get("fake") is codec
    assert reg.get(200) is codec
    assert "fake" in reg.available()
    assert codecs.encode(Leg("v", 1), "fake") == b"Leg(venue='v', qty=1)"


def test_register_refuses_a_taken_name_or_wire_id() -> None:
    reg.register(FakeCodec())
    with pytest.raises(CodecError, match="name 'fake' is taken"):
        reg.register(FakeCodec(wire_id=201))
    with pytest.raises(CodecError, match="wire id 200 is taken by 'fake'"):
        reg.register(FakeCodec(name="other"))
    with pytest.raises(CodecError, match="name 'json' is taken"):
        reg.register(FakeCodec(name="json"))  # a built-in, even before it is created


def test_register_replace() -> None:
    first = reg.register(FakeCodec())
    second = reg.register(FakeCodec(), replace=True)
    assert reg.get("fake") is second is not first
    moved = reg.register(FakeCodec(wire_id=250), replace=True)
    assert reg.get("fake") is moved
    with pytest.raises(CodecError):
        reg.get(200)  # the old wire id went with the old codec


def test_a_builtin_can_be_replaced_under_its_own_name_and_id() -> None:
    mine = JsonCodec(use_orjson=False)
    reg.register(mine, replace=True)
    assert reg.get("json") is mine
    assert reg.get(1) is mine


@pytest.mark.parametrize("wire_id", [1, 5, 6, 127])
def test_plugins_cannot_take_reserved_wire_ids(wire_id: int) -> None:
    with pytest.raises(CodecError, match=r"reserved|is the built-in"):
        reg.register(FakeCodec(wire_id=wire_id), replace=True)


@pytest.mark.parametrize("wire_id", [0, 256, -1, "200", True, None])
def test_register_refuses_bad_wire_ids(wire_id: Any) -> None:
    with pytest.raises(CodecError, match="wire id"):
        reg.register(FakeCodec(wire_id=wire_id))


@pytest.mark.parametrize("name", ["", 5, None])
def test_register_refuses_bad_names(name: Any) -> None:
    with pytest.raises(CodecError, match="name"):
        reg.register(FakeCodec(name=name))


def test_register_refuses_non_codecs() -> None:
    with pytest.raises(CodecError, match="not a codec"):
        reg.register(object())  # type: ignore[arg-type]
    with pytest.raises(CodecError, match="not a codec"):
        reg.register(FakeCodec)  # type: ignore[arg-type]  # the class, not an instance


# -- errors ----------------------------------------------------------------------------------


def test_decode_error_names_codec_and_type() -> None:
    err = DecodeError("protobuf", "market.Trade", "truncated payload")
    assert (err.codec, err.type_name, err.reason) == (
        "protobuf",
        "market.Trade",
        "truncated payload",
    )
    assert str(err) == "protobuf could not decode market.Trade: truncated payload"
    assert isinstance(err, CodecError)
    assert isinstance(err, ValueError)
    copy = pickle.loads(pickle.dumps(err))
    assert (type(copy), str(copy), copy.codec) == (DecodeError, str(err), "protobuf")


def test_encode_error_names_codec_and_type() -> None:
    err = EncodeError("bson", "market.Trade", "field 'qty': expected an int")
    assert str(err) == "bson could not encode market.Trade: field 'qty': expected an int"
    assert isinstance(err, ValueError)
    assert not isinstance(err, DecodeError)


def test_missing_codec_error_names_the_extra() -> None:
    err = MissingCodecError("protobuf", "protobuf")
    assert "pip install 'zeropipe[protobuf]'" in str(err)
    assert isinstance(err, CodecError)
    assert "pymongo" in str(MissingCodecError("bson", "bson", "pymongo"))


@pytest.mark.parametrize(
    ("name", "blocked", "extra"),
    [
        ("bson", ["bson"], "bson"),
        ("protobuf", ["google.protobuf", "google"], "protobuf"),
        ("thrift-binary", ["thrift"], "thrift"),
        ("thrift-compact", ["thrift"], "thrift"),
    ],
)
def test_missing_library_names_the_extra(
    monkeypatch: pytest.MonkeyPatch, name: str, blocked: list[str], extra: str
) -> None:
    module_name = reg._BUILTINS[name][1]
    if importlib.util.find_spec(module_name) is None:
        pytest.skip(f"{module_name} is not written yet")
    for mod in [m for m in sys.modules if m.split(".")[0] in {b.split(".")[0] for b in blocked}]:
        monkeypatch.delitem(sys.modules, mod)
    for mod in blocked:
        monkeypatch.setitem(sys.modules, mod, None)
    package, _, attr = module_name.rpartition(".")
    if hasattr(sys.modules[package], attr):  # put back at teardown, like sys.modules
        monkeypatch.setattr(sys.modules[package], attr, getattr(sys.modules[package], attr))
    monkeypatch.delitem(sys.modules, module_name, raising=False)  # imported again, blocked
    with pytest.raises(MissingCodecError, match=rf"pip install 'zeropipe\[{extra}\]'"):
        reg.get(name)
    assert reg.get("json").name == "json"  # the others still work
    assert name not in reg.available()


def test_importing_the_package_imports_no_codec_library() -> None:
    code = (
        "import sys, zeropipe.codecs\n"
        "libs = ('orjson', 'bson', 'pymongo', 'google.protobuf', 'thrift', 'msgpack')\n"
        "print(sorted(m for m in libs if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=20, check=True
    )
    assert out.stdout.strip() == "[]"


# -- entry-point plugins ---------------------------------------------------------------------


def _fake_distribution(site: Path, name: str, entry_points: str) -> None:
    info = site / f"{name.replace('-', '_')}-0.1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1.0\n")
    (info / "entry_points.txt").write_text(textwrap.dedent(entry_points))


@pytest.fixture
def plugin_site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """sys.path entries as pip would leave them after installing the msgpack example plugin
    and a broken one; the imported plugin modules are forgotten at teardown."""
    site = tmp_path / "site"
    _fake_distribution(
        site,
        "zeropipe-msgpack",
        """
        [zeropipe.codecs]
        msgpack = zeropipe_msgpack:MsgpackCodec
        """,
    )
    _fake_distribution(
        site,
        "zeropipe-broken",
        """
        [zeropipe.codecs]
        broken = zptest_broken_plugin:BrokenCodec
        misnamed = zptest_odd_plugins:Misnamed
        squatter = zptest_odd_plugins:Squatter
        notacodec = zptest_odd_plugins:NOT_A_CODEC
        """,
    )
    (site / "zptest_broken_plugin.py").write_text(
        "raise ImportError('zptest_broken_plugin needs libfoo, which is not installed')\n"
    )
    (site / "zptest_odd_plugins.py").write_text(
        textwrap.dedent(
            """
            class _Base:
                content_type = "x/y"
                extra = ""
                def encode(self, obj): return b""
                def decode(self, cls, data): raise NotImplementedError

            class Misnamed(_Base):
                name = "not-misnamed"
                wire_id = 140

            class Squatter(_Base):
                name = "squatter"
                wire_id = 3  # protobuf's

            NOT_A_CODEC = 42
            """
        )
    )
    monkeypatch.syspath_prepend(str(PLUGIN_DIR))
    monkeypatch.syspath_prepend(str(site))
    yield site
    for mod in ("zeropipe_msgpack", "zptest_broken_plugin", "zptest_odd_plugins"):
        sys.modules.pop(mod, None)


@pytest.mark.usefixtures("plugin_site")
def test_msgpack_plugin_from_an_entry_point() -> None:
    pytest.importorskip("msgpack")
    codec = reg.get("msgpack")
    assert (codec.name, codec.wire_id, type(codec).__module__) == (
        "msgpack",
        128,
        "zeropipe_msgpack",
    )
    assert reg.get(128) is codec
    data = codecs.encode(ORDER, "msgpack")
    assert codecs.decode(Order, data, "msgpack") == ORDER
    frames = encode_message(ORDER, "msgpack")
    assert frames[0] == b"ZP\x01\x80zptest.reg.Order"
    assert decode_message(frames) == ORDER
    assert "msgpack" in reg.available()


@pytest.mark.usefixtures("plugin_site")
def test_msgpack_plugin_payload_is_plain_msgpack() -> None:
    msgpack = pytest.importorskip("msgpack")
    doc = msgpack.unpackb(codecs.encode(Leg("XNAS", 3), "msgpack"))
    assert doc == {"venue": "XNAS", "qty": 3}
    with pytest.raises(DecodeError) as info:
        codecs.decode(Leg, msgpack.packb({"venue": 3}), "msgpack")
    assert (info.value.codec, info.value.type_name) == ("msgpack", "zptest.reg.Leg")


@pytest.mark.usefixtures("plugin_site")
def test_a_broken_plugin_is_named_and_breaks_nothing_else() -> None:
    with pytest.raises(CodecError) as info:
        reg.get("broken")
    text = str(info.value)
    assert "broken" in text
    assert "zptest_broken_plugin:BrokenCodec" in text
    assert "zeropipe-broken" in text  # the distribution
    assert "needs libfoo" in text  # the cause
    assert isinstance(info.value.__cause__, ImportError)
    assert reg.get("json").name == "json"
    if importlib.util.find_spec("msgpack") is not None:
        assert reg.get("msgpack").wire_id == 128
    with pytest.raises(CodecError, match=r"plugins that failed to load: .*broken"):
        reg.get("nonexistent")


@pytest.mark.usefixtures("plugin_site")
@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("misnamed", "is named 'not-misnamed'"),
        ("squatter", "wire id 3 is the built-in codec 'protobuf'"),
        ("notacodec", "is not a codec"),
    ],
)
def test_plugins_that_are_not_right_are_refused(name: str, why: str) -> None:
    with pytest.raises(CodecError, match=why):
        reg.get(name)
    assert reg.get("json").name == "json"


@pytest.mark.usefixtures("plugin_site")
def test_plugin_without_its_library_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "msgpack", None)
    with pytest.raises(MissingCodecError, match="msgpack"):
        reg.get("msgpack")
    assert reg.get("json").name == "json"


@pytest.mark.usefixtures("plugin_site")
def test_entry_points_are_read_once_and_only_on_a_miss(monkeypatch: pytest.MonkeyPatch) -> None:
    from importlib import metadata

    calls: list[str] = []
    real = metadata.entry_points

    def counting(**kwargs: Any) -> Any:
        calls.append(kwargs.get("group", ""))
        return real(**kwargs)

    monkeypatch.setattr(metadata, "entry_points", counting)
    reg.get("json")
    reg.get(1)
    assert calls == []  # built-ins need no plugin scan
    for key in ("broken", "nonexistent", 250):
        with pytest.raises(CodecError):
            reg.get(key)
    assert calls == [reg.ENTRY_POINT_GROUP]


# -- the typed-frame header ------------------------------------------------------------------


def test_header_layout() -> None:
    header = pack_header("json", "market.Trade")
    assert header == b"ZP\x01\x01market.Trade"
    assert pack_header(1, "market.Trade") == header
    assert pack_header(reg.get("json"), "market.Trade") == header
    assert pack_header("json", "market.Trade") is header  # cached: no new bytes per message
    assert parse_header(header) == (1, "market.Trade")


def test_header_round_trips_for_every_available_codec() -> None:
    for name in reg.available():
        wire_id = reg.get(name).wire_id
        assert parse_header(pack_header(name, "a.B")) == (wire_id, "a.B")


@pytest.mark.parametrize("name", ["x", "市场.Trade", "a" * 255, "é" * 127])
def test_header_type_names(name: str) -> None:
    header = pack_header("json", name)
    assert header[4:] == name.encode()
    assert parse_header(header) == (1, name)


@pytest.mark.parametrize("frame_type", [bytes, bytearray, memoryview])
def test_parse_header_accepts_buffers(frame_type: Any) -> None:
    assert parse_header(frame_type(b"ZP\x01\x01a.B")) == (1, "a.B")


def test_parse_header_accepts_frames() -> None:
    assert parse_header(zeropipe.Frame(b"ZP\x01\x01a.B")) == (1, "a.B")
    zmq = pytest.importorskip("zmq")
    assert parse_header(zmq.Frame(b"ZP\x01\x01a.B")) == (1, "a.B")


BAD_HEADERS = {
    "empty": (b"", "not a zeropipe typed frame"),
    "magic-only": (b"ZP", "not a zeropipe typed frame"),
    "bad-magic": (b"XP\x01\x01a.B", "not a zeropipe typed frame.*b'XP"),
    "json-payload": (b'{"id": 1}', "not a zeropipe typed frame"),
    "version-0": (b"ZP\x00\x01a.B", "unsupported typed-frame version 0"),
    "version-2": (b"ZP\x02\x01a.B", "unsupported typed-frame version 2"),
    "unknown-codec": (b"ZP\x01\x63a.B", "unknown codec wire id 99"),
    "codec-0": (b"ZP\x01\x00a.B", "unknown codec wire id 0"),
    "empty-name": (b"ZP\x01\x01", "empty type name"),
    "bad-utf8": (b"ZP\x01\x01\xff\xfe", "not UTF-8"),
    "name-too-long": (b"ZP\x01\x01" + b"a" * 256, "longer than 255 bytes"),
}


@pytest.mark.parametrize(("frame", "why"), list(BAD_HEADERS.values()), ids=list(BAD_HEADERS))
def test_bad_headers(frame: bytes, why: str) -> None:
    with pytest.raises(DecodeError, match=why):
        parse_header(frame)


def test_unknown_codec_in_header_names_the_type() -> None:
    with pytest.raises(DecodeError) as info:
        parse_header(b"ZP\x01\xc8market.Trade")
    assert info.value.type_name == "market.Trade"
    assert "200" in str(info.value)


def test_parse_header_refuses_non_frames() -> None:
    with pytest.raises(DecodeError, match="not bytes"):
        parse_header(42)


@pytest.mark.parametrize(
    ("codec", "name", "error"),
    [
        ("json", "", EncodeError),
        ("json", "a" * 256, EncodeError),
        ("json", "\ud800", EncodeError),
        ("yaml", "a.B", CodecError),
        (77, "a.B", CodecError),
    ],
    ids=["empty", "too-long", "surrogate", "unknown-codec", "unknown-id"],
)
def test_pack_header_refuses(codec: Any, name: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        pack_header(codec, name)


# -- typed messages as two frames ------------------------------------------------------------


def _codecs_here() -> list[str]:
    return [n for n in ("json", "bson") if n in reg.available()]


def test_encode_decode_message_round_trip() -> None:
    for name in _codecs_here():
        frames = encode_message(ORDER, name)
        assert len(frames) == 2
        assert frames[0] == b"ZP\x01" + bytes([reg.get(name).wire_id]) + b"zptest.reg.Order"
        assert frames[1] == reg.get(name).encode(ORDER)
        assert decode_message(frames) == ORDER
        assert decode_message(frames, expected=Order) == ORDER
        assert decode_message(frames, expected=(Leg, Order)) == ORDER
        assert decode_message(tuple(frames), max_size=len(frames[1])) == ORDER


def test_encode_message_defaults_to_json() -> None:
    assert encode_message(Leg("a", 1)) == [b"ZP\x01\x01zptest.reg.Leg", b'{"venue":"a","qty":1}']


def test_encode_message_refuses_non_messages() -> None:
    with pytest.raises(EncodeError, match="not a typed message"):
        encode_message({"id": 1}, "json")


def test_a_peer_in_another_language_builds_the_frames_by_hand() -> None:
    """What docs/typed-messages.md tells a Go/Java/C peer: 'ZP', 1, codec id, type name."""
    header = b"ZP" + bytes([1, 1]) + b"zptest.reg.Leg"
    payload = b'{"venue": "XLON", "qty": 7}'
    assert decode_message([header, payload]) == Leg("XLON", 7)
    ours = encode_message(Leg("XLON", 7), "json")[0]
    assert (ours[:2], ours[2], ours[3], ours[4:].decode()) == (b"ZP", 1, 1, "zptest.reg.Leg")


def test_decode_message_needs_two_frames() -> None:
    frames = encode_message(Leg(), "json")
    for bad in ([], frames[:1], [*frames, b""]):
        with pytest.raises(DecodeError, match="two frames"):
            decode_message(bad)


def test_decode_message_unknown_type() -> None:
    with pytest.raises(DecodeError) as info:
        decode_message([b"ZP\x01\x01zptest.reg.Nope", b"{}"])
    assert (info.value.codec, info.value.type_name) == ("json", "zptest.reg.Nope")
    assert "unknown message type 'zptest.reg.Nope'" in str(info.value)


def test_decode_message_expected_type() -> None:
    frames = encode_message(Leg("a", 1), "json")
    with pytest.raises(
        DecodeError, match=r"expected zptest\.reg\.Order, got zptest\.reg\.Leg"
    ) as info:
        decode_message(frames, expected=Order)
    assert (info.value.codec, info.value.type_name) == ("json", "zptest.reg.Leg")
    with pytest.raises(DecodeError, match=r"expected one of zptest\.reg\.Order, int"):
        decode_message(frames, expected=(Order, int))


def test_decode_message_size_limit_is_checked_before_decoding() -> None:
    header = pack_header("json", "zptest.reg.Leg")
    garbage = b"\xff" * 101  # not JSON: decoding it would say so
    with pytest.raises(DecodeError, match="message over the size limit: 101 bytes > max_size 100"):
        decode_message([header, garbage], max_size=100)
    with pytest.raises(DecodeError, match="not"):
        decode_message([header, garbage], max_size=101)


@pytest.mark.parametrize(
    ("codec", "payload"),
    [("json", b'{"qty": "x"}'), ("json", b"{"), ("bson", b"\x05\x00"), ("bson", b"")],
)
def test_decode_message_bad_payload(codec: str, payload: bytes) -> None:
    if codec not in reg.available():
        pytest.skip(f"{codec} is not installed")
    with pytest.raises(DecodeError) as info:
        decode_message([pack_header(codec, "zptest.reg.Leg"), payload])
    assert (info.value.codec, info.value.type_name) == (codec, "zptest.reg.Leg")


def test_decode_message_missing_codec_library(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "bson", None)
    with pytest.raises(DecodeError, match=r"zeropipe\[bson\]") as info:
        decode_message([b"ZP\x01\x02zptest.reg.Leg", b"\x05\x00\x00\x00\x00"])
    assert (info.value.codec, info.value.type_name) == ("bson", "zptest.reg.Leg")


# -- over real sockets -----------------------------------------------------------------------


def _timeouts(sock: Any) -> Any:
    sock.linger = 0
    sock.rcvtimeo = sock.sndtimeo = TIMEOUT_MS
    return sock


def test_typed_frames_over_zeropipe_sockets() -> None:
    ctx = zeropipe.Context()
    try:
        pull = _timeouts(ctx.socket(zeropipe.PULL))
        push = _timeouts(ctx.socket(zeropipe.PUSH))
        try:
            pull.bind("tcp://127.0.0.1:*")
            push.connect(pull.last_endpoint)
            for name in _codecs_here():
                push.send_multipart(encode_message(ORDER, name))
                assert decode_message(pull.recv_multipart(), expected=Order) == ORDER
        finally:
            push.close()
            pull.close()
    finally:
        term_with_deadline(ctx)


def test_typed_frames_from_libzmq_and_the_socket_keeps_working() -> None:
    """A pyzmq (libzmq) peer sends a bad message then good ones: the bad one raises
    DecodeError, the next ones decode."""
    zmq = pytest.importorskip("zmq")
    zctx = zmq.Context()
    ctx = zeropipe.Context()
    try:
        pull = _timeouts(ctx.socket(zeropipe.PULL))
        push = _timeouts(zctx.socket(zmq.PUSH))
        try:
            pull.bind("tcp://127.0.0.1:*")
            push.connect(pull.last_endpoint)
            push.send_multipart([b"ZP\x01\x01zptest.reg.Leg", b'{"qty": "many"}'])
            push.send_multipart([b"ZP\x09\x01zptest.reg.Leg", b"{}"])
            push.send_multipart(encode_message(ORDER, "json"))
            push.send_multipart([b"ZP\x01\x01zptest.reg.Leg", b'{"venue":"XLON","qty":2}'])
            with pytest.raises(DecodeError, match="'qty'"):
                decode_message(pull.recv_multipart())
            with pytest.raises(DecodeError, match="version 9"):
                decode_message(pull.recv_multipart())
            assert decode_message(pull.recv_multipart()) == ORDER
            assert decode_message(pull.recv_multipart(), expected=Leg) == Leg("XLON", 2)
        finally:
            push.close()
            pull.close()
    finally:
        term_with_deadline(ctx)
        term_with_deadline(zctx)
