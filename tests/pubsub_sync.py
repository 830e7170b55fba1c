"""PUB/SUB and XPUB/XSUB test helpers shared by the own and the interop suites.

Subscriptions travel asynchronously (ZeroMQ's slow joiner), so the tests first
``sync``: publish probes until every SUB sees each of its topics from each PUB,
then fences so that no probe is left queued; after that traffic is checked exactly.

An XPUB's user hears the subscriptions themselves (``\\x01topic``, ``\\x00topic`` to
cancel): ``receive``, ``receive_until`` and ``greet`` wait for them. libzmq attaches a new
connection (and sends a subscriber's subscriptions on it) only when the user thread calls into
the socket, so while they wait the subscribers are asked for their EVENTS (``touch``).
The helpers work with sockets of either implementation.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import pytest

TIMEOUT_MS = 5000
SYNC_TIMEOUT_S = 5.0
SYNC_POLL_MS = 20
SYNC_MARK = b"\x00sync\x00"
END = b"end"
QUEUED_MS = 50
"""How long "nothing else is queued" is watched for, once what was awaited has arrived."""

# Option numbers, the same in both implementations.
EVENTS = 15
TYPE = 16
SUB = 2
SUBSCRIBE = 6
UNSUBSCRIBE = 7


def sync_message(topic: bytes, kind: bytes, pub_index: int) -> bytes:
    """A probe or fence on ``topic`` from PUB number ``pub_index``."""
    return topic + SYNC_MARK + kind + b":%d" % pub_index


def parse_sync(frames: list[bytes]) -> tuple[bytes, bytes, int] | None:
    """(topic, kind, pub index) of a probe or fence; None for any other message."""
    if len(frames) != 1 or SYNC_MARK not in frames[0]:
        return None
    topic, _, tail = frames[0].rpartition(SYNC_MARK)
    kind, _, index = tail.partition(b":")
    return topic, kind, int(index)


def sync(
    pubs: Sequence[Any],
    wants: Sequence[tuple[Any, Sequence[bytes]]],
    timeout_s: float = SYNC_TIMEOUT_S,
) -> None:
    """Wait until each SUB in ``wants`` receives each of its topics from every PUB.

    Phase 1 publishes a probe per topic per PUB in a loop until every SUB has seen each of
    its topics from each PUB. Phase 2 publishes one fence per topic per PUB and reads every
    SUB up to the fences it matches, so no probe is left in any queue. Any other message
    meanwhile is a failure.
    """
    topics = sorted({topic for _, sub_topics in wants for topic in sub_topics})
    indices = range(len(pubs))
    probes_missing = [{(i, t) for i in indices for t in sub_topics} for _, sub_topics in wants]
    fences_missing = [
        {(i, t) for i in indices for t in topics if any(t.startswith(s) for s in sub_topics)}
        for _, sub_topics in wants
    ]
    deadline = time.monotonic() + timeout_s
    rounds = 0
    while any(probes_missing):
        if time.monotonic() > deadline:
            pytest.fail(
                f"subscriptions never took effect: after {rounds} rounds of probes, "
                f"(pub, topic) still missing per SUB: {probes_missing}"
            )
        for i, pub in enumerate(pubs):
            for topic in topics:
                pub.send(sync_message(topic, b"probe", i))
        rounds += 1
        for (sub, _), missing in zip(wants, probes_missing, strict=True):
            timeout = SYNC_POLL_MS
            while sub.poll(timeout):
                timeout = 0
                frames = [bytes(f) for f in sub.recv_multipart()]
                parsed = parse_sync(frames)
                if parsed is None or parsed[1] != b"probe":
                    pytest.fail(f"unexpected message while waiting for probes: {frames!r}")
                missing.discard((parsed[2], parsed[0]))
    for i, pub in enumerate(pubs):
        for topic in topics:
            pub.send(sync_message(topic, b"fence", i))
    for (sub, _), fences in zip(wants, fences_missing, strict=True):
        while fences:
            if not sub.poll(TIMEOUT_MS):
                pytest.fail(f"fences never arrived: (pub, topic) still missing {fences}")
            frames = [bytes(f) for f in sub.recv_multipart()]
            parsed = parse_sync(frames)
            if parsed is None:
                pytest.fail(f"unexpected message while waiting for fences: {frames!r}")
            if parsed[1] == b"fence":
                fences.discard((parsed[2], parsed[0]))


def publish(pub: Any, messages: Sequence[Sequence[bytes]]) -> None:
    """Single-frame messages through send(), multipart ones through send_multipart()."""
    for frames in messages:
        if len(frames) == 1:
            pub.send(frames[0])
        else:
            pub.send_multipart(list(frames))


def collect(sub: Any, end: bytes) -> list[list[bytes]]:
    """Receive up to the single-frame message ``end``; return every message before it."""
    got: list[list[bytes]] = []
    while True:
        if not sub.poll(TIMEOUT_MS):
            pytest.fail(f"{end!r} never arrived; received before it: {got!r}")
        frames = [bytes(f) for f in sub.recv_multipart()]
        if frames == [end]:
            return got
        got.append(frames)


# --- XPUB/XSUB --------------------------------------------------------------------------


def touch(peers: Sequence[Any]) -> None:
    """Make (libzmq) peers process their pending commands, i.e. attach new connections."""
    for peer in peers:
        if not peer.closed:
            peer.getsockopt(EVENTS)


def receive(sock: Any, peers: Sequence[Any] = ()) -> list[bytes]:
    """The next message on ``sock``, touching ``peers`` while waiting."""
    deadline = time.monotonic() + TIMEOUT_MS / 1000
    while not sock.poll(10):
        assert time.monotonic() < deadline, "nothing arrived"
        touch(peers)
    return [bytes(f) for f in sock.recv_multipart()]


def receive_until(xpub: Any, peers: Sequence[Any], last: bytes) -> list[bytes]:
    """Single-frame messages up to and including ``last``, then whatever is queued with them."""
    got: list[bytes] = []
    while not got or got[-1] != last:
        message = receive(xpub, peers)
        assert len(message) == 1, message
        got.append(message[0])
    while xpub.poll(QUEUED_MS):
        got.append(bytes(xpub.recv_multipart()[0]))
    return got


def subscribe(sock: Any, topic: bytes, *, cancel: bool = False) -> None:
    """Subscribe (or cancel) a SUB through its option, an XSUB with a message."""
    if sock.getsockopt(TYPE) == SUB:
        sock.setsockopt(UNSUBSCRIBE if cancel else SUBSCRIBE, topic)
    else:
        sock.send((b"\x00" if cancel else b"\x01") + topic)


def greet(xpub: Any, subs: Sequence[Any]) -> list[list[bytes]]:
    """Wait until the subscribers linked to ``xpub`` are all connected.

    Each subscriber subscribes to a topic of its own and cancels it once the XPUB heard of
    all of them (so subscriptions made afterwards travel on a connection, in order, rather
    than being replayed on connecting). Returns the other messages the XPUB heard meanwhile.
    """
    hellos = [b"hello.%d" % i for i in range(len(subs))]
    others: list[list[bytes]] = []

    def hear(wanted: set[bytes]) -> None:
        while wanted:
            message = receive(xpub, subs)
            if len(message) == 1 and message[0] in wanted:
                wanted.discard(message[0])
            else:
                others.append(message)

    for sub, topic in zip(subs, hellos, strict=True):
        subscribe(sub, topic)
    hear({b"\x01" + topic for topic in hellos})
    for sub, topic in zip(subs, hellos, strict=True):
        subscribe(sub, topic, cancel=True)
    hear({b"\x00" + topic for topic in hellos})
    return others
