"""REQ, REP, DEALER and ROUTER: zeropipe talking to itself over tcp, ipc and inproc.

The request/reply patterns (RFC 28, as libzmq implements them): the envelopes each socket adds
and strips, REQ/REP strict alternation (EFSM), DEALER round-robin and ROUTER fair-queuing and
routing by id (an unknown id is dropped silently), REQ discarding what is not its reply, a REQ
surviving the restart of its REP, and a REP answering a REQ that is gone.

Every test is parallel-safe (tcp binds to ``127.0.0.1:*``, ipc paths live in a private
directory under /tmp, inproc names carry a uuid) and cannot hang: every socket has
RCVTIMEO/SNDTIMEO and linger 0, and every context is terminated under a deadline.
``ZP_IMPL=pyzmq`` runs the same tests against pyzmq (libzmq), which validates the tests.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from typing import Any

import pytest
from deadlines import term_with_deadline
from netutil import TestEnv, bind_with_retry, implementation

IMPL, zmq = implementation("ZP_IMPL")

pytestmark = pytest.mark.timeout(20)

TIMEOUT_MS = 5000
"""RCVTIMEO/SNDTIMEO of every socket."""

TERM_TIMEOUT_S = 5.0
ROUNDS = 10
QUIET_MS = 300
"""How long "nothing arrives" is watched for."""
RESTARTS = 5
"""How many times the REP restarts under a connected REQ."""

BODY_SHAPES: list[list[bytes]] = [
    [b"single"],
    [b"multi", b"part", b"request"],
    [b"with", b"", b"empty middle"],
    [b"", b"leading empty frame"],
    [b""],
]
"""Request bodies, cycled over the rounds; empty frames must not be taken for delimiters."""

transports = pytest.mark.parametrize("transport", ["tcp", "ipc", "inproc"])
with_binder = pytest.mark.parametrize("binder", ["client", "server"], ids=lambda b: f"{b}-binds")


# -- harness ---------------------------------------------------------------------------


class Env(TestEnv):
    """The contexts and sockets of one test, and a short scratch directory for ipc."""

    def __init__(self) -> None:
        super().__init__(zmq)

    def peer_context(self, transport: str) -> Any:
        """inproc works only within one context; tcp and ipc use a second one."""
        return self.ctx if transport == "inproc" else self.context()

    def socket(self, kind: str, ctx: Any = None, routing_id: bytes | None = None) -> Any:
        options = {} if routing_id is None else {"routing_id": routing_id}
        return self.new_socket(ctx or self.ctx, getattr(zmq, kind), timeout=TIMEOUT_MS, **options)


@pytest.fixture
def env() -> Iterator[Env]:
    owner = Env()
    try:
        yield owner
    finally:
        owner.close()


# -- helpers ---------------------------------------------------------------------------


def request(i: int) -> list[bytes]:
    return list(BODY_SHAPES[i % len(BODY_SHAPES)])


def reply_to(i: int, body: list[bytes]) -> list[bytes]:
    """A reply that names its round and echoes the request, so a misrouted one is visible."""
    return [b"reply-%d" % i, *body]


def frames(sock: Any, flags: int = 0) -> list[bytes]:
    return [bytes(frame) for frame in sock.recv_multipart(flags)]


def assert_quiet(sock: Any, timeout_ms: int = QUIET_MS) -> None:
    assert not sock.poll(timeout_ms), f"unexpected message: {frames(sock, zmq.NOBLOCK)!r}"


def assert_efsm(info: pytest.ExceptionInfo[Any]) -> None:
    assert info.value.errno == zmq.EFSM, f"expected EFSM, got {info.value!r}"


def client_and_server(
    env: Env,
    transport: str,
    kinds: tuple[str, str],
    binder: str = "server",
    client_id: bytes | None = None,
) -> tuple[Any, Any]:
    """Open (client, server) of ``kinds`` in two contexts (one for inproc), and link them."""
    client = env.socket(kinds[0], routing_id=client_id)
    server = env.socket(kinds[1], env.peer_context(transport))
    if binder == "client":
        server.connect(env.bind(client, transport))
    else:
        client.connect(env.bind(server, transport))
    return client, server


def recv_from_any(socks: list[Any], timeout: float = TIMEOUT_MS / 1000) -> tuple[int, list[bytes]]:
    """Wait for a message on any of ``socks``; return its socket's index and its frames."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for index, sock in enumerate(socks):
            if sock.poll(10):
                return index, frames(sock)
    raise AssertionError("no message arrived on any socket")


