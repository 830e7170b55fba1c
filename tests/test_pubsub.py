"""PUB/SUB: zeropipe against itself over tcp, ipc and inproc, and against raw ZMTP peers.

Semantics (libzmq's): a SUB receives only messages whose first frame starts with one of its
subscriptions (b"" matches everything); unsubscribing stops them; subscriptions are counted;
multipart messages are filtered on the first frame and delivered whole; a PUB sends each
message to every matching SUB; a SUB fair-queues between PUBs; subscriptions are re-sent when
the PUB restarts. A PUB never blocks: it drops when there is no subscriber or the subscriber
is at its high-water mark (never part of a multipart message). SUB cannot send, PUB cannot
receive (ENOTSUP).

The raw peers speak ZMTP over a plain TCP socket: a 3.0 SUB subscribes with data frames
(``\\x01topic``, ``\\x00topic`` to cancel), a 3.1 one with SUBSCRIBE/CANCEL commands; our SUB
must use the form its PUB peer's version calls for.

Subscriptions travel asynchronously (the "slow joiner"), so every test first runs ``sync``:
the PUB(s) publish probes until each SUB has seen one, then fences that flush the leftover
probes; afterwards traffic is checked exactly. ``ZP_IMPL=pyzmq`` runs the same tests
against pyzmq (the raw peers then talk to libzmq), which validates the tests themselves.
"""

from __future__ import annotations

import importlib
import itertools
import select
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from netutil import IMPLEMENTATIONS, Endpoints, ScratchDir, bind_with_retry, implementation
from pubsub_sync import END, collect, parse_sync, publish, sync, sync_message

from zeropipe.protocol.commands import encode_metadata
from zeropipe.protocol.frames import FLAG_COMMAND, FLAG_LONG, FLAG_MORE, encode_command
from zeropipe.protocol.greeting import GREETING_SIZE, build_greeting

IMPL, zmq = implementation("ZP_IMPL")

pytestmark = pytest.mark.timeout(20)

TIMEOUT_MS = 5000
TERM_TIMEOUT_S = 5.0
SYNC_TIMEOUT_S = 5.0
RECONNECT_SYNC_TIMEOUT_S = 10.0
SYNC_POLL_MS = 20
SETTLE_S = 0.3
"""Lets messages already sent reach the SUB's queues before fair-queuing is observed."""
FLOOD = 100_000
"""100,000 sends to a SUB at its high-water mark must take well under SNDTIMEO (5 s)."""


# --- sockets, contexts, endpoints ------------------------------------------------------


