"""The pyzmq-shaped blocking API of zeropipe: Context, Socket, Frame, Poller, select.

Every test is parallel-safe (tcp binds to ``127.0.0.1:*``, ipc paths live in a private
directory under /tmp, inproc names carry a uuid) and cannot hang: sockets we block on have
RCVTIMEO/SNDTIMEO, every socket is closed and every context terminated by the fixtures, and
``Context.term()`` is guarded by a deadline.

``ZP_IMPL=pyzmq`` runs the same tests against pyzmq (libzmq), which validates the tests
themselves; tests of zeropipe extensions are skipped then.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import socket
import stat
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from deadlines import term_with_deadline
from netutil import TestEnv, endpoint_of, free_tcp_port, implementation

IMPL, zmq = implementation("ZP_IMPL")

pytestmark = pytest.mark.timeout(30)

zeropipe_only = pytest.mark.skipif(IMPL != "zeropipe", reason="zeropipe extension")

TIMEOUT_MS = 5000
"""RCVTIMEO/SNDTIMEO of every socket a test may block on."""

TERM_TIMEOUT_S = 5.0
TRANSPORTS = ["tcp", "ipc", "inproc"]


# -- helpers ---------------------------------------------------------------------------


def has_ipv6_loopback() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


def cleanup_term(ctx: Any) -> None:
    """Teardown: terminate ``ctx`` unless a test already did (a second term is tested apart)."""
    if not ctx.closed:
        term_with_deadline(ctx)


def wait_until(predicate: Callable[[], bool], timeout: float = 5.0, step: float = 0.01) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


class Env(TestEnv):
    """One context, every socket of a test, and a short scratch directory for ipc."""

    def __init__(self) -> None:
        super().__init__(zmq)

    def socket(
        self, kind: int, ctx: Any = None, *, linger: int = 0, timeout: int = TIMEOUT_MS
    ) -> Any:
        return self.new_socket(ctx or self.ctx, kind, timeout=timeout, linger=linger)

    def pipe(self, transport: str, kinds: tuple[int, int] | None = None) -> tuple[Any, Any]:
        """A bound receiver and a connected sender (PULL, PUSH by default), connected."""
        recv_kind, send_kind = kinds or (zmq.PULL, zmq.PUSH)
        receiver = self.socket(recv_kind)
        sender = self.socket(send_kind)
        sender.connect(self.bind(receiver, transport))
        return receiver, sender


@pytest.fixture
def env() -> Iterator[Env]:
    owner = Env()
    try:
        yield owner
    finally:
        owner.close()


def drain(sock: Any, timeout_ms: int = 200) -> list[Any]:
    """Receive whole messages until nothing arrives for ``timeout_ms``."""
    out = []
    while sock.poll(timeout_ms):
        out.append(sock.recv_multipart())
    return out


def assert_nothing_arrives(sock: Any, timeout_ms: int = 300) -> None:
    assert sock.poll(timeout_ms) == 0, f"unexpected message: {sock.recv_multipart(zmq.NOBLOCK)}"


def send_until_delivered(sender: Any, receiver: Any, timeout: float = 5.0) -> bytes:
    """Send probes until one arrives (for connections that come up asynchronously).

    Returns the first message received, whatever it is: nothing else may be in flight.
    More probes may follow it; callers drain them.
    """
    deadline = time.monotonic() + timeout
    n = 0
    while time.monotonic() < deadline:
        try:
            sender.send(b"probe-%d" % n, zmq.NOBLOCK)
        except zmq.Again:
            pass
        n += 1
        if receiver.poll(50):
            msg: bytes = receiver.recv()
            return msg
    raise AssertionError("no probe was delivered")


# -- Context ---------------------------------------------------------------------------


def test_context_socket_close_term() -> None:
    ctx = zmq.Context()
    try:
        sock = ctx.socket(zmq.PUSH)
        assert isinstance(sock, zmq.Socket)
        assert sock.context is ctx
        assert not ctx.closed
        sock.close()
    finally:
        cleanup_term(ctx)
    assert ctx.closed


def test_context_instance_is_shared_and_renewed_after_term() -> None:
    first = zmq.Context.instance()
    second = None
    try:
        assert zmq.Context.instance() is first
        assert isinstance(first, zmq.Context)
        term_with_deadline(first)
        second = zmq.Context.instance()
        assert second is not first
        assert not second.closed
        assert zmq.Context.instance() is second
    finally:
        cleanup_term(first)
        if second is not None:
            cleanup_term(second)


def test_context_manager_terms_on_exit() -> None:
    with zmq.Context() as ctx:
        sock = ctx.socket(zmq.PUSH)
        sock.close()
        assert not ctx.closed
    assert ctx.closed


def test_destroy_closes_open_sockets() -> None:
    ctx = zmq.Context()
    try:
        pull = ctx.socket(zmq.PULL)
        pull.bind("tcp://127.0.0.1:*")
        push = ctx.socket(zmq.PUSH)
        push.connect(endpoint_of(pull))
        push.send(b"pending")
        pair = ctx.socket(zmq.PAIR)
        ctx.destroy(linger=0)  # a pending message must not hold it up (pytest-timeout guards)
        assert push.closed
        assert pull.closed
        assert pair.closed
        assert ctx.closed
    finally:
        cleanup_term(ctx)


@pytest.mark.parametrize("started", ["idle", "reactor-started"])
def test_term_twice_returns(started: str) -> None:
    """A second ``term()`` is a no-op in pyzmq; it must not block."""
    ctx = zmq.Context()
    sock = ctx.socket(zmq.PULL)
    if started == "reactor-started":
        sock.bind("tcp://127.0.0.1:*")
    sock.close(linger=0)
    done = threading.Event()
    errors: list[BaseException] = []

    def term_twice() -> None:
        # One thread for both calls: it lived alongside the reactor thread, so its
        # thread id cannot be a recycled id of that (by then finished) thread.
        try:
            ctx.term()
            ctx.term()
        except BaseException as exc:
            errors.append(exc)
        finally:
            done.set()

    threading.Thread(target=term_twice, daemon=True).start()
    assert done.wait(TERM_TIMEOUT_S), "the second Context.term() hung"
    assert not errors
    assert ctx.closed


def test_destroy_inside_context_manager_returns() -> None:
    """``with Context() as ctx: ... ctx.destroy()`` terms twice: exit must not hang."""
    done = threading.Event()
    errors: list[BaseException] = []

    def run() -> None:
        try:
            with zmq.Context() as ctx:
                push = ctx.socket(zmq.PUSH)
                push.connect(f"tcp://127.0.0.1:{free_tcp_port()}")
                ctx.destroy(linger=0)
        except BaseException as exc:
            errors.append(exc)
        finally:
            done.set()

    threading.Thread(target=run, daemon=True).start()
    assert done.wait(TERM_TIMEOUT_S), "leaving the with block hung after destroy()"
    assert not errors


def test_socket_after_term_raises() -> None:
    ctx = zmq.Context()
    term_with_deadline(ctx)
    with pytest.raises(zmq.ZMQError):
        ctx.socket(zmq.PUSH)


def test_blocking_recv_raises_context_terminated_on_term() -> None:
    ctx = zmq.Context()
    pull = ctx.socket(zmq.PULL)
    pull.linger = 0
    pull.rcvtimeo = TIMEOUT_MS
    errors: list[BaseException] = []

    def receive() -> None:
        try:
            pull.recv()
        except BaseException as exc:
            errors.append(exc)
        finally:
            pull.close()

    thread = threading.Thread(target=receive, daemon=True)
    thread.start()
    time.sleep(0.2)
    term_with_deadline(ctx)
    thread.join(TERM_TIMEOUT_S)
    assert not thread.is_alive()
    assert len(errors) == 1
    assert isinstance(errors[0], zmq.ContextTerminated)
    assert errors[0].errno == zmq.ETERM


# -- Socket lifecycle ------------------------------------------------------------------


def test_socket_context_manager_closes(env: Env) -> None:
    with env.ctx.socket(zmq.PAIR) as sock:
        assert not sock.closed
        sock.linger = 0
    assert sock.closed


def test_closed_property_and_double_close(env: Env) -> None:
    sock = env.socket(zmq.PUSH)
    assert sock.closed is False
    sock.close()
    assert sock.closed is True
    sock.close()  # idempotent
    assert sock.closed is True


@pytest.mark.parametrize("kind", ["PUSH", "PAIR"])
def test_send_on_closed_socket_raises_enotsock(env: Env, kind: str) -> None:
    sock = env.socket(getattr(zmq, kind))
    sock.close()
    with pytest.raises(zmq.ZMQError) as info:
        sock.send(b"x")
    assert info.value.errno == errno.ENOTSOCK


def test_recv_on_closed_socket_raises_enotsock(env: Env) -> None:
    sock = env.socket(zmq.PULL)
    sock.close()
    with pytest.raises(zmq.ZMQError) as info:
        sock.recv()
    assert info.value.errno == errno.ENOTSOCK


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_recv_on_closed_socket_with_queued_messages_raises_enotsock(
    env: Env, transport: str
) -> None:
    """Messages still queued when the socket is closed must not come out of it."""
    pull, push = env.pipe(transport)
    for i in range(3):
        push.send(b"m%d" % i)
    assert pull.recv() == b"m0"
    time.sleep(0.2)  # let the rest arrive in the socket's queue
    pull.close()
    with pytest.raises(zmq.ZMQError) as info:
        pull.recv()
    assert info.value.errno == errno.ENOTSOCK
    with pytest.raises(zmq.ZMQError) as info:
        pull.recv_multipart()
    assert info.value.errno == errno.ENOTSOCK


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_recv_on_closed_socket_mid_multipart_raises_enotsock(env: Env, transport: str) -> None:
    """The rest of a half-read multipart message must not come out of a closed socket."""
    pull, push = env.pipe(transport)
    push.send_multipart([b"part-1", b"part-2", b"part-3"])
    assert pull.recv() == b"part-1"
    assert pull.rcvmore
    pull.close()
    with pytest.raises(zmq.ZMQError) as info:
        pull.recv()
    assert info.value.errno == errno.ENOTSOCK


def test_option_access_on_closed_socket_raises(env: Env) -> None:
    sock = env.socket(zmq.PUSH)
    sock.close()
    with pytest.raises(zmq.ZMQError) as info:
        sock.getsockopt(zmq.LINGER)
    assert info.value.errno == errno.ENOTSOCK
    with pytest.raises(zmq.ZMQError):
        sock.bind("tcp://127.0.0.1:*")
    with pytest.raises(zmq.ZMQError):
        sock.connect("tcp://127.0.0.1:1")


def test_unsupported_direction_raises(env: Env) -> None:
    pull = env.socket(zmq.PULL)
    push = env.socket(zmq.PUSH)
    with pytest.raises(zmq.ZMQError) as info:
        pull.send(b"x")
    assert info.value.errno == errno.ENOTSUP
    with pytest.raises(zmq.ZMQError) as info:
        push.recv()
    assert info.value.errno == errno.ENOTSUP


def test_invalid_socket_type_raises(env: Env) -> None:
    with pytest.raises(zmq.ZMQError) as info:
        env.ctx.socket(9999)
    assert info.value.errno == errno.EINVAL


# -- options ---------------------------------------------------------------------------


def test_unknown_option_raises_einval(env: Env) -> None:
    sock = env.socket(zmq.PUSH)
    with pytest.raises(zmq.ZMQError) as info:
        sock.setsockopt(9999, 1)
    assert info.value.errno == errno.EINVAL
    with pytest.raises(zmq.ZMQError) as info:
        sock.getsockopt(9999)
    assert info.value.errno == errno.EINVAL


def test_attribute_options(env: Env) -> None:
    sock = env.socket(zmq.PULL)
    sock.linger = 0
    assert sock.linger == 0
    assert sock.getsockopt(zmq.LINGER) == 0
    sock.linger = 250
    assert sock.getsockopt(zmq.LINGER) == 250
    sock.sndhwm = 11
    sock.rcvhwm = 12
    assert (sock.sndhwm, sock.rcvhwm) == (11, 12)
    assert sock.getsockopt(zmq.SNDHWM) == 11
    assert sock.getsockopt(zmq.RCVHWM) == 12
    sock.rcvtimeo = 1234
    sock.sndtimeo = 4321
    assert (sock.rcvtimeo, sock.sndtimeo) == (1234, 4321)
    assert sock.type == zmq.PULL
    assert sock.getsockopt(zmq.TYPE) == zmq.PULL
    assert not sock.rcvmore
    assert sock.getsockopt(zmq.RCVMORE) == 0
    sock.bind("tcp://127.0.0.1:*")
    last = sock.last_endpoint
    assert isinstance(last, bytes)
    assert last.startswith(b"tcp://127.0.0.1:")
    assert sock.getsockopt(zmq.LAST_ENDPOINT) == last


def test_option_defaults_match_libzmq(env: Env) -> None:
    sock = env.ctx.socket(zmq.PUSH)
    env.sockets.append(sock)
    assert sock.linger == -1
    assert sock.sndhwm == 1000
    assert sock.rcvhwm == 1000
    assert sock.rcvtimeo == -1
    assert sock.sndtimeo == -1
    assert sock.last_endpoint == b""


def test_socket_type_of_each_kind(env: Env) -> None:
    for name in ("PUSH", "PULL", "PAIR"):
        sock = env.socket(getattr(zmq, name))
        assert sock.type == getattr(zmq, name)
        assert sock.getsockopt(zmq.TYPE) == getattr(zmq, name)


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("SNDHWM", 5),
        ("RCVHWM", 6),
        ("LINGER", 100),
        ("RCVTIMEO", 1234),
        ("SNDTIMEO", 4321),
        ("RECONNECT_IVL", 50),
        ("RECONNECT_IVL_MAX", 500),
        ("BACKLOG", 10),
        ("MAXMSGSIZE", 1 << 20),
        ("HEARTBEAT_IVL", 1000),
        ("TCP_KEEPALIVE", 1),
        ("ROUTING_ID", b"abc"),
        ("IDENTITY", b"id-1"),
    ],
)
def test_set_get_roundtrip(env: Env, option: str, value: int | bytes) -> None:
    opt = getattr(zmq, option)
    a = env.socket(zmq.PUSH)
    a.setsockopt(opt, value)
    assert a.getsockopt(opt) == value
    b = env.socket(zmq.PUSH)
    b.set(opt, value)
    assert b.get(opt) == value
    c = env.socket(zmq.PUSH)
    setattr(c, option.lower(), value)
    assert getattr(c, option.lower()) == value


def test_set_string_get_string_roundtrip(env: Env) -> None:
    sock = env.socket(zmq.PAIR)
    sock.set_string(zmq.IDENTITY, "héllo")
    assert sock.get_string(zmq.IDENTITY) == "héllo"
    assert sock.getsockopt(zmq.IDENTITY) == "héllo".encode()
    assert sock.identity == "héllo".encode()
    sock.setsockopt_string(zmq.ROUTING_ID, "other")
    assert sock.getsockopt_string(zmq.ROUTING_ID) == "other"
    sock.bind("tcp://127.0.0.1:*")
    assert sock.get_string(zmq.LAST_ENDPOINT) == sock.last_endpoint.decode()


def test_hwm_sets_both(env: Env) -> None:
    sock = env.socket(zmq.PUSH)
    sock.hwm = 7
    assert sock.sndhwm == 7
    assert sock.rcvhwm == 7
    assert sock.getsockopt(zmq.SNDHWM) == 7
    assert sock.getsockopt(zmq.RCVHWM) == 7
    assert sock.hwm == 7


def test_set_hwm_get_hwm_methods(env: Env) -> None:
    """pyzmq's ``Socket.set_hwm`` / ``get_hwm`` (what ``sock.hwm`` is built on)."""
    sock = env.socket(zmq.PUSH)
    sock.set_hwm(9)
    assert sock.getsockopt(zmq.SNDHWM) == 9
    assert sock.getsockopt(zmq.RCVHWM) == 9
    assert sock.get_hwm() == 9


