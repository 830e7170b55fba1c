"""XPUB and XSUB semantics, zeropipe against itself over inproc, ipc and tcp.

XPUB: the user receives subscriptions as ``\\x01topic`` / ``\\x00topic`` messages (by default
only first subscribes and last cancels; every subscribe with XPUB_VERBOSE, every cancel too
with XPUB_VERBOSER or XPUB_MANUAL), a leaving subscriber cancels its topics, XPUB_MANUAL
applies only what the user subscribes, XPUB_NODROP makes a send wait (or fail with EAGAIN)
when a matching subscriber is full instead of dropping, XPUB_WELCOME_MSG greets each new
subscriber, and the subscription messages queued for the user are neither lost nor reordered.

XSUB: subscribes and cancels with messages, counts them (a cancel goes out only when the count
reaches zero), and does not filter what it receives.

``SPEC_IMPL=pyzmq`` runs the same tests against libzmq (``sock.dropped``, a zeropipe
extension, is then not checked), which validates the tests themselves.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
from pubsub_sync import (
    END,
    collect,
    greet,
    publish,
    receive,
    receive_until,
    subscribe,
    sync,
)
from spec_util import (  # noqa: F401  (the *_fixture names register fixtures)
    IMPL,
    QUIET_MS,
    TIMEOUT_MS,
    Spec,
    assert_quiet,
    recv_frames,
    spec_fixture,
    transport_fixture,
    zmq,
)

pytestmark = pytest.mark.timeout(30)

SHORT_MS = 50
"""How long "nothing else is queued" is watched for, once what was awaited has arrived."""
BIG = bytes(65536)
"""A message body large enough to fill the kernel's buffers of a tcp/ipc connection quickly."""
FLOOD_LIMIT = 1000
"""Sends of BIG after which a full subscriber must have pushed back (about 64 MB)."""


# --- helpers ---------------------------------------------------------------------------


def link(spec: Spec, xpub: Any, subs: list[Any]) -> list[list[bytes]]:
    """Bind the XPUB, connect the subscribers, and wait until all are connected (``greet``);
    return the other messages the XPUB heard meanwhile."""
    endpoint = spec.bind(xpub)
    for sub in subs:
        sub.connect(endpoint)
    return greet(xpub, subs)


MODE_OPTIONS: dict[str, dict[str, int]] = {
    "default": {},
    "verbose": {"xpub_verbose": 1},
    "verboser": {"xpub_verboser": 1},
    "manual": {"xpub_manual": 1},
}
VERBOSER = [
    [b"\x01nl."],
    [b"\x01nl.", b"\x01m1."],
    [b"\x00nl.", b"\x01m2."],
    [b"\x00nl.", b"\x01m3."],
]
NOTICES = {
    # Each step: what the subscribers do, then what the XPUB's user receives, by mode.
    "default": [[b"\x01nl."], [b"\x01m1."], [b"\x01m2."], [b"\x00nl.", b"\x01m3."]],
    "verbose": [[b"\x01nl."], [b"\x01nl.", b"\x01m1."], [b"\x01m2."], [b"\x00nl.", b"\x01m3."]],
    "verboser": VERBOSER,
    "manual": VERBOSER,
}


# --- what the XPUB's user hears --------------------------------------------------------------


@pytest.mark.parametrize("mode", list(NOTICES))
@pytest.mark.parametrize("kind", ["SUB", "XSUB"])
def test_subscription_messages(spec: Spec, mode: str, kind: str) -> None:
    """Two subscribers share a topic. Each step ends with a new subscription (a marker) that
    travels after that subscriber's other (un)subscriptions of the step."""
    xpub = spec.socket("XPUB", **MODE_OPTIONS[mode])
    s1, s2 = spec.socket(kind), spec.socket(kind)
    link(spec, xpub, [s1, s2])
    expected = NOTICES[mode]

    subscribe(s1, b"nl.")
    assert receive_until(xpub, [s1, s2], b"\x01nl.") == expected[0]
    subscribe(s2, b"nl.")
    subscribe(s2, b"m1.")
    assert receive_until(xpub, [s1, s2], b"\x01m1.") == expected[1]
    subscribe(s2, b"nl.", cancel=True)
    subscribe(s2, b"m2.")
    assert receive_until(xpub, [s1, s2], b"\x01m2.") == expected[2]
    subscribe(s1, b"nl.", cancel=True)
    subscribe(s1, b"m3.")
    assert receive_until(xpub, [s1, s2], b"\x01m3.") == expected[3]


