"""PUB -> 2 x SUB fan-out with publisher-side topic filtering (the ``fanout`` cases).

The measuring process (the "receiver" role) binds the PUB and starts two SUB processes (the
"sender" role, ``--index 0`` and ``1``), which connect and report on their stdout, a side
channel that does not depend on the implementation under test:

1. sync: the PUB publishes a probe on every topic every ``SYNC_POLL_S`` until each SUB has
   printed ``ready``, which it does once it has seen a probe on each of its topics (so its
   subscriptions are in effect at the publisher);
2. burst: the PUB sends ``case.count`` messages of ``case.size`` bytes, round-robin over
   ``TOPICS``, as fast as it can (cut short at the measuring budget);
3. end: the PUB repeats an end marker on a topic both SUBs want until both have printed
   ``done {json}``; the marker queues behind the data, so a SUB that sees it has everything
   the PUB did not drop.  A marker that meets a full queue is dropped like data, hence the
   repetition.

Each SUB times its own delivery rate (first to last data message, clock read every
``MARK_EVERY`` messages, as the throughput receiver does); leftover probes and repeated end
markers are not data.  Drops: zeropipe's PUB counts them (``sock.dropped``, read before and
after the burst); for pyzmq they are computed as messages sent on a SUB's topics minus
messages it received.  For zeropipe both are recorded and a mismatch is a warning.
"""

from __future__ import annotations

import json
import statistics
import time
from types import ModuleType
from typing import Any

from benchmarks.cases import Case
from benchmarks.receiver import POLL_MS, STARTUP_S, BenchError, Link

TOPICS = (b"topic-0", b"topic-1", b"topic-2", b"topic-3")
# Topic indices each SUB subscribes to: topic 1 to both, 0 and 2 to one, 3 to nobody.
SUBSCRIPTIONS = ((0, 1), (1, 2))
END_TOPIC = 1
PROBE = b"|probe"
END = b"|end"
SYNC_POLL_S = 0.02  # between two rounds of probes
END_REPEAT_S = 0.01  # between two end markers
DRAIN_S = 10.0  # after the burst, how long the SUBs get to confirm the end marker
BURST_CHUNK = 256  # rounds of one message per topic between two clock reads
MARK_EVERY = 64  # a SUB reads the clock every this many data messages (a power of 2)
SUB_PROGRESS_MS = 5_000  # a SUB waiting longer than this for a message gives up


def data_message(topic: bytes, size: int) -> bytes:
    """A data message: the topic, a separator, and filler up to ``size`` bytes."""
    return (topic + b"|").ljust(size, b"x")


# -- publisher (measuring process) ---------------------------------------------------------


def measure_fanout(link: Link) -> dict[str, Any]:
    """Sync with both SUBs, publish the burst, collect their counts; return the metrics."""
    sock, case = link.sock, link.case
    _sync(link)
    dropped_before = _dropped(sock)
    rounds, elapsed = _burst(link)
    dropped_after = _dropped(sock)
    reports = _finish(link)
    reported = None
    if dropped_before is not None and dropped_after is not None:
        reported = dropped_after - dropped_before
    return _metrics(case, rounds, elapsed, reports, reported)


def _dropped(sock: Any) -> int | None:
    """zeropipe's count of copies its PUB dropped; None for pyzmq (which has no such count)."""
    value = getattr(sock, "dropped", None)
    return value if isinstance(value, int) else None


def _sync(link: Link) -> None:
    probes = [topic + PROBE for topic in TOPICS]
    ready: set[int] = set()
    deadline = time.monotonic() + link.limits.startup_s
    while len(ready) < len(SUBSCRIPTIONS):
        if time.monotonic() > deadline:
            missing = sorted(set(range(len(SUBSCRIPTIONS))) - ready)
            wait = link.limits.startup_s
            raise BenchError(f"SUB(s) {missing} not subscribed within {wait:.0f} s")
        for probe in probes:
            link.sock.send(probe)
        ready.update(i for i, line in link.sender.read_lines(SYNC_POLL_S) if line == "ready")


def _burst(link: Link) -> tuple[int, float]:
    """Publish one message per topic per round; returns (rounds sent, elapsed seconds)."""
    send = link.sock.send
    m0, m1, m2, m3 = (data_message(topic, link.case.size) for topic in TOPICS)
    total = link.case.count // len(TOPICS)
    done = 0
    start = now = time.perf_counter()
    stop_at = start + link.limits.budget_s
    while done < total and now < stop_at:
        n = min(BURST_CHUNK, total - done)
        for _ in range(n):
            send(m0)
            send(m1)
            send(m2)
            send(m3)
        done += n
        now = time.perf_counter()
    return done, now - start