def test_int_option_rejects_bytes(env: Env) -> None:
    sock = env.socket(zmq.PUSH)
    with pytest.raises((TypeError, zmq.ZMQError)):
        sock.setsockopt(zmq.LINGER, b"x")


def test_context_default_options_apply_to_new_sockets(env: Env) -> None:
    before = env.ctx.socket(zmq.PUSH)
    env.sockets.append(before)
    env.ctx.linger = 0
    env.ctx.setsockopt(zmq.SNDHWM, 7)
    env.ctx.rcvhwm = 8
    after = env.ctx.socket(zmq.PUSH)
    env.sockets.append(after)
    assert after.linger == 0
    assert after.sndhwm == 7
    assert after.rcvhwm == 8
    assert env.ctx.linger == 0
    assert env.ctx.getsockopt(zmq.SNDHWM) == 7
    # Sockets created earlier keep their own values.
    assert before.linger == -1
    assert before.sndhwm == 1000


def test_context_options(env: Env) -> None:
    assert env.ctx.get(zmq.IO_THREADS) >= 1
    assert env.ctx.get(zmq.MAX_SOCKETS) > 0
    env.ctx.set(zmq.MAX_SOCKETS, 256)
    assert env.ctx.get(zmq.MAX_SOCKETS) == 256
    assert env.ctx.max_sockets == 256


