"""Sender side of every case; runs in its own process (``python -m benchmarks.worker sender``).

The sender connects to the endpoint bound by the measuring receiver process and produces the
traffic for one case (or answers it: the PAIR echo and the REP server).  It measures nothing
that is reported except its own send duration.  The fanout subscribers are in
``benchmarks.fanout``.  In the handshake cases the sender is the client that opens one fresh
connection after another, stamping the time of each ``connect()`` into its first message.
"""

from __future__ import annotations

import struct
import time
from types import ModuleType
from typing import Any

from benchmarks.cases import MIB, SOCKETS, Case
from benchmarks.impl import HAS_BATCH_API, client_keypair, secure_client

LINGER_MS = 10_000  # flush queued messages on close, but never forever
CONTROL_TIMEOUT_MS = 30_000  # how long an echo/delay sender waits for the receiver
SETTLE_S = 0.005  # pause before each delay rep so the engine is idle when it starts
DELAY_FORMAT = "!dI"  # send timestamp (time.time()), index within the burst
HANDSHAKE_FORMAT = "!qI"  # shared_clock_ns() just before connect(), connection index
HANDSHAKE_GO, HANDSHAKE_STOP = b"go", b"stop"  # the server's answer to a connection


def shared_clock_ns() -> int:
    """CLOCK_MONOTONIC in ns: one clock for all processes of the machine (unlike
    ``perf_counter``, whose reference point is only documented as per process), and not
    stepped like ``time.time()``."""
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC)


def sndhwm_for(size: int) -> int:
    """Queue at most ~64 MiB per sender, with libzmq's default of 1000 for small messages."""
    return max(16, min(1000, 64 * MIB // size))


def run_sender(
    zmq: ModuleType, impl: str, endpoint: str, case: Case, server_key: str = ""
) -> dict[str, Any]:
    """Connect to ``endpoint`` and produce the traffic for ``case``; returns sender-side stats.

    ``server_key`` is the receiver's CURVE public key (Z85) when ``case.mechanism`` is curve.
    """
    if case.kind == "handshake":
        return run_handshake_client(zmq, endpoint, case, server_key)
    ctx = zmq.Context()
    sock = ctx.socket(getattr(zmq, SOCKETS[case.kind][1]))
    try:
        sock.linger = LINGER_MS
        sock.sndhwm = sndhwm_for(case.size)
        sock.rcvtimeo = CONTROL_TIMEOUT_MS
        secure_client(sock, case.mechanism, server_key, client_keypair(zmq, case.mechanism))
        sock.connect(endpoint)
        start = time.perf_counter()
        _ROLES[case.kind](sock, case, HAS_BATCH_API[impl])
        return {"send_s": time.perf_counter() - start}
    finally:
        sock.close()
        ctx.term()


def _push(sock: Any, case: Case, _batch_api: bool) -> None:
    payload = b"x" * case.size
    send = sock.send
    if case.copy:
        for _ in range(case.count):
            send(payload)
    else:
        for _ in range(case.count):
            send(payload, copy=False)


def _push_batch(sock: Any, case: Case, batch_api: bool) -> None:
    if not batch_api:
        _push(sock, case, batch_api)
        return
    payload = b"x" * case.size
    full, rest = divmod(case.count, case.batch_size)
    batch = [payload] * case.batch_size
    send_many = sock.send_many
    for _ in range(full):
        send_many(batch)
    if rest:
        send_many(batch[:rest])


def _echo(sock: Any, _case: Case, _batch_api: bool) -> None:
    sock.send(b"ready")
    recv, send = sock.recv, sock.send
    while True:
        msg = recv()
        if not msg:  # empty message: the receiver is done
            return
        send(msg)


def _reply(sock: Any, _case: Case, _batch_api: bool) -> None:
    recv, send = sock.recv, sock.send
    while True:
        msg = recv()
        if not msg:  # empty request: the receiver is done (it does not wait for a reply)
            return
        send(msg)


def _delay(sock: Any, case: Case, _batch_api: bool) -> None:
    sock.send(b"ready")
    for _ in range(case.count):
        sock.recv()  # "go" from the receiver
        time.sleep(SETTLE_S)
        sent_at = time.time()
        for index in range(case.burst):
            sock.send(struct.pack(DELAY_FORMAT, sent_at, index).ljust(case.size, b"\0"))
        burn_cpu(case.compute_ms / 1e3)


def run_handshake_client(
    zmq: ModuleType, endpoint: str, case: Case, server_key: str
) -> dict[str, Any]:
    """Warm-up + ``case.count`` fresh connections, one at a time, each on a new DEALER.

    Each connection stamps ``shared_clock_ns()`` just before ``connect()`` into its first
    message and waits for the server's answer (which is what makes the connections sequential)
    before it closes the socket; the server reports the time from that stamp to the arrival.
    The client keypair is made once: keygen is not part of a handshake.
    """
    ctx = zmq.Context()
    keypair = client_keypair(zmq, case.mechanism)
    opened = 0
    try:
        for index in range(case.warmup + case.count):
            sock = ctx.socket(getattr(zmq, SOCKETS[case.kind][1]))
            try:
                sock.linger = 0
                sock.rcvtimeo = sock.sndtimeo = CONTROL_TIMEOUT_MS
                secure_client(sock, case.mechanism, server_key, keypair)
                stamp = shared_clock_ns()
                sock.connect(endpoint)
                sock.send(struct.pack(HANDSHAKE_FORMAT, stamp, index))
                opened += 1
                if sock.recv() == HANDSHAKE_STOP:
                    break
            finally:
                sock.close()
    finally:
        ctx.term()
    return {"connections": opened}


def burn_cpu(seconds: float) -> int:
    """Pure-Python CPU work (holding the GIL as much as Python allows) for ``seconds``."""
    end = time.perf_counter() + seconds
    acc = 0
    while time.perf_counter() < end:
        for i in range(500):
            acc += i * i
    return acc


_ROLES = {
    "throughput": _push,
    "batch": _push_batch,
    "latency": _echo,
    "reqrep": _reply,
    "delay": _delay,
}
