"""Socket options: every option zeropipe knows, compared with libzmq (through pyzmq).

For each option of ``SOCKET_OPTIONS`` and ``READ_ONLY_OPTIONS``: the default on every socket
type equals libzmq's (where libzmq lets it be read; otherwise its documented default), a value
set reads back as libzmq reads it back, by ``setsockopt`` and by attribute (``sock.rcvhwm``),
a value of the wrong type is a TypeError, options for some socket types only are refused
(EINVAL) exactly where libzmq refuses them, read-only options cannot be set, and values
libzmq rejects as out of range are rejected too.

Then what the behavioural options do, each test run against zeropipe and pyzmq alike (the
``impl`` fixture), which proves the expectations: CONFLATE, REQ_RELAXED, REQ_CORRELATE,
ROUTER_MANDATORY, ROUTER_HANDOVER, PROBE_ROUTER and CONNECT_ROUTING_ID.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

import pytest
import zmq as pyzmq
from netutil import Endpoints, ScratchDir, close_all

import zeropipe
from zeropipe.sdk.constants import (
    READ_ONLY_OPTIONS,
    SOCKET_OPTIONS,
    TYPE_OPTIONS,
    SocketOption,
)

pytestmark = pytest.mark.timeout(30)

TIMEOUT_MS = 5000
SHORT_MS = 100
"""How long "nothing (more) arrives" is watched for, once what was awaited has arrived."""
SETTLE_S = 0.3
"""Lets messages already sent reach the receiver before conflation is observed (nothing can be
awaited there: a conflating socket keeps only the newest message)."""
BIG = bytes(65536)
TYPES = ["PAIR", "PUB", "SUB", "REQ", "REP", "DEALER", "ROUTER", "PULL", "PUSH", "XPUB", "XSUB"]
TRANSPORTS = ["inproc", "ipc", "tcp"]

WRITE_ONLY_DEFAULTS: dict[int, int | bytes] = {
    SocketOption.ROUTER_MANDATORY: 0,
    SocketOption.ROUTER_HANDOVER: 0,
    SocketOption.PROBE_ROUTER: 0,
    SocketOption.CONNECT_ROUTING_ID: b"",
    SocketOption.REQ_RELAXED: 0,
    SocketOption.REQ_CORRELATE: 0,
    SocketOption.XPUB_VERBOSE: 0,
    SocketOption.XPUB_VERBOSER: 0,
    SocketOption.XPUB_MANUAL: 0,
    SocketOption.XPUB_NODROP: 0,
    SocketOption.XPUB_WELCOME_MSG: b"",
}
"""libzmq's documented defaults of the options it does not let be read (EINVAL)."""

VALUES: dict[int, int | bytes] = {
    SocketOption.SNDHWM: 5,
    SocketOption.RCVHWM: 6,
    SocketOption.LINGER: 100,
    SocketOption.SNDTIMEO: 4321,
    SocketOption.RCVTIMEO: 1234,
    SocketOption.RECONNECT_IVL: 50,
    SocketOption.RECONNECT_IVL_MAX: 500,
    SocketOption.HANDSHAKE_IVL: 2000,
    SocketOption.HEARTBEAT_IVL: 1000,
    SocketOption.HEARTBEAT_TTL: 1234,  # libzmq keeps deciseconds: it reads back 1200
    SocketOption.HEARTBEAT_TIMEOUT: 3000,
    SocketOption.MAXMSGSIZE: 1 << 20,
    SocketOption.ROUTING_ID: b"id-\xff",
    SocketOption.BACKLOG: 10,
    SocketOption.IPV6: 1,
    SocketOption.SNDBUF: 65536,
    SocketOption.RCVBUF: 32768,
    SocketOption.TCP_KEEPALIVE: 1,
    SocketOption.TCP_KEEPALIVE_CNT: 3,
    SocketOption.TCP_KEEPALIVE_IDLE: 60,
    SocketOption.TCP_KEEPALIVE_INTVL: 10,
    SocketOption.TOS: 8,
    SocketOption.IMMEDIATE: 1,
    SocketOption.CONFLATE: 1,
    SocketOption.INVERT_MATCHING: 1,
    SocketOption.XPUB_VERBOSE: 1,
    SocketOption.XPUB_VERBOSER: 1,
    SocketOption.XPUB_MANUAL: 1,
    SocketOption.XPUB_NODROP: 1,
    SocketOption.XPUB_WELCOME_MSG: b"hello",
    SocketOption.REQ_RELAXED: 1,
    SocketOption.REQ_CORRELATE: 1,
    SocketOption.ROUTER_MANDATORY: 1,
    SocketOption.ROUTER_HANDOVER: 1,
    SocketOption.PROBE_ROUTER: 1,
    SocketOption.CONNECT_ROUTING_ID: b"peer",
    SocketOption.CONNECT_TIMEOUT: 500,
    SocketOption.TCP_MAXRT: 1000,
    SocketOption.AFFINITY: 3,
    SocketOption.RATE: 200,
    SocketOption.RECOVERY_IVL: 5000,
    SocketOption.MULTICAST_HOPS: 2,
}
"""A valid value other than the default for each option."""