class Net:
    """Contexts, sockets, endpoints and raw TCP sockets of one test; all closed at teardown.

    inproc only works within one context, so every inproc socket shares one; over tcp and ipc
    each socket gets a context of its own, as if it lived in its own process.
    """

    def __init__(self, transport: str) -> None:
        self.transport = transport
        self.contexts: list[Any] = []
        self.sockets: list[tuple[Any, Any]] = []
        self.raw: list[socket.socket] = []
        self._shared: Any = None
        self._scratch = ScratchDir()
        self._endpoints = Endpoints(transport, self._scratch)

    def context(self) -> Any:
        ctx = zmq.Context()
        self.contexts.append(ctx)
        return ctx

    def socket(self, kind: str, ctx: Any = None, **options: int) -> Any:
        """A socket of type ``kind`` with timeouts, linger 0, and ``options`` set."""
        if ctx is None:
            if self.transport != "inproc":
                ctx = self.context()
            else:
                if self._shared is None:
                    self._shared = self.context()
                ctx = self._shared
        sock = ctx.socket(getattr(zmq, kind))
        self.sockets.append((ctx, sock))
        sock.linger = 0
        sock.setsockopt(zmq.RCVTIMEO, TIMEOUT_MS)
        sock.setsockopt(zmq.SNDTIMEO, TIMEOUT_MS)
        for name, value in options.items():
            sock.setsockopt(getattr(zmq, name.upper()), value)
        return sock

    def fresh(self) -> str:
        """An endpoint nobody is bound to yet (for connect-before-bind)."""
        return self._endpoints.fresh()

    def bind(self, sock: Any, endpoint: str | None = None) -> str:
        """Bind (tcp to an ephemeral port) and return the concrete endpoint."""
        return self._endpoints.bind(sock, endpoint)

    def terminate(self, ctx: Any) -> None:
        """Close the sockets of ``ctx`` and terminate it (a peer going away for good)."""
        for owner, sock in self.sockets:
            if owner is ctx:
                sock.close()
        self._term(ctx)
        self.contexts.remove(ctx)

    def raw_connect(self, endpoint: str) -> RawPeer:
        host, _, port = endpoint.removeprefix("tcp://").rpartition(":")
        sock = socket.create_connection((host, int(port)), timeout=TIMEOUT_MS / 1000)
        self.raw.append(sock)
        return RawPeer(sock)

    def raw_listener(self) -> tuple[socket.socket, str]:
        listener = socket.create_server(("127.0.0.1", 0))
        listener.settimeout(TIMEOUT_MS / 1000)
        self.raw.append(listener)
        return listener, f"tcp://127.0.0.1:{listener.getsockname()[1]}"

    def raw_accept(self, listener: socket.socket) -> RawPeer:
        sock, _ = listener.accept()
        self.raw.append(sock)
        return RawPeer(sock)

    @staticmethod
    def _term(ctx: Any) -> None:
        errors: list[BaseException] = []

        def term() -> None:
            try:
                ctx.term()
            except BaseException as exc:
                errors.append(exc)

        thread = threading.Thread(target=term, name="zp-term", daemon=True)
        thread.start()
        thread.join(TERM_TIMEOUT_S)
        if thread.is_alive():
            raise TimeoutError(f"Context.term() still blocked after {TERM_TIMEOUT_S} s")
        if errors:
            raise errors[0]

    def close(self) -> None:
        errors: list[BaseException] = []
        for _, sock in self.sockets:
            try:
                sock.close()
            except Exception as exc:
                errors.append(exc)
        for raw in self.raw:
            raw.close()
        for ctx in self.contexts:
            try:
                self._term(ctx)
            except Exception as exc:
                errors.append(exc)
        self._scratch.remove()
        if errors:
            raise errors[0]


@pytest.fixture(params=["tcp", "ipc", "inproc"])
def transport(request: pytest.FixtureRequest) -> str:
    value: str = request.param
    return value


@pytest.fixture
def net(transport: str) -> Iterator[Net]:
    owner = Net(transport)
    yield owner
    owner.close()


# --- sync, publish, collect ------------------------------------------------------------


def drain(sub: Any, quiet_ms: int = 200) -> list[list[bytes]]:
    """Everything the SUB receives until it stays silent for ``quiet_ms``."""
    got: list[list[bytes]] = []
    while sub.poll(quiet_ms):
        got.append([bytes(f) for f in sub.recv_multipart()])
    return got


def subscribe(sub: Any, topic: bytes, api: str) -> None:
    if api == "method":
        sub.subscribe(topic)
    else:
        sub.setsockopt(zmq.SUBSCRIBE, topic)


def unsubscribe(sub: Any, topic: bytes, api: str) -> None:
    if api == "method":
        sub.unsubscribe(topic)
    else:
        sub.setsockopt(zmq.UNSUBSCRIBE, topic)


def pubsub(net: Net, binder: str, order: str, **options: int) -> tuple[Any, Any]:
    """A PUB and a SUB, linked; ``order`` says whether the connect comes first."""
    pub = net.socket("PUB", **options)
    sub = net.socket("SUB", **options)
    binding, connecting = (pub, sub) if binder == "pub" else (sub, pub)
    if order == "bind-first":
        connecting.connect(net.bind(binding))
    else:
        endpoint = net.fresh()
        connecting.connect(endpoint)
        net.bind(binding, endpoint)
    return pub, sub


