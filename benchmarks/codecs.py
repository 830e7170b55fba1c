"""Codec benchmark: ``python -m benchmarks.codecs [--quick] [--rounds N] ...`` (issue 5, "Speed").

Micro: one market-data ``Trade`` through every codec, zeropipe's typed path
(``codec.encode(trade)`` / ``codec.decode(Trade, data)`` on a ``@message`` dataclass) next to
the raw library on its own native object in the same run.  Process CPU time; each case is
timed best-of-3 over N calls (N calibrated to ~0.2 s), in rounds that interleave typed and
raw case by case; the typed/raw ratios are taken within a round and their median is reported.
Every path is checked to round-trip, and typed and raw bytes are compared, before timing.

End to end: PUSH -> PULL over tcp in two fresh processes per run (the receiver binds, starts
the sender and takes the timestamps, as in ``benchmarks.run``): zeropipe sockets carrying
zeropipe's typed path against pyzmq sockets carrying the raw library, msgs/s and their ratio.

Results go to ``benchmarks/results/codecs-<timestamp>.json``; see benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import importlib
import io
import json
import os
import platform
import pstats
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache, partial
from importlib import metadata
from itertools import repeat
from pathlib import Path
from typing import IO, Any

from benchmarks.impl import close_quietly, impl_version, last_endpoint, load_impl
from benchmarks.procs import (
    ROOT,
    WATCHDOG_EXIT,
    last_line,
    run_bounded,
    start_watchdog,
    tail,
    worker_env,
)
from benchmarks.report import fmt_number

RESULTS_DIR = Path(__file__).resolve().parent / "results"
DEFAULT_ROUNDS, QUICK_ROUNDS = 3, 1
TARGET_S, QUICK_TARGET_S = 0.2, 0.05  # length of one timing of N calls
REPEATS = 3  # timings per case and round; the best one counts
GOAL = 2.0  # typed encode+decode may cost at most this many times the raw library's

CODECS = ("json", "bson", "protobuf", "thrift-binary", "thrift-compact", "msgpack")
E2E_CODECS = ("protobuf", "json")
E2E_MODES = ("bytes", "payload", "frames", "send_message")
E2E_COUNT, QUICK_E2E_COUNT = 300_000, 40_000
E2E_BUDGET_S, QUICK_E2E_BUDGET_S = 3.0, 1.0
# typed-frame header of the wire format (docs/typed-messages.md): b"ZP", version 1, codec id
WIRE_IDS = {
    "json": 1,
    "bson": 2,
    "protobuf": 3,
    "thrift-binary": 4,
    "thrift-compact": 5,
    "msgpack": 128,
}
TYPE_NAME = "bench.Trade"
MSGPACK_EXAMPLE_ENV = "ZEROPIPE_BENCH_MSGPACK_EXAMPLE"

# The Trade of the research (shared/research/codecs.md section 5).
TRADE: dict[str, Any] = {
    "id": 123456789012,
    "symbol": "AAPL",
    "price": 187.25,
    "qty": 300,
    "ts": 1732600000123456789,
    "tags": ["momentum", "lit", "retail"],
    "venue": "XNAS",
}


# -- the two sides: zeropipe's typed path and the raw library ---------------------------------


@dataclass
class CodecPath:
    """One way to put a Trade on the wire: ``enc(*enc_args)`` -> bytes, and
    ``dec(*dec_prefix, data)`` -> an object equal to ``obj``."""

    label: str
    obj: Any
    enc: Callable[..., bytes]
    enc_args: tuple[Any, ...]
    dec: Callable[..., Any]
    dec_prefix: tuple[Any, ...] = ()

    def encode(self) -> bytes:
        return self.enc(*self.enc_args)

    def decode(self, data: bytes) -> Any:
        return self.dec(*self.dec_prefix, data)

    def encoder(self) -> Callable[[], bytes]:
        """A no-argument encode, for the senders' loops."""
        return partial(self.enc, *self.enc_args) if self.enc_args else self.enc

    def decoder(self) -> Callable[[bytes], Any]:
        """A one-argument decode, for the receivers' loops."""
        return partial(self.dec, *self.dec_prefix) if self.dec_prefix else self.dec


@cache
def typed_trade() -> tuple[type, Any]:
    """The ``Trade`` @message class and the benchmark's instance (imports zeropipe)."""
    from zeropipe.codecs import field, message

    @message(TYPE_NAME)
    class Trade:
        id: int = field(1, "int64")
        symbol: str = field(2)
        price: float = field(3)
        qty: int = field(4, "int32")
        ts: int = field(5, "int64")
        tags: list[str] = field(6)
        venue: str = field(7)

    return Trade, Trade(**TRADE)


def typed_codec(name: str) -> Any:
    """zeropipe's codec ``name`` from its registry (the msgpack example plugin, when asked)."""
    from zeropipe.codecs import registry

    if name == "msgpack" and os.environ.get(MSGPACK_EXAMPLE_ENV):
        _register_msgpack_example(registry)
    return registry.get(name)


def _register_msgpack_example(registry: Any) -> None:
    """Register examples/zeropipe-msgpack from the source tree unless a msgpack codec is there."""
    try:
        registry.get("msgpack")
        return
    except Exception:
        pass
    sys.path.insert(0, str(ROOT / "examples" / "zeropipe-msgpack"))
    plugin = importlib.import_module("zeropipe_msgpack")
    registry.register(plugin.MsgpackCodec())