# -- the patterns, ours <-> ours -------------------------------------------------------


@transports
@with_binder
def test_req_rep(env: Env, transport: str, binder: str) -> None:
    req, rep = client_and_server(env, transport, ("REQ", "REP"), binder)
    for i in range(ROUNDS):
        req.send_multipart(request(i))
        assert frames(rep) == request(i), f"round {i}"
        rep.send_multipart(reply_to(i, request(i)))
        assert frames(req) == reply_to(i, request(i)), f"round {i}"
    assert_quiet(rep, 50)


@transports
@with_binder
@pytest.mark.parametrize("routing_id", [None, b"alice"], ids=["made-up-id", "routing-id"])
def test_req_router(env: Env, transport: str, binder: str, routing_id: bytes | None) -> None:
    req, router = client_and_server(env, transport, ("REQ", "ROUTER"), binder, routing_id)
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


@transports
@with_binder
@pytest.mark.parametrize("envelope", [[], [b"hop-1", b"hop-2"]], ids=["no-hops", "two-hops"])
def test_dealer_rep(env: Env, transport: str, binder: str, envelope: list[bytes]) -> None:
    dealer, rep = client_and_server(env, transport, ("DEALER", "REP"), binder)
    for i in range(ROUNDS):
        dealer.send_multipart([*envelope, b"", *request(i)])
        assert frames(rep) == request(i), f"round {i}: the envelope leaked to the application"
        rep.send_multipart(reply_to(i, request(i)))
        assert frames(dealer) == [*envelope, b"", *reply_to(i, request(i))], f"round {i}"


@transports
def test_dealer_rep_pipelined(env: Env, transport: str) -> None:
    """A DEALER need not wait: the REP serves queued requests one at a time, in order."""
    dealer, rep = client_and_server(env, transport, ("DEALER", "REP"))
    for i in range(ROUNDS):
        dealer.send_multipart([b"", b"%d" % i])
    for i in range(ROUNDS):
        assert frames(rep) == [b"%d" % i]
        rep.send_multipart(reply_to(i, [b"%d" % i]))
    for i in range(ROUNDS):
        assert frames(dealer) == [b"", *reply_to(i, [b"%d" % i])]


@transports
@with_binder
def test_dealer_router_routing_id(env: Env, transport: str, binder: str) -> None:
    dealer, router = client_and_server(env, transport, ("DEALER", "ROUTER"), binder, b"alice")
    for i in range(ROUNDS):  # pipelined: no envelope, no alternation
        dealer.send_multipart(request(i))
    for i in range(ROUNDS):
        got = router.recv_multipart()
        assert bytes(got[0]) == b"alice", "recv_multipart on a ROUTER returns the id first"
        assert [bytes(f) for f in got[1:]] == request(i), f"message {i}"
    for i in range(ROUNDS):
        router.send_multipart([b"alice", *reply_to(i, request(i))])
    for i in range(ROUNDS):
        assert frames(dealer) == reply_to(i, request(i)), f"reply {i}"
    assert_quiet(router, 50)
    assert_quiet(dealer, 50)


@transports
def test_dealer_router_made_up_id(env: Env, transport: str) -> None:
    """Without ROUTING_ID the ROUTER names the peer itself, and sends to that name."""
    dealer, router = client_and_server(env, transport, ("DEALER", "ROUTER"))
    dealer.send_multipart([b"hello", b"there"])
    peer, *body = frames(router)
    assert peer, "the ROUTER's routing id frame is empty"
    assert body == [b"hello", b"there"]
    router.send_multipart([peer, b"back", b"to you"])
    assert frames(dealer) == [b"back", b"to you"]
    dealer.send(b"again")
    assert frames(router) == [peer, b"again"], "the made-up id changed between messages"


@transports
def test_router_recv_multipart_puts_the_id_first(env: Env, transport: str) -> None:
    """recv() part by part: the id is the first part, RCVMORE set on all but the last."""
    dealer, router = client_and_server(env, transport, ("DEALER", "ROUTER"), client_id=b"bob")
    dealer.send_multipart([b"a", b"b"])
    parts = [bytes(router.recv())]
    while router.rcvmore:
        parts.append(bytes(router.recv()))
    assert parts == [b"bob", b"a", b"b"]


