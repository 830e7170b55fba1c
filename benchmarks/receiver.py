"""Measuring side of every case; runs in its own process (``python -m benchmarks.worker receiver``).

The receiver binds, starts the sender process (which connects), and takes all timestamps:

* throughput/batch: ``perf_counter`` from the first to the last received message; the first
  message (or first ``recv_many`` batch) is excluded from the count, so the rate is
  ``messages after the first / elapsed``.
* latency, reqrep: ``perf_counter_ns`` around each ``send`` + ``recv`` round trip on a PAIR
  socket (echoed by a PAIR) or a REQ socket (answered by a REP).
* delay: ``time.time()`` at arrival of the last message of a burst minus the ``time.time()``
  the sender wrote into it (the wall clock is shared by both processes on one machine).
* handshake: CLOCK_MONOTONIC (``shared_clock_ns``) at arrival of each fresh connection's first
  message on a ROUTER minus the time the client stamped into it just before ``connect()``.

Every blocking call is bounded: RCVTIMEO on the socket, a startup deadline while waiting for
the sender, and a measurement budget after which the case stops early and is marked ``capped``.
"""

from __future__ import annotations

import math
import statistics
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from benchmarks.cases import MIB, Case
from benchmarks.procs import SenderGroup
from benchmarks.sender import (
    DELAY_FORMAT,
    HANDSHAKE_FORMAT,
    HANDSHAKE_GO,
    HANDSHAKE_STOP,
    shared_clock_ns,
)

CHUNK_BYTES = 4 * MIB  # data received between two clock reads in the throughput loop
MAX_CHUNK = 1024  # ... but at most this many messages
POLL_MS = 100  # RCVTIMEO while waiting for the sender to come up
STARTUP_S = 15.0  # sender start-up + connect + first message
PROGRESS_MS = 5_000  # RCVTIMEO once traffic flows


class BenchError(Exception):
    """A case could not be measured (stall, startup failure, wrong message)."""


@dataclass(frozen=True)
class Limits:
    """Time bounds of one receiver run."""

    budget_s: float  # stop measuring after this long (result is then marked "capped")
    startup_s: float = STARTUP_S
    progress_ms: int = PROGRESS_MS


@dataclass
class Link:
    """Everything a measurement function needs."""

    zmq: ModuleType
    sock: Any
    case: Case
    sender: SenderGroup
    limits: Limits
    batch_api: bool


def measure(link: Link) -> dict[str, Any]:
    """Run the measurement for ``link.case`` and return its metrics."""
    return _MEASURES[link.case.kind](link)


def wait_first(link: Link, recv: Callable[[], Any]) -> Any:
    """First message from the sender, polling so a dead sender is noticed quickly."""
    link.sock.rcvtimeo = POLL_MS
    deadline = time.monotonic() + link.limits.startup_s
    while True:
        try:
            msg = recv()
        except link.zmq.Again:
            link.sender.check_alive()
            if time.monotonic() > deadline:
                raise BenchError(f"no message within {link.limits.startup_s:.0f} s") from None
            continue
        link.sock.rcvtimeo = link.limits.progress_ms
        return msg


def _check_size(link: Link, msg: Any) -> None:
    size = len(msg.buffer) if not link.case.copy else len(msg)
    if size != link.case.size:
        raise BenchError(f"expected a {link.case.size} B message, got {size} B")


def _recv_fn(sock: Any, copy: bool) -> Callable[[], Any]:
    if copy:
        recv: Callable[[], Any] = sock.recv
        return recv
    return lambda: sock.recv(copy=False)


def _stalled(link: Link, received: int) -> BenchError:
    link.sender.check_alive()
    timeout = link.limits.progress_ms / 1e3
    return BenchError(f"stalled: no message for {timeout:.0f} s after {received} messages")


def _rate(link: Link, first: int, received: int, elapsed: float) -> dict[str, Any]:
    measured = received - first
    if measured <= 0 or elapsed <= 0:
        raise BenchError("too few messages to compute a rate")
    return {
        "msgs_per_s": measured / elapsed,
        "mb_per_s": measured * link.case.size / elapsed / 1e6,
        "received": received,
        "elapsed_s": elapsed,
        "capped": received < link.case.count,
    }