def typed_path(name: str) -> CodecPath:
    cls, trade = typed_trade()
    codec = typed_codec(name)
    return CodecPath("@message dataclass", trade, codec.encode, (trade,), codec.decode, (cls,))


def raw_path(name: str) -> CodecPath:
    """The raw library on its own native object (no zeropipe import)."""
    return _RAW[name]()


def _raw_json() -> CodecPath:
    import orjson

    # proto3 JSON: int64 as decimal strings, so the bytes are the typed path's
    doc = {**TRADE, "id": str(TRADE["id"]), "ts": str(TRADE["ts"])}
    return CodecPath("orjson dumps/loads, dict", doc, orjson.dumps, (doc,), orjson.loads)


def _raw_bson() -> CodecPath:
    import bson

    doc = dict(TRADE)
    label = "pymongo bson encode/decode, dict" + ("" if bson.has_c() else " (NO C extension)")
    return CodecPath(label, doc, bson.encode, (doc,), bson.decode)


def _raw_msgpack() -> CodecPath:
    import msgpack

    doc = dict(TRADE)
    return CodecPath("msgpack packb/unpackb, dict", doc, msgpack.packb, (doc,), msgpack.unpackb)


@cache
def pb_native_class() -> Any:
    """A upb message class for Trade built from a FileDescriptorProto in a private pool:
    what protoc's ``_pb2`` module does at import (same class, same speed)."""
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    FDP = descriptor_pb2.FieldDescriptorProto
    fdp = descriptor_pb2.FileDescriptorProto(
        name="benchraw/trade.proto", package="benchraw", syntax="proto3"
    )
    msg = fdp.message_type.add(name="Trade")
    fields = [
        ("id", FDP.TYPE_INT64),
        ("symbol", FDP.TYPE_STRING),
        ("price", FDP.TYPE_DOUBLE),
        ("qty", FDP.TYPE_INT32),
        ("ts", FDP.TYPE_INT64),
        ("tags", FDP.TYPE_STRING),
        ("venue", FDP.TYPE_STRING),
    ]
    for number, (name, kind) in enumerate(fields, 1):
        label = FDP.LABEL_REPEATED if name == "tags" else FDP.LABEL_OPTIONAL
        msg.field.add(name=name, number=number, type=kind, label=label, json_name=name)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("benchraw.Trade"))


def _raw_protobuf() -> CodecPath:
    from google.protobuf.internal import api_implementation

    pb_class = pb_native_class()
    msg = pb_class(**TRADE)
    label = f"{api_implementation.Type()} message SerializeToString/FromString"
    return CodecPath(label, msg, msg.SerializeToString, (), pb_class.FromString)


@cache
def thrift_native_class() -> type:
    """Trade as ``thrift --gen py:dynamic,slots`` writes it: a ``TBase`` subclass with
    ``__slots__`` and a ``thrift_spec`` (the thrift package's own struct base class)."""
    from thrift.protocol.TBase import TBase
    from thrift.Thrift import TType

    class ThriftTrade(TBase):
        __slots__ = ("id", "price", "qty", "symbol", "tags", "ts", "venue")
        thrift_spec = (
            None,
            (1, TType.I64, "id", None, None),
            (2, TType.STRING, "symbol", "UTF8", None),
            (3, TType.DOUBLE, "price", None, None),
            (4, TType.I32, "qty", None, None),
            (5, TType.I64, "ts", None, None),
            (6, TType.LIST, "tags", (TType.STRING, "UTF8", False), None),
            (7, TType.STRING, "venue", "UTF8", None),
        )

        def __init__(
            self,
            id: Any = None,
            symbol: Any = None,
            price: Any = None,
            qty: Any = None,
            ts: Any = None,
            tags: Any = None,
            venue: Any = None,
        ) -> None:
            self.id = id
            self.symbol = symbol
            self.price = price
            self.qty = qty
            self.ts = ts
            self.tags = tags
            self.venue = venue

    return ThriftTrade


class FastInput:
    """The least ``fastbinary.decode_*`` reads from: it is the protocol (length limits) and
    its own transport (``trans.cstringio_buf``)."""

    __slots__ = ("container_length_limit", "cstringio_buf", "string_length_limit", "trans")

    def __init__(self, data: bytes) -> None:
        self.cstringio_buf = io.BytesIO(data)
        self.trans = self
        self.string_length_limit = self.container_length_limit = len(data)

    def cstringio_refill(self, rest: bytes, wanted: int) -> bytes:
        raise EOFError("truncated")


def _raw_thrift(compact: bool) -> CodecPath:
    from thrift.protocol import fastbinary

    cls = thrift_native_class()
    obj = cls(**TRADE)
    type_args = [cls, cls.thrift_spec]
    encode = fastbinary.encode_compact if compact else fastbinary.encode_binary
    decode_struct = fastbinary.decode_compact if compact else fastbinary.decode_binary

    def decode(data: bytes) -> Any:
        return decode_struct(None, FastInput(data), type_args)

    label = "fastbinary direct, TBase class"
    return CodecPath(label, obj, encode, (obj, type_args), decode)


