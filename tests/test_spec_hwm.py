"""High-water marks, XPUB_NODROP, CONFLATE and IMMEDIATE, ported from libzmq's test_hwm.cpp,
test_hwm_pubsub.cpp, test_xpub_nodrop.cpp, test_conflate.cpp and test_immediate.cpp.

HWM (PUSH -> PULL that does not read): over inproc exactly SNDHWM + RCVHWM messages fit
(0 is unlimited: 10,000 sends all succeed), bind or connect first; over tcp/ipc the kernel
buffers more, so the bounds are: at least SNDHWM fit, at most SNDHWM + RCVHWM plus what the
kernel holds (buffers capped with SNDBUF/RCVBUF so that is small), nothing is lost, and one
more fits once the PULL has read. A PUSH connecting to an endpoint nobody has bound yet
queues up to SNDHWM messages, delivered after it closes (LINGER) once the PULL binds.

PUB/XPUB: a PUB never blocks; messages up to the high-water mark all arrive, beyond it whole
messages are dropped (over inproc exactly the newest beyond SNDHWM + RCVHWM); the count is
of messages not yet read, so reading makes room again. With XPUB_NODROP, sends fail with
EAGAIN instead of dropping, and every message accepted arrives.

CONFLATE: a PULL keeps only the newest message. (libzmq's inproc pipe takes the option from
the connecting socket, so over inproc the conflating PULL connects.)

IMMEDIATE: by default a connect creates its queue at once, so messages are queued (and
round-robined) to connections not yet made and delivered when they complete; with
IMMEDIATE=1 only completed connections get messages, a PUSH with none fails with EAGAIN,
and a broken connection's queue is dropped until it reconnects. (libzmq ignores IMMEDIATE
for inproc, so the IMMEDIATE=1 tests run over tcp and ipc only.)

``SPEC_IMPL=pyzmq`` runs every test against libzmq.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Callable
from typing import Any

import pytest
from pubsub_sync import sync
from spec_util import (  # noqa: F401  (the *_fixture names register fixtures)
    QUIET_MS,
    SETTLE_S,
    SMALL_KERNEL_BUFFER,
    STREAM_TRANSPORTS,
    TIMEOUT_MS,
    Spec,
    assert_quiet,
    events,
    expect_errno,
    recv_seq,
    send_for,
    send_until_again,
    send_up_to,
    spec_fixture,
    transport_fixture,
    wait_for,
    zmq,
)

pytestmark = pytest.mark.timeout(30)

MAX_SENDS = 10_000
"""test_hwm.cpp: "unlimited" means this many sends all succeed."""

STREAM_MESSAGE = 1024
"""Message size over tcp/ipc, so that what the (capped) kernel buffers hold is a few
hundred messages, not hundreds of thousands."""

KERNEL_SLACK = 4 * 2 * SMALL_KERNEL_BUFFER // STREAM_MESSAGE + 4
"""Upper bound on the messages of STREAM_MESSAGE bytes that tcp/ipc buffers beyond the
high-water marks: Linux doubles SNDBUF/RCVBUF, a connection has a send and a receive
buffer, and everything is allowed twice over; plus messages being encoded or decoded."""

HWM_CASES = {
    "infinite_both": (0, 0, MAX_SENDS),
    "infinite_receive": (1, 0, MAX_SENDS),
    "infinite_send": (0, 1, MAX_SENDS),
    "finite_both": (1, 1, 2),
}
"""(SNDHWM, RCVHWM, exact count over inproc) of test_hwm.cpp's cases."""


def message_size(spec: Spec) -> int:
    return 0 if spec.transport == "inproc" else STREAM_MESSAGE


def numbered(index: int, size: int) -> bytes:
    """Message ``index``, padded to ``size`` bytes, so loss and reordering are visible."""
    tag = b"%d" % index
    return tag + bytes(max(0, size - len(tag)))


