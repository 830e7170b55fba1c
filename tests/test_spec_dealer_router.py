"""DEALER, ROUTER and ROUTER_MANDATORY conformance, ported from libzmq's test_spec_dealer.cpp,
test_spec_router.cpp, test_router_mandatory.cpp and test_router_mandatory_hwm.cpp.

DEALER (RFC 28):
* routes outgoing messages to its peers round-robin, and fair-queues incoming ones;
* blocks, or fails with EAGAIN, when it has no peers;
* destroys the queues of a peer that disconnects: the socket that disconnects can no longer
  read what was queued for it, and nothing queued for the old connection is delivered after
  it reconnects. (libzmq disables these tests: the other side may still read what had
  already reached it, libzmq hands a departed peer's pipe over only once that is read. Only
  the checks libzmq satisfies are ported.)

ROUTER (RFC 28):
* fair-queues incoming messages, each prefixed with its peer's routing id;
* destroys a disconnected peer's queues (same caveat as DEALER);
* ROUTER_MANDATORY: a message to an unknown peer fails with EHOSTUNREACH, and one to a peer
  at its high-water mark with EAGAIN, both on the routing-id frame (without the option such
  messages are silently dropped); nothing accepted is lost. Over inproc the peer's capacity
  is exactly SNDHWM + RCVHWM; over tcp/ipc the kernel buffers a little more, and libzmq's
  bounds apply (with both high-water marks at 1: EAGAIN within 10 messages of 64 KiB, under
  20 in all), with SNDBUF/RCVBUF capped so that they hold whatever this machine's tcp
  autotuning allows.

libzmq's tests sleep for the connections; here probes make sure every peer is connected
before round-robin is observed. Every test runs over inproc, ipc and tcp.
``SPEC_IMPL=pyzmq`` runs them against libzmq.
"""

from __future__ import annotations

import itertools
import time
from typing import Any

import pytest
from spec_util import (  # noqa: F401  (the *_fixture names register fixtures)
    SETTLE_S,
    TIMEOUT_MS,
    Spec,
    assert_quiet,
    drain,
    errno_of,
    events,
    expect_errno,
    fair_queue_check,
    recv_frames,
    recv_from_any,
    recv_seq,
    send_for,
    send_seq,
    send_until_again,
    spec_fixture,
    transport_fixture,
    wait_for,
    zmq,
)

pytestmark = pytest.mark.timeout(30)

SERVICES = 5
BIG = bytes(65536)
"""test_router_mandatory_hwm's 64 KiB message body."""


def connect_all(spec: Spec, binder: Any, kind: str, count: int, **options: Any) -> list[Any]:
    address = spec.bind(binder)
    peers = [spec.socket(kind, **options) for _ in range(count)]
    for peer in peers:
        peer.connect(address)
    return peers


def ids(count: int) -> list[bytes]:
    return [b"%c" % (ord("A") + i) for i in range(count)]


def take_allowed(sock: Any, allowed: list[list[bytes]]) -> None:
    """Receive what ``sock`` has now; each message must be one of ``allowed`` (used up)."""
    for frames in drain(sock):
        assert frames in allowed, f"unexpected message {frames!r} (allowed: {allowed!r})"
        allowed.remove(frames)


def send_until_unreachable(
    router: Any, peer_id: bytes, peer: Any, allowed: list[list[bytes]]
) -> None:
    """Send to ``peer_id`` until the ROUTER (ROUTER_MANDATORY) knows that peer is gone.

    What is sent meanwhile is queued for the old connection, so it must never be delivered.
    The ROUTER may still receive what the peer sent before leaving (one of ``allowed``):
    libzmq keeps the old pipe, and the peer's routing id, until that has been read. Reading
    ``peer``'s events lets libzmq finish the disconnect (it runs commands in the app thread).
    """
    deadline = time.monotonic() + TIMEOUT_MS / 1000
    for count in itertools.count():
        events(peer)
        take_allowed(router, allowed)
        got = errno_of(router.send_multipart, [peer_id, b"stale-%d" % count], zmq.NOBLOCK)
        if got == zmq.EHOSTUNREACH:
            return
        assert got is None, f"expected success or EHOSTUNREACH, got errno {got}"
        if time.monotonic() > deadline:
            pytest.fail(f"the ROUTER still routes to {peer_id!r} after it disconnected")
        time.sleep(0.005)


