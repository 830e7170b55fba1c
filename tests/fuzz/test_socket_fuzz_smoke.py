"""The socket-level fuzz harness (tests/fuzz/socket_fuzz.py), briefly, for ``make test``.

Each mechanism is fuzzed for 3 s in a child process of its own (a crash or a hang of the server
under fuzz is then the child's exit status, not this worker's). ``make fuzz`` runs the same
harness for minutes, with the good peer's 1 s delivery bound; here, next to the rest of the
suite, that bound is only a 5 s hang guard. The harness's oracles are checked too: an error
logged by zeropipe and a good message that never arrives must each make it fail, naming the
connections to replay.

What the harness found has focused tests of its own below: closed connections kept in memory
(by a cancelled timer, by the ZAP handler's side of a request's pipe, by the handshake timer
of a connection reset before our greeting went out), and the reactor spinning after such a
reset.

``ZP_FUZZ_SEED`` picks another seed than the fixed default.
"""

from __future__ import annotations

import gc
import os
import re
import resource
import socket
import struct
import subprocess
import sys
import time
import weakref
from pathlib import Path

import pytest
from deadlines import term_with_deadline

import zeropipe as zmq
from zeropipe.auth import ThreadAuthenticator
from zeropipe.protocol import Connection
from zeropipe.utils.monitor import recv_monitor_message

from .socket_fuzz import zeropipe_census

REPO = Path(__file__).resolve().parents[2]
SEED = os.environ.get("ZP_FUZZ_SEED", "20250101")
CHILD_TIMEOUT_S = 45.0
"""Hang guard for one run of the harness (which has its own 30 s hang watchdog)."""
RELEASE_WAIT_S = 5.0
"""How long closed connections may stay in memory (libzmq frees them at once)."""
PEERS = 20
TIMEOUT_MS = 5000


def harness(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tests.fuzz.socket_fuzz", "--hang-timeout", "20", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT_S,
        check=False,
    )


@pytest.mark.parametrize("mechanism", ["null", "plain", "curve"])
def test_fuzzed_server_stays_healthy(mechanism: str) -> None:
    run = harness(
        "--seconds", "3", "--mechanism", mechanism, "--seed", SEED, "--deliver-timeout", "5"
    )
    report = f"seed {SEED}\n{run.stdout}\n{run.stderr}"
    assert run.returncode == 0, report
    assert run.stdout.rstrip().endswith("OK"), report
    found = re.search(r"summary: (\d+) connections in (\d+) rounds", run.stdout)
    assert found, report
    connections, rounds = int(found[1]), int(found[2])
    assert connections >= 10, report
    good = re.search(r"good messages: (\d+), new good peers: (\d+)", run.stdout)
    assert good, report
    assert int(good[1]) > rounds, report  # one per round, and one before the first
    assert int(good[2]) >= 1, report


@pytest.mark.parametrize(
    ("inject", "message"),
    [
        ("log-error", "zeropipe logged an error"),
        ("starve", "the good peer's message b'good:4' did not arrive"),
    ],
)
def test_harness_fails_when_an_oracle_does(inject: str, message: str) -> None:
    run = harness("--seconds", "2", "--mechanism", "null", "--seed", "7", "--inject", inject)
    report = f"{run.stdout}\n{run.stderr}"
    assert run.returncode == 1, report
    assert message in run.stdout, report
    assert "--mechanism null --replay 7:" in run.stdout, report


def test_one_connection_replays() -> None:
    run = harness("--mechanism", "plain", "--replay", "7:3")
    assert run.returncode == 0, f"{run.stdout}\n{run.stderr}"
    assert "connection 3 " in run.stdout


def new_connections(before: weakref.WeakSet[Connection]) -> list[weakref.ref[Connection]]:
    """The server sides (accepted connections) that appeared since ``before``."""
    return [
        weakref.ref(o)
        for o in gc.get_objects()
        if isinstance(o, Connection) and o.as_server and o not in before
    ]


def wait_released(refs: list[weakref.ref[Connection]], what: str) -> None:
    deadline = time.monotonic() + RELEASE_WAIT_S
    while any(ref() is not None for ref in refs):
        if time.monotonic() > deadline:
            kept = sum(ref() is not None for ref in refs)
            pytest.fail(f"{kept} of {len(refs)} {what} still in memory {RELEASE_WAIT_S} s on")
        gc.collect()
        time.sleep(0.05)


