"""Heartbeats: PING/PONG both ways, and a silent peer is dropped and reconnected."""

from __future__ import annotations

import socket
import time

import pytest
import zmq as pyzmq

import zeropipe as zp
from zeropipe.protocol.commands import encode_metadata
from zeropipe.protocol.frames import encode_command
from zeropipe.protocol.greeting import build_greeting

pytestmark = pytest.mark.timeout(20)


def _handshake_as(listener: socket.socket, socket_type: bytes) -> socket.socket:
    """Accept one connection and complete a NULL handshake by hand."""
    conn, _ = listener.accept()
    conn.settimeout(5)
    conn.sendall(build_greeting(b"NULL", False))
    conn.sendall(encode_command(b"READY", encode_metadata({"Socket-Type": socket_type})))
    _read_exactly(conn, 64)
    return conn


def _read_exactly(conn: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = conn.recv(n - len(data))
        if not chunk:
            raise ConnectionError("closed")
        data += chunk
    return data


def _read_commands(conn: socket.socket, until: float) -> list[bytes]:
    """Read raw frames until the deadline; return the command names seen."""
    names: list[bytes] = []
    buf = b""
    conn.settimeout(0.05)
    while time.monotonic() < until:
        try:
            chunk = conn.recv(4096)
        except TimeoutError:
            continue
        if not chunk:
            names.append(b"<closed>")
            break
        buf += chunk
        while len(buf) >= 2:
            flags, size = buf[0], buf[1]
            if flags & 0x02 or len(buf) < 2 + size:
                break
            body, buf = buf[2 : 2 + size], buf[2 + size :]
            if flags & 0x04:
                names.append(body[1 : 1 + body[0]])
    return names


@pytest.fixture
def ctx():
    context = zp.Context()
    yield context
    context.destroy(linger=0)


def test_we_ping_and_drop_a_silent_peer(ctx):
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    push = ctx.socket(zp.PUSH)
    push.heartbeat_ivl = 100
    push.heartbeat_timeout = 300
    push.reconnect_ivl = 50
    push.connect(f"tcp://127.0.0.1:{port}")
    listener.settimeout(5)
    silent = _handshake_as(listener, b"PULL")
    # Skip the READY command we are sent, then watch PINGs arrive and never answer.
    names = _read_commands(silent, time.monotonic() + 1.5)
    assert names.count(b"PING") >= 2, names
    assert names[-1] == b"<closed>", names
    # ... and the connecter comes back by itself.
    again = _handshake_as(listener, b"PULL")
    again.close()
    silent.close()
    listener.close()


def test_we_answer_libzmq_pings_and_it_keeps_us(ctx):
    pctx = pyzmq.Context()
    try:
        theirs = pctx.socket(pyzmq.PULL)
        theirs.setsockopt(pyzmq.HEARTBEAT_IVL, 50)
        theirs.setsockopt(pyzmq.HEARTBEAT_TIMEOUT, 200)
        theirs.setsockopt(pyzmq.RCVTIMEO, 5000)
        theirs.setsockopt(pyzmq.LINGER, 0)
        theirs.bind("tcp://127.0.0.1:*")
        monitor = theirs.get_monitor_socket(pyzmq.EVENT_DISCONNECTED)
        monitor.setsockopt(pyzmq.RCVTIMEO, 100)
        push = ctx.socket(zp.PUSH)
        push.connect(theirs.last_endpoint.decode())
        push.send(b"first")
        assert theirs.recv() == b"first"
        time.sleep(1.0)  # twenty PING intervals: we must have answered every one
        with pytest.raises(pyzmq.Again):
            monitor.recv_multipart()
        push.send(b"second")
        assert theirs.recv() == b"second"
        theirs.disable_monitor()
        monitor.close(linger=0)
        theirs.close(linger=0)
    finally:
        pctx.term()


def test_libzmq_answers_our_pings(ctx):
    pctx = pyzmq.Context()
    try:
        theirs = pctx.socket(pyzmq.PULL)
        theirs.setsockopt(pyzmq.LINGER, 0)
        theirs.setsockopt(pyzmq.RCVTIMEO, 5000)
        theirs.bind("tcp://127.0.0.1:*")
        push = ctx.socket(zp.PUSH)
        push.heartbeat_ivl = 50
        push.heartbeat_timeout = 200
        push.connect(theirs.last_endpoint.decode())
        push.send(b"first")
        assert theirs.recv() == b"first"
        time.sleep(1.0)  # libzmq's PONGs must keep the connection alive
        pipes = push._core.pipes
        assert len(pipes) == 1
        assert pipes[0].alive
        push.send(b"second")
        assert theirs.recv() == b"second"
        theirs.close(linger=0)
    finally:
        pctx.term()


def test_peer_ttl_drops_a_peer_that_goes_quiet(ctx):
    """A peer whose PING carried a TTL is dropped when it then goes silent past it."""
    pull = ctx.socket(zp.PULL)
    pull.bind("tcp://127.0.0.1:*")
    port = int(pull.last_endpoint.rsplit(b":", 1)[1])
    raw = socket.create_connection(("127.0.0.1", port), timeout=5)
    raw.sendall(build_greeting(b"NULL", False))
    raw.sendall(encode_command(b"READY", encode_metadata({"Socket-Type": b"PUSH"})))
    raw.sendall(encode_command(b"PING", (3).to_bytes(2, "big")))  # TTL 0.3 s
    started = time.monotonic()
    _read_exactly(raw, 64)
    names = _read_commands(raw, started + 3)
    assert b"PONG" in names, names
    assert names[-1] == b"<closed>", names  # only the TTL can close it: no heartbeats are set
    raw.close()
