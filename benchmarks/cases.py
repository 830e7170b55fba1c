"""Benchmark case definitions: what each case runs, how many messages, and what it reports."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

KIB = 1024
MIB = 1024 * KIB

SIZE_LABELS = {16: "16B", 256: "256B", KIB: "1KiB", 64 * KIB: "64KiB", MIB: "1MiB"}

# Messages per throughput case, scaled per size so that pyzmq takes roughly 0.5-1.5 s.
THROUGHPUT_COUNTS = {16: 1_000_000, KIB: 300_000, 64 * KIB: 20_000, MIB: 1_500}
QUICK_THROUGHPUT_COUNTS = {16: 120_000, KIB: 40_000, 64 * KIB: 3_000, MIB: 250}

BATCH_SIZE = 256  # messages per send_many() call on the zeropipe side
DELAY_COMPUTE_MS = 20.0

REQREP_SIZES = (16, KIB)
FANOUT_SIZE = 256
# Messages published per fan-out run (a multiple of the 4 topics): about 0.5-1 s for pyzmq.
FANOUT_COUNT, QUICK_FANOUT_COUNT = 400_000, 80_000
FANOUT_HWMS = (1000, 0)  # libzmq's default high-water mark, and 0 = unlimited

# CURVE PUSH->PULL over tcp (every message is one box): about 1 s for pyzmq.
CURVE_COUNTS = {16: 600_000, 64 * KIB: 5_000}
QUICK_CURVE_COUNTS = {16: 80_000, 64 * KIB: 750}
# Handshakes: timed fresh connections, after this many untimed warm-up connections.
HANDSHAKE_COUNTS, QUICK_HANDSHAKE_COUNTS = (200, 10), (60, 5)
MECHANISMS = ("null", "curve")


@dataclass(frozen=True)
class Case:
    """One benchmark case; serialised to JSON and handed to the worker processes."""

    name: str
    kind: str  # "throughput" | "batch" | "latency" | "reqrep" | "delay" | "fanout" | "handshake"
    transport: str = "tcp"
    size: int = 16
    # messages (throughput, batch, fanout: published), timed round trips (latency, reqrep),
    # reps (delay), timed connections (handshake)
    count: int = 0
    copy: bool = True
    warmup: int = 0
    burst: int = 1
    compute_ms: float = 0.0
    batch_size: int = BATCH_SIZE
    hwm: int | None = None  # SNDHWM and RCVHWM of every data socket (fanout); None: default
    # Security mechanism: "null", or "curve" (the binding receiver is the CURVE server with a
    # keypair made in that run, each sender a CURVE client with its own keypair).
    mechanism: str = "null"

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Case:
        return cls(**json.loads(text))


@dataclass(frozen=True)
class Metric:
    """A figure reported by a case kind; ``secondary`` is shown in parentheses next to it."""

    key: str
    label: str
    lower_is_better: bool
    secondary: str = ""
    secondary_unit: str = ""


METRICS: dict[str, tuple[Metric, ...]] = {
    "throughput": (Metric("msgs_per_s", "msgs/s", False, "mb_per_s", "MB/s"),),
    "batch": (Metric("msgs_per_s", "msgs/s", False, "mb_per_s", "MB/s"),),
    "latency": (Metric("p50_us", "p50 us", True), Metric("p99_us", "p99 us", True)),
    "reqrep": (Metric("p50_us", "p50 us", True), Metric("p99_us", "p99 us", True)),
    "delay": (Metric("median_ms", "median ms", True), Metric("max_ms", "max ms", True)),
    "fanout": (
        Metric("msgs_per_s", "msgs/s per SUB", False),
        Metric("pub_msgs_per_s", "PUB sent msgs/s", False),
        Metric("delivered_pct", "delivered %", False),
        Metric("dropped", "dropped", True),
    ),
    "handshake": (Metric("p50_ms", "median ms", True), Metric("p90_ms", "p90 ms", True)),
}

# Socket type names per kind: (the receiver's, each sender's). The receiver binds, senders
# connect. In the fanout case the "receiver" (the measuring process) is the publisher.
SOCKETS: dict[str, tuple[str, str]] = {
    "throughput": ("PULL", "PUSH"),
    "batch": ("PULL", "PUSH"),
    "latency": ("PAIR", "PAIR"),
    "reqrep": ("REQ", "REP"),
    "delay": ("PAIR", "PAIR"),
    "fanout": ("PUB", "SUB"),
    # The ROUTER answers each connection's first message so the client knows when to go on.
    "handshake": ("ROUTER", "DEALER"),
}
# Kinds with more than one sender; their senders report to the receiver on stdout.
SENDER_COUNTS: dict[str, int] = {"fanout": 2}


def _throughput_cases(counts: dict[int, int]) -> list[Case]:
    cases: list[Case] = []
    for transport in ("tcp", "ipc"):
        for size, count in counts.items():
            name = f"throughput/{transport}/{SIZE_LABELS[size]}"
            cases.append(Case(name, "throughput", transport, size, count))
        name = f"throughput/{transport}/1MiB/nocopy"
        cases.append(Case(name, "throughput", transport, MIB, counts[MIB], copy=False))
    return cases


def _curve_cases(counts: dict[int, int]) -> list[Case]:
    return [
        Case(
            f"throughput/tcp/{SIZE_LABELS[size]}/curve",
            "throughput",
            "tcp",
            size,
            count,
            mechanism="curve",
        )
        for size, count in counts.items()
    ]


def _handshake_cases(count: int, warmup: int) -> list[Case]:
    return [
        Case(
            f"handshake/tcp/{mechanism}",
            "handshake",
            count=count,
            warmup=warmup,
            mechanism=mechanism,
        )
        for mechanism in MECHANISMS
    ]


def _delay_case(burst: int, reps: int) -> Case:
    name = f"delay/tcp/{burst}msg"
    return Case(name, "delay", count=reps, burst=burst, compute_ms=DELAY_COMPUTE_MS)


def _reqrep_cases(round_trips: int, warmup: int) -> list[Case]:
    return [
        Case(
            f"reqrep/{transport}/{SIZE_LABELS[size]}",
            "reqrep",
            transport,
            size,
            count=round_trips,
            warmup=warmup,
        )
        for transport in ("tcp", "ipc")
        for size in REQREP_SIZES
    ]


def _fanout_cases(count: int) -> list[Case]:
    label = SIZE_LABELS[FANOUT_SIZE]
    return [
        Case(f"fanout/tcp/{label}/hwm{hwm}", "fanout", "tcp", FANOUT_SIZE, count, hwm=hwm)
        for hwm in FANOUT_HWMS
    ]


def build_cases(quick: bool) -> list[Case]:
    """All cases in run order; ``quick`` shrinks the counts about 5-8x."""
    counts = QUICK_THROUGHPUT_COUNTS if quick else THROUGHPUT_COUNTS
    round_trips, warmup, reps = (2_000, 200, 15) if quick else (10_000, 500, 50)
    return [
        *_throughput_cases(counts),
        *_curve_cases(QUICK_CURVE_COUNTS if quick else CURVE_COUNTS),
        Case("latency/tcp/16B", "latency", count=round_trips, warmup=warmup),
        *_reqrep_cases(round_trips, warmup),
        Case("batch/tcp/16B", "batch", count=counts[16]),
        _delay_case(1, reps),
        _delay_case(2, reps),
        *_fanout_cases(QUICK_FANOUT_COUNT if quick else FANOUT_COUNT),
        *_handshake_cases(*(QUICK_HANDSHAKE_COUNTS if quick else HANDSHAKE_COUNTS)),
    ]