def send_when_routable(
    router: Any, peer_id: bytes, body: bytes, allowed: list[list[bytes]]
) -> None:
    """Send [peer_id, body] as soon as the ROUTER (ROUTER_MANDATORY) knows the peer,
    receiving meanwhile what the ROUTER may still get (see ``send_until_unreachable``)."""
    deadline = time.monotonic() + TIMEOUT_MS / 1000
    while True:
        take_allowed(router, allowed)
        got = errno_of(router.send_multipart, [peer_id, body], zmq.NOBLOCK)
        if got is None:
            return
        assert got == zmq.EHOSTUNREACH, f"expected success or EHOSTUNREACH, got errno {got}"
        if time.monotonic() > deadline:
            pytest.fail(f"{peer_id!r} never became routable")
        time.sleep(0.005)


def mandatory_router_and_dealer(spec: Spec) -> tuple[Any, Any]:
    """A ROUTER (ROUTER_MANDATORY, SNDHWM 1) and a DEALER "X" (RCVHWM 1) connected to it,
    both with small kernel buffers; the ROUTER has heard from "X", so it routes to it."""
    router = spec.socket("ROUTER", router_mandatory=1, sndhwm=1, **spec.small_buffers())
    address = spec.bind(router)
    dealer = spec.socket("DEALER", routing_id=b"X", rcvhwm=1, **spec.small_buffers())
    dealer.connect(address)
    send_seq(dealer, b"Hello")
    recv_seq(router, b"X", b"Hello")
    return router, dealer


# -- DEALER ------------------------------------------------------------------------------


def test_dealer_round_robin_out(spec: Spec) -> None:
    """SHALL route outgoing messages to available peers using a round-robin strategy."""
    dealer = spec.socket("DEALER")
    reps = connect_all(spec, dealer, "REP", SERVICES)

    seen: set[int] = set()
    deadline = time.monotonic() + TIMEOUT_MS / 1000
    while len(seen) < SERVICES:  # probes until every REP is attached
        assert time.monotonic() < deadline, f"only REPs {sorted(seen)} ever got a probe"
        send_seq(dealer, b"", b"probe")
        index, frames = recv_from_any(reps)
        assert frames == [b"probe"]
        reps[index].send(b"probe-reply")
        recv_seq(dealer, b"", b"probe-reply")
        seen.add(index)

    for i in range(2 * SERVICES):
        send_seq(dealer, b"", b"ABC-%d" % i)
    firsts = []
    for rep in reps:  # every REP gets message i and i + SERVICES, for its own i
        first = rep.recv()
        rep.send(b"done")
        second = rep.recv()
        rep.send(b"done")
        i = int(first.split(b"-")[1])
        assert second == b"ABC-%d" % (i + SERVICES), f"{first!r} then {second!r}"
        firsts.append(i)
    assert sorted(firsts) == list(range(SERVICES))
    for _ in range(2 * SERVICES):
        recv_seq(dealer, b"", b"done")


def test_dealer_fair_queue_in(spec: Spec) -> None:
    """SHALL receive incoming messages from its peers using a fair-queuing strategy."""
    receiver = spec.socket("DEALER")
    senders = connect_all(spec, receiver, "DEALER", SERVICES)

    for _ in range(2):
        send_seq(senders[0], b"A")
        recv_seq(receiver, b"A")

    for index, sender in enumerate(senders):
        sender.send(b"B-%d" % index)
    got = sorted(recv_frames(receiver)[0] for _ in senders)
    assert got == sorted(b"B-%d" % i for i in range(SERVICES))

    fair_queue_check(receiver, senders, lambda frames: frames[0])