@pytest.mark.parametrize("mode", ["default", "verboser", "manual"])
def test_leaving_subscriber_cancels_its_topics(spec: Spec, mode: str) -> None:
    """By default the user hears of the topics nobody wants any more; with XPUB_VERBOSER of
    every topic the subscriber had; in manual mode of every topic it had asked for."""
    xpub = spec.socket("XPUB", **MODE_OPTIONS[mode])
    s1, s2 = spec.socket("SUB"), spec.socket("SUB")
    link(spec, xpub, [s1, s2])
    subscribe(s1, b"nl.")
    assert receive_until(xpub, [s1, s2], b"\x01nl.") == [b"\x01nl."]
    subscribe(s2, b"nl.")
    subscribe(s2, b"own.")
    heard = receive_until(xpub, [s1, s2], b"\x01own.")
    assert heard == ([b"\x01own."] if mode == "default" else [b"\x01nl.", b"\x01own."])

    spec.close_socket(s2)
    # One subscriber's cancels are queued together: after b"\x00own.", a wrong b"\x00nl."
    # would be there too.
    cancels = receive_until(xpub, [s1], b"\x00own.")
    if mode == "default":
        assert cancels == [b"\x00own."]
    else:
        assert sorted(cancels) == [b"\x00nl.", b"\x00own."]
    spec.close_socket(s1)
    assert receive_until(xpub, [], b"\x00nl.") == [b"\x00nl."]


def test_manual_applies_only_what_the_user_subscribes(spec: Spec) -> None:
    """In manual mode the user subscribes the subscriber heard last, to anything it likes.
    An XSUB does not filter, so what it receives is what the XPUB sent it."""
    xpub = spec.socket("XPUB", xpub_manual=1)
    x1, x2 = spec.socket("XSUB"), spec.socket("XSUB")
    link(spec, xpub, [x1, x2])

    x1.send(b"\x01nl.")
    assert receive(xpub, [x1, x2]) == [b"\x01nl."]
    xpub.send(b"nl.before")  # not applied yet: nobody gets it
    xpub.setsockopt(zmq.SUBSCRIBE, b"nl.")
    xpub.setsockopt(zmq.SUBSCRIBE, b"")  # everything, for x1 only
    x2.send(b"\x01nl.")
    assert receive(xpub, [x1, x2]) == [b"\x01nl."]  # x2 heard last: nothing applied for it
    xpub.send(b"br.card")
    xpub.send(b"nl.after")
    assert recv_frames(x1) == [b"br.card"]
    assert recv_frames(x1) == [b"nl.after"]
    assert_quiet(x2, SHORT_MS)

    xpub.setsockopt(zmq.SUBSCRIBE, b"nl.")  # now for x2
    x1.send(b"\x00nl.")
    assert receive(xpub, [x1, x2]) == [b"\x00nl."]
    xpub.setsockopt(zmq.UNSUBSCRIBE, b"")  # x1 keeps nl. (the user never cancelled it)
    xpub.send(b"br.gone")
    xpub.send(b"nl.end")
    assert recv_frames(x1) == [b"nl.end"]
    assert recv_frames(x2) == [b"nl.end"]


# --- XPUB_NODROP and drops -------------------------------------------------------------------


def flood(xpub: Any, topic: bytes) -> int:
    """Send BIG messages on ``topic`` without blocking until Again; return how many went."""
    for count in range(FLOOD_LIMIT):
        try:
            xpub.send_multipart([topic, BIG], zmq.NOBLOCK)
        except zmq.Again:
            return count
    pytest.fail(f"still no Again after {FLOOD_LIMIT} messages to a full subscriber")