def conventional_thrift_path(compact: bool) -> CodecPath:
    """Context only: the thrift package's documented way, ``TSerialization`` with the
    accelerated protocol factory (a TMemoryBuffer and a protocol object per call)."""
    from thrift import TSerialization
    from thrift.protocol import TBinaryProtocol, TCompactProtocol

    cls = thrift_native_class()
    obj = cls(**TRADE)
    factory = (
        TCompactProtocol.TCompactProtocolAcceleratedFactory()
        if compact
        else TBinaryProtocol.TBinaryProtocolAcceleratedFactory()
    )

    def decode(data: bytes) -> Any:
        return TSerialization.deserialize(cls(), data, factory)

    label = "TSerialization + accelerated factory"
    return CodecPath(label, obj, TSerialization.serialize, (obj, factory), decode)


def context_protobuf_path() -> CodecPath:
    """Context only: what an application pays with protobuf's own objects when its data is
    not a upb message already: build the message from values, and read every field back."""
    pb_class = pb_native_class()
    values = dict(TRADE)

    def build_and_serialize(v: dict[str, Any]) -> bytes:
        data: bytes = pb_class(**v).SerializeToString()
        return data

    def parse_and_read(data: bytes) -> dict[str, Any]:
        m = pb_class.FromString(data)
        return {
            "id": m.id,
            "symbol": m.symbol,
            "price": m.price,
            "qty": m.qty,
            "ts": m.ts,
            "tags": m.tags[:],
            "venue": m.venue,
        }

    label = "upb: built from values / all fields read"
    return CodecPath(label, values, build_and_serialize, (values,), parse_and_read)


def context_json_path() -> CodecPath:
    """Context only: orjson serializing the @message dataclass itself (in C: field names as
    keys, int64 as JSON numbers, so not proto3 JSON) and ``Trade(**loads(data))`` with no
    checks: a floor for a typed JSON path, not a fair alternative."""
    import orjson

    cls, trade = typed_trade()

    def decode(data: bytes) -> Any:
        return cls(**orjson.loads(data))

    label = "orjson on the dataclass, no checks"
    return CodecPath(label, trade, orjson.dumps, (trade,), decode)


_RAW: dict[str, Callable[[], CodecPath]] = {
    "json": _raw_json,
    "bson": _raw_bson,
    "protobuf": _raw_protobuf,
    "thrift-binary": partial(_raw_thrift, False),
    "thrift-compact": partial(_raw_thrift, True),
    "msgpack": _raw_msgpack,
}
_CONTEXT: dict[str, Callable[[], CodecPath]] = {
    "json": context_json_path,
    "protobuf": context_protobuf_path,
    "thrift-binary": partial(conventional_thrift_path, False),
    "thrift-compact": partial(conventional_thrift_path, True),
}


# -- micro: timing ---------------------------------------------------------------------------


def _loop0(n: int, f: Callable[[], Any]) -> None:
    for _ in repeat(None, n):
        f()


def _loop1(n: int, f: Callable[[Any], Any], a: Any) -> None:
    for _ in repeat(None, n):
        f(a)


def _loop2(n: int, f: Callable[[Any, Any], Any], a: Any, b: Any) -> None:
    for _ in repeat(None, n):
        f(a, b)


_LOOPS: tuple[Callable[..., None], ...] = (_loop0, _loop1, _loop2)


@dataclass
class Timed:
    """One micro case: ``call(*args)`` repeated ``n`` times per timing."""

    codec: str
    path: str  # "typed", "raw" or "context"
    op: str  # "encode" or "decode"
    call: Callable[..., Any]
    args: tuple[Any, ...]
    n: int = 0

    @property
    def key(self) -> str:
        return f"{self.codec}/{self.path}/{self.op}"

    def run(self, n: int) -> float:
        """Process CPU seconds for ``n`` calls."""
        loop = _LOOPS[len(self.args)]
        start = time.process_time()
        loop(n, self.call, *self.args)
        return time.process_time() - start

    def calibrate(self, target_s: float) -> None:
        n = 16
        while True:
            elapsed = self.run(n)
            if elapsed >= min(0.02, target_s / 2):
                break
            n *= 8 if elapsed < 0.002 else 2
        self.n = max(1, round(n * target_s / elapsed))

    def best_ns(self) -> float:
        """Best of REPEATS timings of ``n`` calls, per call in ns."""
        return min(self.run(self.n) for _ in range(REPEATS)) / self.n * 1e9


@dataclass
class MicroCodec:
    """What is measured for one codec."""

    name: str
    paths: dict[str, CodecPath]  # typed, raw, and maybe context
    sizes: dict[str, int]
    same_bytes: dict[str, bool]  # per path: its bytes are the typed path's
    cases: list[Timed]


def prepare_micro(name: str) -> MicroCodec:
    """Build both paths, check round trips and compare bytes; raises on any mismatch."""
    paths = {"typed": typed_path(name), "raw": raw_path(name)}
    if name in _CONTEXT:
        paths["context"] = _CONTEXT[name]()
    sizes: dict[str, int] = {}
    payloads: dict[str, bytes] = {}
    cases: list[Timed] = []
    for kind, p in paths.items():
        data = p.encode()
        back = p.decode(data)
        if back != p.obj:
            raise AssertionError(f"{name} {kind}: the round trip changed the object: {back!r}")
        sizes[kind], payloads[kind] = len(data), data
        cases.append(Timed(name, kind, "encode", p.enc, p.enc_args))
        cases.append(Timed(name, kind, "decode", p.dec, (*p.dec_prefix, data)))
    same = {kind: data == payloads["typed"] for kind, data in payloads.items()}
    if not same["raw"]:  # then the typed path must at least read the raw library's bytes
        typed_obj = paths["typed"].decode(payloads["raw"])
        if typed_obj != paths["typed"].obj:
            raise AssertionError(f"{name}: the typed path decodes the raw bytes as {typed_obj!r}")
    return MicroCodec(name, paths, sizes, same, cases)


