"""REQ, REP, DEALER and ROUTER interop: zeropipe ("ours") against libzmq through pyzmq ("theirs").

Each pattern runs with our socket on either end, either end binding, over tcp and ipc:

* REQ <-> REP: ten request/reply rounds of single and multipart bodies, including empty frames;
* REQ -> ROUTER: the ROUTER sees [routing id, b"", body...] and answers [id, b"", reply...];
  the id is the REQ's ROUTING_ID when set, else a non-empty one made up by the ROUTER, stable
  across messages;
* DEALER -> REP: the DEALER writes the envelope itself ([hops..., b"", body...]); the REP hides
  it from the application and puts it back in front of the reply;
* DEALER <-> ROUTER: the DEALER's ROUTING_ID b"alice" is the id the ROUTER sees and sends to;
* DEALER -> ROUTER, the DEALER leaving: its queued messages keep their (made-up) id;
* two REQs (one ours, one theirs) on one REP: each gets the replies to its own requests.

ROUTER <-> ROUTER is not covered.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from netutil import Endpoints

    from .conftest import Side

pytestmark = [pytest.mark.interop, pytest.mark.timeout(20)]

ROUNDS = 10

BODY_SHAPES: list[list[bytes]] = [
    [b"single"],
    [b"multi", b"part", b"request"],
    [b"with", b"", b"empty middle"],
    [b"", b"leading empty frame"],
    [b""],
]
"""Request bodies, cycled over the rounds; empty frames must not be taken for delimiters."""

with_client_side = pytest.mark.parametrize(
    "client_is", ["ours", "theirs"], ids=["ours-client", "theirs-client"]
)
with_binder = pytest.mark.parametrize("binder", ["client", "server"], ids=lambda b: f"{b}-binds")


def request(i: int) -> list[bytes]:
    return list(BODY_SHAPES[i % len(BODY_SHAPES)])


def reply_to(i: int, body: list[bytes]) -> list[bytes]:
    """A reply that names its round and echoes the request, so a misrouted one is visible."""
    return [b"reply-%d" % i, *body]


def frames(sock: Any) -> list[bytes]:
    return [bytes(frame) for frame in sock.recv_multipart()]


def assert_quiet(sock: Any, timeout_ms: int = 50) -> None:
    assert not sock.poll(timeout_ms), f"unexpected extra message: {frames(sock)!r}"


def client_and_server(
    ours: Side,
    theirs: Side,
    endpoints: Endpoints,
    kinds: tuple[str, str],
    client_is: str,
    binder: str,
    client_id: bytes | None = None,
) -> tuple[Any, Any]:
    """Open (client, server) of ``kinds`` on opposite sides, bind one and connect the other."""
    client_side, server_side = (ours, theirs) if client_is == "ours" else (theirs, ours)
    client = client_side.socket(kinds[0])
    server = server_side.socket(kinds[1])
    if client_id is not None:
        client.setsockopt(client_side.module.ROUTING_ID, client_id)
    if binder == "client":
        server.connect(endpoints.bind(client))
    else:
        client.connect(endpoints.bind(server))
    return client, server


# --- REQ <-> REP -----------------------------------------------------------------------


@with_client_side
@with_binder
def test_req_rep(
    ours: Side, theirs: Side, endpoints: Endpoints, client_is: str, binder: str
) -> None:
    req, rep = client_and_server(ours, theirs, endpoints, ("REQ", "REP"), client_is, binder)
    for i in range(ROUNDS):
        req.send_multipart(request(i))
        assert frames(rep) == request(i), f"round {i}"
        rep.send_multipart(reply_to(i, request(i)))
        assert frames(req) == reply_to(i, request(i)), f"round {i}"
    assert_quiet(rep)


@with_client_side
@with_binder
@pytest.mark.parametrize("routing_id", [None, b"alice"], ids=["made-up-id", "routing-id"])
def test_req_router(
    ours: Side,
    theirs: Side,
    endpoints: Endpoints,
    client_is: str,
    binder: str,
    routing_id: bytes | None,
) -> None:
    req, router = client_and_server(
        ours, theirs, endpoints, ("REQ", "ROUTER"), client_is, binder, routing_id
    )
    seen: set[bytes] = set()
    for i in range(ROUNDS):
        req.send_multipart(request(i))
        got = frames(router)
        assert len(got) >= 3, f"round {i}: {got!r}"
        peer, delimiter, body = got[0], got[1], got[2:]
        assert peer, "the ROUTER's routing id frame is empty"
        assert delimiter == b"", f"round {i}: no empty delimiter after the id: {got!r}"
        assert body == request(i), f"round {i}: {got!r}"
        seen.add(peer)
        router.send_multipart([peer, b"", *reply_to(i, request(i))])
        assert frames(req) == reply_to(i, request(i)), f"round {i}"
    assert len(seen) == 1, f"the routing id changed between messages: {seen!r}"
    if routing_id is not None:
        assert seen == {routing_id}
    assert_quiet(router)


# --- DEALER -> REP ---------------------------------------------------------------------


@with_client_side
@with_binder
@pytest.mark.parametrize("envelope", [[], [b"hop-1", b"hop-2"]], ids=["no-hops", "two-hops"])
def test_dealer_rep(
    ours: Side,
    theirs: Side,
    endpoints: Endpoints,
    client_is: str,
    binder: str,
    envelope: list[bytes],
) -> None:
    dealer, rep = client_and_server(ours, theirs, endpoints, ("DEALER", "REP"), client_is, binder)
    for i in range(ROUNDS):
        dealer.send_multipart([*envelope, b"", *request(i)])
        assert frames(rep) == request(i), f"round {i}: the envelope leaked to the application"
        rep.send_multipart(reply_to(i, request(i)))
        assert frames(dealer) == [*envelope, b"", *reply_to(i, request(i))], f"round {i}"
    assert_quiet(rep)


@with_client_side
@with_binder
def test_dealer_rep_pipelined(
    ours: Side, theirs: Side, endpoints: Endpoints, client_is: str, binder: str
) -> None:
    """A DEALER need not wait: the REP serves queued requests one at a time, in order."""
    dealer, rep = client_and_server(ours, theirs, endpoints, ("DEALER", "REP"), client_is, binder)
    for i in range(ROUNDS):
        dealer.send_multipart([b"", b"%d" % i])
    for i in range(ROUNDS):
        assert frames(rep) == [b"%d" % i]
        rep.send_multipart(reply_to(i, [b"%d" % i]))
    for i in range(ROUNDS):
        assert frames(dealer) == [b"", *reply_to(i, [b"%d" % i])]


# --- DEALER <-> ROUTER -----------------------------------------------------------------


@with_client_side
@with_binder
def test_dealer_router_routing_id(
    ours: Side, theirs: Side, endpoints: Endpoints, client_is: str, binder: str
) -> None:
    dealer, router = client_and_server(
        ours, theirs, endpoints, ("DEALER", "ROUTER"), client_is, binder, b"alice"
    )
    for i in range(ROUNDS):  # pipelined: no envelope, no alternation
        dealer.send_multipart(request(i))
    for i in range(ROUNDS):
        assert frames(router) == [b"alice", *request(i)], f"message {i}"
    for i in range(ROUNDS):
        router.send_multipart([b"alice", *reply_to(i, request(i))])
    for i in range(ROUNDS):
        assert frames(dealer) == reply_to(i, request(i)), f"reply {i}"
    assert_quiet(router)
    assert_quiet(dealer)


@with_client_side
@with_binder
def test_dealer_router_made_up_id(
    ours: Side, theirs: Side, endpoints: Endpoints, client_is: str, binder: str
) -> None:
    """Without ROUTING_ID the ROUTER names the peer itself, and sends to that name."""
    dealer, router = client_and_server(
        ours, theirs, endpoints, ("DEALER", "ROUTER"), client_is, binder
    )
    dealer.send_multipart([b"hello", b"there"])
    peer, *body = frames(router)
    assert peer, "the ROUTER's routing id frame is empty"
    assert body == [b"hello", b"there"]
    router.send_multipart([peer, b"back", b"to you"])
    assert frames(dealer) == [b"back", b"to you"]
    dealer.send(b"again")
    assert frames(router) == [peer, b"again"], "the made-up id changed between messages"


@with_client_side
@with_binder
def test_router_keeps_the_id_of_a_dealer_that_left(
    ours: Side, theirs: Side, endpoints: Endpoints, client_is: str, binder: str
) -> None:
    """Messages still queued from a peer that disconnected arrive under its made-up id."""
    dealer, router = client_and_server(
        ours, theirs, endpoints, ("DEALER", "ROUTER"), client_is, binder
    )
    dealer.send(b"first")
    peer, first = frames(router)
    assert peer, "the ROUTER's routing id frame is empty"
    assert first == b"first"
    for i in range(3):
        dealer.send(b"%d" % i)
    dealer.close(linger=5000)  # flushes the three, then disconnects
    time.sleep(0.5)  # the ROUTER notices the disconnection before it reads them
    for i in range(3):
        assert frames(router) == [peer, b"%d" % i], f"message {i} after the peer left"


# --- two REQs, one REP ---------------------------------------------------------------


@pytest.mark.parametrize("rep_is", ["ours", "theirs"], ids=["ours-rep", "theirs-rep"])
@pytest.mark.parametrize("binder", ["rep", "reqs"], ids=lambda b: f"{b}-bind")
def test_two_reqs_one_rep(
    ours: Side, theirs: Side, endpoints: Endpoints, rep_is: str, binder: str
) -> None:
    """Both requests are queued at the REP before it reads; each reply finds its requester."""
    rep = (ours if rep_is == "ours" else theirs).socket("REP")
    reqs = {b"ours": ours.socket("REQ"), b"theirs": theirs.socket("REQ")}
    if binder == "rep":
        endpoint = endpoints.bind(rep)
        for req in reqs.values():
            req.connect(endpoint)
    else:
        for req in reqs.values():
            rep.connect(endpoints.bind(req))
    for i in range(5):
        for name, req in reqs.items():
            req.send_multipart([name, b"%d" % i])
        served = []
        for _ in reqs:
            body = frames(rep)
            served.append(body[0])
            rep.send_multipart(reply_to(i, body))
        assert sorted(served) == sorted(reqs), f"round {i}: {served!r}"
        for name, req in reqs.items():
            assert frames(req) == reply_to(i, [name, b"%d" % i]), f"round {i}, {name!r}"
    assert_quiet(rep)
