"""Benchmark case definitions: what each case runs, how many messages, and what it reports."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

KIB = 1024
MIB = 1024 * KIB

SIZE_LABELS = {16: "16B", KIB: "1KiB", 64 * KIB: "64KiB", MIB: "1MiB"}

# Messages per throughput case, scaled per size so that pyzmq takes roughly 0.5-1.5 s.
THROUGHPUT_COUNTS = {16: 1_000_000, KIB: 300_000, 64 * KIB: 20_000, MIB: 1_500}
QUICK_THROUGHPUT_COUNTS = {16: 120_000, KIB: 40_000, 64 * KIB: 3_000, MIB: 250}

BATCH_SIZE = 256  # messages per send_many() call on the zeropipe side
DELAY_COMPUTE_MS = 20.0


@dataclass(frozen=True)
class Case:
    """One benchmark case; serialised to JSON and handed to the worker processes."""

    name: str
    kind: str  # "throughput" | "batch" | "latency" | "delay"
    transport: str = "tcp"
    size: int = 16
    count: int = 0  # messages (throughput, batch), timed round trips (latency), reps (delay)
    copy: bool = True
    warmup: int = 0
    burst: int = 1
    compute_ms: float = 0.0
    batch_size: int = BATCH_SIZE

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
    "delay": (Metric("median_ms", "median ms", True), Metric("max_ms", "max ms", True)),
}


def _throughput_cases(counts: dict[int, int]) -> list[Case]:
    cases: list[Case] = []
    for transport in ("tcp", "ipc"):
        for size, count in counts.items():
            name = f"throughput/{transport}/{SIZE_LABELS[size]}"
            cases.append(Case(name, "throughput", transport, size, count))
        name = f"throughput/{transport}/1MiB/nocopy"
        cases.append(Case(name, "throughput", transport, MIB, counts[MIB], copy=False))
    return cases


def _delay_case(burst: int, reps: int) -> Case:
    name = f"delay/tcp/{burst}msg"
    return Case(name, "delay", count=reps, burst=burst, compute_ms=DELAY_COMPUTE_MS)


def build_cases(quick: bool) -> list[Case]:
    """All cases in run order; ``quick`` shrinks the counts about 5-8x."""
    counts = QUICK_THROUGHPUT_COUNTS if quick else THROUGHPUT_COUNTS
    round_trips, warmup, reps = (2_000, 200, 15) if quick else (10_000, 500, 50)
    return [
        *_throughput_cases(counts),
        Case("latency/tcp/16B", "latency", count=round_trips, warmup=warmup),
        Case("batch/tcp/16B", "batch", count=counts[16]),
        _delay_case(1, reps),
        _delay_case(2, reps),
    ]