def _throughput(link: Link) -> dict[str, Any]:
    recv = _recv_fn(link.sock, link.case.copy)
    msg = wait_first(link, recv)
    t_first = time.perf_counter()
    _check_size(link, msg)
    stop_at = t_first + link.limits.budget_s
    received, now = 1, t_first
    chunk = max(1, min(MAX_CHUNK, CHUNK_BYTES // link.case.size))
    while received < link.case.count and now < stop_at:
        n = min(chunk, link.case.count - received)
        try:
            for _ in range(n):
                msg = recv()
        except link.zmq.Again:
            raise _stalled(link, received) from None
        received += n
        now = time.perf_counter()
    _check_size(link, msg)
    return _rate(link, 1, received, now - t_first)


def _batch(link: Link) -> dict[str, Any]:
    if not link.batch_api:
        return _throughput(link)
    recv_many = link.sock.recv_many
    msgs = wait_first(link, recv_many)
    t_first = time.perf_counter()
    _check_size(link, msgs[0])
    first = received = len(msgs)
    stop_at = t_first + link.limits.budget_s
    now = t_first
    while received < link.case.count and now < stop_at:
        try:
            msgs = recv_many()
        except link.zmq.Again:
            raise _stalled(link, received) from None
        received += len(msgs)
        now = time.perf_counter()
    _check_size(link, msgs[-1])
    return _rate(link, first, received, now - t_first)


def _round_trips(link: Link, payload: bytes, count: int, stop_at_ns: int) -> list[int]:
    send, recv = link.sock.send, link.sock.recv
    samples: list[int] = []
    try:
        for _ in range(count):
            start = time.perf_counter_ns()
            if start > stop_at_ns:
                break
            send(payload)
            recv()
            samples.append(time.perf_counter_ns() - start)
    except link.zmq.Again:
        raise _stalled(link, len(samples)) from None
    return samples


def percentile(sorted_values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    rank = math.ceil(fraction * len(sorted_values) - 1e-9)
    return sorted_values[min(max(rank, 1), len(sorted_values)) - 1]


def _latency(link: Link) -> dict[str, Any]:
    wait_first(link, link.sock.recv)  # "ready": the echo sender is connected
    return _timed_round_trips(link, b"x" * link.case.size)


def _reqrep(link: Link) -> dict[str, Any]:
    payload = b"x" * link.case.size
    _first_request(link, payload)
    return _timed_round_trips(link, payload)


def _first_request(link: Link, payload: bytes) -> None:
    """One round trip once the REP has connected (a REQ with no peer cannot send)."""
    sock = link.sock
    sock.sndtimeo = POLL_MS
    deadline = time.monotonic() + link.limits.startup_s
    while True:
        try:
            sock.send(payload)
            break
        except link.zmq.Again:
            link.sender.check_alive()
            if time.monotonic() > deadline:
                raise BenchError(f"no REP connected within {link.limits.startup_s:.0f} s") from None
    sock.sndtimeo = link.limits.progress_ms
    reply = wait_first(link, sock.recv)
    if reply != payload:
        raise BenchError(f"the reply differs from the request ({len(reply)} B)")


def _timed_round_trips(link: Link, payload: bytes) -> dict[str, Any]:
    """Warm-up, then the timed round trips; an empty message at the end stops the peer."""
    no_limit = time.perf_counter_ns() + 10**12
    _round_trips(link, payload, link.case.warmup, no_limit)
    stop_at = time.perf_counter_ns() + int(link.limits.budget_s * 1e9)
    samples = sorted(ns / 1e3 for ns in _round_trips(link, payload, link.case.count, stop_at))
    link.sock.send(b"")  # tell the echo sender / REP to exit
    if not samples:
        raise BenchError("no round trip completed")
    return {
        "p50_us": percentile(samples, 0.50),
        "p99_us": percentile(samples, 0.99),
        "min_us": samples[0],
        "max_us": samples[-1],
        "mean_us": statistics.fmean(samples),
        "round_trips": len(samples),
        "capped": len(samples) < link.case.count,
    }


def _delay(link: Link) -> dict[str, Any]:
    wait_first(link, link.sock.recv)  # "ready"
    stop_at = time.perf_counter() + link.limits.budget_s
    delays: list[float] = []
    try:
        for _ in range(link.case.count):
            link.sock.send(b"go")
            for _ in range(link.case.burst):
                msg = link.sock.recv()
            arrived = time.time()
            sent_at = struct.unpack_from(DELAY_FORMAT, msg)[0]
            delays.append((arrived - sent_at) * 1e3)
            if time.perf_counter() > stop_at:
                break
    except link.zmq.Again:
        raise _stalled(link, len(delays)) from None
    return {
        "median_ms": statistics.median(delays),
        "max_ms": max(delays),
        "min_ms": min(delays),
        "delays_ms": delays,
        "capped": len(delays) < link.case.count,
    }


def _handshake(link: Link) -> dict[str, Any]:
    """Time connect() -> first message of each fresh client connection; answer each one."""
    sock, case = link.sock, link.case
    total = case.warmup + case.count
    msg = wait_first(link, sock.recv_multipart)
    arrived = shared_clock_ns()
    stop_at = time.perf_counter() + link.limits.budget_s
    samples: list[float] = []
    try:
        while True:
            identity, payload = msg
            stamp, index = struct.unpack(HANDSHAKE_FORMAT, payload)
            if index >= case.warmup:
                samples.append((arrived - stamp) / 1e6)
            done = index + 1 >= total or time.perf_counter() > stop_at
            sock.send_multipart([identity, HANDSHAKE_STOP if done else HANDSHAKE_GO])
            if done:
                break
            msg = sock.recv_multipart()
            arrived = shared_clock_ns()
    except link.zmq.Again:
        raise _stalled(link, len(samples)) from None
    if not samples:
        raise BenchError("no timed connection completed (budget spent in the warm-up)")
    ordered = sorted(samples)
    return {
        "p50_ms": statistics.median(ordered),
        "p90_ms": percentile(ordered, 0.90),
        "min_ms": ordered[0],
        "max_ms": ordered[-1],
        "mean_ms": statistics.fmean(ordered),
        "connections": len(samples),
        "samples_ms": samples,  # in connection order
        "capped": len(samples) < case.count,
    }


_MEASURES: dict[str, Callable[[Link], dict[str, Any]]] = {
    "throughput": _throughput,
    "batch": _batch,
    "latency": _latency,
    "reqrep": _reqrep,
    "delay": _delay,
    "handshake": _handshake,
}