binders = pytest.mark.parametrize("binder", ["pub", "sub"], ids=["pub-binds", "sub-binds"])
orders = pytest.mark.parametrize("order", ["bind-first", "connect-first"])
apis = pytest.mark.parametrize("api", ["method", "sockopt"])


# --- one PUB, one SUB ------------------------------------------------------------------


@apis
@orders
@binders
def test_topic_filtering(net: Net, binder: str, order: str, api: str) -> None:
    pub, sub = pubsub(net, binder, order)
    subscribe(sub, b"nl.", api)
    subscribe(sub, b"br.", api)
    sync([pub], [(sub, [b"nl.", b"br."])])
    publish(
        pub,
        [[b"nl.goal"], [b"br.card"], [b"de.goal"], [b"nl"], [b"xnl.goal"], [b"nl." + END]],
    )
    assert collect(sub, b"nl." + END) == [[b"nl.goal"], [b"br.card"]]


@orders
@binders
def test_empty_subscription_receives_everything(net: Net, binder: str, order: str) -> None:
    pub, sub = pubsub(net, binder, order)
    sub.subscribe(b"")
    sync([pub], [(sub, [b""])])
    messages = [[b"nl.goal"], [b"de.goal"], [b""], [b"\x00\xff binary"], [b"a", b"b"]]
    publish(pub, [*messages, [END]])
    assert collect(sub, END) == messages


@pytest.mark.parametrize("transport", ["tcp", "ipc"])
def test_nothing_arrives_without_a_subscription(net: Net) -> None:
    """A SUB with no subscription gets nothing, while another SUB gets everything."""
    pub = net.socket("PUB")
    silent = net.socket("SUB")
    listening = net.socket("SUB")
    endpoint = net.bind(pub)
    silent.connect(endpoint)
    listening.connect(endpoint)
    listening.subscribe(b"")
    sync([pub], [(listening, [b""])])
    publish(pub, [[b"nl.goal"], [b""], [END]])
    assert collect(listening, END) == [[b"nl.goal"], [b""]]
    assert not silent.poll(100)


@apis
@orders
@binders
def test_unsubscribe(net: Net, binder: str, order: str, api: str) -> None:
    pub, sub = pubsub(net, binder, order)
    for topic in (b"nl.", b"br."):
        subscribe(sub, topic, api)
    sync([pub], [(sub, [b"nl.", b"br."])])
    unsubscribe(sub, b"br.", api)
    sub.subscribe(b"zz.")  # travels after the cancel: once it works, the cancel arrived too
    sync([pub], [(sub, [b"zz."])])
    publish(pub, [[b"br.card"], [b"nl.goal"], [b"zz." + END]])
    assert collect(sub, b"zz." + END) == [[b"nl.goal"]]


def test_unsubscribe_unknown_topic_is_harmless(net: Net) -> None:
    pub, sub = pubsub(net, "pub", "bind-first")
    sub.unsubscribe(b"never-subscribed")
    sub.subscribe(b"nl.")
    sync([pub], [(sub, [b"nl."])])
    publish(pub, [[b"nl.goal"], [b"nl." + END]])
    assert collect(sub, b"nl." + END) == [[b"nl.goal"]]


@orders
@binders
def test_subscriptions_are_counted(net: Net, binder: str, order: str) -> None:
    """Subscribing twice and unsubscribing once leaves the topic subscribed."""
    pub, sub = pubsub(net, binder, order)
    sub.subscribe(b"nl.")
    sub.setsockopt(zmq.SUBSCRIBE, b"nl.")
    sync([pub], [(sub, [b"nl."])])

    sub.unsubscribe(b"nl.")
    sub.subscribe(b"yy.")
    sync([pub], [(sub, [b"yy."])])
    publish(pub, [[b"nl.goal"], [b"yy." + END]])
    assert collect(sub, b"yy." + END) == [[b"nl.goal"]]

    sub.setsockopt(zmq.UNSUBSCRIBE, b"nl.")
    sub.subscribe(b"xx.")
    sync([pub], [(sub, [b"xx."])])
    publish(pub, [[b"nl.goal"], [b"xx." + END]])
    assert collect(sub, b"xx." + END) == []