class Numbered:
    """Non-blocking sends of numbered messages through ``send(data, flags)``; counts the ones
    accepted, so the next one gets the next number."""

    def __init__(self, send: Callable[[bytes, int], Any], size: int) -> None:
        self._send = send
        self.size = size
        self.sent = 0

    def __call__(self) -> None:
        self._send(numbered(self.sent, self.size), zmq.NOBLOCK)
        self.sent += 1


def recv_numbered(sock: Any, first: int, count: int, size: int) -> None:
    """Receive messages ``first`` .. ``first + count - 1``, in order, none missing."""
    for index in range(first, first + count):
        got = sock.recv()
        assert got == numbered(index, size), (
            f"expected message {index}, got {got[:12]!r} (message lost or reordered)"
        )


def push_pull(spec: Spec, order: str, sndhwm: int, rcvhwm: int) -> tuple[Any, Any]:
    """A PUSH (SNDHWM) connected to a bound PULL (RCVHWM); the PUSH may connect first."""
    push = spec.socket("PUSH", sndhwm=sndhwm, **spec.small_buffers())
    pull = spec.socket("PULL", rcvhwm=rcvhwm, **spec.small_buffers())
    if order == "bind_first":
        push.connect(spec.bind(pull))
    else:
        endpoint = spec.endpoint()
        push.connect(endpoint)
        spec.bind(pull, endpoint)
    # The PUSH's queue exists (libzmq: at connect; an engine may wait for the connection).
    wait_for(lambda: bool(events(push) & zmq.POLLOUT), "the PUSH to have a peer")
    return push, pull


# -- HWM: PUSH/PULL (test_hwm.cpp) ---------------------------------------------------------


def test_hwm_defaults(spec: Spec) -> None:
    """The default high-water marks are 1000 on send and 1000 on receive: over inproc
    exactly 2000 messages fit."""
    push, pull = push_pull(spec, "bind_first", 1000, 1000)
    for option in (zmq.SNDHWM, zmq.RCVHWM):
        fresh = spec.socket("PUSH")
        assert fresh.getsockopt(option) == 1000
    send = Numbered(push.send, message_size(spec))
    count = send_up_to(send, MAX_SENDS)
    if spec.transport == "inproc":
        assert count == 2000
    else:
        assert 1000 <= count < MAX_SENDS
        count += send_for(send, SETTLE_S, MAX_SENDS)
        assert count <= 2000 + KERNEL_SLACK
    recv_numbered(pull, 0, count, send.size)
    expect_errno(zmq.EAGAIN, pull.recv, zmq.NOBLOCK)


@pytest.mark.parametrize("order", ["bind_first", "connect_first"])
@pytest.mark.parametrize("case", list(HWM_CASES))
def test_hwm_count(spec: Spec, case: str, order: str) -> None:
    """How many messages fit before EAGAIN; all of them arrive, and then one more fits."""
    sndhwm, rcvhwm, inproc_count = HWM_CASES[case]
    push, pull = push_pull(spec, order, sndhwm, rcvhwm)
    send = Numbered(push.send, message_size(spec))
    count = send_up_to(send, MAX_SENDS)
    if spec.transport == "inproc":
        assert count == inproc_count
    elif sndhwm == 0:
        assert count == MAX_SENDS  # the sender's queue is unlimited
    else:
        assert count >= sndhwm
        if count < MAX_SENDS:  # as messages move on into the kernel, more may fit
            count += send_for(send, SETTLE_S, MAX_SENDS - count)
        if rcvhwm:
            assert count <= sndhwm + rcvhwm + KERNEL_SLACK
    recv_numbered(pull, 0, count, send.size)
    expect_errno(zmq.EAGAIN, pull.recv, zmq.NOBLOCK)

    push.send(b"one more")
    recv_seq(pull, b"one more")


