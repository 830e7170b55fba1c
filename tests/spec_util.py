"""Shared helpers for the spec-conformance tests ported from libzmq's test suite.

The ``test_spec_*.py`` modules port the checks (not the code) of libzmq's ``test_spec_req``,
``test_spec_rep``, ``test_spec_dealer``, ``test_spec_router``, ``test_spec_pushpull``,
``test_hwm``, ``test_hwm_pubsub``, ``test_xpub_nodrop``, ``test_conflate``,
``test_immediate``, ``test_router_mandatory`` and ``test_router_mandatory_hwm``.

``SPEC_IMPL`` selects the implementation under test: ``zeropipe`` (the default) or ``pyzmq``.
``SPEC_IMPL=pyzmq`` runs every test against libzmq, which validates the tests themselves.

Every socket gets linger 0 and RCVTIMEO/SNDTIMEO of 5 s (a test may override them), and
teardown closes every socket and terminates the context under a deadline, so a bug raises
instead of hanging. tcp binds to ``127.0.0.1:*``, ipc paths live in a private directory and
inproc names carry a uuid, so tests can run in parallel.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest
from netutil import Endpoints, ScratchDir, bind_with_retry, close_all, implementation

IMPL, zmq = implementation("SPEC_IMPL")

TRANSPORTS = ("inproc", "ipc", "tcp")
STREAM_TRANSPORTS = ("ipc", "tcp")

TIMEOUT_MS = 5000
"""RCVTIMEO/SNDTIMEO of every socket, and the limit of every wait for something to happen."""

QUIET_MS = 250
"""How long "nothing (more) arrives" is watched for (libzmq's tests use 250 ms too)."""

SMALL_KERNEL_BUFFER = 65536
"""SNDBUF/RCVBUF for high-water-mark tests over tcp/ipc: caps what the kernel buffers beyond
the high-water marks, so libzmq's bounds hold whatever this machine's tcp autotuning allows."""

SETTLE_S = 0.3
"""libzmq's SETTLE_TIME. Used only where nothing can be awaited: to let messages already
sent reach the receiver's queues before fair-queuing or conflation is observed."""


class Spec:
    """The context, sockets and endpoints of one test, over one transport.

    All sockets share one context, as in libzmq's tests (inproc needs it).
    """

    def __init__(self, transport: str) -> None:
        if transport not in TRANSPORTS:
            raise ValueError(f"unknown transport {transport!r}")
        self.transport = transport
        self.ctx = zmq.Context()
        self.sockets: list[Any] = []
        self._scratch = ScratchDir("zpspec")
        self._endpoints = Endpoints(transport, self._scratch, "spec")

    # -- sockets -------------------------------------------------------------------

    def socket(self, kind: str, **options: Any) -> Any:
        """A socket of type ``kind`` ("PUSH", "XPUB"...) with timeouts, linger 0 and
        ``options`` (by name: ``sndhwm=1``, ``routing_id=b"A"``), all set before any
        bind or connect."""
        sock = self.ctx.socket(getattr(zmq, kind))
        self.sockets.append(sock)  # registered first: closed even if an option below fails
        settings: dict[str, Any] = {"linger": 0, "rcvtimeo": TIMEOUT_MS, "sndtimeo": TIMEOUT_MS}
        settings.update(options)
        for name, value in settings.items():
            # setsockopt, not the attribute: it fails loudly on an unsupported option.
            sock.setsockopt(getattr(zmq, name.upper()), value)
        return sock

    def small_buffers(self) -> dict[str, int]:
        """Socket options capping the kernel buffers (see SMALL_KERNEL_BUFFER); none for
        inproc."""
        if self.transport == "inproc":
            return {}
        return {"sndbuf": SMALL_KERNEL_BUFFER, "rcvbuf": SMALL_KERNEL_BUFFER}

    def close_socket(self, sock: Any, linger: int = 0) -> None:
        """Close one socket now (teardown closes the rest)."""
        sock.close(linger=linger)

    # -- endpoints -----------------------------------------------------------------

    def endpoint(self) -> str:
        """A concrete endpoint of this transport that nobody is bound to."""
        return self._endpoints.fresh()

    def bind(self, sock: Any, endpoint: str | None = None) -> str:
        """Bind ``sock`` (to a fresh endpoint by default); return the address to connect to."""
        return self._endpoints.bind(sock, endpoint)

    def rebind(self, sock: Any, endpoint: str) -> None:
        """Bind an endpoint that a just-closed socket may still be releasing."""
        bind_with_retry(sock, endpoint, zmq, TIMEOUT_MS / 1000)

    # -- teardown ------------------------------------------------------------------

    def close(self) -> None:
        close_all(self.sockets, [self.ctx], self._scratch)


# The fixtures are named explicitly so that test modules can import them (to register them)
# without their parameters shadowing the imported names.


@pytest.fixture(name="transport", params=TRANSPORTS)
def transport_fixture(request: pytest.FixtureRequest) -> str:
    """inproc, ipc and tcp (narrowed with ``@pytest.mark.parametrize("transport", ...)``)."""
    value: str = request.param
    return value


@pytest.fixture(name="spec")
def spec_fixture(transport: str) -> Iterator[Spec]:
    owner = Spec(transport)
    try:
        yield owner
    finally:
        owner.close()


# -- sending and receiving -----------------------------------------------------------


def send_seq(sock: Any, *frames: bytes, flags: int = 0) -> None:
    """Send one message frame by frame (SNDMORE on all but the last), like libzmq's
    ``s_send_seq``."""
    for frame in frames[:-1]:
        sock.send(frame, flags | zmq.SNDMORE)
    sock.send(frames[-1], flags)


def recv_frames(sock: Any, flags: int = 0) -> list[bytes]:
    """One whole message, as a list of bytes."""
    return [bytes(frame) for frame in sock.recv_multipart(flags)]


def recv_seq(sock: Any, *expected: bytes) -> None:
    """Receive one message and check it is exactly ``expected``, like libzmq's ``s_recv_seq``."""
    got = recv_frames(sock)
    assert got == list(expected), f"expected {list(expected)!r}, received {got!r}"


def errno_of(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> int | None:
    """The errno of the ZMQError that ``fn(*args, **kwargs)`` raises, or None if it returns."""
    try:
        fn(*args, **kwargs)
    except zmq.ZMQError as exc:
        return int(exc.errno)
    return None


def expect_errno(expected: int, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
    """``fn(*args, **kwargs)`` must fail with ``expected`` (e.g. zmq.EAGAIN)."""
    got = errno_of(fn, *args, **kwargs)
    assert got is not None, f"{getattr(fn, '__name__', fn)} succeeded; expected errno {expected}"
    assert got == expected, f"expected errno {expected} ({zmq.strerror(expected)}), got {got}"


def assert_quiet(sock: Any, timeout_ms: int = QUIET_MS) -> None:
    """Nothing arrives on ``sock`` within ``timeout_ms``."""
    if sock.poll(timeout_ms):
        pytest.fail(f"unexpected message: {recv_frames(sock, zmq.NOBLOCK)!r}")


def recv_from_any(socks: Sequence[Any], timeout_ms: int = TIMEOUT_MS) -> tuple[int, list[bytes]]:
    """Wait for a message on any of ``socks``; return its socket's index and its frames."""
    poller = zmq.Poller()
    for sock in socks:
        poller.register(sock, zmq.POLLIN)
    ready = dict(poller.poll(timeout_ms))
    for index, sock in enumerate(socks):
        if ready.get(sock, 0) & zmq.POLLIN:
            return index, recv_frames(sock)
    raise AssertionError(f"no message arrived on any of {len(socks)} sockets in {timeout_ms} ms")


def drain(sock: Any) -> list[list[bytes]]:
    """Every message that can be received right now."""
    got: list[list[bytes]] = []
    while sock.poll(0):
        got.append(recv_frames(sock, zmq.NOBLOCK))
    return got


def send_up_to(send: Callable[[], Any], limit: int) -> int:
    """Call ``send`` (a non-blocking send) until it raises Again or has succeeded ``limit``
    times; return how many succeeded."""
    for count in range(limit):
        try:
            send()
        except zmq.Again:
            return count
    return limit


def send_until_again(send: Callable[[], Any], limit: int) -> int:
    """Like ``send_up_to``, but fails if ``send`` still succeeds after ``limit`` calls."""
    count = send_up_to(send, limit)
    if count == limit:
        pytest.fail(f"still no Again after {limit} sends")
    return count


def send_for(send: Callable[[], Any], seconds: float, limit: int) -> int:
    """Keep calling ``send`` (a non-blocking send) for ``seconds``, pausing briefly after each
    Again; return how many succeeded (stopping at ``limit``)."""
    count = 0
    deadline = time.monotonic() + seconds
    while count < limit and time.monotonic() < deadline:
        try:
            send()
            count += 1
        except zmq.Again:
            time.sleep(0.01)
    return count


def wait_for(condition: Callable[[], bool], what: str, timeout_ms: int = TIMEOUT_MS) -> None:
    """Poll ``condition`` every few milliseconds until it holds; fail after ``timeout_ms``."""
    deadline = time.monotonic() + timeout_ms / 1000
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_ms} ms waiting for {what}")
        time.sleep(0.005)


def events(sock: Any) -> int:
    """ZMQ_EVENTS (reading it also makes libzmq process pending commands)."""
    return int(sock.getsockopt(zmq.EVENTS))


def fair_queue_check(
    receiver: Any, senders: Sequence[Any], body: Callable[[list[bytes]], bytes]
) -> None:
    """Each sender sends two messages; with all of them queued, the receiver must take
    one from each sender before the second of any (libzmq's PULL fair-queue check).

    ``body`` extracts the payload from a received message (a ROUTER prepends the id).
    The senders must be connected already.
    """
    for index, sender in enumerate(senders):
        sender.send(b"first-%d" % index)
        sender.send(b"second-%d" % index)
    time.sleep(SETTLE_S)  # nothing to await: lets every message reach the receiver's queues
    assert receiver.poll(TIMEOUT_MS)  # libzmq notices newly readable pipes when polled
    count = len(senders)
    first = [body(recv_frames(receiver)) for _ in range(count)]
    second = [body(recv_frames(receiver)) for _ in range(count)]
    assert sorted(first) == sorted(b"first-%d" % i for i in range(count)), (
        f"not one message from each peer first: {first!r} then {second!r}"
    )
    assert sorted(second) == sorted(b"second-%d" % i for i in range(count)), second
    assert_quiet(receiver, 0)