@pytest.mark.parametrize("transport", ["tcp", "inproc"])
def test_overlapping_subscriptions_deliver_once(net: Net) -> None:
    """A message matching several subscriptions of one SUB arrives once."""
    pub, sub = pubsub(net, "pub", "bind-first")
    for topic in (b"", b"n", b"nl.", b"nl.goal"):
        sub.subscribe(topic)
    sync([pub], [(sub, [b"nl.goal"])])
    publish(pub, [[b"nl.goal"], [b"nl.x"], [b"z"], [END]])
    assert collect(sub, END) == [[b"nl.goal"], [b"nl.x"], [b"z"]]


@binders
def test_subscribe_before_connect(net: Net, binder: str) -> None:
    """Subscriptions made before any peer exists are sent once the connection is up."""
    pub = net.socket("PUB")
    sub = net.socket("SUB")
    sub.subscribe(b"nl.")
    if binder == "pub":
        sub.connect(net.bind(pub))
    else:
        pub.connect(net.bind(sub))
    sync([pub], [(sub, [b"nl."])])
    publish(pub, [[b"br.card"], [b"nl.goal"], [b"nl." + END]])
    assert collect(sub, b"nl." + END) == [[b"nl.goal"]]


@orders
@binders
def test_multipart_filtered_on_first_frame_and_delivered_whole(
    net: Net, binder: str, order: str
) -> None:
    pub, sub = pubsub(net, binder, order)
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


@orders
@binders
def test_ten_thousand_messages_in_order(net: Net, binder: str, order: str) -> None:
    """Unlimited high-water marks, so nothing may be dropped; others are interleaved."""
    pub, sub = pubsub(net, binder, order, sndhwm=0, rcvhwm=0)
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


@pytest.mark.parametrize("binder", ["pub", "subs"], ids=["pub-binds", "subs-bind"])
def test_pub_sends_to_every_matching_sub(net: Net, binder: str) -> None:
    pub = net.socket("PUB")
    subs = [net.socket("SUB") for _ in range(3)]
    if binder == "pub":
        endpoint = net.bind(pub)
        for sub in subs:
            sub.connect(endpoint)
    else:
        for sub in subs:
            pub.connect(net.bind(sub))
    topics = [[b"nl.", b"all."], [b"nl.", b"all."], [b"br.", b"all."]]
    for sub, sub_topics in zip(subs, topics, strict=True):
        for topic in sub_topics:
            sub.subscribe(topic)
    sync([pub], list(zip(subs, topics, strict=True)))
    publish(
        pub, [[b"nl.goal"], [b"br.card"], [b"all.news", b"body"], [b"de.goal"], [b"all." + END]]
    )
    assert collect(subs[0], b"all." + END) == [[b"nl.goal"], [b"all.news", b"body"]]
    assert collect(subs[1], b"all." + END) == [[b"nl.goal"], [b"all.news", b"body"]]
    assert collect(subs[2], b"all." + END) == [[b"br.card"], [b"all.news", b"body"]]


@pytest.mark.parametrize("binder", ["pubs", "sub"], ids=["pubs-bind", "sub-binds"])
def test_sub_fair_queues_between_pubs(net: Net, binder: str) -> None:
    """A SUB fed by three PUBs takes their messages in turn, each PUB's in order."""
    sub = net.socket("SUB")
    pubs = [net.socket("PUB") for _ in range(3)]
    if binder == "pubs":
        for pub in pubs:
            sub.connect(net.bind(pub))
    else:
        endpoint = net.bind(sub)
        for pub in pubs:
            pub.connect(endpoint)
    sub.subscribe(b"t.")
    sync(pubs, [(sub, [b"t."])])

    count = 50
    names = b"abc"
    for i in range(count):
        for name, pub in zip(names, pubs, strict=True):
            pub.send(b"t.%c%03d" % (name, i))
    time.sleep(SETTLE_S)  # all queues loaded (libzmq notices new readable peers when polled)
    assert sub.poll(TIMEOUT_MS)
    got = [sub.recv() for _ in range(3 * count)]
    for name in names:
        mine = [m for m in got if m[2] == name]
        assert mine == [b"t.%c%03d" % (name, i) for i in range(count)], got
    sources = bytes(m[2] for m in got[:30])
    runs = [len(list(group)) for _, group in itertools.groupby(sources)]
    assert max(runs) <= 2, f"not fair-queued: {sources!r}"
    assert not sub.poll(50), "unexpected extra data after the last message"


