"""Every compatible pair of socket types, zeropipe ("ours") against libzmq through pyzmq.

The matrix covers the pairs of RFC 37 (PAIR-PAIR, PUB-SUB, PUB-XSUB, XPUB-SUB, XPUB-XSUB,
REQ-REP, REQ-ROUTER, DEALER-REP, DEALER-DEALER, DEALER-ROUTER, ROUTER-ROUTER, PUSH-PULL), with
our socket as type A and theirs as type B or the reverse, either side binding, over tcp and
ipc. Each case connects the two and runs the pattern's natural exchange, multipart messages
included. A ROUTER checks the routing id it sees: the peer's ROUTING_ID when set, otherwise one
it made up (libzmq's form: a zero byte and a 32-bit counter), the same for every message.

Besides the matrix: an XSUB's subscriptions are sent again to an XPUB that restarts (our XSUB
with their XPUB, and the reverse). Resubscription of SUBs is in test_interop_pubsub.py;
heartbeats are in test_heartbeat.py and test_interop_xpub.py (a silent subscriber dropped).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any

import pytest
from netutil import Endpoints, bind_with_retry
from pubsub_sync import END, collect, publish, sync

if TYPE_CHECKING:
    from .conftest import Harness, Side

pytestmark = [pytest.mark.interop, pytest.mark.timeout(20)]

SUBSCRIPTION_TIMEOUT_S = 5.0
"""How long an XPUB may wait for a subscription."""
ROUTABLE_TIMEOUT_S = 5.0
"""How long a ROUTER (ROUTER_MANDATORY) may wait for its peer to become routable."""

PEER_ID = b"peer-\xffid"
"""The explicit ROUTING_ID of the socket a ROUTER talks to (not valid UTF-8 on purpose)."""
BINDER_ID = b"binder"
"""The ROUTING_ID of the binding ROUTER of a ROUTER-ROUTER pair."""


@dataclass
class Link:
    """The two sockets of one case and what the exchange needs to know about them."""

    a: Any
    b: Any
    a_module: ModuleType
    b_module: ModuleType
    a_binds: bool
    routing_id: bytes | None
    """The ROUTING_ID given to the socket a ROUTER talks to; None to let the ROUTER make one up."""


def frames(sock: Any) -> list[bytes]:
    return [bytes(frame) for frame in sock.recv_multipart()]


def subscription(xpub: Any, subscriber: Any, module: ModuleType) -> list[bytes]:
    """The next message an XPUB receives, while the subscriber is kept busy.

    libzmq attaches a new connection (and sends its subscriptions on it) only when its user
    thread calls into the socket, so a libzmq subscriber is asked for its EVENTS meanwhile.
    """
    deadline = time.monotonic() + SUBSCRIPTION_TIMEOUT_S
    while not xpub.poll(20):
        assert time.monotonic() < deadline, "no subscription reached the XPUB"
        subscriber.getsockopt(module.EVENTS)
    return frames(xpub)


def check_made_up_or_given(peer: bytes, link: Link) -> None:
    if link.routing_id is not None:
        assert peer == link.routing_id, f"the ROUTER named its peer {peer!r}"
    else:
        assert len(peer) == 5, f"a made-up routing id is 5 bytes, got {peer!r}"
        assert peer[0] == 0, f"a made-up routing id starts with a zero byte, got {peer!r}"


# --- per-pattern setups (options set before bind/connect) ------------------------------


def give_a_routing_id(link: Link) -> None:
    """Type A talks to a ROUTER (type B): give it the ROUTING_ID of the case, if any."""
    if link.routing_id is not None:
        link.a.setsockopt(link.a_module.ROUTING_ID, link.routing_id)


def setup_router_router(link: Link) -> None:
    """The binder is known by its ROUTING_ID; the connecting side sends first (mandatory)."""
    binder, binder_module = (link.a, link.a_module) if link.a_binds else (link.b, link.b_module)
    connecter, connecter_module = (
        (link.b, link.b_module) if link.a_binds else (link.a, link.a_module)
    )
    binder.setsockopt(binder_module.ROUTING_ID, BINDER_ID)
    connecter.setsockopt(connecter_module.ROUTER_MANDATORY, 1)
    if link.routing_id is not None:
        connecter.setsockopt(connecter_module.ROUTING_ID, link.routing_id)


def setup_subscriber(link: Link) -> None:
    """SUB subscribes with the option, XSUB by sending ``\\x01topic`` (kept until connected)."""
    if link.b.getsockopt(link.b_module.TYPE) == link.b_module.SUB:
        link.b.setsockopt(link.b_module.SUBSCRIBE, b"nl.")
    else:
        link.b.send(b"\x01nl.")


# --- per-pattern exchanges ---------------------------------------------------------------


def exchange_pair(link: Link) -> None:
    link.a.send_multipart([b"a-to-b", b"", b"tail"])
    assert frames(link.b) == [b"a-to-b", b"", b"tail"]
    link.b.send(b"b-to-a")
    assert frames(link.a) == [b"b-to-a"]
    link.b.send_multipart([b"b", b"to", b"a"])
    assert frames(link.a) == [b"b", b"to", b"a"]


def exchange_push_pull(link: Link) -> None:
    link.a.send_multipart([b"one", b"", b"three"])
    link.a.send(b"single")
    assert frames(link.b) == [b"one", b"", b"three"]
    assert frames(link.b) == [b"single"]


def exchange_req_rep(link: Link) -> None:
    for body in ([b"request"], [b"multi", b"", b"part"]):
        link.a.send_multipart(body)
        assert frames(link.b) == body
        link.b.send_multipart([b"reply", *body])
        assert frames(link.a) == [b"reply", *body]


def exchange_dealer_rep(link: Link) -> None:
    link.a.send_multipart([b"", b"request", b"two"])
    assert frames(link.b) == [b"request", b"two"]
    link.b.send_multipart([b"reply", b""])
    assert frames(link.a) == [b"", b"reply", b""]


def exchange_dealer_dealer(link: Link) -> None:
    link.a.send_multipart([b"a", b"", b"b"])
    link.a.send(b"second")
    assert frames(link.b) == [b"a", b"", b"b"]
    assert frames(link.b) == [b"second"]
    link.b.send_multipart([b"back", b"again"])
    assert frames(link.a) == [b"back", b"again"]


def exchange_req_router(link: Link) -> None:
    seen = set()
    for body in ([b"request"], [b"multi", b"part"]):
        link.a.send_multipart(body)
        peer, delimiter, *got = frames(link.b)
        assert delimiter == b"", f"no empty delimiter after the routing id: {got!r}"
        assert got == body
        check_made_up_or_given(peer, link)
        seen.add(peer)
        link.b.send_multipart([peer, b"", b"reply", *body])
        assert frames(link.a) == [b"reply", *body]
    assert len(seen) == 1, f"the routing id changed between requests: {seen!r}"


def exchange_dealer_router(link: Link) -> None:
    link.a.send_multipart([b"hello", b"", b"there"])
    link.a.send(b"again")
    peer, *got = frames(link.b)
    check_made_up_or_given(peer, link)
    assert got == [b"hello", b"", b"there"]
    assert frames(link.b) == [peer, b"again"], "the routing id changed between messages"
    link.b.send_multipart([peer, b"back", b"to you"])
    assert frames(link.a) == [b"back", b"to you"]


def exchange_router_router(link: Link) -> None:
    binder, connecter = (link.a, link.b) if link.a_binds else (link.b, link.a)
    module = link.b_module if link.a_binds else link.a_module
    deadline = time.monotonic() + ROUTABLE_TIMEOUT_S
    while True:  # EHOSTUNREACH until the connecting ROUTER knows the binder by its id
        try:
            connecter.send_multipart([BINDER_ID, b"hello", b"router"], module.NOBLOCK)
            break
        except module.ZMQError as exc:
            error = exc.errno
        assert error == module.EHOSTUNREACH, f"errno {error}"
        assert time.monotonic() < deadline, f"{BINDER_ID!r} never became routable"
        time.sleep(0.002)
    peer, *got = frames(binder)
    check_made_up_or_given(peer, link)
    assert got == [b"hello", b"router"]
    binder.send_multipart([peer, b"reply", b""])
    assert frames(connecter) == [BINDER_ID, b"reply", b""]


def exchange_pub_sub(link: Link) -> None:
    pub, sub = link.a, link.b
    is_xpub = pub.getsockopt(link.a_module.TYPE) == link.a_module.XPUB
    if is_xpub:  # the subscription itself is the handshake: after it, nothing is lost
        assert subscription(pub, sub, link.b_module) == [b"\x01nl."]
    else:
        sync([pub], [(sub, [b"nl."])])
    publish(pub, [[b"nl.one", b"", b"part"], [b"br.skip"], [b"nl.two"], [b"nl." + END]])
    assert collect(sub, b"nl." + END) == [[b"nl.one", b"", b"part"], [b"nl.two"]]
    is_xsub = sub.getsockopt(link.b_module.TYPE) == link.b_module.XSUB
    if is_xpub and is_xsub:  # messages upstream, other than subscriptions, reach the user
        sub.send_multipart([b"up", b"stream"])
        assert frames(pub) == [b"up", b"stream"]


@dataclass(frozen=True)
class Pattern:
    a: str
    b: str
    exchange: Callable[[Link], None]
    setup: Callable[[Link], None] | None = None
    routing_ids: tuple[bytes | None, ...] = (None,)
    """Variants of the ROUTING_ID given to the ROUTER's peer (None: the ROUTER makes one up)."""