@transports
def test_several_reqs_one_rep(env: Env, transport: str) -> None:
    """All requests are queued at the REP before it reads; each reply finds its requester."""
    rep = env.socket("REP")
    endpoint = env.bind(rep, transport)
    peer = env.peer_context(transport)
    names = [b"req-a", b"req-b", b"req-c"]
    reqs = {name: env.socket("REQ", peer) for name in names}
    for req in reqs.values():
        req.connect(endpoint)
    for i in range(5):
        for name, req in reqs.items():
            req.send_multipart([name, b"%d" % i])
        served = []
        for _ in reqs:
            body = frames(rep)
            served.append(body[0])
            rep.send_multipart(reply_to(i, body))
        assert sorted(served) == names, f"round {i}: {served!r}"
        for name, req in reqs.items():
            assert frames(req) == reply_to(i, [name, b"%d" % i]), f"round {i}, {name!r}"


# -- REQ/REP state machines (EFSM) -------------------------------------------------------


def test_req_recv_before_send_raises_efsm(env: Env) -> None:
    req = env.socket("REQ")  # no peer: EFSM is immediate, not a timeout
    with pytest.raises(zmq.ZMQError) as info:
        req.recv()
    assert_efsm(info)


def test_req_send_twice_raises_efsm_and_keeps_the_request(env: Env) -> None:
    req, rep = client_and_server(env, "inproc", ("REQ", "REP"))
    with pytest.raises(zmq.ZMQError) as info:
        req.recv()
    assert_efsm(info)
    req.send(b"first")
    with pytest.raises(zmq.ZMQError) as info:
        req.send(b"second")
    assert_efsm(info)
    with pytest.raises(zmq.ZMQError) as info:
        req.send_multipart([b"second", b"multipart"])
    assert_efsm(info)
    assert frames(rep) == [b"first"]
    assert_quiet(rep)  # the refused requests went nowhere
    rep.send(b"answer")
    assert frames(req) == [b"answer"]
    with pytest.raises(zmq.ZMQError) as info:
        req.recv()  # a reply is received once; then it is the REQ's turn to send again
    assert_efsm(info)
    req.send(b"next")
    assert frames(rep) == [b"next"]


def test_rep_send_before_recv_raises_efsm(env: Env) -> None:
    rep = env.socket("REP")
    with pytest.raises(zmq.ZMQError) as info:
        rep.send(b"unasked")
    assert_efsm(info)


def test_rep_recv_twice_raises_efsm(env: Env) -> None:
    req, rep = client_and_server(env, "inproc", ("REQ", "REP"))
    with pytest.raises(zmq.ZMQError) as info:
        rep.send(b"unasked")
    assert_efsm(info)
    req.send(b"question")
    assert frames(rep) == [b"question"]
    with pytest.raises(zmq.ZMQError) as info:
        rep.recv()
    assert_efsm(info)
    rep.send(b"answer")
    with pytest.raises(zmq.ZMQError) as info:
        rep.send(b"answer again")  # one reply per request
    assert_efsm(info)
    assert frames(req) == [b"answer"]


@transports
def test_poll_follows_the_state_machines(env: Env, transport: str) -> None:
    """POLLIN/POLLOUT of REQ and REP say what the alternation allows next."""
    req, rep = client_and_server(env, transport, ("REQ", "REP"))
    both = zmq.POLLIN | zmq.POLLOUT
    assert req.poll(TIMEOUT_MS, zmq.POLLOUT) == zmq.POLLOUT, "a connected REQ may send"
    assert req.poll(0, both) == zmq.POLLOUT
    assert rep.poll(0, both) == 0, "an idle REP may neither send nor receive"
    req.send(b"question")
    assert req.poll(0, zmq.POLLOUT) == 0, "a REQ waiting for its reply may not send"
    assert rep.poll(TIMEOUT_MS, zmq.POLLIN) == zmq.POLLIN
    assert frames(rep) == [b"question"]
    assert rep.poll(0, both) == zmq.POLLOUT, "a REP that owes a reply may only send"
    rep.send(b"answer")
    assert rep.poll(0, both) == 0
    assert req.poll(TIMEOUT_MS, zmq.POLLIN) == zmq.POLLIN
    assert req.poll(0, both) == zmq.POLLIN, "a REQ with its reply waiting may only receive"
    assert frames(req) == [b"answer"]
    assert req.poll(0, both) == zmq.POLLOUT


# -- load balancing, fair queuing, routing ---------------------------------------------