# -- endpoints: errors -----------------------------------------------------------------


BAD_ENDPOINTS = ["foo", "tcp://", "tcp://127.0.0.1", "tcp://127.0.0.1:99999", "bogus://x"]


@pytest.mark.parametrize("method", ["bind", "connect"])
@pytest.mark.parametrize("endpoint", BAD_ENDPOINTS)
def test_bad_endpoint_raises(env: Env, method: str, endpoint: str) -> None:
    sock = env.socket(zmq.PULL)
    with pytest.raises(zmq.ZMQError) as info:
        getattr(sock, method)(endpoint)
    assert info.value.errno in (errno.EINVAL, errno.EPROTONOSUPPORT)


@pytest.mark.parametrize("method", ["bind", "connect"])
def test_unknown_transport_is_eprotonosupport(env: Env, method: str) -> None:
    sock = env.socket(zmq.PULL)
    with pytest.raises(zmq.ZMQError) as info:
        getattr(sock, method)("bogus://x")
    assert info.value.errno == errno.EPROTONOSUPPORT


def test_connect_to_wildcard_host_raises(env: Env) -> None:
    sock = env.socket(zmq.PUSH)
    with pytest.raises(zmq.ZMQError) as info:
        sock.connect(f"tcp://*:{free_tcp_port()}")
    assert info.value.errno == errno.EINVAL


def test_bind_twice_to_same_tcp_port_raises_eaddrinuse(env: Env) -> None:
    first = env.socket(zmq.PULL)
    first.bind("tcp://127.0.0.1:*")
    endpoint = endpoint_of(first)
    second = env.socket(zmq.PULL)
    with pytest.raises(zmq.ZMQError) as info:
        second.bind(endpoint)
    assert info.value.errno == errno.EADDRINUSE
    with pytest.raises(zmq.ZMQError) as info:
        first.bind(endpoint)
    assert info.value.errno == errno.EADDRINUSE


def test_inproc_bind_twice_raises(env: Env) -> None:
    endpoint = env.endpoint("inproc")
    first = env.socket(zmq.PULL)
    first.bind(endpoint)
    second = env.socket(zmq.PULL)
    with pytest.raises(zmq.ZMQError) as info:
        second.bind(endpoint)
    assert info.value.errno == errno.EADDRINUSE


def test_unbind_unknown_endpoint_raises(env: Env) -> None:
    sock = env.socket(zmq.PULL)
    with pytest.raises(zmq.ZMQError) as info:
        sock.unbind(f"tcp://127.0.0.1:{free_tcp_port()}")
    assert info.value.errno == errno.ENOENT


def test_disconnect_unknown_endpoint_raises(env: Env) -> None:
    sock = env.socket(zmq.PUSH)
    with pytest.raises(zmq.ZMQError) as info:
        sock.disconnect(f"tcp://127.0.0.1:{free_tcp_port()}")
    assert info.value.errno == errno.ENOENT


# -- endpoints: binding ----------------------------------------------------------------


def _roundtrip(env: Env, receiver: Any, endpoint: str, payload: bytes = b"ping") -> None:
    sender = env.socket(zmq.PUSH)
    sender.connect(endpoint)
    sender.send(payload)
    assert receiver.recv() == payload