def test_hwm_connect_and_close_first(spec: Spec) -> None:
    """A PUSH connecting to an endpoint nobody has bound yet queues SNDHWM (1) messages;
    after it closes (with LINGER), a PULL binding the endpoint receives them."""
    push = spec.socket("PUSH", sndhwm=1, linger=TIMEOUT_MS)
    endpoint = spec.endpoint()
    push.connect(endpoint)
    send = Numbered(push.send, 0)
    count = send_up_to(send, MAX_SENDS)
    assert count == 1
    spec.close_socket(push, linger=TIMEOUT_MS)

    pull = spec.socket("PULL", rcvhwm=0)
    spec.bind(pull, endpoint)
    recv_numbered(pull, 0, count, 0)
    assert_quiet(pull)


# -- HWM: PUB/SUB (test_hwm_pubsub.cpp) ----------------------------------------------------


def xpub_sub(spec: Spec, **pub_options: Any) -> tuple[Any, Any]:
    """An XPUB bound, a SUB connected and subscribed to everything, the subscription seen
    by the XPUB (so the pipe is there before anything is published)."""
    pub = spec.socket("XPUB", **pub_options, **spec.small_buffers())
    address = spec.bind(pub)
    sub = spec.socket("SUB", **spec.small_buffers())
    sub.connect(address)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    assert pub.recv() == b"\x01"
    return pub, sub


@pytest.mark.parametrize("hwm", [1000, 100])
def test_pubsub_hwm_defaults(spec: Spec, hwm: int) -> None:
    """SNDHWM messages published to a SUB that does not read all arrive (the XPUB's SNDHWM
    is set after the SUB connected, as in libzmq's test)."""
    pub = spec.socket("XPUB")
    address = spec.bind(pub)
    sub = spec.socket("SUB")
    sub.connect(address)
    pub.setsockopt(zmq.SNDHWM, hwm)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    assert pub.recv() == b"\x01"

    for _ in range(hwm):
        pub.send(b"test message", zmq.NOBLOCK)
    for _ in range(hwm):
        assert sub.recv() == b"test message"
    expect_errno(zmq.EAGAIN, sub.recv, zmq.NOBLOCK)


def test_pubsub_drops_whole_messages_at_hwm(spec: Spec) -> None:
    """A PUB never blocks or fails at its high-water mark: it drops whole messages. Over
    inproc exactly SNDHWM + RCVHWM arrive, the oldest; over tcp/ipc what arrives is in order,
    complete, and fewer than were sent."""
    pub = spec.socket("XPUB", sndhwm=10, **spec.small_buffers())
    address = spec.bind(pub)
    sub = spec.socket("SUB", rcvhwm=10, **spec.small_buffers())
    sub.connect(address)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    assert pub.recv() == b"\x01"

    inproc = spec.transport == "inproc"
    total = 50 if inproc else 2000
    body = bytes(message_size(spec))
    for index in range(total):
        pub.send_multipart([b"%d" % index, b"middle", body], zmq.NOBLOCK)

    received = []
    while sub.poll(QUIET_MS):
        frames = sub.recv_multipart()
        assert frames[1:] == [b"middle", body], f"message {frames[0]!r} arrived in part"
        received.append(int(frames[0]))
    if inproc:
        assert received == list(range(20))
    else:
        assert received == sorted(set(received)), "messages reordered or duplicated"
        assert 20 <= len(received) < total


