"""Reconnection over real sockets (the backoff schedule itself: tests/test_reactor.py)."""

from __future__ import annotations

import socket
import threading
import time

import pytest

import zeropipe as zp

pytestmark = pytest.mark.timeout(20)


def _raw_listener() -> tuple[socket.socket, int]:
    """A plain TCP listener on a free loopback port, for tests that play the peer by hand."""
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.settimeout(5)
    return listener, listener.getsockname()[1]


def test_push_reconnects_to_a_restarted_peer_by_itself() -> None:
    """A lost peer is reconnected without the caller (the schedule: tests/test_reactor.py)."""
    ctx = zp.Context()
    try:
        pull = ctx.socket(zp.PULL)
        pull.rcvtimeo = 5000
        pull.bind("tcp://127.0.0.1:*")
        endpoint = pull.last_endpoint.decode()
        push = ctx.socket(zp.PUSH)
        push.reconnect_ivl = 50
        push.reconnect_ivl_max = 5000
        push.connect(endpoint)
        push.send(b"one")
        assert pull.recv() == b"one"
        pull.close(linger=0)
        time.sleep(0.3)
        pull = ctx.socket(zp.PULL)
        pull.rcvtimeo = 5000
        for _ in range(50):
            try:
                pull.bind(endpoint)
                break
            except zp.ZMQError:
                time.sleep(0.05)
        done = threading.Event()

        def send_when_connected() -> None:
            push.send(b"two")
            done.set()

        threading.Thread(target=send_when_connected, daemon=True).start()
        assert pull.recv() == b"two"
        assert done.wait(5)
    finally:
        ctx.destroy(linger=0)


def test_connecting_pipe_survives_peers_that_hang_up_during_the_handshake() -> None:
    """A queued message outlives connections that end before the peer's greeting.

    The connecting pipe exists from connect() on (IMMEDIATE 0): each new connection needs a
    fresh handshake, however the last one ended.
    """
    listener, port = _raw_listener()
    ctx = zp.Context()
    push = ctx.socket(zp.PUSH)
    pull = ctx.socket(zp.PULL)
    try:
        push.linger = 0
        push.reconnect_ivl = 20
        pull.rcvtimeo = 5000
        push.connect(f"tcp://127.0.0.1:{port}")
        push.send(b"hello", zp.NOBLOCK)  # waits in the pipe
        for _ in range(3):  # three connections that end without a greeting
            conn, _ = listener.accept()
            conn.settimeout(5)
            conn.recv(10)
            conn.close()
        listener.close()
        pull.bind(f"tcp://127.0.0.1:{port}")
        assert pull.recv() == b"hello"
    finally:
        listener.close()
        push.close()
        pull.close()
        ctx.term()


def test_queued_messages_outlive_a_peer_that_hangs_up_right_after_its_ready() -> None:
    """The peer's READY and its FIN arrive together: the handshake succeeds, and the first
    queued message finds the connection gone while it is being sent. It must wait for the
    next connection, in order, and the reactor must not spin on it (close() used to hang)."""
    import struct

    from zeropipe.protocol.greeting import build_greeting

    body = b"\x05READY\x0bSocket-Type" + struct.pack(">I", 4) + b"PULL"
    ready = b"\x04" + bytes((len(body),)) + body
    listener, port = _raw_listener()
    ctx = zp.Context()
    push = ctx.socket(zp.PUSH)
    pull = ctx.socket(zp.PULL)
    try:
        push.linger = 0
        push.reconnect_ivl = 20
        pull.rcvtimeo = 5000
        push.connect(f"tcp://127.0.0.1:{port}")
        for text in (b"one", b"two", b"three"):
            push.send(text, zp.NOBLOCK)  # they wait in the pipe
        conn, _ = listener.accept()
        conn.settimeout(5)
        conn.sendall(build_greeting(b"NULL", False))
        got = b""
        while len(got) < 66:  # our greeting and the start of our READY
            got += conn.recv(4096)
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 1)
        conn.sendall(ready)
        conn.shutdown(socket.SHUT_WR)  # READY and FIN in one segment
        time.sleep(0.2)
        conn.close()
        listener.close()
        pull.bind(f"tcp://127.0.0.1:{port}")
        assert [pull.recv() for _ in range(3)] == [b"one", b"two", b"three"]
    finally:
        listener.close()
        closer = threading.Thread(target=push.close, daemon=True)
        closer.start()
        closer.join(5)
        assert not closer.is_alive(), "close() hung: the reactor is stuck with the lock"
        pull.close()
        ctx.term()


def test_connect_timeout_gives_up_on_a_connect_that_hangs() -> None:
    """CONNECT_TIMEOUT: a connect stuck in SYN_SENT is closed and retried.

    The listener's accept queue is full, so the kernel drops our SYNs and, left alone, the
    connect would wait for minutes of SYN retransmissions.
    """
    from zeropipe.utils.monitor import recv_monitor_message

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    ctx = zp.Context()
    dealer = ctx.socket(zp.DEALER)
    monitor = dealer.get_monitor_socket()
    try:
        for _ in range(8):  # fill the accept queue
            filler = socket.socket()
            filler.setblocking(False)
            filler.connect_ex(("127.0.0.1", port))
            fillers.append(filler)
        monitor.rcvtimeo = 5000
        dealer.linger = 0
        dealer.connect_timeout = 100
        dealer.reconnect_ivl = 10_000
        dealer.connect(f"tcp://127.0.0.1:{port}")
        events = [recv_monitor_message(monitor)["event"] for _ in range(3)]
        assert events == [zp.EVENT_CONNECT_DELAYED, zp.EVENT_CLOSED, zp.EVENT_CONNECT_RETRIED]
    finally:
        for filler in fillers:
            filler.close()
        listener.close()
        dealer.close()
        monitor.close()
        ctx.term()


def test_tcp_maxrt_sets_the_connection_user_timeout() -> None:
    """TCP_MAXRT reaches the kernel as TCP_USER_TIMEOUT on both ends' connections."""
    if not hasattr(socket, "TCP_USER_TIMEOUT"):
        pytest.skip("no TCP_USER_TIMEOUT here")
    ctx = zp.Context()
    pull = ctx.socket(zp.PULL)
    push = ctx.socket(zp.PUSH)
    try:
        for sock in (pull, push):
            sock.linger = 0
            sock.tcp_maxrt = 1500
        pull.rcvtimeo = 5000
        pull.bind("tcp://127.0.0.1:*")
        push.connect(pull.last_endpoint.decode())
        push.send(b"x")
        assert pull.recv() == b"x"
        for sock in (pull, push):
            (pipe,) = sock._core.pipes
            assert pipe.sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT) == 1500
    finally:
        push.close()
        pull.close()
        ctx.term()