def test_bind_to_random_port(env: Env) -> None:
    pull = env.socket(zmq.PULL)
    port = pull.bind_to_random_port("tcp://127.0.0.1")
    assert isinstance(port, int)
    assert 0 < port < 65536
    assert pull.last_endpoint == f"tcp://127.0.0.1:{port}".encode()
    _roundtrip(env, pull, f"tcp://127.0.0.1:{port}")


def test_bind_to_random_port_in_range(env: Env) -> None:
    pull = env.socket(zmq.PULL)
    port = pull.bind_to_random_port("tcp://127.0.0.1", min_port=20000, max_port=30000)
    assert isinstance(port, int)
    assert 20000 <= port < 30000
    assert pull.last_endpoint == f"tcp://127.0.0.1:{port}".encode()
    _roundtrip(env, pull, f"tcp://127.0.0.1:{port}")


def test_bind_to_random_port_gives_up_with_zmqbinderror(env: Env) -> None:
    holder = env.socket(zmq.PULL)
    holder.bind("tcp://127.0.0.1:*")
    port = int(endpoint_of(holder).rsplit(":", 1)[1])
    pull = env.socket(zmq.PULL)
    with pytest.raises(zmq.ZMQBindError):
        pull.bind_to_random_port("tcp://127.0.0.1", port, port + 1, max_tries=3)


def test_bind_tcp_wildcard_host_and_port(env: Env) -> None:
    pull = env.socket(zmq.PULL)
    pull.bind("tcp://*:*")
    last = endpoint_of(pull)
    assert last.startswith("tcp://0.0.0.0:")
    port = int(last.rsplit(":", 1)[1])
    assert 0 < port < 65536
    _roundtrip(env, pull, f"tcp://127.0.0.1:{port}")


def test_bind_tcp_loopback_any_port(env: Env) -> None:
    pull = env.socket(zmq.PULL)
    pull.bind("tcp://127.0.0.1:*")
    last = endpoint_of(pull)
    assert last.startswith("tcp://127.0.0.1:")
    assert int(last.rsplit(":", 1)[1]) > 0
    _roundtrip(env, pull, last)


@pytest.mark.skipif(not has_ipv6_loopback(), reason="no IPv6 loopback")
def test_bind_ipv6_loopback(env: Env) -> None:
    pull = env.socket(zmq.PULL)
    pull.ipv6 = 1  # libzmq needs it for IPv6 addresses
    pull.bind("tcp://[::1]:*")
    last = endpoint_of(pull)
    assert last.startswith("tcp://[::1]:")
    push = env.socket(zmq.PUSH)
    push.ipv6 = 1
    push.connect(last)
    push.send(b"over ipv6")
    assert pull.recv() == b"over ipv6"


def test_bind_hostname_localhost(env: Env) -> None:
    pull = env.socket(zmq.PULL)
    pull.bind("tcp://localhost:*")
    last = endpoint_of(pull)
    assert last.startswith("tcp://")
    port = int(last.rsplit(":", 1)[1])
    assert 0 < port < 65536
    _roundtrip(env, pull, last, b"via last_endpoint")
    _roundtrip(env, pull, f"tcp://localhost:{port}", b"via localhost")


def test_bind_ipc_path(env: Env) -> None:
    pull = env.socket(zmq.PULL)
    path = os.path.join(env.scratch, "named.sock")
    pull.bind(f"ipc://{path}")
    assert endpoint_of(pull) == f"ipc://{path}"
    assert stat.S_ISSOCK(os.stat(path).st_mode)
    _roundtrip(env, pull, f"ipc://{path}")


def test_bind_ipc_replaces_stale_socket_file(env: Env) -> None:
    path = os.path.join(env.scratch, "stale.sock")
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(path)
    stale.close()  # leaves the file behind, nobody listening
    pull = env.socket(zmq.PULL)
    pull.bind(f"ipc://{path}")
    _roundtrip(env, pull, f"ipc://{path}")


def test_bind_ipc_wildcard(env: Env) -> None:
    pull = env.socket(zmq.PULL)
    pull.bind("ipc://*")
    last = endpoint_of(pull)
    try:
        assert last.startswith("ipc://")
        path = last[len("ipc://") :]
        assert path
        assert path != "*"
        assert stat.S_ISSOCK(os.stat(path).st_mode), f"{path} is not a socket file"
        _roundtrip(env, pull, last)
    finally:
        pull.close()
        _remove_wildcard_dir(last)


def _remove_wildcard_dir(endpoint: str) -> None:
    path = endpoint[len("ipc://") :]
    directory = os.path.dirname(path)
    if directory and os.path.isdir(directory) and directory not in ("/", "/tmp", "."):
        shutil.rmtree(directory, ignore_errors=True)


def test_ipc_wildcard_temporary_directory_is_removed_on_close() -> None:
    """libzmq removes the directory it created for ``ipc://*`` when the socket closes."""
    ctx = zmq.Context()
    last = ""
    try:
        pull = ctx.socket(zmq.PULL)
        pull.linger = 0
        pull.bind("ipc://*")
        last = endpoint_of(pull)
        path = last[len("ipc://") :]
        directory = os.path.dirname(path)
        assert os.path.isdir(directory)
        pull.close()
        term_with_deadline(ctx)
        assert wait_until(lambda: not os.path.exists(path), 2.0), "socket file left behind"
        assert wait_until(lambda: not os.path.exists(directory), 2.0), (
            f"temporary directory {directory} left behind"
        )
    finally:
        cleanup_term(ctx)
        if last:
            _remove_wildcard_dir(last)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="abstract namespace is Linux")
def test_bind_ipc_abstract_namespace(env: Env) -> None:
    endpoint = f"ipc://@zp-{uuid.uuid4().hex}"
    pull = env.socket(zmq.PULL)
    pull.bind(endpoint)
    assert endpoint_of(pull) == endpoint
    _roundtrip(env, pull, endpoint, b"abstract")


def test_ipc_rebind_same_path_after_close_stays_reachable(env: Env) -> None:
    """Closing a bound ipc socket must not remove the file of the next socket bound there."""
    for i in range(10):
        endpoint = f"ipc://{env.scratch}/rebind-{i}.sock"
        old = env.socket(zmq.PULL)
        old.bind(endpoint)
        old.close()
        new = env.socket(zmq.PULL)
        new.bind(endpoint)
        time.sleep(0.05)  # let any deferred cleanup of the old listener run
        path = endpoint[len("ipc://") :]
        assert os.path.exists(path), f"round {i}: the new socket's file {path} was removed"
        push = env.socket(zmq.PUSH)
        push.connect(endpoint)
        push.send(b"hello %d" % i)
        assert new.recv() == b"hello %d" % i


def test_ipc_rebind_same_path_after_unbind_stays_reachable(env: Env) -> None:
    for i in range(10):
        endpoint = f"ipc://{env.scratch}/unbind-{i}.sock"
        old = env.socket(zmq.PULL)
        old.bind(endpoint)
        old.unbind(endpoint)
        new = env.socket(zmq.PULL)
        new.bind(endpoint)
        time.sleep(0.05)
        path = endpoint[len("ipc://") :]
        assert os.path.exists(path), f"round {i}: the new socket's file {path} was removed"