OUT_OF_RANGE: list[tuple[str, int | bytes]] = [
    ("SNDHWM", -1),
    ("RCVHWM", -1),
    ("LINGER", -2),
    ("RCVTIMEO", -2),
    ("SNDTIMEO", -2),
    ("RECONNECT_IVL", -2),
    ("RECONNECT_IVL_MAX", -1),
    ("BACKLOG", -1),
    ("HANDSHAKE_IVL", -1),
    ("HEARTBEAT_IVL", -1),
    ("HEARTBEAT_TTL", 6_553_600),
    ("HEARTBEAT_TIMEOUT", -2),
    ("CONNECT_TIMEOUT", -1),
    ("TCP_MAXRT", -1),
    ("TCP_KEEPALIVE", 2),
    ("TCP_KEEPALIVE_IDLE", -2),
    ("IPV6", 2),
    ("IMMEDIATE", 2),
    ("CONFLATE", 2),
    ("SNDBUF", -2),
    ("TOS", -1),
    ("ROUTING_ID", b""),
    ("ROUTING_ID", b"x" * 256),
]
"""Values libzmq rejects with EINVAL."""


def name_of(option: int) -> str:
    return SocketOption(option).name


def accepting_type(option: int) -> str:
    """A socket type that takes ``option`` (zeropipe's first, for the type-specific ones)."""
    types = TYPE_OPTIONS.get(option)
    if types is None:
        return "DEALER"
    return sorted(t.name for t in types)[0]


def outcome(fn: Callable[[], Any]) -> str:
    """What calling ``fn`` does: "ok", "EINVAL" (or another errno), or the exception's type."""
    try:
        fn()
    except (pyzmq.ZMQError, zeropipe.ZMQError) as exc:
        return {22: "EINVAL"}.get(exc.errno, f"errno {exc.errno}")
    except Exception as exc:
        return type(exc).__name__
    return "ok"


# --- fixtures --------------------------------------------------------------------------


class Kit:
    """One context of one implementation, its sockets and endpoints of one transport."""

    def __init__(self, module: ModuleType, transport: str = "inproc") -> None:
        self.zmq = module
        self.transport = transport
        self.ctx = module.Context()
        self.sockets: list[Any] = []
        self._scratch = ScratchDir("zpopt")

    def socket(self, kind: str, **options: Any) -> Any:
        sock = self.ctx.socket(getattr(self.zmq, kind))
        self.sockets.append(sock)
        settings: dict[str, Any] = {"linger": 0, "rcvtimeo": TIMEOUT_MS, "sndtimeo": TIMEOUT_MS}
        settings.update(options)
        for name, value in settings.items():
            sock.setsockopt(getattr(self.zmq, name.upper()), value)
        return sock

    def plain_socket(self, kind: str) -> Any:
        """A socket with every option at its default."""
        sock = self.ctx.socket(getattr(self.zmq, kind))
        self.sockets.append(sock)
        return sock

    def bind(self, sock: Any) -> str:
        """Bind to a fresh endpoint; return the address to connect to."""
        return Endpoints(self.transport, self._scratch, "opt").bind(sock)

    def close(self) -> None:
        close_all(self.sockets, [self.ctx], self._scratch)