@pytest.mark.parametrize("transport", ["tcp", "ipc"])
@pytest.mark.parametrize("binder", ["pub", "sub"], ids=["pub-binds", "sub-binds"])
def test_subscriptions_resent_after_pub_restarts(net: Net, binder: str) -> None:
    """The PUB goes away (socket and context); a new one takes its place.

    The SUB is never told to subscribe again: it must re-send its subscriptions on the new
    connection by itself.
    """
    sub = net.socket("SUB")
    sub.subscribe(b"nl.")
    old_ctx = net.context()
    old_pub = net.socket("PUB", old_ctx)
    if binder == "pub":
        endpoint = net.bind(old_pub)
        sub.connect(endpoint)
    else:
        endpoint = net.bind(sub)
        old_pub.connect(endpoint)
    sync([old_pub], [(sub, [b"nl."])])
    publish(old_pub, [[b"nl.before"], [b"br.card"], [b"nl." + END]])
    assert collect(sub, b"nl." + END) == [[b"nl.before"]]

    net.terminate(old_ctx)  # releases the endpoint
    new_pub = net.socket("PUB")
    if binder == "pub":
        bind_with_retry(new_pub, endpoint, zmq)  # the same port / path as before
    else:
        new_pub.connect(endpoint)
    sync([new_pub], [(sub, [b"nl."])], timeout_s=RECONNECT_SYNC_TIMEOUT_S)
    publish(new_pub, [[b"nl.after"], [b"br.card"], [b"nl." + END]])
    assert collect(sub, b"nl." + END) == [[b"nl.after"]]


# --- errors, no subscribers, high-water marks ------------------------------------------


@pytest.mark.parametrize("transport", ["inproc"])
@pytest.mark.parametrize("connected", [False, True], ids=["alone", "connected"])
def test_sub_cannot_send(net: Net, connected: bool) -> None:
    pub = net.socket("PUB")
    sub = net.socket("SUB")
    if connected:
        sub.connect(net.bind(pub))
    for attempt in (lambda: sub.send(b"x"), lambda: sub.send_multipart([b"a", b"b"])):
        with pytest.raises(zmq.ZMQError) as info:
            attempt()
        assert info.value.errno == zmq.ENOTSUP


@pytest.mark.parametrize("transport", ["inproc"])
@pytest.mark.parametrize("connected", [False, True], ids=["alone", "connected"])
def test_pub_cannot_receive(net: Net, connected: bool) -> None:
    pub = net.socket("PUB")
    sub = net.socket("SUB")
    if connected:
        sub.connect(net.bind(pub))
        sub.subscribe(b"")
    for attempt in (pub.recv, pub.recv_multipart, lambda: pub.recv(zmq.NOBLOCK)):
        with pytest.raises(zmq.ZMQError) as info:
            attempt()
        assert info.value.errno == zmq.ENOTSUP


@pytest.mark.parametrize("state", ["unbound", "bound", "sub-without-subscription"])
def test_pub_without_subscribers_drops_and_never_raises(net: Net, state: str) -> None:
    pub = net.socket("PUB")
    if state != "unbound":
        endpoint = net.bind(pub)
    if state == "sub-without-subscription":
        net.socket("SUB").connect(endpoint)
    pub.sndtimeo = 0  # a send that would block raises Again at once: PUB must never do so
    for i in range(10_000):
        pub.send(b"x%d" % i, zmq.NOBLOCK)
        pub.send_multipart([b"y", b"%d" % i], zmq.NOBLOCK)
        pub.send(b"z")