def test_nodrop_pushes_back_instead_of_dropping(spec: Spec) -> None:
    """With XPUB_NODROP a subscriber at its high-water mark makes a send fail with EAGAIN
    (NOBLOCK) or wait for room, rather than lose the message; subscribers it does not match
    are not in the way. Every message accepted arrives."""
    xpub = spec.socket("XPUB", xpub_nodrop=1, sndhwm=10)
    full = spec.socket("SUB", rcvhwm=10)
    idle = spec.socket("SUB", rcvhwm=10)
    link(spec, xpub, [full, idle])
    full.setsockopt(zmq.SUBSCRIBE, b"a")
    idle.setsockopt(zmq.SUBSCRIBE, b"b")
    assert sorted(receive(xpub) + receive(xpub)) == [b"\x01a", b"\x01b"]

    sent = flood(xpub, b"a")
    assert sent > 0
    xpub.send(b"b-not-blocked", zmq.NOBLOCK)  # the idle subscriber has room
    if IMPL == "zeropipe":
        assert xpub.dropped == 0

    # As many again and more, blocking: each waits for the reader to make room, so all of
    # them arrive (without NODROP some would be dropped; with EAGAIN the sender would fail).
    more = [[b"a.%04d" % i, BIG] for i in range(sent + 20)]
    errors: list[BaseException] = []

    def send_more() -> None:
        try:
            for message in more:
                xpub.send_multipart(message)
        except BaseException as exc:
            errors.append(exc)

    sender = threading.Thread(target=send_more, name="nodrop-sender", daemon=True)
    sender.start()
    try:
        for i in range(sent):
            assert recv_frames(full) == [b"a", BIG], f"flooded message {i} of {sent}"
        for i, message in enumerate(more):
            assert recv_frames(full) == message, f"blocking message {i} of {len(more)}"
    finally:
        sender.join(TIMEOUT_MS / 1000)
    assert not sender.is_alive(), "the sender is still blocked"
    assert not errors, errors
    assert recv_frames(idle) == [b"b-not-blocked"]
    if IMPL == "zeropipe":
        assert xpub.dropped == 0


def test_without_nodrop_a_full_subscriber_misses_messages(spec: Spec) -> None:
    """Without XPUB_NODROP sends never fail; a full subscriber misses messages, and (in
    zeropipe) ``sock.dropped`` counts exactly the ones it missed."""
    xpub = spec.socket("XPUB", sndhwm=10)
    sub = spec.socket("SUB", rcvhwm=10)
    link(spec, xpub, [sub])
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    assert receive(xpub) == [b"\x01"]

    total = 300
    for i in range(total):
        xpub.send_multipart([b"%04d" % i, BIG], zmq.NOBLOCK)
    dropped = xpub.dropped if IMPL == "zeropipe" else None
    received: list[int] = []
    while True:  # every message not dropped arrives before the first END that does
        if not sub.poll(SHORT_MS):
            xpub.send(END)
            continue
        message = recv_frames(sub)
        if message == [END]:
            break
        assert message[1:] == [BIG]
        received.append(int(message[0]))
    assert received == sorted(set(received)), "reordered or duplicated"
    assert len(received) < total, "nothing was dropped"
    if dropped is not None:
        assert dropped == total - len(received)


# --- the welcome message -------------------------------------------------------------------


def test_welcome_message(spec: Spec) -> None:
    """Each new subscriber gets XPUB_WELCOME_MSG: a SUB if subscribed to it, an XSUB always."""
    xpub = spec.socket("XPUB", xpub_welcome_msg=b"welcome!")
    sub = spec.socket("SUB")
    other = spec.socket("SUB")
    xsub = spec.socket("XSUB")
    sub.setsockopt(zmq.SUBSCRIBE, b"welcome")
    other.setsockopt(zmq.SUBSCRIBE, b"nl.")
    xsub.send(b"\x01x.")  # does not match the welcome message: the XSUB gets it anyway
    heard = link(spec, xpub, [sub, other, xsub])  # it lets libzmq greet the subscribers too
    assert sorted(heard) == [[b"\x01nl."], [b"\x01welcome"], [b"\x01x."]]
    assert recv_frames(sub) == [b"welcome!"]
    assert recv_frames(xsub) == [b"welcome!"]
    xpub.send(b"nl.first")
    assert recv_frames(other) == [b"nl.first"], "the SUB did not filter out the welcome message"