def _finish(link: Link) -> dict[int, dict[str, Any]]:
    """Repeat the end marker until both SUBs have reported; their reports by index."""
    end = TOPICS[END_TOPIC] + END
    reports: dict[int, dict[str, Any]] = {}
    deadline = time.monotonic() + DRAIN_S
    while len(reports) < len(SUBSCRIPTIONS):
        if time.monotonic() > deadline:
            missing = sorted(set(range(len(SUBSCRIPTIONS))) - set(reports))
            raise BenchError(f"SUB(s) {missing} did not confirm the end within {DRAIN_S:.0f} s")
        link.sock.send(end)
        for index, line in link.sender.read_lines(END_REPEAT_S):
            word, _, body = line.partition(" ")
            if word == "done":
                reports[index] = json.loads(body)
    return reports


def _metrics(
    case: Case,
    rounds: int,
    elapsed: float,
    reports: dict[int, dict[str, Any]],
    reported_drops: int | None,
) -> dict[str, Any]:
    indices = range(len(SUBSCRIPTIONS))
    matching = [rounds * len(SUBSCRIPTIONS[i]) for i in indices]
    received = [int(reports[i]["received"]) for i in indices]
    rates = [reports[i]["msgs_per_s"] for i in indices]
    lost = [m - r for m, r in zip(matching, received, strict=True)]
    if any(n < 0 for n in lost):
        raise BenchError(f"a SUB received more than was sent on its topics: {received=}")
    if any(rate is None for rate in rates):
        raise BenchError(f"too few messages to time a SUB: {received=}")
    computed = sum(lost)
    warnings = []
    if reported_drops is not None and reported_drops != computed:
        warnings.append(
            f"PUB dropped counter says {reported_drops}, "
            f"sent-to-matching minus received says {computed}"
        )
    if case.hwm == 0 and computed:
        warnings.append(f"{computed} message(s) lost with HWM 0 (unlimited)")
    return {
        "msgs_per_s": statistics.fmean(rates),
        "sub_msgs_per_s": rates,
        "pub_msgs_per_s": rounds * len(TOPICS) / elapsed,
        "published": rounds * len(TOPICS),
        "pub_elapsed_s": elapsed,
        "matching": matching,
        "received": received,
        "delivered_pct": 100.0 * sum(received) / sum(matching),
        "dropped": computed if reported_drops is None else reported_drops,
        "dropped_computed": computed,
        "dropped_reported": reported_drops,
        "capped": rounds * len(TOPICS) < case.count,
        "warnings": warnings,
    }


# -- subscriber (sender role) ---------------------------------------------------------------


def run_subscriber(zmq: ModuleType, endpoint: str, case: Case, index: int) -> dict[str, Any]:
    """SUB number ``index``: sync, count the burst, report ``done {json}`` on stdout."""
    ctx = zmq.Context()
    sock = ctx.socket(zmq.SUB)
    try:
        sock.linger = 0
        if case.hwm is not None:
            sock.rcvhwm = sock.sndhwm = case.hwm
        sock.connect(endpoint)
        topics = {TOPICS[t] for t in SUBSCRIPTIONS[index]}
        for topic in sorted(topics):
            sock.setsockopt(zmq.SUBSCRIBE, topic)
        _await_probes(zmq, sock, topics)
        print("ready", flush=True)
        sock.rcvtimeo = SUB_PROGRESS_MS
        try:
            stats = _count(sock, case.size)
        except zmq.Again:
            raise RuntimeError(f"no message for {SUB_PROGRESS_MS} ms") from None
        # Reported before teardown, so a hang there cannot lose the figures.
        print("done " + json.dumps(stats), flush=True)
        return stats
    finally:
        sock.close()
        ctx.term()


def _await_probes(zmq: ModuleType, sock: Any, topics: set[bytes]) -> None:
    """Receive until a probe has arrived on each of ``topics``."""
    sock.rcvtimeo = POLL_MS
    deadline = time.monotonic() + STARTUP_S
    missing = set(topics)
    while missing:
        try:
            msg = sock.recv()
        except zmq.Again:
            if time.monotonic() > deadline:
                raise RuntimeError(f"no probe on {sorted(missing)} within {STARTUP_S} s") from None
            continue
        if not msg.endswith(PROBE) or msg[: -len(PROBE)] not in topics:
            raise RuntimeError(f"unexpected message while syncing: {msg[:40]!r}")
        missing.discard(msg[: -len(PROBE)])


def _count(sock: Any, size: int) -> dict[str, Any]:
    """Count data messages up to the end marker; time them from the first one."""
    recv = sock.recv
    while True:  # leftover probes, then the first data message
        msg = recv()
        if len(msg) == size:
            break
        if msg.endswith(END):
            return {"received": 0, "msgs_per_s": None, "timed": 0, "elapsed_s": 0.0}
    first = mark = time.perf_counter()
    received = marked = 1
    mask = MARK_EVERY - 1
    while True:
        msg = recv()
        if len(msg) != size:
            if msg.endswith(END):
                break
            continue  # a probe
        received += 1
        if not received & mask:
            mark = time.perf_counter()
            marked = received
    elapsed = mark - first
    return {
        "received": received,
        "msgs_per_s": (marked - 1) / elapsed if elapsed > 0 else None,
        "timed": marked,
        "elapsed_s": elapsed,
    }