@pytest.fixture
def both() -> Iterator[tuple[Kit, Kit]]:
    """(zeropipe, pyzmq) kits, for comparing options."""
    ours, theirs = Kit(zeropipe), Kit(pyzmq)
    try:
        yield ours, theirs
    finally:
        try:
            ours.close()
        finally:
            theirs.close()


@pytest.fixture(params=["zeropipe", "pyzmq"])
def impl(request: pytest.FixtureRequest) -> ModuleType:
    """The implementation a behavioural test runs against (pyzmq proves the expectation)."""
    return zeropipe if request.param == "zeropipe" else pyzmq


@pytest.fixture(params=TRANSPORTS)
def kit(request: pytest.FixtureRequest, impl: ModuleType) -> Iterator[Kit]:
    owner = Kit(impl, request.param)
    try:
        yield owner
    finally:
        owner.close()


@pytest.fixture
def inproc_kit(impl: ModuleType) -> Iterator[Kit]:
    owner = Kit(impl, "inproc")
    try:
        yield owner
    finally:
        owner.close()


def frames(sock: Any) -> list[bytes]:
    return [bytes(frame) for frame in sock.recv_multipart()]


def assert_quiet(sock: Any, timeout_ms: int = SHORT_MS) -> None:
    if sock.poll(timeout_ms):
        pytest.fail(f"unexpected message: {frames(sock)!r}")


def send_when_routable(kit: Kit, router: Any, message: list[bytes]) -> None:
    """Send through a ROUTER_MANDATORY ROUTER as soon as it knows the peer (message[0])."""
    deadline = time.monotonic() + TIMEOUT_MS / 1000
    while True:
        try:
            router.send_multipart(message, kit.zmq.NOBLOCK)
            return
        except kit.zmq.ZMQError as exc:
            error = exc.errno
        assert error == kit.zmq.EHOSTUNREACH, f"errno {error}"
        assert time.monotonic() < deadline, f"{message[0]!r} never became routable"
        time.sleep(0.002)


ALL_OPTIONS = sorted(set(SOCKET_OPTIONS) | set(READ_ONLY_OPTIONS))
every_option = pytest.mark.parametrize("option", ALL_OPTIONS, ids=name_of)
settable = pytest.mark.parametrize("option", sorted(SOCKET_OPTIONS), ids=name_of)


# --- values --------------------------------------------------------------------------------


@every_option
def test_default_matches_libzmq(both: tuple[Kit, Kit], option: int) -> None:
    ours, theirs = both
    wrong = []
    for kind in TYPES:
        mine = ours.plain_socket(kind).getsockopt(option)
        try:
            expected = theirs.plain_socket(kind).getsockopt(option)
        except pyzmq.ZMQError:  # EINVAL: libzmq cannot read it
            expected = WRITE_ONLY_DEFAULTS[option]
        if option == SocketOption.FD:  # a descriptor: any int
            mine, expected = type(mine), type(expected)
        if mine != expected:
            wrong.append((kind, mine, expected))
    assert not wrong, f"{name_of(option)}: (type, zeropipe, libzmq) {wrong}"