def test_dealer_block_on_send_no_peers(spec: Spec) -> None:
    """SHALL block on sending, or return a suitable error, when it has no connected peers."""
    dealer = spec.socket("DEALER", sndtimeo=250)
    spec.bind(dealer)  # listening, but nobody connects
    expect_errno(zmq.EAGAIN, dealer.send, b"", zmq.NOBLOCK)
    expect_errno(zmq.EAGAIN, dealer.send, b"")


def test_dealer_destroy_queue_on_disconnect(spec: Spec) -> None:
    """SHALL create a double queue when a peer connects to it. If this peer disconnects, the
    DEALER SHALL destroy its double queue and SHALL discard any messages it contains."""
    a = spec.socket("DEALER")
    address = spec.bind(a)
    b = spec.socket("DEALER")
    b.connect(address)

    send_seq(a, b"ABC")
    send_seq(b, b"DEF")
    b.disconnect(address)

    # The side that disconnects can no longer read what was queued for it.
    expect_errno(zmq.EAGAIN, b.recv, zmq.NOBLOCK)
    # Once A has noticed, it has no peer left to send to. (Reading B's events lets libzmq
    # finish the disconnect: it runs commands in the application's thread.)
    wait_for(lambda: events(b) >= 0 and not events(a) & zmq.POLLOUT, "A to drop its peer")
    expect_errno(zmq.EAGAIN, a.send, b"", zmq.NOBLOCK)

    # After B reconnects, the old messages are still gone: the first thing B gets is new.
    b.connect(address)
    expect_errno(zmq.EAGAIN, b.recv, zmq.NOBLOCK)
    send_seq(a, b"new")
    recv_seq(b, b"new")


# -- ROUTER ------------------------------------------------------------------------------


def test_router_fair_queue_in(spec: Spec) -> None:
    """SHALL receive incoming messages from its peers using a fair-queuing strategy, each
    prefixed with the routing id of the peer it came from."""
    receiver = spec.socket("ROUTER")
    address = spec.bind(receiver)
    names = ids(SERVICES)
    senders = [spec.socket("DEALER", routing_id=name) for name in names]
    for sender in senders:
        sender.connect(address)

    for _ in range(2):
        send_seq(senders[0], b"M")
        recv_seq(receiver, b"A", b"M")

    for sender in senders:
        send_seq(sender, b"M")
    got = [recv_frames(receiver) for _ in senders]
    assert sorted(got) == [[name, b"M"] for name in names]

    def body(frames: list[bytes]) -> bytes:
        assert len(frames) == 2
        index = int(frames[1].split(b"-")[1])
        assert frames[0] == names[index], f"{frames[1]!r} came with id {frames[0]!r}"
        return frames[1]

    fair_queue_check(receiver, senders, body)


def test_router_destroy_queue_on_disconnect(spec: Spec) -> None:
    """SHALL create a double queue when a peer connects to it. If this peer disconnects, the
    ROUTER SHALL destroy its double queue and SHALL discard any messages it contains."""
    a = spec.socket("ROUTER", router_mandatory=1)
    address = spec.bind(a)
    b = spec.socket("DEALER", routing_id=b"B")
    b.connect(address)
    send_seq(b, b"hello")
    recv_seq(a, b"B", b"hello")

    send_seq(a, b"B", b"ABC")
    send_seq(b, b"DEF")
    b.disconnect(address)

    expect_errno(zmq.EAGAIN, b.recv, zmq.NOBLOCK)
    # A may still read what B sent before leaving (libzmq does not discard that), nothing else.
    allowed = [[b"B", b"DEF"]]
    send_until_unreachable(a, b"B", b, allowed)
    expect_errno(zmq.EHOSTUNREACH, a.send, b"B", zmq.SNDMORE | zmq.NOBLOCK)

    # After B reconnects, nothing queued for the old connection is delivered.
    b.connect(address)
    expect_errno(zmq.EAGAIN, b.recv, zmq.NOBLOCK)
    send_when_routable(a, b"B", b"new", allowed)
    recv_seq(b, b"new")


# -- ROUTER_MANDATORY --------------------------------------------------------------------