def test_xpub_nodrop_blocking(spec: Spec) -> None:
    """test_hwm_pubsub's test_blocking: with XPUB_NODROP and SNDHWM 2000, 6000 messages are
    sent with NOBLOCK, draining the SUB whenever a send fails with EAGAIN; it must fail at
    least once, and every message sent must arrive."""
    pub, sub = xpub_sub(spec, sndhwm=2000, xpub_nodrop=1)
    sub.setsockopt(zmq.RCVTIMEO, 10)
    size = message_size(spec)
    send = Numbered(pub.send, size)
    received = 0

    def receive() -> None:
        nonlocal received
        while True:
            try:
                got = sub.recv()
            except zmq.Again:
                return
            assert got == numbered(received, size), f"message {received} lost or reordered"
            received += 1

    blocked = 0
    while send.sent < 6000:
        try:
            send()
        except zmq.Again:
            blocked += 1
            receive()
    assert blocked > 0, f"never blocked: sent {send.sent}, received {received}"
    receive()
    pub.send(b"end")
    sub.setsockopt(zmq.RCVTIMEO, TIMEOUT_MS)
    while received < send.sent:
        got = sub.recv()
        assert got == numbered(received, size), f"message {received} lost or reordered"
        received += 1
    recv_seq(sub, b"end")


def test_xpub_nodrop(spec: Spec) -> None:
    """test_xpub_nodrop.cpp: SNDHWM - 1 messages sent (blocking) all arrive; then, with
    SNDTIMEO 0, sends fail with EAGAIN once the queues are full, and exactly the messages
    accepted arrive."""
    pub = spec.socket("XPUB", sndhwm=2000, **spec.small_buffers())
    address = spec.bind(pub)
    pub.setsockopt(zmq.XPUB_NODROP, 1)
    sub = spec.socket("SUB", **spec.small_buffers())
    sub.connect(address)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    assert pub.recv() == b"\x01"

    size = message_size(spec)
    for index in range(1999):
        pub.send(numbered(index, size))
    recv_numbered(sub, 0, 1999, size)

    pub.setsockopt(zmq.SNDTIMEO, 0)
    send = Numbered(lambda data, flags: pub.send(data), size)
    count = send_until_again(send, 100_000)
    assert count > 0
    # The queues: SNDHWM on the XPUB plus the SUB's default RCVHWM (1000) over inproc.
    assert count <= (3000 if spec.transport == "inproc" else 3000 + KERNEL_SLACK)
    recv_numbered(sub, 0, count, size)
    assert_quiet(sub)


def test_pubsub_reset_hwm(spec: Spec) -> None:
    """test_hwm_pubsub's test_reset_hwm: the high-water mark counts messages not yet read.
    With SNDHWM = RCVHWM = 11024, 9999 messages are sent and read, then 1100 more: all of
    the 1100 must arrive too."""
    hwm = 11024
    pub = spec.socket("PUB", sndhwm=hwm)
    address = spec.bind(pub)
    sub = spec.socket("SUB", rcvhwm=hwm)
    sub.connect(address)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    sync([pub], [(sub, [b""])])

    for first, count in ((0, 9999), (9999, 1100)):
        for index in range(first, first + count):
            pub.send(numbered(index, 0), zmq.NOBLOCK)
        recv_numbered(sub, first, count, 0)
    expect_errno(zmq.EAGAIN, sub.recv, zmq.NOBLOCK)


# -- CONFLATE (test_conflate.cpp) --------------------------------------------------------


@pytest.mark.parametrize(
    ("transport", "conflater"),
    [
        ("inproc", "connects"),
        ("ipc", "binds"),
        ("ipc", "connects"),
        ("tcp", "binds"),
        ("tcp", "connects"),
    ],
)
def test_conflate(spec: Spec, conflater: str) -> None:
    """A PULL with CONFLATE keeps only the newest message: of 20 sent, it receives the last."""
    pull = spec.socket("PULL", conflate=1)
    push = spec.socket("PUSH")
    if conflater == "binds":
        push.connect(spec.bind(pull))
    else:
        pull.connect(spec.bind(push))

    count = 20
    for j in range(count):
        push.send(struct.pack("<i", j))
    time.sleep(SETTLE_S)  # nothing to await: lets all 20 reach the PULL
    assert pull.poll(TIMEOUT_MS)
    assert struct.unpack("<i", pull.recv()) == (count - 1,)
    assert_quiet(pull, 0)


# -- IMMEDIATE (test_immediate.cpp) ------------------------------------------------------