def test_pub_drops_at_hwm_instead_of_blocking(net: Net) -> None:
    """A SUB that never reads: 100,000 sends return at once; what arrives is in order."""
    pub, sub = pubsub(net, "pub", "bind-first", sndhwm=10, rcvhwm=10)
    sub.subscribe(b"")
    sync([pub], [(sub, [b""])])
    pub.sndtimeo = 0  # a send that would block raises Again at once instead of stalling
    payload = b"." * 100  # 10 MB in all: more than the kernel buffers of a tcp connection
    for i in range(FLOOD):
        pub.send(b"%06d" % i + payload)

    received = [int(frames[0][:6]) for frames in drain(sub)]
    assert received, "nothing arrived at all"
    assert received == sorted(set(received)), "reordered or duplicated"
    assert len(received) < FLOOD, "nothing was dropped"
    if net.transport == "inproc":
        assert len(received) <= 10 + 10, f"inproc holds SNDHWM + RCVHWM, got {len(received)}"


def test_pub_drops_whole_multipart_messages_at_hwm(net: Net) -> None:
    pub, sub = pubsub(net, "pub", "bind-first", sndhwm=10, rcvhwm=10)
    sub.subscribe(b"")
    sync([pub], [(sub, [b""])])
    for i in range(10_000):
        pub.send_multipart([b"%06d" % i, b"middle", b"x" * 200, b"last"])
    received = drain(sub)
    assert received
    for frames in received:
        assert frames[1:] == [b"middle", b"x" * 200, b"last"], frames[:1]
    indices = [int(frames[0]) for frames in received]
    assert indices == sorted(set(indices)), "reordered or duplicated"


# --- raw ZMTP peers --------------------------------------------------------------------


class RawPeer:
    """A bare ZMTP 3.x peer (NULL mechanism, no heartbeats) over a plain TCP socket."""

    def __init__(self, sock: socket.socket) -> None:
        sock.settimeout(TIMEOUT_MS / 1000)
        self.sock = sock
        self.buffer = bytearray()

    def handshake(self, minor: int, socket_type: bytes) -> None:
        """Send our greeting (ZMTP 3.``minor``) and READY; read and check the peer's."""
        greeting = bytearray(build_greeting(b"NULL", False))
        greeting[11] = minor
        ready = encode_command(b"READY", encode_metadata({"Socket-Type": socket_type}))
        self.sock.sendall(bytes(greeting) + ready)
        peer = self.read_exact(GREETING_SIZE)
        assert peer[0] == 0xFF, peer[:12]
        assert peer[9] & 0x01, peer[:12]
        assert peer[10] == 3, peer[:12]
        assert peer[12:32].rstrip(b"\x00") == b"NULL", peer[12:32]
        flags, body = self.read_frame()
        assert flags & FLAG_COMMAND, (flags, body)
        assert body.startswith(b"\x05READY"), (flags, body)

    def read_exact(self, size: int) -> bytes:
        while len(self.buffer) < size:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError(f"peer closed the connection; buffered {bytes(self.buffer)!r}")
            self.buffer += chunk
        data = bytes(self.buffer[:size])
        del self.buffer[:size]
        return data

    def read_frame(self) -> tuple[int, bytes]:
        """(flags, body) of the next frame."""
        flags = self.read_exact(1)[0]
        if flags & FLAG_LONG:
            size = int.from_bytes(self.read_exact(8), "big")
        else:
            size = self.read_exact(1)[0]
        return flags, self.read_exact(size)

    def read_message(self) -> list[bytes]:
        """The frames of the next data message; any command frame fails the test."""
        frames: list[bytes] = []
        while True:
            flags, body = self.read_frame()
            assert not flags & FLAG_COMMAND, f"unexpected command {body!r}"
            frames.append(body)
            if not flags & FLAG_MORE:
                return frames

    def readable(self, timeout_s: float) -> bool:
        return bool(self.buffer) or bool(select.select([self.sock], [], [], timeout_s)[0])

    def send_frames(self, *bodies: bytes, command: bool = False) -> None:
        """One message (or one command) made of short ``bodies``."""
        out = bytearray()
        for i, body in enumerate(bodies):
            flags = (FLAG_MORE if i < len(bodies) - 1 else 0) | (FLAG_COMMAND if command else 0)
            out += bytes((flags, len(body))) + body
        self.sock.sendall(out)