# -- endpoints: unbind, disconnect, with ------------------------------------------------


@pytest.mark.parametrize("transport", ["tcp", "ipc"])
def test_unbind_then_connect_retry_does_not_deliver(env: Env, transport: str) -> None:
    pull, push = env.pipe(transport)
    endpoint = endpoint_of(pull)
    push.send(b"before")
    assert pull.recv() == b"before"
    pull.unbind(endpoint)
    time.sleep(0.2)
    late = env.socket(zmq.PUSH)
    late.connect(endpoint)
    deadline = time.monotonic() + 0.5
    while time.monotonic() < deadline:
        for sender in (push, late):
            try:
                sender.send(b"after unbind", zmq.NOBLOCK)
            except zmq.Again:
                pass
        time.sleep(0.02)
    assert_nothing_arrives(pull, 500)


def test_unbind_inproc_frees_the_name(env: Env) -> None:
    endpoint = env.endpoint("inproc")
    first = env.socket(zmq.PULL)
    first.bind(endpoint)
    first.unbind(endpoint)
    second = env.socket(zmq.PULL)
    second.bind(endpoint)
    _roundtrip(env, second, endpoint)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_disconnect(env: Env, transport: str) -> None:
    pull, push = env.pipe(transport)
    endpoint = endpoint_of(push)
    push.send(b"connected")
    assert pull.recv() == b"connected"
    push.disconnect(endpoint)
    with pytest.raises(zmq.Again):
        push.send(b"disconnected", zmq.NOBLOCK)
    assert_nothing_arrives(pull)
    with pytest.raises(zmq.ZMQError):
        push.disconnect(endpoint)


@pytest.mark.parametrize("transport", ["tcp", "ipc", "inproc"])
def test_with_bind_unbinds_on_exit(env: Env, transport: str) -> None:
    pull = env.socket(zmq.PULL)
    endpoint = "tcp://127.0.0.1:*" if transport == "tcp" else env.endpoint(transport)
    with pull.bind(endpoint) as bound:
        assert bound is pull
        endpoint = endpoint_of(pull)
        _roundtrip(env, pull, endpoint, b"inside")
    late = env.socket(zmq.PUSH)
    late.connect(endpoint)
    time.sleep(0.2)
    try:
        late.send(b"after exit", zmq.NOBLOCK)
    except zmq.Again:
        pass  # zeropipe: no peer to queue to; libzmq would queue and never deliver
    assert_nothing_arrives(pull)
    with pytest.raises(zmq.ZMQError):
        pull.unbind(endpoint)


def test_with_connect_disconnects_on_exit(env: Env) -> None:
    pull = env.socket(zmq.PULL)
    pull.bind("tcp://127.0.0.1:*")
    endpoint = endpoint_of(pull)
    push = env.socket(zmq.PUSH)
    with push.connect(endpoint) as connected:
        assert connected is push
        push.send(b"inside")
        assert pull.recv() == b"inside"
    with pytest.raises(zmq.Again):
        push.send(b"after exit", zmq.NOBLOCK)
    assert_nothing_arrives(pull)


# -- send and receive ------------------------------------------------------------------


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_send_recv(env: Env, transport: str) -> None:
    pull, push = env.pipe(transport)
    push.send(b"hello")
    push.send(b"")
    assert pull.recv() == b"hello"
    assert pull.recv() == b""


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_pair_is_bidirectional(env: Env, transport: str) -> None:
    a, b = env.pipe(transport, (zmq.PAIR, zmq.PAIR))
    b.send(b"b->a")
    assert a.recv() == b"b->a"
    a.send(b"a->b")
    assert b.recv() == b"a->b"


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_sndmore_and_rcvmore(env: Env, transport: str) -> None:
    pull, push = env.pipe(transport)
    push.send(b"a", zmq.SNDMORE)
    push.send(b"", zmq.SNDMORE)
    push.send(b"c")
    assert pull.recv() == b"a"
    assert pull.rcvmore
    assert pull.getsockopt(zmq.RCVMORE) == 1
    assert pull.recv() == b""
    assert pull.rcvmore
    assert pull.recv() == b"c"
    assert not pull.rcvmore
    assert pull.getsockopt(zmq.RCVMORE) == 0


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_send_recv_multipart(env: Env, transport: str) -> None:
    pull, push = env.pipe(transport)
    push.send_multipart([b"x", b"", b"z" * 300])
    push.send_multipart([b"single"])
    push.send(b"head", zmq.SNDMORE)
    push.send_multipart([b"tail1", b"tail2"])
    assert pull.recv_multipart() == [b"x", b"", b"z" * 300]
    assert pull.recv_multipart() == [b"single"]
    assert pull.recv_multipart() == [b"head", b"tail1", b"tail2"]


def test_send_string_recv_string(env: Env) -> None:
    pull, push = env.pipe("inproc")
    push.send_string("héllo wörld ✓")
    assert pull.recv_string() == "héllo wörld ✓"
    push.send_string("latin", encoding="latin-1")
    assert pull.recv_string(encoding="latin-1") == "latin"
    with pytest.raises(TypeError):
        push.send_string(b"bytes")


def test_send_json_recv_json(env: Env) -> None:
    pull, push = env.pipe("tcp")
    obj = {"a": [1, 2.5, None, True], "b": {"nested": "ü"}}
    push.send_json(obj)
    assert pull.recv_json() == obj


def test_send_pyobj_recv_pyobj(env: Env) -> None:
    pull, push = env.pipe("ipc")
    obj = {"set": {1, 2, 3}, "tuple": (1, "two"), "bytes": b"\x00\xff"}
    push.send_pyobj(obj)
    assert pull.recv_pyobj() == obj


def test_send_serialized_recv_serialized(env: Env) -> None:
    pull, push = env.pipe("tcp")

    def serialize(obj: dict[str, Any]) -> list[bytes]:
        return [b"json", json.dumps(obj).encode()]

    def deserialize(frames: list[Any]) -> dict[str, Any]:
        assert bytes(frames[0]) == b"json"
        result: dict[str, Any] = json.loads(bytes(frames[1]))
        return result

    push.send_serialized({"k": [1, 2]}, serialize)
    assert pull.recv_serialized(deserialize) == {"k": [1, 2]}


def test_recv_into(env: Env) -> None:
    pull, push = env.pipe("tcp")
    push.send(b"hi")
    buf = bytearray(8)
    assert pull.recv_into(buf) == 2
    assert buf[:2] == b"hi"
    push.send(b"hello world")
    small = bytearray(5)
    assert pull.recv_into(small) == 11  # the full size; the copy is truncated
    assert small == b"hello"
    push.send(b"abcdef")
    big = bytearray(10)
    assert pull.recv_into(big, nbytes=3) == 6
    assert big[:3] == b"abc"
    assert big[3:] == bytes(7)


