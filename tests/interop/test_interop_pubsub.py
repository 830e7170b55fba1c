"""PUB/SUB interop: zeropipe ("ours") against libzmq through pyzmq ("theirs").

Both directions (our PUB to their SUB, their PUB to our SUB), either side binding, tcp and ipc:
prefix filtering on the first frame, the empty subscription, unsubscribing, counted
subscriptions, multipart messages, 10,000 messages in order, two SUBs (one of each) with
different topics on one PUB, a SUB fair-queuing between two PUBs, and resubscription after
the PUB restarts on the same endpoint.

Subscriptions travel to the PUB asynchronously (the "slow joiner"), so every test first runs
``sync``: each PUB publishes probes on the topics the SUBs wait for until every SUB has seen
one from every PUB, then a fence per topic that flushes the remaining probes out of the way.
Afterwards the SUBs' queues are empty and the real traffic is checked exactly.
"""

from __future__ import annotations

import itertools
import time
from types import ModuleType
from typing import TYPE_CHECKING, Any

import pytest
from netutil import Endpoints, bind_with_retry
from pubsub_sync import END, collect, publish, sync

if TYPE_CHECKING:
    from .conftest import Harness, Side

pytestmark = [pytest.mark.interop, pytest.mark.timeout(20)]

TIMEOUT_MS = 5000
SYNC_TIMEOUT_S = 5.0
"""How long the PUB(s) may publish probes before the subscriptions count as lost."""
RECONNECT_SYNC_TIMEOUT_S = 10.0
SYNC_POLL_MS = 20
SETTLE_S = 0.3
"""Lets messages already sent reach the SUB's queues before fair-queuing is observed."""


# --- helpers ---------------------------------------------------------------------------


def set_hwm(sock: Any, module: ModuleType, value: int) -> None:
    sock.setsockopt(module.SNDHWM, value)
    sock.setsockopt(module.RCVHWM, value)


directions = pytest.mark.parametrize("direction", ["ours-to-theirs", "theirs-to-ours"])
binders = pytest.mark.parametrize("binder", ["ours", "theirs"], ids=["ours-binds", "theirs-binds"])


def pubsub(
    ours: Side,
    theirs: Side,
    endpoints: Endpoints,
    direction: str,
    binder: str,
    hwm: int | None = None,
) -> tuple[Any, Any]:
    """A PUB on one side and a SUB on the other, linked; returns (pub, sub)."""
    pub_side, sub_side = (ours, theirs) if direction == "ours-to-theirs" else (theirs, ours)
    pub = pub_side.socket("PUB")
    sub = sub_side.socket("SUB")
    if hwm is not None:
        set_hwm(pub, pub_side.module, hwm)
        set_hwm(sub, sub_side.module, hwm)
    pub_binds = (binder == "ours") == (pub_side is ours)
    binding, connecting = (pub, sub) if pub_binds else (sub, pub)
    connecting.connect(endpoints.bind(binding))
    return pub, sub


def module_of(sock: Any, ours: Side, theirs: Side) -> ModuleType:
    return ours.module if sock in ours.sockets else theirs.module


# --- one PUB, one SUB ------------------------------------------------------------------


@directions
@binders
def test_topic_filtering(
    ours: Side, theirs: Side, endpoints: Endpoints, direction: str, binder: str
) -> None:
    pub, sub = pubsub(ours, theirs, endpoints, direction, binder)
    sub.subscribe(b"nl.")
    sub.setsockopt(module_of(sub, ours, theirs).SUBSCRIBE, b"br.")
    sync([pub], [(sub, [b"nl.", b"br."])])
    publish(
        pub,
        [[b"nl.goal"], [b"br.card"], [b"de.goal"], [b"nl"], [b"xnl.goal"], [b"nl." + END]],
    )
    assert collect(sub, b"nl." + END) == [[b"nl.goal"], [b"br.card"]]


@directions
@binders
def test_empty_subscription_receives_everything(
    ours: Side, theirs: Side, endpoints: Endpoints, direction: str, binder: str
) -> None:
    pub, sub = pubsub(ours, theirs, endpoints, direction, binder)
    sub.subscribe(b"")
    sync([pub], [(sub, [b""])])
    messages = [[b"nl.goal"], [b"de.goal"], [b""], [b"\x00\xff binary"], [b"a", b"b"]]
    publish(pub, [*messages, [END]])
    assert collect(sub, END) == messages