def test_immediate_off_round_robins_to_pending_connection(spec: Spec) -> None:
    """test_immediate_1: with IMMEDIATE=0 (the default), a PUSH connected to an endpoint that
    does not answer and to a live PULL round-robins over both: of 10 messages, 5 are queued
    for the dead connection and 5 arrive."""
    to = spec.socket("PULL")
    address = spec.bind(to)
    push = spec.socket("PUSH")
    push.connect(spec.endpoint())  # nobody binds this one
    push.connect(address)

    for _ in range(10):
        push.send(b"Hello")
    for _ in range(5):
        recv_seq(to, b"Hello")
    assert_quiet(to)


def test_immediate_off_queues_until_connected(spec: Spec) -> None:
    """With IMMEDIATE=0, messages sent before the connection completes (here: before the
    peer even binds) are queued and delivered once it does."""
    push = spec.socket("PUSH")
    endpoint = spec.endpoint()
    push.connect(endpoint)
    for index in range(3):
        push.send(numbered(index, 0), zmq.NOBLOCK)

    pull = spec.socket("PULL")
    spec.bind(pull, endpoint)
    recv_numbered(pull, 0, 3, 0)
    assert_quiet(pull)


@pytest.mark.parametrize("transport", STREAM_TRANSPORTS)
def test_immediate_on_only_completed_connections(spec: Spec) -> None:
    """test_immediate_2: with IMMEDIATE=1, a PUSH connected to a dead endpoint and to a live
    PULL sends all 10 messages to the live one."""
    to = spec.socket("PULL")
    address = spec.bind(to)
    push = spec.socket("PUSH", immediate=1)
    push.connect(spec.endpoint())  # nobody binds this one
    push.connect(address)

    for _ in range(10):
        push.send(b"Hello")
    for _ in range(10):
        recv_seq(to, b"Hello")
    assert_quiet(to)


@pytest.mark.parametrize("transport", STREAM_TRANSPORTS)
def test_immediate_on_no_completed_connection(spec: Spec) -> None:
    """With IMMEDIATE=1 and no completed connection, a PUSH has nowhere to queue: EAGAIN."""
    push = spec.socket("PUSH", immediate=1, sndtimeo=250)
    push.connect(spec.endpoint())  # nobody binds this one
    expect_errno(zmq.EAGAIN, push.send, b"Hello", zmq.NOBLOCK)
    expect_errno(zmq.EAGAIN, push.send, b"Hello")


@pytest.mark.parametrize("transport", STREAM_TRANSPORTS)
def test_immediate_on_broken_connection(spec: Spec) -> None:
    """test_immediate_3: with IMMEDIATE=1, once a connection breaks sending fails (EAGAIN)
    instead of queueing; after the peer comes back, sending works again, and nothing sent
    to the broken connection is delivered."""
    backend = spec.socket("DEALER")
    endpoint = spec.bind(backend)
    frontend = spec.socket("DEALER", immediate=1)
    frontend.connect(endpoint)

    backend.send(b"Hello")  # so we know the connection is up
    recv_seq(frontend, b"Hello")
    frontend.send(b"Hello", zmq.NOBLOCK)

    spec.close_socket(backend)
    lost = 0
    deadline = time.monotonic() + TIMEOUT_MS / 1000
    while True:  # until the frontend has noticed
        try:
            frontend.send(b"lost-%d" % lost, zmq.NOBLOCK)
            lost += 1
        except zmq.Again:
            break
        assert time.monotonic() < deadline, "sends still succeed after the peer closed"
        time.sleep(0.01)
    expect_errno(zmq.EAGAIN, frontend.send, b"Hello", zmq.NOBLOCK)

    backend = spec.socket("DEALER")
    spec.rebind(backend, endpoint)
    backend.send(b"Hello")
    recv_seq(frontend, b"Hello")
    frontend.send(b"after", zmq.NOBLOCK)
    recv_seq(backend, b"after")