def test_router_mandatory_basic(spec: Spec) -> None:
    """Without ROUTER_MANDATORY a message to an unknown peer is dropped silently; with it,
    sending the routing-id frame of an unknown peer fails with EHOSTUNREACH."""
    router = spec.socket("ROUTER")
    address = spec.bind(router)

    send_seq(router, b"UNKNOWN", b"DATA")

    router.setsockopt(zmq.ROUTER_MANDATORY, 1)
    expect_errno(zmq.EHOSTUNREACH, router.send, b"UNKNOWN", zmq.SNDMORE)

    dealer = spec.socket("DEALER", routing_id=b"X")
    dealer.connect(address)
    send_seq(dealer, b"Hello")
    recv_seq(router, b"X", b"Hello")

    send_seq(router, b"X", b"Hello")
    recv_seq(dealer, b"Hello")


def test_router_mandatory_unknown_peer_multipart(spec: Spec) -> None:
    """A whole message to an unknown peer fails with EHOSTUNREACH and leaves nothing behind:
    the next message, to a known peer, arrives exactly as sent."""
    router = spec.socket("ROUTER", router_mandatory=1)
    address = spec.bind(router)
    dealer = spec.socket("DEALER", routing_id=b"X")
    dealer.connect(address)
    send_seq(dealer, b"Hello")
    recv_seq(router, b"X", b"Hello")

    expect_errno(zmq.EHOSTUNREACH, router.send_multipart, [b"UNKNOWN", b"DATA"])
    expect_errno(zmq.EHOSTUNREACH, router.send_multipart, [b"UNKNOWN", b"DATA"], zmq.NOBLOCK)
    expect_errno(zmq.EHOSTUNREACH, router.send, b"UNKNOWN", zmq.SNDMORE)
    send_seq(router, b"X", b"after", b"errors")
    recv_seq(dealer, b"after", b"errors")
    assert_quiet(dealer, 0)


def test_router_mandatory_hwm(spec: Spec) -> None:
    """With ROUTER_MANDATORY, a message to a peer at its high-water mark fails with EAGAIN
    (NOBLOCK) instead of being dropped; nothing accepted is lost, and sending resumes once
    the peer reads. Over inproc exactly SNDHWM + RCVHWM = 2 messages fit; over tcp/ipc
    libzmq's bounds apply: the first EAGAIN within 10 messages, and fewer than 20 in all
    while the peer does not read."""
    router, dealer = mandatory_router_and_dealer(spec)

    def send_big() -> None:
        router.send_multipart([b"X", BIG], zmq.NOBLOCK)

    count = send_until_again(send_big, 1000)
    if spec.transport == "inproc":
        assert count == 2
        router.setsockopt(zmq.SNDTIMEO, 100)
        expect_errno(zmq.EAGAIN, router.send_multipart, [b"X", b"blocked"])
        router.setsockopt(zmq.SNDTIMEO, TIMEOUT_MS)
    else:
        assert 1 <= count < 10
        # libzmq's second batch: as messages move on into the kernel a few more fit.
        count += send_for(send_big, SETTLE_S, 1000)
        assert count < 20

    for _ in range(count):
        assert dealer.recv() == BIG
    router.send_multipart([b"X", b"resumed"])
    recv_seq(dealer, b"resumed")


def test_router_mandatory_eagain_on_routing_id_frame(spec: Spec) -> None:
    """As libzmq's test sends it: the routing-id frame (SNDMORE | NOBLOCK) fails with EAGAIN
    when the peer is full; once it is accepted, the body frame always is."""
    router, dealer = mandatory_router_and_dealer(spec)

    def send_big() -> None:
        router.send(b"X", zmq.SNDMORE | zmq.NOBLOCK)
        try:
            router.send(BIG, zmq.NOBLOCK)
        except zmq.Again:
            pytest.fail("EAGAIN on the body frame: the routing-id frame should have failed")

    count = send_until_again(send_big, 1000)
    assert 1 <= count < 10
    for _ in range(count):
        assert dealer.recv() == BIG
    send_seq(router, b"X", b"after")
    recv_seq(dealer, b"after")