@directions
@binders
def test_unsubscribe(
    ours: Side, theirs: Side, endpoints: Endpoints, direction: str, binder: str
) -> None:
    pub, sub = pubsub(ours, theirs, endpoints, direction, binder)
    module = module_of(sub, ours, theirs)
    for topic in (b"nl.", b"br.", b"de."):
        sub.subscribe(topic)
    sync([pub], [(sub, [b"nl.", b"br.", b"de."])])

    sub.unsubscribe(b"br.")
    sub.setsockopt(module.UNSUBSCRIBE, b"de.")
    sub.subscribe(b"zz.")  # travels after the cancels: once it works, they have arrived too
    sync([pub], [(sub, [b"zz."])])
    publish(pub, [[b"br.card"], [b"de.goal"], [b"nl.goal"], [b"zz." + END]])
    assert collect(sub, b"zz." + END) == [[b"nl.goal"]]


@directions
@binders
def test_subscriptions_are_counted(
    ours: Side, theirs: Side, endpoints: Endpoints, direction: str, binder: str
) -> None:
    """Subscribing twice and unsubscribing once leaves the topic subscribed."""
    pub, sub = pubsub(ours, theirs, endpoints, direction, binder)
    sub.subscribe(b"nl.")
    sub.subscribe(b"nl.")
    sync([pub], [(sub, [b"nl."])])

    sub.unsubscribe(b"nl.")
    sub.subscribe(b"yy.")
    sync([pub], [(sub, [b"yy."])])
    publish(pub, [[b"nl.goal"], [b"yy." + END]])
    assert collect(sub, b"yy." + END) == [[b"nl.goal"]]

    sub.unsubscribe(b"nl.")
    sub.subscribe(b"xx.")
    sync([pub], [(sub, [b"xx."])])
    publish(pub, [[b"nl.goal"], [b"xx." + END]])
    assert collect(sub, b"xx." + END) == []


@directions
@binders
def test_multipart_filtered_on_first_frame_and_delivered_whole(
    ours: Side, theirs: Side, endpoints: Endpoints, direction: str, binder: str
) -> None:
    pub, sub = pubsub(ours, theirs, endpoints, direction, binder)
    sub.subscribe(b"nl.")
    sync([pub], [(sub, [b"nl."])])
    publish(
        pub,
        [
            [b"nl.goal", b"minute 12", b"", b"score 1-0"],
            [b"de.goal", b"nl.goal"],  # only the first frame counts
            [b"nl", b".goal"],  # a topic split over two frames does not match
            [b"nl.", b"x" * 300],
            [b"nl." + END],
        ],
    )
    assert collect(sub, b"nl." + END) == [
        [b"nl.goal", b"minute 12", b"", b"score 1-0"],
        [b"nl.", b"x" * 300],
    ]


@directions
@binders
def test_ten_thousand_messages_in_order(
    ours: Side, theirs: Side, endpoints: Endpoints, direction: str, binder: str
) -> None:
    """Unlimited high-water marks, so nothing may be dropped; others are interleaved."""
    pub, sub = pubsub(ours, theirs, endpoints, direction, binder, hwm=0)
    sub.subscribe(b"seq.")
    sync([pub], [(sub, [b"seq."])])
    for i in range(10_000):
        pub.send(b"seq.%05d" % i)
        pub.send(b"other.%05d" % i)
    for i in range(10_000):
        assert sub.poll(TIMEOUT_MS), f"message {i} never arrived"
        got = sub.recv()
        assert got == b"seq.%05d" % i, f"message {i}: got {got!r}"
    assert not sub.poll(50), "unexpected extra data after the last message"


# --- several sockets -------------------------------------------------------------------


@pytest.mark.parametrize("pub_owner", ["ours", "theirs"], ids=["ours-pub", "theirs-pub"])
@pytest.mark.parametrize("binder", ["pub", "subs"], ids=["pub-binds", "subs-bind"])
def test_two_subs_with_different_topics(
    ours: Side, theirs: Side, endpoints: Endpoints, pub_owner: str, binder: str
) -> None:
    """One of our SUBs and one of theirs on one PUB: each gets exactly its topics."""
    pub = (ours if pub_owner == "ours" else theirs).socket("PUB")
    our_sub = ours.socket("SUB")
    their_sub = theirs.socket("SUB")
    if binder == "pub":
        endpoint = endpoints.bind(pub)
        our_sub.connect(endpoint)
        their_sub.connect(endpoint)
    else:
        pub.connect(endpoints.bind(our_sub))
        pub.connect(endpoints.bind(their_sub))
    our_sub.subscribe(b"nl.")
    our_sub.subscribe(b"all.")
    their_sub.subscribe(b"br.")
    their_sub.subscribe(b"all.")
    sync([pub], [(our_sub, [b"nl.", b"all."]), (their_sub, [b"br.", b"all."])])
    publish(
        pub, [[b"nl.goal"], [b"br.card"], [b"all.news", b"body"], [b"de.goal"], [b"all." + END]]
    )
    assert collect(our_sub, b"all." + END) == [[b"nl.goal"], [b"all.news", b"body"]]
    assert collect(their_sub, b"all." + END) == [[b"br.card"], [b"all.news", b"body"]]