@settable
def test_set_then_get(both: tuple[Kit, Kit], option: int) -> None:
    """A value reads back as libzmq reads it back (or as set, where libzmq cannot read it)."""
    ours, theirs = both
    kind = accepting_type(option)
    value = VALUES[option]
    mine = ours.socket(kind)
    mine.setsockopt(option, value)
    reference = theirs.socket(kind)
    reference.setsockopt(option, value)
    try:
        expected = reference.getsockopt(option)
    except pyzmq.ZMQError:
        expected = value
    assert mine.getsockopt(option) == expected
    assert mine.get(option) == expected


@settable
def test_attribute_access(both: tuple[Kit, Kit], option: int) -> None:
    """``sock.rcvhwm = 5`` sets the option; ``sock.rcvhwm`` reads it (pyzmq's sugar)."""
    ours, theirs = both
    kind = accepting_type(option)
    attribute = name_of(option).lower()
    value = VALUES[option]
    mine = ours.socket(kind)
    setattr(mine, attribute, value)
    reference = theirs.socket(kind)
    setattr(reference, attribute, value)
    try:
        expected = getattr(reference, attribute)
    except AttributeError:  # pyzmq: "write-only attribute" (libzmq cannot read it)
        expected = value
    assert getattr(mine, attribute) == expected
    assert mine.getsockopt(option) == expected


def test_read_only_attributes(both: tuple[Kit, Kit]) -> None:
    ours, _ = both
    sock = ours.socket("XPUB")
    assert sock.type == zeropipe.XPUB
    assert sock.rcvmore == 0
    assert sock.events == zeropipe.POLLOUT
    assert sock.last_endpoint == b""
    assert isinstance(sock.fd, int)
    assert sock.mechanism == 0
    assert sock.thread_safe == 0


@settable
def test_wrong_value_type_is_a_type_error(both: tuple[Kit, Kit], option: int) -> None:
    """An int option given bytes or str, a bytes option given str or int: TypeError."""
    ours, theirs = both
    kind = accepting_type(option)
    wrong_values: list[Any] = ["1", b"1"] if SOCKET_OPTIONS[option][1] == "int" else ["id", 5]
    for value in wrong_values:
        for kit in (theirs, ours):
            sock = kit.socket(kind)
            with pytest.raises(TypeError):
                sock.setsockopt(option, value)


@settable
def test_refused_on_exactly_the_socket_types_libzmq_refuses(
    both: tuple[Kit, Kit], option: int
) -> None:
    ours, theirs = both
    value = VALUES[option]
    wrong = []
    for kind in TYPES:
        mine = outcome(lambda: ours.socket(kind).setsockopt(option, value))  # noqa: B023
        expected = outcome(lambda: theirs.socket(kind).setsockopt(option, value))  # noqa: B023
        if mine != expected:
            wrong.append((kind, mine, expected))
    assert not wrong, f"{name_of(option)}: (type, zeropipe, libzmq) {wrong}"


@pytest.mark.parametrize("option", sorted(READ_ONLY_OPTIONS), ids=name_of)
def test_read_only_options_cannot_be_set(both: tuple[Kit, Kit], option: int) -> None:
    ours, theirs = both
    value = b"tcp://127.0.0.1:1" if option == SocketOption.LAST_ENDPOINT else 1
    for kit in (theirs, ours):
        sock = kit.socket("DEALER")
        with pytest.raises(kit.zmq.ZMQError) as info:
            sock.setsockopt(option, value)
        assert info.value.errno == kit.zmq.EINVAL


def test_out_of_range_values_are_refused_like_libzmq(both: tuple[Kit, Kit]) -> None:
    ours, theirs = both
    wrong = []
    for name, value in OUT_OF_RANGE:
        option = getattr(SocketOption, name)
        mine = outcome(lambda: ours.socket("DEALER").setsockopt(option, value))  # noqa: B023
        expected = outcome(lambda: theirs.socket("DEALER").setsockopt(option, value))  # noqa: B023
        assert expected == "EINVAL", (name, value, expected)
        if mine != expected:
            wrong.append((name, value if isinstance(value, int) else value[:8], mine))
    assert not wrong, f"accepted by zeropipe, refused by libzmq (EINVAL): {wrong}"


