"""Reconnection: RECONNECT_IVL, RECONNECT_IVL_MAX backoff, and -1 (never)."""

from __future__ import annotations

import socket
import threading
import time

import pytest

import zeropipe as zp

pytestmark = pytest.mark.timeout(20)


def _count_connections(seconds: float, **options: int) -> int:
    """Connect a PUSH to a listener that hangs up at once; count its attempts."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.05)
    port = listener.getsockname()[1]
    ctx = zp.Context()
    count = 0
    try:
        push = ctx.socket(zp.PUSH)
        for name, value in options.items():
            setattr(push, name, value)
        push.connect(f"tcp://127.0.0.1:{port}")
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            count += 1
            conn.close()
    finally:
        ctx.destroy(linger=0)
        listener.close()
    return count


def test_reconnect_interval_without_backoff() -> None:
    # 100 ms apart for 1.2 s: about 12 attempts (a refused handshake does not back off).
    attempts = _count_connections(1.2, reconnect_ivl=100)
    assert 8 <= attempts <= 16, attempts


def test_reconnect_backoff_doubles_up_to_the_maximum() -> None:
    # 50, 100, 200, 400, 400... ms: about 5 attempts in 1.2 s, against 24 without backoff.
    attempts = _count_connections(1.2, reconnect_ivl=50, reconnect_ivl_max=400)
    assert 3 <= attempts <= 7, attempts


def test_reconnect_disabled() -> None:
    attempts = _count_connections(0.8, reconnect_ivl=-1)
    assert attempts == 1


def test_backoff_resets_after_a_good_connection() -> None:
    """After a handshake succeeded, a lost peer is retried at RECONNECT_IVL again."""
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
        started = time.monotonic()
        done = threading.Event()

        def send_when_connected() -> None:
            push.send(b"two")
            done.set()

        threading.Thread(target=send_when_connected, daemon=True).start()
        assert pull.recv() == b"two"
        assert done.wait(5)
        assert time.monotonic() - started < 2.0
    finally:
        ctx.destroy(linger=0)