PATTERNS = [
    Pattern("PAIR", "PAIR", exchange_pair),
    Pattern("PUB", "SUB", exchange_pub_sub, setup_subscriber),
    Pattern("PUB", "XSUB", exchange_pub_sub, setup_subscriber),
    Pattern("XPUB", "SUB", exchange_pub_sub, setup_subscriber),
    Pattern("XPUB", "XSUB", exchange_pub_sub, setup_subscriber),
    Pattern("REQ", "REP", exchange_req_rep),
    Pattern("REQ", "ROUTER", exchange_req_router, give_a_routing_id, (PEER_ID, None)),
    Pattern("DEALER", "REP", exchange_dealer_rep),
    Pattern("DEALER", "DEALER", exchange_dealer_dealer),
    Pattern("DEALER", "ROUTER", exchange_dealer_router, give_a_routing_id, (PEER_ID, None)),
    Pattern("ROUTER", "ROUTER", exchange_router_router, setup_router_router, (PEER_ID, None)),
    Pattern("PUSH", "PULL", exchange_push_pull),
]


def case_id(pattern: Pattern, routing_id: bytes | None) -> str:
    name = f"{pattern.a}-{pattern.b}"
    if len(pattern.routing_ids) == 1:
        return name
    return name + ("-given-id" if routing_id is not None else "-made-up-id")