@pytest.mark.parametrize("sub_owner", ["ours", "theirs"], ids=["ours-sub", "theirs-sub"])
@pytest.mark.parametrize("binder", ["pubs", "sub"], ids=["pubs-bind", "sub-binds"])
def test_sub_fair_queues_between_pubs(
    ours: Side, theirs: Side, endpoints: Endpoints, sub_owner: str, binder: str
) -> None:
    """A SUB fed by two PUBs (one of each) takes their messages in turn, each in order."""
    sub = (ours if sub_owner == "ours" else theirs).socket("SUB")
    pubs = [ours.socket("PUB"), theirs.socket("PUB")]
    if binder == "pubs":
        for pub in pubs:
            sub.connect(endpoints.bind(pub))
    else:
        endpoint = endpoints.bind(sub)
        for pub in pubs:
            pub.connect(endpoint)
    sub.subscribe(b"t.")
    sync(pubs, [(sub, [b"t."])])

    count = 50
    for i in range(count):
        for name, pub in zip(b"ab", pubs, strict=True):
            pub.send(b"t.%c%03d" % (name, i))
    # Both queues loaded before the first look at the SUB: libzmq notices newly readable
    # peers only when polled (or every 100 messages), so poll only after the settling time.
    time.sleep(SETTLE_S)
    assert sub.poll(TIMEOUT_MS)
    got = [sub.recv() for _ in range(2 * count)]
    for name in b"ab":
        mine = [m for m in got if m[2] == name]
        assert mine == [b"t.%c%03d" % (name, i) for i in range(count)], got
    sources = bytes(m[2] for m in got[:20])
    runs = [len(list(group)) for _, group in itertools.groupby(sources)]
    assert max(runs) <= 2, f"not fair-queued: {sources!r}"
    assert not sub.poll(50), "unexpected extra data after the last message"


# --- restarts --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "restarting", ["theirs", "ours"], ids=["their-pub-restarts", "our-pub-restarts"]
)
@pytest.mark.parametrize("binder", ["pub", "sub"], ids=["pub-binds", "sub-binds"])
def test_subscriptions_resent_after_pub_restarts(
    ours: Side,
    theirs: Side,
    harness: Harness,
    zp: ModuleType,
    pyzmq: ModuleType,
    endpoints: Endpoints,
    restarting: str,
    binder: str,
) -> None:
    """The PUB goes away (socket and context) and a new one takes its place.

    The SUB is never told to subscribe again: it must re-send its subscriptions on the new
    connection by itself.
    """
    pub_module = pyzmq if restarting == "theirs" else zp
    sub = (ours if restarting == "theirs" else theirs).socket("SUB")
    sub.subscribe(b"nl.")
    if binder == "sub":
        endpoint = endpoints.bind(sub)

    def start_pub(label: str) -> tuple[Side, Any]:
        side = harness.side(label, pub_module)
        pub = side.socket("PUB")
        if binder == "sub":
            pub.connect(endpoint)
        return side, pub

    first, old_pub = start_pub(f"{restarting}-1")
    if binder == "pub":
        endpoint = endpoints.bind(old_pub)
        sub.connect(endpoint)
    sync([old_pub], [(sub, [b"nl."])])
    publish(old_pub, [[b"nl.before"], [b"br.card"], [b"nl." + END]])
    assert collect(sub, b"nl." + END) == [[b"nl.before"]]

    first.close()  # closes the PUB and terminates its context, releasing the endpoint
    _second, new_pub = start_pub(f"{restarting}-2")
    if binder == "pub":
        bind_with_retry(new_pub, endpoint, pub_module)  # the same port / path as before
    sync([new_pub], [(sub, [b"nl."])], timeout_s=RECONNECT_SYNC_TIMEOUT_S)
    publish(new_pub, [[b"nl.after"], [b"br.card"], [b"nl." + END]])
    assert collect(sub, b"nl." + END) == [[b"nl.after"]]