# --- CONFLATE -----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["PULL", "SUB"])
def test_conflate_keeps_only_the_newest_message(kit: Kit, kind: str) -> None:
    receiver = kit.socket(kind, conflate=1)
    sender = kit.socket("PUSH" if kind == "PULL" else "PUB")
    # The receiver connects: over inproc libzmq applies the connecting side's CONFLATE.
    receiver.connect(kit.bind(sender))
    if kind == "SUB":
        receiver.setsockopt(kit.zmq.SUBSCRIBE, b"")
        deadline = time.monotonic() + TIMEOUT_MS / 1000
        while not receiver.poll(10):  # probes until the subscription has reached the PUB
            assert time.monotonic() < deadline, "the subscription never reached the PUB"
            sender.send(b"probe")
        receiver.recv()

    count = 50
    for i in range(count):
        sender.send(b"%03d" % i)
    last = b"%03d" % (count - 1)
    if kit.transport != "inproc":
        time.sleep(SETTLE_S)
    received: list[bytes] = []
    while not received or received[-1] != last:
        message = receiver.recv()
        if message != b"probe":
            received.append(message)
    assert received == sorted(set(received)), f"reordered or repeated: {received}"
    if kit.transport == "inproc":  # every message was queued before the first read
        assert received == [last]
    else:
        assert len(received) < count, "nothing was conflated"
    assert_quiet(receiver)


# --- REQ_RELAXED and REQ_CORRELATE ---------------------------------------------------------------


def connected_routers(kit: Kit, req: Any, count: int) -> list[Any]:
    """``count`` bound ROUTERs that the REQ (PROBE_ROUTER) has connected to, probes read."""
    routers = [kit.socket("ROUTER") for _ in range(count)]
    for router in routers:
        req.connect(kit.bind(router))
    for router in routers:
        assert frames(router)[1:] == [b""], "no probe"
    return routers


def test_req_relaxed_allows_a_new_request_and_ignores_the_old_reply(kit: Kit) -> None:
    """Two ROUTERs: the first request goes to one, the second (sent without waiting) to the
    other; the reply to the first is ignored, the reply to the second is received."""
    strict = kit.socket("REQ")
    strict.connect(kit.bind(kit.socket("ROUTER")))
    strict.send(b"one")
    with pytest.raises(kit.zmq.ZMQError) as info:
        strict.send(b"two")
    assert info.value.errno == kit.zmq.EFSM

    req = kit.socket("REQ", req_relaxed=1, probe_router=1)
    routers = connected_routers(kit, req, 2)
    req.send(b"one")
    poller = kit.zmq.Poller()
    for router in routers:
        poller.register(router, kit.zmq.POLLIN)
    ready = dict(poller.poll(TIMEOUT_MS))
    first = next(router for router in routers if router in ready)
    second = routers[1 - routers.index(first)]
    peer_1, *request_1 = frames(first)
    assert request_1 == [b"", b"one"]
    req.send(b"two")
    peer_2, *request_2 = frames(second)
    assert request_2 == [b"", b"two"]

    first.send_multipart([peer_1, b"", b"reply-one"])
    second.send_multipart([peer_2, b"", b"reply-two"])
    assert frames(req) == [b"reply-two"]
    assert_quiet(req)


def request_id(value: bytes) -> int:
    assert len(value) == 4, f"a request id is 4 bytes, got {value!r}"
    return int.from_bytes(value, sys.byteorder)


