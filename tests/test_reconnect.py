"""Reconnection over real sockets (the backoff schedule itself: tests/test_reactor.py)."""

from __future__ import annotations

import threading
import time

import pytest

import zeropipe as zp

pytestmark = pytest.mark.timeout(20)


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