# --- XSUB ------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["XSUB", "SUB"])
def test_xsub_does_not_filter(spec: Spec, kind: str) -> None:
    """Messages the PUB sent while subscribed still arrive after the XSUB cancels; a SUB
    filters them out on arrival (the control case)."""
    pub = spec.socket("PUB")
    sub = spec.socket(kind)
    sub.connect(spec.bind(pub))
    subscribe(sub, b"nl.")
    subscribe(sub, b"zz.")
    sync([pub], [(sub, [b"nl.", b"zz."])])
    publish(pub, [[b"nl.one"], [b"nl.two", b"part"]])
    subscribe(sub, b"nl.", cancel=True)  # the two are on their way already
    publish(pub, [[b"zz." + END]])
    got = collect(sub, b"zz." + END)
    assert got == ([[b"nl.one"], [b"nl.two", b"part"]] if kind == "XSUB" else [])


def test_xsub_cancels_only_when_the_count_reaches_zero(spec: Spec) -> None:
    xpub = spec.socket("XPUB", xpub_verboser=1)  # hears of every subscribe and cancel
    xsub = spec.socket("XSUB")
    link(spec, xpub, [xsub])
    xsub.send(b"\x01nl.")
    xsub.send(b"\x01nl.")
    assert receive_until(xpub, [xsub], b"\x01nl.") == [b"\x01nl.", b"\x01nl."]
    xsub.send(b"\x00nl.")  # one left: stays local
    xsub.send(b"\x00zz.")  # never subscribed: stays local
    xsub.send(b"\x01m1.")
    assert receive_until(xpub, [xsub], b"\x01m1.") == [b"\x01m1."]
    xsub.send(b"\x00nl.")
    assert receive_until(xpub, [xsub], b"\x00nl.") == [b"\x00nl."]
    xsub.send(b"\x00nl.")  # below zero: stays local
    xsub.send(b"\x01m2.")
    assert receive_until(xpub, [xsub], b"\x01m2.") == [b"\x01m2."]


def test_xsub_sends_other_messages_upstream(spec: Spec) -> None:
    xpub = spec.socket("XPUB")
    xsub = spec.socket("XSUB")
    link(spec, xpub, [xsub])
    xsub.send_multipart([b"up", b"", b"stream"])
    xsub.send(b"")
    assert recv_frames(xpub) == [b"up", b"", b"stream"]
    assert recv_frames(xpub) == [b""]


# --- the XPUB's queue of messages for the user ---------------------------------------------------


def test_queue_of_subscription_messages(spec: Spec) -> None:
    """Subscriptions and upstream messages pile up while the user does not read (past
    RCVHWM): none is lost, and each subscriber's arrive in the order it sent them."""
    xpub = spec.socket("XPUB", rcvhwm=10)
    xsubs = [spec.socket("XSUB") for _ in range(3)]
    link(spec, xpub, xsubs)

    count = 200
    expected: dict[int, list[bytes]] = {i: [] for i in range(3)}
    for k in range(count):
        for i, xsub in enumerate(xsubs):
            upstream = k % 50 == 49  # now and then a message that is not a subscription
            message = (b"up.%d.%03d" if upstream else b"\x01s.%d.%03d") % (i, k)
            xsub.send(message)
            expected[i].append(message)
    got: dict[int, list[bytes]] = {i: [] for i in range(3)}
    for _ in range(3 * count):
        message = receive(xpub, xsubs)
        assert len(message) == 1, message
        got[int(message[0].split(b".")[1])].append(message[0])
    for i in range(3):
        mismatch = next(
            (
                k
                for k, pair in enumerate(zip(got[i], expected[i], strict=True))
                if len(set(pair)) > 1
            ),
            None,
        )
        assert mismatch is None, (
            f"subscriber {i}: message {mismatch} is {got[i][mismatch]!r}, "
            f"sent as {expected[i].index(got[i][mismatch])}"
        )
    assert_quiet(xpub, QUIET_MS)