@pytest.mark.parametrize("flag", ["NOBLOCK", "DONTWAIT"])
def test_noblock_on_empty_pull_raises_again(env: Env, flag: str) -> None:
    pull = env.socket(zmq.PULL)
    pull.bind("tcp://127.0.0.1:*")
    with pytest.raises(zmq.Again) as info:
        pull.recv(getattr(zmq, flag))
    assert isinstance(info.value, zmq.ZMQError)
    assert info.value.errno == errno.EAGAIN
    with pytest.raises(zmq.Again):
        pull.recv_multipart(getattr(zmq, flag))


def test_rcvtimeo_raises_again_after_timeout(env: Env) -> None:
    pull = env.socket(zmq.PULL, timeout=300)
    pull.bind("tcp://127.0.0.1:*")
    with pytest.raises(zmq.Again):
        pull.recv()


def test_sndtimeo_raises_again_after_timeout(env: Env) -> None:
    push = env.socket(zmq.PUSH, timeout=300)
    with pytest.raises(zmq.Again):
        push.send(b"nobody there")


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_recv_copy_false_returns_frame(env: Env, transport: str) -> None:
    pull, push = env.pipe(transport)
    push.send(b"frame body")
    frame = pull.recv(copy=False)
    assert isinstance(frame, zmq.Frame)
    assert frame.bytes == b"frame body"
    assert bytes(frame.buffer) == b"frame body"
    assert isinstance(frame.buffer, memoryview)
    assert len(frame) == len(b"frame body")
    assert frame.more is False
    push.send_multipart([b"one", b"two"])
    frames = pull.recv_multipart(copy=False)
    assert [f.bytes for f in frames] == [b"one", b"two"]
    assert [f.more for f in frames] == [True, False]
    assert all(isinstance(f, zmq.Frame) for f in frames)


@pytest.mark.parametrize("transport", ["tcp", "ipc"])
@pytest.mark.parametrize("queued", [False, True], ids=["waiting", "already-queued"])
def test_received_frame_has_peer_properties(env: Env, transport: str, queued: bool) -> None:
    """``Frame.get("Socket-Type")`` is the sender's type, whichever way recv found the message."""
    pull, push = env.pipe(transport)
    for i in range(3):
        push.send(b"m%d" % i)
        if queued:
            assert pull.poll(TIMEOUT_MS) == zmq.POLLIN  # the message waits in the queue
            time.sleep(0.05)
        frame = pull.recv(copy=False)
        assert frame.bytes == b"m%d" % i
        assert frame.get("Socket-Type") == "PUSH"


def test_received_frame_peer_address_is_the_ip(env: Env) -> None:
    """libzmq's ``Peer-Address`` property is the peer's IP address, without the port."""
    pull, push = env.pipe("tcp")
    push.send(b"x")
    frame = pull.recv(copy=False)
    assert frame.get("Peer-Address") == "127.0.0.1"


def test_events_option(env: Env) -> None:
    pull, push = env.pipe("tcp")
    assert wait_until(lambda: bool(push.getsockopt(zmq.EVENTS) & zmq.POLLOUT))
    assert push.events & zmq.POLLOUT
    assert not pull.getsockopt(zmq.EVENTS) & zmq.POLLIN
    push.send(b"x")
    assert pull.poll(TIMEOUT_MS) == zmq.POLLIN
    assert pull.events & zmq.POLLIN
    assert pull.recv() == b"x"
    assert not pull.events & zmq.POLLIN


def test_send_frame_bytearray_memoryview(env: Env) -> None:
    pull, push = env.pipe("tcp")
    push.send(zmq.Frame(b"a frame"))
    push.send(bytearray(b"a bytearray"))
    push.send(memoryview(b"a memoryview"))
    push.send_multipart([zmq.Frame(b"f"), bytearray(b"ba"), memoryview(b"mv")])
    assert pull.recv() == b"a frame"
    assert pull.recv() == b"a bytearray"
    assert pull.recv() == b"a memoryview"
    assert pull.recv_multipart() == [b"f", b"ba", b"mv"]


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_send_large_memoryview_without_copy(env: Env, transport: str) -> None:
    pull, push = env.pipe(transport)
    payload = bytes(range(256)) * 4096  # 1 MiB
    push.send(memoryview(payload), copy=False)
    push.send(memoryview(bytearray(payload)), copy=False)
    for _ in range(2):
        frame = pull.recv(copy=False)
        assert len(frame) == len(payload) == 1 << 20
        assert frame.bytes == payload


def test_received_frame_roundtrips_through_send(env: Env) -> None:
    pull, push = env.pipe("tcp")
    back_pull, back_push = env.pipe("ipc")
    push.send(b"forward me")
    back_push.send(pull.recv(copy=False))
    assert back_pull.recv() == b"forward me"


def test_send_str_raises_typeerror(env: Env) -> None:
    pull, push = env.pipe("inproc")
    with pytest.raises(TypeError):
        push.send("not bytes")
    with pytest.raises(TypeError):
        push.send_multipart(["not bytes"])
    push.send(b"still works")
    assert pull.recv() == b"still works"


# -- zeropipe extensions: send_many / recv_many ----------------------------------------


@zeropipe_only
@pytest.mark.parametrize("transport", TRANSPORTS)
def test_send_many_recv_many(env: Env, transport: str) -> None:
    pull, push = env.pipe(transport)
    messages = [b"msg-%03d" % i for i in range(100)]
    push.send_many(messages)
    received: list[Any] = []
    while len(received) < len(messages):
        batch = pull.recv_many()
        assert isinstance(batch, list)
        assert len(batch) >= 1
        assert all(type(m) is bytes for m in batch)
        received.extend(batch)
    assert received == messages


@zeropipe_only
def test_send_many_accepts_buffers_and_multipart(env: Env) -> None:
    pull, push = env.pipe("tcp")
    push.send_many([b"a", bytearray(b"b"), memoryview(b"c"), [b"d1", b"d2"]])
    received: list[Any] = []
    while len(received) < 4:
        received.extend(pull.recv_many())
    assert received == [b"a", b"b", b"c", [b"d1", b"d2"]]


@zeropipe_only
def test_recv_many_respects_max_messages(env: Env) -> None:
    pull, push = env.pipe("inproc")
    push.send_many([b"%d" % i for i in range(10)])
    first = pull.recv_many(3)
    assert first == [b"0", b"1", b"2"]
    rest: list[Any] = []
    while len(rest) < 7:
        rest.extend(pull.recv_many())
    assert rest == [b"%d" % i for i in range(3, 10)]


@zeropipe_only
def test_recv_many_noblock_and_timeout_raise_again(env: Env) -> None:
    pull = env.socket(zmq.PULL, timeout=200)
    pull.bind("tcp://127.0.0.1:*")
    with pytest.raises(zmq.Again):
        pull.recv_many(flags=zmq.NOBLOCK)
    with pytest.raises(zmq.Again):
        pull.recv_many()