def run_micro(codecs: list[MicroCodec], rounds: int, target_s: float) -> list[dict[str, Any]]:
    """Raw results: one entry per round x case (ns per call)."""
    for mc in codecs:
        for case in mc.cases:
            case.calibrate(target_s)
    raws: list[dict[str, Any]] = []
    for rnd in range(1, rounds + 1):
        for mc in codecs:
            for op in ("encode", "decode"):
                ops = [c for c in mc.cases if c.op == op]
                for case in ops if rnd % 2 else ops[::-1]:  # typed first on odd rounds
                    ns = case.best_ns()
                    raws.append(
                        {"round": rnd, "key": case.key, "n": case.n, "ns": ns}
                        | {"codec": case.codec, "path": case.path, "op": case.op}
                    )
            line = "  ".join(
                f"{r['path']} {r['op']} {r['ns']:.0f} ns"
                for r in raws
                if r["round"] == rnd and r["codec"] == mc.name
            )
            print(f"[{rnd}/{rounds}] {mc.name:<15} {line}", flush=True)
    return raws


def _ratios(ops: list[str], den: str, by_round: dict[int, dict[str, float]]) -> list[float]:
    """Per round: typed time / ``den`` time, summed over ``ops``."""
    return [
        sum(v[f"typed/{op}"] for op in ops) / sum(v[f"{den}/{op}"] for op in ops)
        for v in by_round.values()
    ]