def raw_subscribe(peer: RawPeer, minor: int, topic: bytes, cancel: bool = False) -> None:
    """A subscription (or cancel) in the form of ZMTP 3.``minor``."""
    if minor == 0:
        peer.send_frames((b"\x00" if cancel else b"\x01") + topic)
    else:
        peer.sock.sendall(encode_command(b"CANCEL" if cancel else b"SUBSCRIBE", topic))


def raw_sync(pub: Any, peer: RawPeer, topic: bytes) -> None:
    """Publish probes on ``topic`` until the raw SUB gets one, then flush them with a fence."""
    deadline = time.monotonic() + SYNC_TIMEOUT_S
    while not peer.readable(SYNC_POLL_MS / 1000):
        assert time.monotonic() < deadline, f"the PUB never honoured the subscription {topic!r}"
        pub.send(sync_message(topic, b"probe", 0))
    pub.send(sync_message(topic, b"fence", 0))
    while True:
        frames = peer.read_message()
        parsed = parse_sync(frames)
        assert parsed is not None, f"unexpected message {frames!r}"
        assert parsed[0] == topic, f"unexpected message {frames!r}"
        if parsed[1] == b"fence":
            return


def raw_collect(peer: RawPeer, end: bytes) -> list[list[bytes]]:
    got: list[list[bytes]] = []
    while (frames := peer.read_message()) != [end]:
        got.append(frames)
    return got


minors = pytest.mark.parametrize("minor", [0, 1], ids=["zmtp30", "zmtp31"])


@pytest.mark.parametrize("transport", ["tcp"])
@minors
def test_pub_filters_for_a_raw_sub(net: Net, minor: int) -> None:
    """A ZMTP 3.0 SUB subscribes with ``\\x01topic`` data frames, a 3.1 one with commands."""
    pub = net.socket("PUB")
    peer = net.raw_connect(net.bind(pub))
    peer.handshake(minor, b"SUB")
    raw_subscribe(peer, minor, b"nl.")
    raw_sync(pub, peer, b"nl.")
    publish(pub, [[b"br.card"], [b"nl.goal"], [b"de.goal", b"nl."], [b"nl.", b"x"], [b"nl.end"]])
    assert raw_collect(peer, b"nl.end") == [[b"nl.goal"], [b"nl.", b"x"]]

    raw_subscribe(peer, minor, b"nl.", cancel=True)
    raw_subscribe(peer, minor, b"zz.")
    raw_sync(pub, peer, b"zz.")
    publish(pub, [[b"nl.goal"], [b"br.card"], [b"zz.end"]])
    assert raw_collect(peer, b"zz.end") == []


@pytest.mark.parametrize("transport", ["tcp"])
@minors
def test_pub_keeps_one_subscription_per_peer_and_topic(net: Net, minor: int) -> None:
    """A PUB keeps a set per connection, not a count: one cancel ends duplicate subscribes.

    (Counting is the SUB's job: it sends the cancel only when its own count drops to 0.)
    """
    pub = net.socket("PUB")
    peer = net.raw_connect(net.bind(pub))
    peer.handshake(minor, b"SUB")
    raw_subscribe(peer, minor, b"nl.")
    raw_subscribe(peer, minor, b"nl.")
    raw_sync(pub, peer, b"nl.")
    raw_subscribe(peer, minor, b"nl.", cancel=True)
    raw_subscribe(peer, minor, b"yy.")
    raw_sync(pub, peer, b"yy.")
    publish(pub, [[b"nl.goal"], [b"yy.end"]])
    assert raw_collect(peer, b"yy.end") == []