# -- polling -----------------------------------------------------------------------------


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_socket_poll(env: Env, transport: str) -> None:
    pull, push = env.pipe(transport)
    assert pull.poll(200) == 0
    assert pull.poll(0) == 0
    push.send(b"wake up")
    assert pull.poll(TIMEOUT_MS) == zmq.POLLIN
    assert pull.poll(0) == zmq.POLLIN  # still readable until received
    assert pull.recv() == b"wake up"
    assert pull.poll(0) == 0
    assert push.poll(TIMEOUT_MS, zmq.POLLOUT) == zmq.POLLOUT


def plain_keys(events: list[tuple[Any, int]], plain: socket.socket) -> dict[Any, int]:
    """Poll results as a dict, with a plain socket reported as itself.

    pyzmq reports a registered plain socket by its descriptor; zeropipe by the object.
    """
    return {(plain if key is plain or key == plain.fileno() else key): ev for key, ev in events}


def test_poller_with_two_pulls_and_a_plain_socket(env: Env) -> None:
    pull_a, push_a = env.pipe("tcp")
    pull_b, push_b = env.pipe("inproc")
    plain_r, plain_w = socket.socketpair()
    try:
        poller = zmq.Poller()
        poller.register(pull_a, zmq.POLLIN)
        poller.register(pull_b, zmq.POLLIN)
        poller.register(plain_r, zmq.POLLIN)
        assert poller.poll(200) == []

        push_a.send(b"A")
        assert dict(poller.poll(TIMEOUT_MS)) == {pull_a: zmq.POLLIN}
        assert pull_a.recv() == b"A"

        push_b.send(b"B")
        assert dict(poller.poll(TIMEOUT_MS)) == {pull_b: zmq.POLLIN}
        assert pull_b.recv() == b"B"

        plain_w.send(b"x")
        assert plain_keys(poller.poll(TIMEOUT_MS), plain_r) == {plain_r: zmq.POLLIN}
        assert plain_r.recv(1) == b"x"

        push_a.send(b"A2")
        push_b.send(b"B2")
        plain_w.send(b"y")
        ready: dict[Any, int] = {}
        deadline = time.monotonic() + 5
        while len(ready) < 3 and time.monotonic() < deadline:
            ready.update(plain_keys(poller.poll(TIMEOUT_MS), plain_r))
        assert ready == {pull_a: zmq.POLLIN, pull_b: zmq.POLLIN, plain_r: zmq.POLLIN}

        poller.unregister(plain_r)
        assert plain_r not in plain_keys(poller.poll(0), plain_r)
        assert pull_a.recv() == b"A2"
        assert pull_b.recv() == b"B2"
    finally:
        plain_r.close()
        plain_w.close()


def test_poller_waits_for_a_message_from_another_thread(env: Env) -> None:
    pull, push = env.pipe("tcp")
    poller = zmq.Poller()
    poller.register(pull, zmq.POLLIN)
    timer = threading.Timer(0.2, push.send, args=(b"late",))
    timer.start()
    try:
        assert dict(poller.poll(TIMEOUT_MS)) == {pull: zmq.POLLIN}
        assert pull.recv() == b"late"
    finally:
        timer.cancel()
        timer.join()


def test_poller_pollout_and_modify(env: Env) -> None:
    pull, push = env.pipe("inproc")
    poller = zmq.Poller()
    poller.register(push, zmq.POLLOUT)
    assert dict(poller.poll(TIMEOUT_MS)) == {push: zmq.POLLOUT}
    poller.modify(push, zmq.POLLIN)
    assert poller.poll(50) == []
    poller.register(pull)  # default flags: POLLIN | POLLOUT
    push.send(b"x")
    assert dict(poller.poll(TIMEOUT_MS)).get(pull, 0) & zmq.POLLIN


def test_zmq_select(env: Env) -> None:
    pull_a, push_a = env.pipe("tcp")
    pull_b, _push_b = env.pipe("ipc")
    plain_r, plain_w = socket.socketpair()
    try:
        assert zmq.select([pull_a, pull_b], [], [], 0.1) == ([], [], [])
        push_a.send(b"A")
        plain_w.send(b"z")
        rlist: list[Any] = []
        deadline = time.monotonic() + 5
        while len(rlist) < 2 and time.monotonic() < deadline:
            rlist, _, _ = zmq.select([pull_a, pull_b, plain_r], [], [], 5.0)
        assert set(plain_keys([(s, 1) for s in rlist], plain_r)) == {pull_a, plain_r}
        _, wlist, _ = zmq.select([], [push_a], [], 5.0)
        assert wlist == [push_a]
        assert pull_a.recv() == b"A"
    finally:
        plain_r.close()
        plain_w.close()


# -- patterns ----------------------------------------------------------------------------


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_pair_refuses_a_second_peer(env: Env, transport: str) -> None:
    first = env.socket(zmq.PAIR)
    endpoint = env.bind(first, transport)
    peer = env.socket(zmq.PAIR)
    peer.connect(endpoint)
    peer.send(b"from peer")
    assert first.recv() == b"from peer"

    intruder = env.socket(zmq.PAIR)
    intruder.connect(endpoint)
    time.sleep(0.3)
    for i in range(3):
        try:
            intruder.send(b"intruder %d" % i, zmq.NOBLOCK)
        except zmq.Again:
            pass
    # The first pair keeps working, in both directions, and only with each other.
    for i in range(5):
        peer.send(b"again %d" % i)
        assert first.recv() == b"again %d" % i
        first.send(b"back %d" % i)
        assert peer.recv() == b"back %d" % i
    assert_nothing_arrives(first)
    assert_nothing_arrives(intruder)