def test_closed_connections_are_released_at_once() -> None:
    """What the harness found: a peer that declares a 1 GiB command frame and hangs up must not
    stay in memory (its Connection, and the 1 MiB buffer the frame got) once it is closed."""
    greeting = b"\xff" + bytes(8) + b"\x7f\x03\x01" + b"NULL".ljust(20, b"\x00") + bytes(32)
    huge_command = b"\x06" + (1 << 30).to_bytes(8, "big") + b"\x05READY"
    ctx = zmq.Context()
    pull = ctx.socket(zmq.PULL)
    pull.linger = 0
    try:
        pull.bind("tcp://127.0.0.1:*")
        host, port = pull.last_endpoint.decode().replace("tcp://", "").rsplit(":", 1)
        before = weakref.WeakSet(o for o in gc.get_objects() if isinstance(o, Connection))
        peers = [socket.create_connection((host, int(port)), timeout=5) for _ in range(10)]
        for peer in peers:
            peer.sendall(greeting + huge_command)
        servers = new_connections(before)
        deadline = time.monotonic() + RELEASE_WAIT_S
        while len(servers) < len(peers) and time.monotonic() < deadline:
            time.sleep(0.05)  # hang guard only: the accepted connections show up one by one
            servers = new_connections(before)
        assert len(servers) == len(peers), "the server did not accept every peer"
        for peer in peers:
            peer.close()
        wait_released(servers, "closed connections")
    finally:
        pull.close()
        term_with_deadline(ctx)


def wait_no_growth(before: dict[str, int], what: str, slack: int = 2) -> None:
    """No zeropipe class has more than ``slack`` objects more than ``before`` (hang guard)."""
    deadline = time.monotonic() + RELEASE_WAIT_S
    while True:
        after = zeropipe_census()
        grown = {k: n - before.get(k, 0) for k, n in after.items() if n - before.get(k, 0) > slack}
        if not grown:
            return
        if time.monotonic() > deadline:
            pytest.fail(f"{what}, and these stayed: {grown}")
        time.sleep(0.05)


def reset_peers(pull: zmq.Socket) -> None:
    """``PEERS`` peers connect to ``pull`` and reset at once; return once all were accepted.

    The monitor says when (a probe connection would do, but its socket could take the file
    descriptor number of a reset one and hide what that one left behind).
    """
    monitor = pull.get_monitor_socket(zmq.EVENT_ACCEPTED)
    monitor.rcvtimeo = TIMEOUT_MS
    host, port = pull.last_endpoint.decode().replace("tcp://", "").rsplit(":", 1)
    for _ in range(PEERS):
        peer = socket.create_connection((host, int(port)), timeout=5)
        peer.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        peer.close()
    for _ in range(PEERS):
        assert recv_monitor_message(monitor)["event"] == zmq.EVENT_ACCEPTED


def test_reset_connections_are_released_at_once() -> None:
    """What the harness found as well: a peer that connects and resets at once (before our
    greeting goes out) must not stay in memory until its handshake timer is due (30 s)."""
    ctx = zmq.Context()
    pull = ctx.socket(zmq.PULL)
    pull.linger = 0
    try:
        pull.bind("tcp://127.0.0.1:*")
        before = zeropipe_census()
        reset_peers(pull)
        wait_no_growth(before, f"{PEERS} peers connected and reset at once", slack=4)
    finally:
        pull.disable_monitor()
        pull.close()
        term_with_deadline(ctx)


def test_reset_connections_leave_the_reactor_idle() -> None:
    """What the harness found last: after peers that connect and reset at once, the process
    must not spin (burn CPU) while nothing happens."""
    ctx = zmq.Context()
    pull = ctx.socket(zmq.PULL)
    pull.linger = 0
    try:
        pull.bind("tcp://127.0.0.1:*")
        reset_peers(pull)
        time.sleep(0.2)  # let the server see the resets (no timing is asserted on)
        before = resource.getrusage(resource.RUSAGE_SELF)
        time.sleep(1.0)
        after = resource.getrusage(resource.RUSAGE_SELF)
        used = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
        assert used < 0.5, f"{used:.2f} s of CPU used in 1 s with nothing to do"
    finally:
        pull.disable_monitor()
        pull.close()
        term_with_deadline(ctx)


def test_authenticated_connections_are_released_once_closed() -> None:
    """What the harness found too: each connection that asked the ZAP handler leaves objects
    behind once closed (the pipe of its request stays with the handler's socket)."""
    ctx = zmq.Context()
    auth = ThreadAuthenticator(ctx)
    auth.start()
    pull = ctx.socket(zmq.PULL)
    pull.linger = 0
    pull.rcvtimeo = TIMEOUT_MS
    try:
        auth.configure_plain("*", {"admin": "secret"})
        pull.plain_server = True
        pull.bind("tcp://127.0.0.1:*")
        before = zeropipe_census()
        for i in range(PEERS):
            push = ctx.socket(zmq.PUSH)
            try:
                push.linger = 0
                push.sndtimeo = TIMEOUT_MS
                push.plain_username, push.plain_password = b"admin", b"secret"
                push.connect(pull.last_endpoint)
                push.send(b"%d" % i)
                assert pull.recv() == b"%d" % i
            finally:
                push.close()
        del push
        wait_no_growth(before, f"{PEERS} PLAIN peers came and went")
    finally:
        pull.close()
        auth.stop()
        term_with_deadline(ctx)