def test_req_correlate(kit: Kit) -> None:
    """The ROUTER sees [id, request id, b"", body]; a reply with another request id is
    dropped, the one with the right id accepted; the next request's id is one more."""
    req = kit.socket("REQ", req_correlate=1, probe_router=1)
    (router,) = connected_routers(kit, req, 1)
    req.send_multipart([b"one", b"part"])
    peer, rid, delimiter, *body = frames(router)
    assert delimiter == b""
    assert body == [b"one", b"part"]
    wrong = ((request_id(rid) + 7) & 0xFFFFFFFF).to_bytes(4, sys.byteorder)
    router.send_multipart([peer, wrong, b"", b"wrong id"])
    router.send_multipart([peer, b"", b"no id"])
    router.send_multipart([peer, rid, b"", b"right", b"id"])
    assert frames(req) == [b"right", b"id"]

    req.send(b"two")
    peer_2, rid_2, delimiter_2, body_2 = frames(router)
    assert (peer_2, delimiter_2, body_2) == (peer, b"", b"two")
    assert request_id(rid_2) == (request_id(rid) + 1) & 0xFFFFFFFF
    router.send_multipart([peer, rid, b"", b"old id"])
    router.send_multipart([peer, rid_2, b"", b"reply-two"])
    assert frames(req) == [b"reply-two"]
    assert_quiet(req)


def test_req_relaxed_and_correlate_with_one_peer(kit: Kit) -> None:
    """With one peer only the request id tells the replies apart."""
    req = kit.socket("REQ", req_relaxed=1, req_correlate=1, probe_router=1)
    (router,) = connected_routers(kit, req, 1)
    req.send(b"one")
    peer, rid_1, _, body_1 = frames(router)
    assert body_1 == b"one"
    req.send(b"two")
    _, rid_2, _, body_2 = frames(router)
    assert body_2 == b"two"
    router.send_multipart([peer, rid_1, b"", b"reply-one"])
    router.send_multipart([peer, rid_2, b"", b"reply-two"])
    assert frames(req) == [b"reply-two"]
    assert_quiet(req)


# --- ROUTER_MANDATORY ---------------------------------------------------------------------------


def test_router_mandatory_unknown_peer(kit: Kit) -> None:
    """Without the option a message to an unknown id vanishes; with it, EHOSTUNREACH."""
    router = kit.socket("ROUTER")
    kit.bind(router)
    router.send_multipart([b"nobody", b"lost"])
    if kit.zmq is zeropipe:
        assert router.dropped == 1
    router.setsockopt(kit.zmq.ROUTER_MANDATORY, 1)
    with pytest.raises(kit.zmq.ZMQError) as info:
        router.send_multipart([b"nobody", b"refused"])
    assert info.value.errno == kit.zmq.EHOSTUNREACH


def test_router_mandatory_full_peer(kit: Kit) -> None:
    """A peer at its high-water mark: EAGAIN with NOBLOCK, and a blocking send waits for room
    instead of dropping (everything sent arrives, although more than fits was sent)."""
    router = kit.socket("ROUTER", router_mandatory=1, sndhwm=1)
    dealer = kit.socket("DEALER", routing_id=b"D", rcvhwm=1)
    dealer.connect(kit.bind(router))
    send_when_routable(kit, router, [b"D", b"first"])
    assert frames(dealer) == [b"first"]

    sent = 0
    for sent in range(1000):
        try:
            router.send_multipart([b"D", b"%04d" % sent, BIG], kit.zmq.NOBLOCK)
        except kit.zmq.Again:
            break
    else:
        pytest.fail("still no EAGAIN after 1000 messages to a peer that does not read")

    more = sent + 10
    errors: list[BaseException] = []

    def send_more() -> None:
        try:
            for i in range(sent, sent + more):
                router.send_multipart([b"D", b"%04d" % i, BIG])
        except BaseException as exc:
            errors.append(exc)

    sender = threading.Thread(target=send_more, name="mandatory-sender", daemon=True)
    sender.start()
    try:
        for i in range(sent + more):
            assert frames(dealer) == [b"%04d" % i, BIG], f"message {i}"
    finally:
        sender.join(TIMEOUT_MS / 1000)
    assert not sender.is_alive(), "the sender is still blocked"
    assert not errors, errors


# --- ROUTER_HANDOVER ----------------------------------------------------------------------------