def _wait_all_peers(push: Any, pulls: list[Any]) -> None:
    """Send warm-up messages until every PULL received one (all connections are up)."""
    seen: set[int] = set()
    poller = zmq.Poller()
    for pull in pulls:
        poller.register(pull, zmq.POLLIN)
    deadline = time.monotonic() + 5
    while len(seen) < len(pulls):
        assert time.monotonic() < deadline, "not every PULL got connected"
        push.send(b"warm-up")
        for sock, _ in poller.poll(TIMEOUT_MS):
            assert sock.recv() == b"warm-up"
            seen.add(pulls.index(sock))
    for pull in pulls:
        assert all(m == [b"warm-up"] for m in drain(pull, 50))


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_push_round_robins_between_two_pulls(env: Env, transport: str) -> None:
    push = env.socket(zmq.PUSH)
    endpoint = env.bind(push, transport)
    pulls = [env.socket(zmq.PULL), env.socket(zmq.PULL)]
    for pull in pulls:
        pull.connect(endpoint)
    _wait_all_peers(push, pulls)
    for i in range(100):
        push.send(b"job-%03d" % i)
    received: list[list[bytes]] = [[], []]
    poller = zmq.Poller()
    for pull in pulls:
        poller.register(pull, zmq.POLLIN)
    while sum(map(len, received)) < 100:
        ready = poller.poll(TIMEOUT_MS)
        assert ready, f"only {sum(map(len, received))} of 100 arrived"
        for sock, _ in ready:
            received[pulls.index(sock)].append(sock.recv())
    assert all(received), "a PULL got nothing"
    assert 30 <= len(received[0]) <= 70, [len(r) for r in received]
    assert sorted(received[0] + received[1]) == [b"job-%03d" % i for i in range(100)]
    for part in received:
        assert part == sorted(part)  # each PULL sees its share in order


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_push_connected_to_two_bound_pulls_load_balances(env: Env, transport: str) -> None:
    pulls = [env.socket(zmq.PULL), env.socket(zmq.PULL)]
    push = env.socket(zmq.PUSH)
    for pull in pulls:
        push.connect(env.bind(pull, transport))
    _wait_all_peers(push, pulls)
    for i in range(100):
        push.send(b"%d" % i)
    counts = [len(drain(pull)) for pull in pulls]
    assert sum(counts) == 100
    assert all(count >= 30 for count in counts), counts


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_pull_fair_queues_from_two_pushes(env: Env, transport: str) -> None:
    pull = env.socket(zmq.PULL)
    endpoint = env.bind(pull, transport)
    pushes = [env.socket(zmq.PUSH), env.socket(zmq.PUSH)]
    for push in pushes:
        push.connect(endpoint)
    for push in pushes:
        send_until_delivered(push, pull)
    drain(pull, 100)  # stray probes
    for tag, push in zip(b"AB", pushes, strict=True):
        for i in range(50):
            push.send(b"%c-%02d" % (tag, i))
    time.sleep(0.3)  # both streams are queued at the PULL before it reads
    received = [pull.recv() for _ in range(100)]
    by_tag = {tag: [m for m in received if m[0] == tag] for tag in b"AB"}
    for tag in b"AB":
        assert by_tag[tag] == [b"%c-%02d" % (tag, i) for i in range(50)]
    first = {m[0] for m in received[:10]}
    assert first == set(b"AB"), f"not fair: first 10 came from {first}"
    assert_nothing_arrives(pull, 100)


def test_push_without_peer_noblock_raises_again(env: Env) -> None:
    lonely = env.socket(zmq.PUSH)
    with pytest.raises(zmq.Again):
        lonely.send(b"x", zmq.NOBLOCK)
    with pytest.raises(zmq.Again):
        lonely.send_multipart([b"a", b"b"], zmq.NOBLOCK)
    assert lonely.poll(0, zmq.POLLOUT) == 0


def test_immediate_push_connecting_to_nobody_noblock_raises_again(env: Env) -> None:
    nowhere = env.socket(zmq.PUSH)
    nowhere.setsockopt(zmq.IMMEDIATE, 1)  # without it, the connecting pipe takes SNDHWM messages
    nowhere.connect(f"tcp://127.0.0.1:{free_tcp_port()}")
    time.sleep(0.1)
    with pytest.raises(zmq.Again):
        nowhere.send(b"x", zmq.NOBLOCK)
    with pytest.raises(zmq.Again):
        nowhere.send_multipart([b"a", b"b"], zmq.NOBLOCK)
    assert nowhere.poll(0, zmq.POLLOUT) == 0
    nowhere.sndtimeo = 200
    with pytest.raises(zmq.Again):
        nowhere.send(b"blocks until SNDTIMEO")


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("kinds", ["push-connects", "pull-connects", "pair"])
def test_connect_before_bind(env: Env, transport: str, kinds: str) -> None:
    endpoint = env.endpoint(transport)
    if kinds == "push-connects":
        early, late = env.socket(zmq.PUSH), env.socket(zmq.PULL)
        sender, receiver = early, late
    elif kinds == "pull-connects":
        early, late = env.socket(zmq.PULL), env.socket(zmq.PUSH)
        sender, receiver = late, early
    else:
        early, late = env.socket(zmq.PAIR), env.socket(zmq.PAIR)
        sender, receiver = early, late
    early.connect(endpoint)
    time.sleep(0.2)  # a few reconnect attempts fail first
    late.bind(endpoint)
    for i in range(10):
        sender.send(b"m%d" % i)
    assert [receiver.recv() for _ in range(10)] == [b"m%d" % i for i in range(10)]


def _bind_retrying(sock: Any, endpoint: str, timeout: float = 5.0) -> None:
    """Bind, retrying while the previous owner's port is still being released."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            sock.bind(endpoint)
            return
        except zmq.ZMQError as exc:
            if exc.errno != errno.EADDRINUSE or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def test_reconnect_after_bound_pull_is_replaced(env: Env) -> None:
    pull = env.socket(zmq.PULL)
    pull.bind("tcp://127.0.0.1:*")
    endpoint = endpoint_of(pull)
    push = env.socket(zmq.PUSH)
    push.reconnect_ivl = 50
    push.connect(endpoint)
    push.send(b"first")
    assert pull.recv() == b"first"
    pull.close()

    replacement = env.socket(zmq.PULL)
    _bind_retrying(replacement, endpoint)
    assert send_until_delivered(push, replacement).startswith(b"probe-")
    for i in range(10):
        push.send(b"after %d" % i)
    received = [m for m in drain(replacement, 500) if not m[0].startswith(b"probe-")]
    assert received == [[b"after %d" % i] for i in range(10)]


def test_multiple_contexts_talk_over_tcp(env: Env) -> None:
    other = env.context()
    pull = env.socket(zmq.PULL, other)
    pull.bind("tcp://127.0.0.1:*")
    push = env.socket(zmq.PUSH)
    push.connect(endpoint_of(pull))
    push.send(b"across contexts")
    assert pull.recv() == b"across contexts"


def test_inproc_is_per_context(env: Env) -> None:
    endpoint = env.endpoint("inproc")
    pull = env.socket(zmq.PULL)
    pull.bind(endpoint)
    other = env.context()
    push = env.socket(zmq.PUSH, other)
    push.connect(endpoint)
    time.sleep(0.1)
    try:
        push.send(b"x", zmq.NOBLOCK)
    except zmq.Again:
        pass  # zeropipe: no peer yet; libzmq queues for a bind that never comes
    assert_nothing_arrives(pull, 100)


@zeropipe_only
@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc")
def test_closed_sockets_release_their_descriptors() -> None:
    """Each socket's waker is closed with it, whether or not it ever used the network."""

    def open_fds() -> int:
        return len(os.listdir("/proc/self/fd"))

    ctx = zmq.Context()
    try:
        before = open_fds()
        for _ in range(100):  # never bound nor connected: no background thread
            ctx.socket(zmq.PUB).close()
        assert open_fds() <= before + 2  # not one per socket
        for _ in range(20):
            bound = ctx.socket(zmq.PULL)
            bound.bind("tcp://127.0.0.1:*")
            bound.close()
    finally:
        term_with_deadline(ctx)
    assert open_fds() <= before + 2