@transports
def test_dealer_round_robins_over_two_reps(env: Env, transport: str) -> None:
    dealer = env.socket("DEALER")
    peer = env.peer_context(transport)
    reps = [env.socket("REP", peer), env.socket("REP", peer)]
    for rep in reps:
        dealer.connect(env.bind(rep, transport))
    # Probe until both connections are up (a DEALER sends only to peers it has).
    reached: set[int] = set()
    deadline = time.monotonic() + 5
    while reached != {0, 1}:
        assert time.monotonic() < deadline, f"only REP {reached} ever got a probe"
        dealer.send_multipart([b"", b"probe"])
        index, body = recv_from_any(reps)
        assert body == [b"probe"]
        reached.add(index)
        reps[index].send(b"probe answered")
        assert frames(dealer) == [b"", b"probe answered"]

    count = 10
    for i in range(count):
        dealer.send_multipart([b"", b"%d" % i])
    got: list[list[int]] = [[], []]
    for index, rep in enumerate(reps):
        for _ in range(count // 2):
            body = frames(rep)
            got[index].append(int(body[0]))
            rep.send_multipart([b"done", *body])
    for rep in reps:
        assert_quiet(rep, 50)
    evens, odds = list(range(0, count, 2)), list(range(1, count, 2))
    assert sorted([got[0], got[1]]) == [evens, odds], f"not alternating: {got}"
    replies = sorted(int(frames(dealer)[2]) for _ in range(count))
    assert replies == list(range(count))


@transports
def test_router_to_unknown_id_is_dropped_silently(env: Env, transport: str) -> None:
    router = env.socket("ROUTER")
    router.send_multipart([b"nobody", b"no peers at all"])  # must not raise
    endpoint = env.bind(router, transport)
    dealer = env.socket("DEALER", env.peer_context(transport), routing_id=b"alice")
    dealer.connect(endpoint)
    dealer.send(b"hello")
    assert frames(router) == [b"alice", b"hello"]  # alice is known now

    router.send_multipart([b"nobody", b"lost", b"in two frames"])  # must not raise
    router.send(b"bob", zmq.SNDMORE)
    router.send(b"lost too")
    assert_quiet(dealer)
    assert_quiet(router, 50)
    router.send_multipart([b"alice", b"found"])
    assert frames(dealer) == [b"found"], "a dropped message leaked into the next one"
    assert_quiet(dealer, 50)


@transports
def test_router_fair_queues_and_routes_two_dealers(env: Env, transport: str) -> None:
    router = env.socket("ROUTER")
    endpoint = env.bind(router, transport)
    peer = env.peer_context(transport)
    dealers = {name: env.socket("DEALER", peer, routing_id=name) for name in (b"a", b"b")}
    count = 10
    for dealer in dealers.values():
        dealer.connect(endpoint)
    for i in range(count):
        for dealer in dealers.values():
            dealer.send(b"%d" % i)
    # Let everything reach the ROUTER before it reads, so both peers have messages waiting.
    # (No earlier exchange: libzmq's ROUTER, once it has found a peer's queue empty, reads
    # the other one dry before it notices new messages on the first.)
    time.sleep(0.3)
    received = [frames(router) for _ in range(2 * count)]
    order = [msg[0] for msg in received]
    for name in dealers:
        mine = [msg[1:] for msg in received if msg[0] == name]
        assert mine == [[b"%d" % i] for i in range(count)], f"{name!r}: {mine}"
    longest = max(len(list(run)) for _, run in itertools.groupby(order))
    assert longest <= 2, f"one peer was drained before the other was served: {order}"

    for name in dealers:
        router.send_multipart([name, b"for " + name])
    for name, dealer in dealers.items():
        assert frames(dealer) == [b"for " + name]
        assert_quiet(dealer, 50)


@transports
@pytest.mark.parametrize("routing_id", [None, b"alice"], ids=["made-up-id", "routing-id"])
def test_router_keeps_the_id_of_a_peer_that_left(
    env: Env, transport: str, routing_id: bytes | None
) -> None:
    """Messages still queued from a peer that disconnected arrive under its id, not b""."""
    router = env.socket("ROUTER")
    endpoint = env.bind(router, transport)
    dealer = env.socket("DEALER", env.peer_context(transport), routing_id=routing_id)
    dealer.connect(endpoint)
    dealer.send(b"first")
    peer, first = frames(router)
    assert peer, "the ROUTER's routing id frame is empty"
    assert first == b"first"
    for i in range(3):
        dealer.send(b"%d" % i)
    dealer.close(linger=TIMEOUT_MS)  # flushes the three, then disconnects
    time.sleep(0.5)  # the ROUTER notices the disconnection before it reads them
    for i in range(3):
        assert frames(router) == [peer, b"%d" % i], f"message {i} after the peer left"


# -- REQ: only its own reply -----------------------------------------------------------


@transports
def test_req_ignores_messages_from_other_peers(env: Env, transport: str) -> None:
    """While waiting for a reply, a message from another peer than the one asked is discarded."""
    req = env.socket("REQ")
    endpoint = env.bind(req, transport)
    peer = env.peer_context(transport)
    routers = [env.socket("ROUTER", peer), env.socket("ROUTER", peer)]
    for router in routers:
        router.connect(endpoint)
    ids: dict[int, bytes] = {}
    deadline = time.monotonic() + 5
    while len(ids) < 2:  # until both ROUTERs have had a request (and know the REQ's id)
        assert time.monotonic() < deadline, f"only ROUTER {set(ids)} ever got a request"
        req.send(b"probe")
        index, got = recv_from_any(routers)
        ids[index] = got[0]
        routers[index].send_multipart([got[0], b"", b"probe answered"])
        assert frames(req) == [b"probe answered"]

    req.send(b"question")
    asked, got = recv_from_any(routers)
    assert got == [ids[asked], b"", b"question"]
    other = 1 - asked
    routers[other].send_multipart([ids[other], b"", b"not asked"])
    time.sleep(0.2)  # the unsolicited message reaches the REQ first
    routers[asked].send_multipart([ids[asked], b"", b"answer"])
    assert frames(req) == [b"answer"]


@transports
def test_req_never_delivers_a_reply_without_delimiter(env: Env, transport: str) -> None:
    """A reply that does not start with the empty delimiter is not handed to the application.

    What follows differs: libzmq skips it on inproc but drops the connection on tcp and ipc
    (losing the good reply behind it), so only the malformed reply itself is checked.
    """
    req, router = client_and_server(env, transport, ("REQ", "ROUTER"), client_id=b"req")
    req.send(b"question")
    assert frames(router) == [b"req", b"", b"question"]
    router.send_multipart([b"req", b"no", b"delimiter"])
    req.setsockopt(zmq.RCVTIMEO, QUIET_MS)
    try:
        got = frames(req)
    except zmq.Again:
        return
    pytest.fail(f"the malformed reply was delivered as {got!r}")


# -- peers that come and go ------------------------------------------------------------


def test_req_survives_a_restarted_rep(env: Env) -> None:
    """After a full round with the old REP, the next round goes to the new one on its port.

    The REP restarts several times, each time right after answering: the request that follows
    is sent at once, while the REQ may not have noticed yet that the old connection is gone.
    """
    rep_ctx = env.context()
    rep = env.socket("REP", rep_ctx)
    endpoint = env.bind(rep, "tcp")
    req = env.socket("REQ")
    req.setsockopt(zmq.RECONNECT_IVL, 50)
    req.connect(endpoint)
    for generation in range(RESTARTS + 1):
        req.send(b"request %d" % generation)
        assert frames(rep) == [b"request %d" % generation], f"REP generation {generation}"
        rep.send(b"reply %d" % generation)
        assert frames(req) == [b"reply %d" % generation], f"REP generation {generation}"
        if generation == RESTARTS:
            break
        rep.close(linger=0)
        term_with_deadline(rep_ctx)  # the old REP is gone, with its context
        rep_ctx = env.context()
        rep = env.socket("REP", rep_ctx)
        bind_with_retry(rep, endpoint, zmq)


@transports
@pytest.mark.parametrize("pause", [0.0, 0.3], ids=["at-once", "after-disconnect"])
def test_rep_replies_to_a_req_that_went_away(env: Env, transport: str, pause: float) -> None:
    """The reply to a vanished REQ is dropped without error; the REP serves the next one."""
    rep = env.socket("REP")
    endpoint = env.bind(rep, transport)
    peer = env.peer_context(transport)
    gone = env.socket("REQ", peer)
    gone.connect(endpoint)
    gone.send(b"question")
    assert frames(rep) == [b"question"]
    gone.close(linger=0)
    time.sleep(pause)
    rep.send(b"nobody hears this")  # must not raise

    req = env.socket("REQ", peer)
    req.connect(endpoint)
    req.send(b"next question")
    assert frames(rep) == [b"next question"]
    rep.send(b"next answer")
    assert frames(req) == [b"next answer"]