def subscription_frame(minor: int, topic: bytes, cancel: bool = False) -> tuple[int, bytes]:
    """What a SUB must send to a ZMTP 3.``minor`` PUB: (flags, body) of the frame."""
    if minor == 0:
        return 0, (b"\x00" if cancel else b"\x01") + topic
    name = b"CANCEL" if cancel else b"SUBSCRIBE"
    return FLAG_COMMAND, bytes((len(name),)) + name + topic


@pytest.mark.parametrize("transport", ["tcp"])
@minors
def test_sub_speaks_the_subscription_form_of_its_pub(net: Net, minor: int) -> None:
    """To a 3.0 PUB: ``\\x01nl.`` / ``\\x00nl.`` data frames; to a 3.1 PUB: SUBSCRIBE / CANCEL
    commands. The cancel goes out only when the count of subscriptions drops to zero, and the
    SUB filters what the (raw, non-filtering) PUB sends it.
    """
    listener, endpoint = net.raw_listener()
    sub = net.socket("SUB")
    sub.connect(endpoint)
    sub.subscribe(b"nl.")
    peer = net.raw_accept(listener)
    peer.handshake(minor, b"PUB")
    assert peer.read_frame() == subscription_frame(minor, b"nl.")

    sub.subscribe(b"nl.")
    sub.unsubscribe(b"nl.")  # still subscribed once: no cancel may go out
    sub.subscribe(b"zz.")
    seen = []
    while (frame := peer.read_frame()) != subscription_frame(minor, b"zz."):
        seen.append(frame)
    assert set(seen) <= {subscription_frame(minor, b"nl.")}, seen  # a repeat is allowed

    peer.send_frames(b"nl.goal")
    assert sub.recv() == b"nl.goal"
    sub.unsubscribe(b"nl.")
    assert peer.read_frame() == subscription_frame(minor, b"nl.", cancel=True)

    # The raw PUB does not filter, so the SUB must: only zz. messages, and whole.
    peer.send_frames(b"nl.goal")
    peer.send_frames(b"br.card", b"zz.not-the-first-frame")
    peer.send_frames(b"zz.news", b"", b"body")
    peer.send_frames(b"zz.end")
    assert collect(sub, b"zz.end") == [[b"zz.news", b"", b"body"]]


@pytest.mark.parametrize("impl", ["zeropipe", "pyzmq"])
def test_invert_matching_sends_what_does_not_match(impl: str) -> None:
    """INVERT_MATCHING on PUB and SUB: a subscriber gets the topics it did NOT subscribe to."""
    lib: Any = importlib.import_module(IMPLEMENTATIONS[impl])
    ctx = lib.Context()
    pub = ctx.socket(lib.PUB)
    sub = ctx.socket(lib.SUB)
    try:
        for sock in (pub, sub):
            sock.linger = 0
            sock.setsockopt(lib.INVERT_MATCHING, 1)
        sub.rcvtimeo = 100
        pub.bind("tcp://127.0.0.1:*")
        sub.connect(pub.last_endpoint.decode())
        sub.setsockopt(lib.SUBSCRIBE, b"skip")
        deadline = time.monotonic() + 5
        while True:  # probe until the subscription has reached the publisher
            pub.send(b"probe")
            try:
                if sub.recv() == b"probe":
                    break
            except lib.Again:
                assert time.monotonic() < deadline, "the subscriber never got a probe"
        for body in (b"skip-1", b"keep-1", b"skip-2", b"keep-2", b"end"):
            pub.send(body)
        got = []
        while not got or got[-1] != b"end":
            got.append(sub.recv())
        assert [m for m in got if m != b"probe"] == [b"keep-1", b"keep-2", b"end"]
    finally:
        pub.close()
        sub.close()
        ctx.term()
