"""Endpoint forms against libzmq: Linux abstract ipc names, IPv6 and host names."""

from __future__ import annotations

import socket
import sys
import uuid

import pytest
import zmq as pyzmq

import zeropipe as zp

pytestmark = [pytest.mark.interop, pytest.mark.timeout(20)]


def _has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.fixture
def contexts():
    ours, theirs = zp.Context(), pyzmq.Context()
    yield ours, theirs
    ours.destroy(linger=0)
    theirs.destroy(linger=0)


def _exchange(ours_bind: bool, endpoint: str, contexts) -> None:
    ours_ctx, theirs_ctx = contexts
    ours = ours_ctx.socket(zp.PAIR)
    theirs = theirs_ctx.socket(pyzmq.PAIR)
    for sock in (ours, theirs):
        sock.setsockopt(zp.RCVTIMEO, 5000)
        sock.setsockopt(zp.SNDTIMEO, 5000)
    binder, connecter = (ours, theirs) if ours_bind else (theirs, ours)
    binder.bind(endpoint)
    bound = binder.getsockopt(zp.LAST_ENDPOINT)
    connecter.connect(bound.decode() if isinstance(bound, bytes) else bound)
    ours.send(b"from zeropipe")
    assert theirs.recv() == b"from zeropipe"
    theirs.send(b"from libzmq")
    assert ours.recv() == b"from libzmq"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="abstract names are Linux-only")
@pytest.mark.parametrize("ours_bind", [True, False], ids=["ours-binds", "theirs-binds"])
def test_abstract_ipc_name(ours_bind: bool, contexts) -> None:
    _exchange(ours_bind, f"ipc://@zeropipe-test-{uuid.uuid4().hex}", contexts)


@pytest.mark.skipif(not _has_ipv6_loopback(), reason="no IPv6 loopback")
@pytest.mark.parametrize("ours_bind", [True, False], ids=["ours-binds", "theirs-binds"])
def test_ipv6_loopback(ours_bind: bool, contexts) -> None:
    contexts[1].setsockopt(pyzmq.IPV6, 1)  # libzmq needs IPV6 to bind or connect to [::1]
    _exchange(ours_bind, "tcp://[::1]:*", contexts)


@pytest.mark.parametrize("ours_bind", [True, False], ids=["ours-binds", "theirs-binds"])
def test_host_name(ours_bind: bool, contexts) -> None:
    ours_ctx, theirs_ctx = contexts
    ours = ours_ctx.socket(zp.PAIR)
    theirs = theirs_ctx.socket(pyzmq.PAIR)
    for sock in (ours, theirs):
        sock.setsockopt(zp.RCVTIMEO, 5000)
    binder, connecter = (ours, theirs) if ours_bind else (theirs, ours)
    binder.bind("tcp://127.0.0.1:*")
    port = binder.getsockopt(zp.LAST_ENDPOINT).rsplit(b":", 1)[1].decode()
    connecter.connect(f"tcp://localhost:{port}")
    connecter.send(b"by name")
    assert binder.recv() == b"by name"