def test_router_handover_gives_the_id_to_the_newcomer(kit: Kit) -> None:
    router = kit.socket("ROUTER", router_handover=1)
    endpoint = kit.bind(router)
    # The first peer must not come back (and take the id back) once handed over.
    first = kit.socket("DEALER", routing_id=b"X", reconnect_ivl=-1)
    first.connect(endpoint)
    first.send(b"one")
    assert frames(router) == [b"X", b"one"]

    second = kit.socket("DEALER", routing_id=b"X")
    second.connect(endpoint)
    second.send(b"two")
    assert frames(router) == [b"X", b"two"]
    router.send_multipart([b"X", b"to whoever is X"])
    assert frames(second) == [b"to whoever is X"]
    assert_quiet(first)


def test_router_without_handover_keeps_the_first_peer(inproc_kit: Kit) -> None:
    """Over inproc, where the ROUTER attaches the second peer before its next send."""
    kit = inproc_kit
    router = kit.socket("ROUTER")
    endpoint = kit.bind(router)
    first = kit.socket("DEALER", routing_id=b"X")
    first.connect(endpoint)
    first.send(b"one")
    assert frames(router) == [b"X", b"one"]

    second = kit.socket("DEALER", routing_id=b"X")
    second.connect(endpoint)
    router.send_multipart([b"X", b"to whoever is X"])
    assert frames(first) == [b"to whoever is X"]
    assert_quiet(second)


# --- PROBE_ROUTER -------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["DEALER", "REQ", "ROUTER"])
def test_probe_router(kit: Kit, kind: str) -> None:
    """A peer with PROBE_ROUTER sends an empty message as it connects: the ROUTER receives
    [its id, b""] before anything else."""
    router = kit.socket("ROUTER", routing_id=b"server")
    peer = kit.socket(kind, probe_router=1, routing_id=b"prober")
    if kind == "ROUTER":
        peer.setsockopt(kit.zmq.ROUTER_MANDATORY, 1)
    peer.connect(kit.bind(router))
    assert frames(router) == [b"prober", b""]

    if kind == "DEALER":
        peer.send(b"after")
        assert frames(router) == [b"prober", b"after"]
    elif kind == "REQ":
        peer.send(b"after")
        assert frames(router) == [b"prober", b"", b"after"]
    else:
        send_when_routable(kit, peer, [b"server", b"after"])
        assert frames(router) == [b"prober", b"after"]
    assert_quiet(router)


# --- CONNECT_ROUTING_ID -------------------------------------------------------------------------


def test_connect_routing_id_names_the_next_peer_only(kit: Kit) -> None:
    router = kit.socket("ROUTER", router_mandatory=1, routing_id=b"client")
    named = kit.socket("DEALER", routing_id=b"A-own")
    own_id = kit.socket("DEALER", routing_id=b"B-own")
    server = kit.socket("ROUTER")

    router.setsockopt(kit.zmq.CONNECT_ROUTING_ID, b"peer-A")
    router.connect(kit.bind(named))  # known as peer-A, whatever it calls itself
    router.connect(kit.bind(own_id))  # the option was used up: known by its own id
    router.setsockopt(kit.zmq.CONNECT_ROUTING_ID, b"server")
    router.connect(kit.bind(server))  # a ROUTER peer announces no id of its own

    send_when_routable(kit, router, [b"peer-A", b"to A"])
    assert frames(named) == [b"to A"]
    send_when_routable(kit, router, [b"B-own", b"to B"])
    assert frames(own_id) == [b"to B"]
    send_when_routable(kit, router, [b"server", b"to server"])
    assert frames(server) == [b"client", b"to server"]

    named.send(b"from A")
    assert frames(router) == [b"peer-A", b"from A"]
    with pytest.raises(kit.zmq.ZMQError) as info:
        router.send_multipart([b"A-own", b"unknown"])
    assert info.value.errno == kit.zmq.EHOSTUNREACH