def summarize_micro(codecs: list[MicroCodec], raws: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per codec: median ns per path and op, and the median of the per-round ratios."""
    rows = []
    for mc in codecs:
        by_round: dict[int, dict[str, float]] = {}
        for r in raws:
            if r["codec"] == mc.name:
                by_round.setdefault(r["round"], {})[f"{r['path']}/{r['op']}"] = r["ns"]
        medians = {
            key: statistics.median(v[key] for v in by_round.values())
            for key in next(iter(by_round.values()))
        }

        row: dict[str, Any] = {
            "codec": mc.name,
            "labels": {k: p.label for k, p in mc.paths.items()},
            "bytes": mc.sizes,
            "same_bytes": mc.same_bytes,
            "median_ns": medians,
            "calls_per_timing": {c.key: c.n for c in mc.cases},
        }
        for den in [k for k in mc.paths if k != "typed"]:
            for what, ops in (("encode", ["encode"]), ("decode", ["decode"])):
                rs = _ratios(ops, den, by_round)
                row[f"ratio_{what}_vs_{den}"] = statistics.median(rs)
            rs = _ratios(["encode", "decode"], den, by_round)
            row[f"ratios_vs_{den}"] = rs
            row[f"ratio_vs_{den}"] = statistics.median(rs)
        row["meets_goal"] = row["ratio_vs_raw"] <= GOAL
        rows.append(row)
    return rows


def _us(ns: float) -> str:
    return f"{ns / 1e3:.2f} us ({fmt_number(1e9 / ns)}/s)"


def format_micro(rows: list[dict[str, Any]], rounds: int) -> str:
    header = ["codec", "path", "object / calls", "encode", "decode", "bytes", "typed/this"]
    lines = [header]
    for row in rows:
        for kind in ("typed", "raw", "context"):
            if f"{kind}/encode" not in row["median_ns"]:
                continue
            ratio = ""
            if kind != "typed":
                r = row[f"ratio_vs_{kind}"]
                enc, dec = row[f"ratio_encode_vs_{kind}"], row[f"ratio_decode_vs_{kind}"]
                ratio = f"{r:.2f}x (enc {enc:.2f}x, dec {dec:.2f}x)"
                if kind == "raw":
                    ratio += "  ok" if row["meets_goal"] else f"  MISSES <= {GOAL:g}x"
            size = str(row["bytes"][kind])
            if not row["same_bytes"][kind]:
                size += " (differ)"
            lines.append(
                [
                    row["codec"] if kind == "typed" else "",
                    kind,
                    row["labels"][kind],
                    _us(row["median_ns"][f"{kind}/encode"]),
                    _us(row["median_ns"][f"{kind}/decode"]),
                    size,
                    ratio,
                ]
            )
    legend = [
        f"Micro: median over {rounds} round(s) of the best of {REPEATS} timings, process CPU"
        " time per call (lower is better).",
        "typed/this = (typed encode + decode) / (this path's encode + decode), per round, median"
        f"; goal: typed <= {GOAL:g}x raw. 'context' rows are for reading only.",
        "",
    ]
    return "\n".join([*legend, *_columns(lines)])


def _columns(lines: list[list[str]]) -> list[str]:
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    text = ["  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) for line in lines]
    text.insert(1, "  ".join("-" * w for w in widths))
    return [t.rstrip() for t in text]


def profile_typed(mc: MicroCodec, calls: int) -> str:
    """cProfile of ``calls`` typed encodes and decodes: where the typed path spends its time."""
    out = []
    for op in ("encode", "decode"):
        case = next(c for c in mc.cases if c.path == "typed" and c.op == op)
        profiler = cProfile.Profile()
        profiler.enable()
        _LOOPS[len(case.args)](calls, case.call, *case.args)
        profiler.disable()
        buf = io.StringIO()
        stats = pstats.Stats(profiler, stream=buf)
        stats.sort_stats("tottime").print_stats(12)
        out.append(f"--- {mc.name} typed {op}: {calls} calls (cProfile adds its own overhead)")
        out.append(_trim_pstats(buf.getvalue()))
    return "\n".join(out)


def _trim_pstats(text: str) -> str:
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if "ncalls" in line), 0)
    return "\n".join(line for line in lines[start:] if line.strip())


# -- end to end: PUSH -> PULL over tcp, two processes per run ----------------------------------

E2E_PREFIX = "CODEC-E2E "
POLL_MS = 100
STARTUP_S = 15.0
PROGRESS_MS = 5_000
CHUNK = 1024  # messages between two clock reads
SENDER_LINGER_MS = 10_000
SENDER_GRACE_S = 2.0
TEARDOWN_SLACK_S = 15.0


@dataclass(frozen=True)
class E2ECase:
    """A codec and how its messages travel: ``bytes`` (the encoded Trade, encoded once and
    not decoded: the sockets alone, for reference), ``payload`` (one frame, encoded by the
    sender and decoded by the receiver for every message), ``frames`` (typed-frame header +
    payload: ``codecs.encode_message``/``decode_message`` and ``send_multipart``/
    ``recv_multipart``), or ``send_message`` (zeropipe's typed socket API; pyzmq sends and
    receives the same two frames as in ``frames``)."""

    codec: str
    mode: str

    @property
    def name(self) -> str:
        return f"e2e/tcp/{self.codec}/{self.mode}"

    def mode_for(self, impl: str) -> str:
        return "frames" if impl == "pyzmq" and self.mode == "send_message" else self.mode


def header_frame(codec: str) -> bytes:
    return b"ZP\x01" + bytes((WIRE_IDS[codec],)) + TYPE_NAME.encode()


def e2e_codecs(impl: str, codec: str, mode: str) -> tuple[Any, Callable[[Any], None], Any]:
    """(the expected object, ``send_one(sock)``, ``recv_one(sock) -> object``) for a worker.

    zeropipe runs zeropipe's typed path; pyzmq runs the raw library on its native object.
    """
    if impl == "zeropipe":
        path = typed_path(codec)
        if mode == "frames":
            from zeropipe.codecs import decode_message, encode_message

            cls, trade = typed_trade()
            codec_obj = typed_codec(codec)
            if encode_message(trade, codec_obj)[0] != header_frame(codec):
                raise AssertionError("zeropipe's header frame is not the documented one")

            def send_frames(sock: Any) -> None:
                sock.send_multipart(encode_message(trade, codec_obj))

            def recv_frames(sock: Any) -> Any:
                return decode_message(sock.recv_multipart(), expected=cls)

            return trade, send_frames, recv_frames
        if mode == "send_message":
            return path.obj, *_send_message_fns(codec)
    else:
        path = raw_path(codec)
    encode, decode = path.encoder(), path.decoder()
    if mode == "bytes":  # the socket alone: the payload is encoded once, never decoded
        data = encode()

        def send_bytes(sock: Any) -> None:
            sock.send(data)

        def recv_bytes(sock: Any) -> Any:
            return sock.recv()

        return data, send_bytes, recv_bytes
    if mode == "payload":

        def send_payload(sock: Any) -> None:
            sock.send(encode())

        def recv_payload(sock: Any) -> Any:
            return decode(sock.recv())

        return path.obj, send_payload, recv_payload
    header = header_frame(codec)

    def send_two(sock: Any) -> None:
        sock.send_multipart([header, encode()])

    def recv_two(sock: Any) -> Any:
        head, payload = sock.recv_multipart()
        if head != header:
            raise AssertionError(f"unexpected header frame {head!r}")
        return decode(payload)

    return path.obj, send_two, recv_two


def _send_message_fns(codec: str) -> tuple[Callable[[Any], None], Callable[[Any], Any]]:
    """send/recv through ``sock.send_message``/``recv_message``, which take the codec and
    the expected type where their signatures say so."""
    import inspect

    import zeropipe

    cls, trade = typed_trade()
    probe = zeropipe.Context()
    sock = probe.socket(zeropipe.PUSH)
    try:
        send_params = inspect.signature(sock.send_message).parameters
        recv_params = inspect.signature(sock.recv_message).parameters
    finally:
        close_quietly(sock, probe)
    send_kw = {"codec": codec} if "codec" in send_params else {}
    recv_kw = {"expected": cls} if "expected" in recv_params else {}

    def send(sock: Any) -> None:
        sock.send_message(trade, **send_kw)

    def recv(sock: Any) -> Any:
        return sock.recv_message(**recv_kw)

    return send, recv


def has_send_message() -> bool:
    """Whether zeropipe sockets have ``send_message`` (checked in a child process, so this
    process never imports zeropipe's engine)."""
    code = (
        "import zeropipe as z; c = z.Context(); s = c.socket(z.PUSH); "
        "print(hasattr(s, 'send_message') and hasattr(s, 'recv_message')); s.close(0); c.term()"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=worker_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return out.stdout.strip() == "True"


class _Sender:
    """The sender child of a receiver process."""

    def __init__(self, args: list[str]) -> None:
        self._stderr: IO[str] = tempfile.TemporaryFile("w+")  # noqa: SIM115 (closed in stop)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.codecs", "_sender", *args],
            cwd=ROOT,
            env=worker_env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=self._stderr,
        )

    def stderr(self) -> str:
        self._stderr.seek(0)
        return self._stderr.read()

    def check_alive(self) -> None:
        code = self.proc.poll()
        if code is not None and code != 0:
            text = self.stderr()
            raise RuntimeError(f"sender exited with code {code}: {last_line(text)}\n{tail(text)}")

    def stop(self, grace_s: float) -> str:
        """Wait up to ``grace_s`` for the sender, then kill it; a note unless it exited 0."""
        if self._stderr.closed:  # stopped already
            return ""
        try:
            code = self.proc.wait(timeout=grace_s) if grace_s > 0 else self.proc.poll()
        except subprocess.TimeoutExpired:
            code = None
        if code is None:
            self.proc.kill()
            self.proc.wait()
            note = f"sender still running after {grace_s:.1f} s; killed"
        else:
            note = "" if code == 0 else f"sender exit {code}: {last_line(self.stderr())}"
        self._stderr.close()
        return note


def _emit(result: dict[str, Any]) -> None:
    print(E2E_PREFIX + json.dumps(result), flush=True)


def receiver_main(args: argparse.Namespace) -> None:
    """Bind a PULL, start the sender, time ``args.count`` messages, emit the result."""
    start_watchdog(args.lifetime)
    try:
        zmq = load_impl(args.impl)
        version = impl_version(zmq)
        expected, _, recv_one = e2e_codecs(args.impl, args.codec, args.mode)
        ctx = zmq.Context()
        sock = ctx.socket(zmq.PULL)
        try:
            sock.bind("tcp://127.0.0.1:*")
            sender = _Sender(
                [
                    args.impl,
                    args.codec,
                    args.mode,
                    last_endpoint(sock),
                    str(args.count),
                    f"--lifetime={args.lifetime}",
                ]
            )
            try:
                metrics = _measure(zmq, sock, sender, recv_one, expected, args)
                note = sender.stop(0 if metrics["capped"] else SENDER_GRACE_S)
                # a sender cut short by the budget is killed on purpose: not a warning
                warnings = [note] if note and not metrics["capped"] else []
                _emit({"ok": True, "metrics": metrics, "warnings": warnings, "version": version})
            finally:
                sender.stop(0)
        finally:
            close_quietly(sock, ctx)
    except Exception as exc:
        _emit({"ok": False, "error": f"{type(exc).__name__}: {exc}"})


def _measure(
    zmq: Any,
    sock: Any,
    sender: _Sender,
    recv_one: Callable[[Any], Any],
    expected: Any,
    args: argparse.Namespace,
) -> dict[str, Any]:
    sock.rcvtimeo = POLL_MS
    deadline = time.monotonic() + STARTUP_S
    while True:
        try:
            first = recv_one(sock)
            break
        except zmq.Again:
            sender.check_alive()
            if time.monotonic() > deadline:
                raise RuntimeError(f"no message within {STARTUP_S:.0f} s") from None
    t_first = time.perf_counter()
    sock.rcvtimeo = PROGRESS_MS
    stop_at = t_first + args.budget
    received, now, last = 1, t_first, first
    while received < args.count and now < stop_at:
        n = min(CHUNK, args.count - received)
        try:
            for _ in range(n):
                last = recv_one(sock)
        except zmq.Again:
            sender.check_alive()
            raise RuntimeError(f"stalled after {received} messages") from None
        received += n
        now = time.perf_counter()
    if first != expected or last != expected:
        raise AssertionError(f"decoded {last!r}, expected {expected!r}")
    if received < 2 or now <= t_first:
        raise RuntimeError("too few messages to compute a rate")
    return {
        "msgs_per_s": (received - 1) / (now - t_first),
        "received": received,
        "elapsed_s": now - t_first,
        "capped": received < args.count,
    }


def sender_main(args: argparse.Namespace) -> None:
    start_watchdog(args.lifetime)
    zmq = load_impl(args.impl)
    _, send_one, _ = e2e_codecs(args.impl, args.codec, args.mode)
    ctx = zmq.Context()
    sock = ctx.socket(zmq.PUSH)
    try:
        sock.linger = SENDER_LINGER_MS
        sock.sndtimeo = PROGRESS_MS * 4
        sock.connect(args.endpoint)
        for _ in repeat(None, args.count):
            send_one(sock)
    finally:
        sock.close()
        ctx.term()


def run_e2e_one(impl: str, case: E2ECase, count: int, budget_s: float) -> dict[str, Any]:
    """One receiver process (and its sender) for ``case`` and ``impl``."""
    lifetime = STARTUP_S + budget_s + TEARDOWN_SLACK_S
    cmd = [sys.executable, "-m", "benchmarks.codecs", "_receiver", impl, case.codec]
    cmd += [case.mode_for(impl), str(count), f"--budget={budget_s}", f"--lifetime={lifetime}"]
    start = time.perf_counter()
    out, err, returncode, timed_out = run_bounded(cmd, lifetime + 5)
    lines = [json.loads(x[len(E2E_PREFIX) :]) for x in out.splitlines() if x.startswith(E2E_PREFIX)]
    hung = timed_out or returncode == WATCHDOG_EXIT
    raw: dict[str, Any]
    if not lines:
        reason = "hung, killed" if hung else f"receiver exit code {returncode}"
        raw = {"ok": False, "error": f"{reason}: {last_line(err)}", "detail": tail(err)}
    else:
        raw = lines[0]
        raw.setdefault("warnings", [])
        raw["warnings"] += [f"teardown: {x.get('error')}" for x in lines[1:] if not x.get("ok")]
        if hung:
            raw["warnings"].append("receiver hung after reporting; killed")
    raw.update(
        case=case.name,
        impl=impl,
        mode=case.mode_for(impl),
        wall_s=time.perf_counter() - start,
        loadavg_1m=os.getloadavg()[0],
    )
    return raw


def run_e2e(cases: list[E2ECase], rounds: int, count: int, budget_s: float) -> list[Any]:
    raws = []
    for rnd in range(1, rounds + 1):
        order = ("zeropipe", "pyzmq") if rnd % 2 else ("pyzmq", "zeropipe")
        for case in cases:
            for impl in order:
                raw = run_e2e_one(impl, case, count, budget_s)
                raw["round"] = rnd
                raws.append(raw)
                if raw["ok"]:
                    m = raw["metrics"]
                    text = f"{fmt_number(m['msgs_per_s'])} msgs/s"
                    text += " (capped)" if m["capped"] else ""
                    text += f" warnings: {raw['warnings']}" if raw["warnings"] else ""
                else:
                    text = f"ERROR {raw['error'][:300]}"
                print(f"[{rnd}/{rounds}] {case.name:<28} {impl:<8} {text}", flush=True)
    return raws


def summarize_e2e(cases: list[E2ECase], raws: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for case in cases:
        per: dict[str, dict[int, float]] = {"zeropipe": {}, "pyzmq": {}}
        errors: dict[str, list[str]] = {"zeropipe": [], "pyzmq": []}
        for r in raws:
            if r["case"] != case.name:
                continue
            if r["ok"]:
                per[r["impl"]][r["round"]] = r["metrics"]["msgs_per_s"]
            else:
                errors[r["impl"]].append(f"round {r['round']}: {r['error']}")
        ratios = [
            v / per["pyzmq"][rnd] for rnd, v in per["zeropipe"].items() if rnd in per["pyzmq"]
        ]
        rows.append(
            {
                "case": case.name,
                "modes": {impl: case.mode_for(impl) for impl in per},
                "median_msgs_per_s": {
                    impl: statistics.median(v.values()) if v else None for impl, v in per.items()
                },
                "ratios": ratios,
                "ratio_median": statistics.median(ratios) if ratios else None,
                "errors": errors,
            }
        )
    return rows


def format_e2e(rows: list[dict[str, Any]], rounds: int) -> str:
    lines = [["case", "zeropipe (typed path)", "pyzmq (raw library)", "zeropipe/pyzmq"]]
    for row in rows:
        cells = []
        for impl in ("zeropipe", "pyzmq"):
            value = row["median_msgs_per_s"][impl]
            n_err = len(row["errors"][impl])
            cell = f"ERROR ({n_err}/{rounds})" if value is None else f"{fmt_number(value)} msgs/s"
            if value is not None and n_err:
                cell += f" [{n_err} err]"
            cells.append(cell)
        ratio = row["ratio_median"]
        lines.append([row["case"], *cells, "-" if ratio is None else f"{ratio:.3g}x"])
    legend = [
        f"End to end: PUSH->PULL over tcp, separate processes, median over {rounds} round(s);"
        " higher is better; ratio per round, median.",
        "",
    ]
    return "\n".join([*legend, *_columns(lines)])


# -- orchestration ---------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.codecs",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="1 round, shorter timings (< 1 min)")
    parser.add_argument("--rounds", type=int, help=f"rounds (default {DEFAULT_ROUNDS}, quick 1)")
    parser.add_argument("--only", type=re.compile, help="codecs whose name matches (re.search)")
    parser.add_argument("--no-micro", action="store_true", help="skip the micro benchmark")
    parser.add_argument("--no-e2e", action="store_true", help="skip the end-to-end benchmark")
    parser.add_argument(
        "--e2e-codecs",
        default=",".join(E2E_CODECS),
        help=f"codecs of the end-to-end runs (default {','.join(E2E_CODECS)}; 'all')",
    )
    parser.add_argument(
        "--profile",
        nargs="?",
        const="missed",
        metavar="CODECS",
        help="cProfile the typed path of the codecs that miss the goal (or of CODECS, "
        "comma-separated, or 'all') after the micro benchmark",
    )
    parser.add_argument(
        "--msgpack-example",
        action="store_true",
        help="register examples/zeropipe-msgpack from the source tree when no msgpack "
        "codec plugin is installed",
    )
    args = parser.parse_args(argv)
    if args.rounds is not None and args.rounds < 1:
        parser.error("--rounds must be positive")
    if args.rounds is None:
        args.rounds = QUICK_ROUNDS if args.quick else DEFAULT_ROUNDS
    e2e = CODECS if args.e2e_codecs == "all" else tuple(args.e2e_codecs.split(","))
    unknown = sorted(set(e2e) - set(CODECS))
    if unknown:
        parser.error(f"--e2e-codecs: unknown {unknown}; choose from {', '.join(CODECS)}")
    args.e2e = [c for c in e2e if not args.only or args.only.search(c)]
    return args


def _worker_args(role: str, argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=f"python -m benchmarks.codecs {role}")
    parser.add_argument("impl", choices=("zeropipe", "pyzmq"))
    parser.add_argument("codec", choices=CODECS)
    parser.add_argument("mode", choices=E2E_MODES)
    if role == "_sender":
        parser.add_argument("endpoint")
    parser.add_argument("count", type=int)
    parser.add_argument("--lifetime", type=float, required=True)
    if role == "_receiver":
        parser.add_argument("--budget", type=float, required=True)
    return parser.parse_args(argv)


def codec_available(name: str) -> str:
    """ "" when both sides of codec ``name`` can run here, else why not."""
    try:
        typed_codec(name)
        raw_path(name)
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return ""


def library_versions() -> dict[str, Any]:
    out: dict[str, Any] = {}
    for dist in ("orjson", "pymongo", "protobuf", "thrift", "msgpack", "pyzmq"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = None
    try:
        from google.protobuf.internal import api_implementation

        out["protobuf_backend"] = api_implementation.Type()
    except ImportError:
        pass
    try:
        import bson

        out["bson_c_extension"] = bson.has_c()
    except ImportError:
        pass
    try:
        importlib.import_module("thrift.protocol.fastbinary")
        out["thrift_fastbinary"] = True
    except ImportError:
        out["thrift_fastbinary"] = False
    return out


def save(document: dict[str, Any], started: float) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(started))
    path = RESULTS_DIR / f"codecs-{stamp}.json"
    suffix = 1
    while path.exists():
        suffix += 1
        path = RESULTS_DIR / f"codecs-{stamp}-{suffix}.json"
    path.write_text(json.dumps(document, indent=2, default=repr) + "\n")
    return path


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "_receiver":
        receiver_main(_worker_args(argv[0], argv[1:]))
        return 0
    if argv and argv[0] == "_sender":
        sender_main(_worker_args(argv[0], argv[1:]))
        return 0
    args = parse_args(argv)
    if args.msgpack_example:
        os.environ[MSGPACK_EXAMPLE_ENV] = "1"  # the worker processes inherit it
    gc.enable()
    started = time.time()
    loadavg_start = os.getloadavg()[0]
    document: dict[str, Any] = {}
    skipped: dict[str, str] = {}
    wanted = [c for c in CODECS if not args.only or args.only.search(c)]
    for name in wanted:
        why = codec_available(name)
        if why:
            if name == "msgpack" and not args.msgpack_example:
                why += " (no plugin installed; --msgpack-example uses examples/zeropipe-msgpack)"
            skipped[name] = why
            print(f"skipping {name}: {why}", flush=True)
    names = [c for c in wanted if c not in skipped]
    e2e_names = [c for c in args.e2e if c not in skipped]
    if not (names and not args.no_micro) and not (e2e_names and not args.no_e2e):
        print("nothing to run (see --only, --no-micro, --no-e2e, --e2e-codecs)", file=sys.stderr)
        return 2
    if not args.no_micro and names:
        target = QUICK_TARGET_S if args.quick else TARGET_S
        print(f"micro: {len(names)} codec(s) x {args.rounds} round(s)", flush=True)
        micro = [prepare_micro(name) for name in names]
        raws = run_micro(micro, args.rounds, target)
        rows = summarize_micro(micro, raws)
        document["micro"] = {"raw": raws, "summary": rows, "target_s": target}
        tables = [format_micro(rows, args.rounds)]
        if args.profile:
            chosen = _profile_choice(args.profile, rows)
            profiles = {
                mc.name: profile_typed(mc, 20_000 if args.quick else 200_000)
                for mc in micro
                if mc.name in chosen
            }
            document["micro"]["profiles"] = profiles
            tables += list(profiles.values())
    else:
        tables = []
    if not args.no_e2e and e2e_names:
        modes = ["bytes", "payload", "frames"]
        if has_send_message():
            modes.append("send_message")
        else:
            print("zeropipe sockets have no send_message yet: not measured", flush=True)
        cases = [E2ECase(codec, mode) for codec in e2e_names for mode in modes]
        count = QUICK_E2E_COUNT if args.quick else E2E_COUNT
        budget = QUICK_E2E_BUDGET_S if args.quick else E2E_BUDGET_S
        print(f"end to end: {len(cases)} case(s) x 2 impls x {args.rounds} round(s)", flush=True)
        e2e_raws = run_e2e(cases, args.rounds, count, budget)
        e2e_rows = summarize_e2e(cases, e2e_raws)
        document["e2e"] = {
            "raw": e2e_raws,
            "summary": e2e_rows,
            "count": count,
            "budget_s": budget,
            "cases": [case.name for case in cases],
        }
        tables.append(format_e2e(e2e_rows, args.rounds))
    document["meta"] = {
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
        "duration_s": time.time() - started,
        "argv": argv,
        "rounds": args.rounds,
        "quick": args.quick,
        "skipped": skipped,
        "versions": library_versions(),
        "gc_enabled": gc.isenabled(),
        "python": sys.version,
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "loadavg_1m": {"start": loadavg_start, "end": os.getloadavg()[0]},
    }
    print()
    print("\n\n".join(tables))
    loads = document["meta"]["loadavg_1m"]
    print(f"\nload average (1 min): {loads['start']:.2f} at start, {loads['end']:.2f} at end")
    print(f"results: {save(document, started)}  ({document['meta']['duration_s']:.0f} s)")
    return 0


def _profile_choice(option: str, rows: list[dict[str, Any]]) -> set[str]:
    if option == "missed":
        return {row["codec"] for row in rows if not row["meets_goal"]}
    if option == "all":
        return {row["codec"] for row in rows}
    return set(option.split(","))


if __name__ == "__main__":
    sys.exit(main())