CASES = [
    pytest.param(pattern, routing_id, id=case_id(pattern, routing_id))
    for pattern in PATTERNS
    for routing_id in pattern.routing_ids
]


@pytest.mark.parametrize(("pattern", "routing_id"), CASES)
@pytest.mark.parametrize("a_is", ["ours", "theirs"], ids=["ours-is-A", "theirs-is-A"])
@pytest.mark.parametrize("binder", ["a", "b"], ids=["A-binds", "B-binds"])
def test_matrix(
    ours: Side,
    theirs: Side,
    endpoints: Endpoints,
    pattern: Pattern,
    routing_id: bytes | None,
    a_is: str,
    binder: str,
) -> None:
    a_side, b_side = (ours, theirs) if a_is == "ours" else (theirs, ours)
    link = Link(
        a=a_side.socket(pattern.a),
        b=b_side.socket(pattern.b),
        a_module=a_side.module,
        b_module=b_side.module,
        a_binds=binder == "a",
        routing_id=routing_id,
    )
    if pattern.setup is not None:
        pattern.setup(link)
    binding, connecting = (link.a, link.b) if link.a_binds else (link.b, link.a)
    connecting.connect(endpoints.bind(binding))
    pattern.exchange(link)


# --- XSUB subscriptions after an XPUB restarts ----------------------------------------------


@pytest.mark.parametrize(
    "restarting", ["theirs", "ours"], ids=["their-xpub-restarts", "our-xpub-restarts"]
)
@pytest.mark.parametrize("binder", ["xpub", "xsub"], ids=["xpub-binds", "xsub-binds"])
def test_xsub_subscriptions_resent_after_xpub_restarts(
    ours: Side,
    theirs: Side,
    harness: Harness,
    zp: ModuleType,
    pyzmq: ModuleType,
    endpoints: Endpoints,
    restarting: str,
    binder: str,
) -> None:
    """The XPUB goes away (socket and context) and a new one takes its place.

    The XSUB is never told to subscribe again: it must send its subscriptions (the ones
    still counted, not the cancelled ones) on the new connection by itself, and the new XPUB
    receives them as ``\\x01topic`` messages.
    """
    xpub_module = pyzmq if restarting == "theirs" else zp
    xsub_side = ours if restarting == "theirs" else theirs
    xsub = xsub_side.socket("XSUB")
    xsub.send(b"\x01nl.")
    xsub.send(b"\x01gone.")
    xsub.send(b"\x00gone.")
    if binder == "xsub":
        endpoint = endpoints.bind(xsub)

    def start_xpub(label: str) -> tuple[Side, Any]:
        side = harness.side(label, xpub_module)
        xpub = side.socket("XPUB")
        if binder == "xsub":
            xpub.connect(endpoint)
        return side, xpub

    first, old_xpub = start_xpub(f"{restarting}-1")
    if binder == "xpub":
        endpoint = endpoints.bind(old_xpub)
        xsub.connect(endpoint)
    assert subscription(old_xpub, xsub, xsub_side.module) == [b"\x01nl."]
    old_xpub.send(b"nl.before")
    assert frames(xsub) == [b"nl.before"]

    first.close()  # closes the XPUB and terminates its context, releasing the endpoint
    _second, new_xpub = start_xpub(f"{restarting}-2")
    if binder == "xpub":
        bind_with_retry(new_xpub, endpoint, xpub_module)  # the same port / path as before
    assert subscription(new_xpub, xsub, xsub_side.module) == [b"\x01nl."]
    new_xpub.send_multipart([b"nl.after", b"restart"])
    assert frames(xsub) == [b"nl.after", b"restart"]
    xsub.send(b"upstream")  # the XSUB's pipe to the new XPUB carries messages too
    assert frames(new_xpub) == [b"upstream"]
