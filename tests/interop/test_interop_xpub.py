"""XPUB and XSUB interop: zeropipe ("ours") against libzmq through pyzmq ("theirs").

Our XPUB with libzmq SUB and XSUB subscribers, either side binding, tcp and ipc:

* the subscription messages the user receives (``\\x01topic``, ``\\x00topic`` to cancel): by
  default only those that change what the XPUB as a whole is subscribed to, every subscribe
  with XPUB_VERBOSE, every cancel too with XPUB_VERBOSER;
* a subscriber that disconnects cancels its topics (reported when it was the last one);
* XPUB_WELCOME_MSG greets each new subscriber (a SUB keeps it only if subscribed to it);
* XPUB_MANUAL: subscriptions apply only when the user sets SUBSCRIBE / UNSUBSCRIBE for the
  subscriber heard last;

an XSUB and an XPUB from different implementations (either way round): subscriptions counted
by the XSUB (a cancel goes out only at zero), messages published, messages sent upstream; and
raw ZMTP 3.0 / 3.1 subscribers scripted over a plain TCP socket: their subscriptions in either
form, and a silent one dropped by the XPUB's heartbeats (which cancels its subscriptions).

libzmq attaches a new connection (and sends a subscriber's subscriptions on it) only when the
user thread calls into the socket, so while our XPUB waits for a subscription, the libzmq
subscribers are asked for their EVENTS. ``ZP_IMPL=pyzmq`` runs it all with libzmq on both sides.
"""

from __future__ import annotations

import socket
import time
from typing import TYPE_CHECKING, Any

import pytest
from pubsub_sync import greet, receive, receive_until, subscribe

from zeropipe.protocol.commands import encode_metadata
from zeropipe.protocol.frames import FLAG_COMMAND, FLAG_LONG, FLAG_MORE, encode_command
from zeropipe.protocol.greeting import GREETING_SIZE, build_greeting

if TYPE_CHECKING:
    from netutil import Endpoints

    from .conftest import Side

pytestmark = [pytest.mark.interop, pytest.mark.timeout(20)]

WAIT_S = 5.0
"""How long anything that should happen may take."""
QUIET_MS = 50
"""How long "nothing else is queued" is watched for, once what was awaited has arrived."""

kinds = pytest.mark.parametrize("kind", ["SUB", "XSUB"], ids=["their-sub", "their-xsub"])
binders = pytest.mark.parametrize("binder", ["xpub", "subs"], ids=["xpub-binds", "subs-bind"])


# --- helpers ---------------------------------------------------------------------------


def frames(sock: Any) -> list[bytes]:
    return [bytes(frame) for frame in sock.recv_multipart()]


def link(xpub: Any, subs: list[Any], endpoints: Endpoints, binder: str) -> list[list[bytes]]:
    """Link the XPUB and the subscribers, and wait until all are connected (``greet``);
    return the other messages the XPUB heard meanwhile."""
    if binder == "xpub":
        endpoint = endpoints.bind(xpub)
        for sub in subs:
            sub.connect(endpoint)
    else:
        for sub in subs:
            xpub.connect(endpoints.bind(sub))
    return greet(xpub, subs)


def xpub_with(ours: Side, **options: Any) -> Any:
    xpub = ours.socket("XPUB")
    for name, value in options.items():
        xpub.setsockopt(getattr(ours.module, name.upper()), value)
    return xpub


# --- our XPUB, their subscribers --------------------------------------------------------

NOTICES = {
    # Each step: what the subscribers do, then what the XPUB's user receives, by mode.
    "default": [[b"\x01nl."], [b"\x01m1."], [b"\x01m2."], [b"\x00nl.", b"\x01m3."]],
    "verbose": [[b"\x01nl."], [b"\x01nl.", b"\x01m1."], [b"\x01m2."], [b"\x00nl.", b"\x01m3."]],
    "verboser": [
        [b"\x01nl."],
        [b"\x01nl.", b"\x01m1."],
        [b"\x00nl.", b"\x01m2."],
        [b"\x00nl.", b"\x01m3."],
    ],
}
MODE_OPTIONS: dict[str, dict[str, int]] = {
    "default": {},
    "verbose": {"xpub_verbose": 1},
    "verboser": {"xpub_verboser": 1},
}


@pytest.mark.parametrize("mode", list(NOTICES))
@kinds
@binders
def test_subscription_messages(
    ours: Side, theirs: Side, endpoints: Endpoints, mode: str, kind: str, binder: str
) -> None:
    """Two subscribers share a topic: which (un)subscriptions the XPUB's user hears of.

    Each step ends with a new subscription (a marker): it travels after the step's other
    (un)subscriptions of that subscriber, so once it arrives they have been processed.
    """
    xpub = xpub_with(ours, **MODE_OPTIONS[mode])
    s1, s2 = theirs.socket(kind), theirs.socket(kind)
    link(xpub, [s1, s2], endpoints, binder)
    expected = NOTICES[mode]

    subscribe(s1, b"nl.")
    assert receive_until(xpub, [s1, s2], b"\x01nl.") == expected[0]
    subscribe(s2, b"nl.")
    subscribe(s2, b"m1.")
    assert receive_until(xpub, [s1, s2], b"\x01m1.") == expected[1]
    subscribe(s2, b"nl.", cancel=True)  # s1 still wants nl.
    subscribe(s2, b"m2.")
    assert receive_until(xpub, [s1, s2], b"\x01m2.") == expected[2]
    subscribe(s1, b"nl.", cancel=True)  # the last one
    subscribe(s1, b"m3.")
    assert receive_until(xpub, [s1, s2], b"\x01m3.") == expected[3]


@pytest.mark.parametrize("mode", ["default", "verboser"])
@kinds
def test_subscriber_leaving_cancels_its_topics(
    ours: Side, theirs: Side, endpoints: Endpoints, mode: str, kind: str
) -> None:
    """A subscriber that disconnects cancels its topics: by default the XPUB's user hears of
    the topics nobody else wants any more, with XPUB_VERBOSER of all of them.

    Only a binding XPUB: one that connects keeps its side of the connection (and the
    subscriptions on it) while it reconnects, as libzmq does.
    """
    xpub = xpub_with(ours, **MODE_OPTIONS[mode])
    s1, s2 = theirs.socket(kind), theirs.socket(kind)
    link(xpub, [s1, s2], endpoints, "xpub")
    subscribe(s1, b"nl.")
    assert receive_until(xpub, [s1, s2], b"\x01nl.") == [b"\x01nl."]
    subscribe(s2, b"nl.")
    subscribe(s2, b"own.")
    heard = receive_until(xpub, [s1, s2], b"\x01own.")
    assert heard == ([b"\x01own."] if mode == "default" else [b"\x01nl.", b"\x01own."])

    s2.close()
    # The cancels of one leaving subscriber are queued together: after b"\x00own." arrives,
    # a wrong b"\x00nl." would be there too.
    cancels = receive_until(xpub, [s1], b"\x00own.")
    if mode == "default":
        assert cancels == [b"\x00own."]
    else:
        assert sorted(cancels) == [b"\x00nl.", b"\x00own."]

    s1.close()
    assert receive_until(xpub, [], b"\x00nl.") == [b"\x00nl."]


@pytest.mark.parametrize("subscribed", [True, False], ids=["to-welcome", "to-other"])
@binders
def test_welcome_message(
    ours: Side, theirs: Side, endpoints: Endpoints, subscribed: bool, binder: str
) -> None:
    """XPUB_WELCOME_MSG goes to each new subscriber; a SUB keeps it only if it matches."""
    xpub = xpub_with(ours, xpub_welcome_msg=b"welcome!")
    sub = theirs.socket("SUB")
    topic = b"welcome" if subscribed else b"nl."
    sub.setsockopt(theirs.module.SUBSCRIBE, topic)
    assert link(xpub, [sub], endpoints, binder) == [[b"\x01" + topic]]
    if subscribed:
        assert frames(sub) == [b"welcome!"]
    else:
        xpub.send(b"nl.first")
        assert frames(sub) == [b"nl.first"], "the welcome message was not filtered by the SUB"


@binders
def test_manual_subscriptions(ours: Side, theirs: Side, endpoints: Endpoints, binder: str) -> None:
    """With XPUB_MANUAL a subscription applies only when the user sets it (for the subscriber
    heard last), and may differ from what was asked. Their XSUB does not filter, so what it
    receives is exactly what the XPUB sent it."""
    xpub = xpub_with(ours, xpub_manual=1)
    xsub = theirs.socket("XSUB")
    sub = theirs.socket("SUB")
    link(xpub, [xsub, sub], endpoints, binder)

    xsub.send(b"\x01nl.")
    assert receive(xpub, [xsub, sub]) == [b"\x01nl."]
    xpub.send(b"nl.before")  # not subscribed yet: nobody gets it
    xpub.setsockopt(ours.module.SUBSCRIBE, b"nl.")
    xpub.setsockopt(ours.module.SUBSCRIBE, b"zz.")  # never asked for, but granted
    xpub.send(b"nl.after")
    xpub.send(b"zz.extra")
    assert frames(xsub) == [b"nl.after"]
    assert frames(xsub) == [b"zz.extra"]

    xsub.send(b"\x01nl.")  # a repeat: in manual mode the user hears of every one
    assert receive(xpub, [xsub, sub]) == [b"\x01nl."]
    xsub.send(b"\x00nl.")  # the XSUB counts: its first cancel stays local
    xsub.send(b"\x00nl.")
    assert receive(xpub, [xsub, sub]) == [b"\x00nl."]
    xpub.send(b"nl.still")  # the user has not applied the cancel yet
    xpub.setsockopt(ours.module.UNSUBSCRIBE, b"nl.")
    xpub.send(b"nl.gone")
    xpub.send(b"zz.end")
    assert frames(xsub) == [b"nl.still"]
    assert frames(xsub) == [b"zz.end"]

    sub.setsockopt(theirs.module.SUBSCRIBE, b"br.")
    assert receive(xpub, [xsub, sub]) == [b"\x01br."]
    xpub.setsockopt(ours.module.SUBSCRIBE, b"br.")
    xpub.send(b"br.card")
    assert frames(sub) == [b"br.card"]
    assert not xsub.poll(QUIET_MS), "a subscription applied to the wrong subscriber"
    if binder == "xpub":  # a connecting XPUB keeps a leaving peer's pipe while reconnecting
        sub.close()  # what a leaving subscriber asked for is cancelled
        assert receive(xpub, [xsub]) == [b"\x00br."]


# --- XSUB and XPUB of different implementations ------------------------------------------


@pytest.mark.parametrize("xpub_is", ["ours", "theirs"], ids=["ours-xpub", "theirs-xpub"])
@binders
def test_xsub_to_xpub(
    ours: Side, theirs: Side, endpoints: Endpoints, xpub_is: str, binder: str
) -> None:
    """The XSUB counts its subscriptions (a cancel goes out when the count reaches zero),
    the XPUB forwards each topic's first subscription and last cancel, publishes to the
    XSUB, and receives what the XSUB sends upstream."""
    xpub_side, xsub_side = (ours, theirs) if xpub_is == "ours" else (theirs, ours)
    xpub = xpub_side.socket("XPUB")
    xpub.setsockopt(xpub_side.module.RCVHWM, 10)
    xsub = xsub_side.socket("XSUB")
    link(xpub, [xsub], endpoints, binder)

    xsub.send(b"\x01nl.")
    assert receive_until(xpub, [xsub], b"\x01nl.") == [b"\x01nl."]
    xsub.send(b"\x01nl.")  # counted twice by the XSUB, once by the XPUB
    xsub.send(b"\x01m1.")
    assert receive_until(xpub, [xsub], b"\x01m1.") == [b"\x01m1."]
    xsub.send(b"\x00nl.")  # still subscribed once: the cancel must not leave the XSUB
    xsub.send(b"\x01m2.")
    assert receive_until(xpub, [xsub], b"\x01m2.") == [b"\x01m2."]

    xpub.send_multipart([b"nl.news", b"", b"body"])
    xpub.send(b"br.card")
    xpub.send(b"m2.end")
    assert frames(xsub) == [b"nl.news", b"", b"body"]
    assert frames(xsub) == [b"m2.end"]

    xsub.send(b"\x00nl.")
    assert receive_until(xpub, [xsub], b"\x00nl.") == [b"\x00nl."]
    xsub.send_multipart([b"upstream", b"", b"stream"])
    assert frames(xpub) == [b"upstream", b"", b"stream"]
    xsub.send(b"single upstream")
    assert frames(xpub) == [b"single upstream"]

    # Subscriptions and upstream messages reach the XPUB's user in the order they were sent,
    # also when more of them are queued than its RCVHWM (10).
    sent = []
    for i in range(10):
        sent += [[b"up.%d" % i, b"more"], [b"\x01o%d." % i], [b"\x00o%d." % i]]
    for message in sent:
        xsub.send_multipart(message)
    time.sleep(0.1)  # not a synchronisation: lets them pile up before the first read
    assert [receive(xpub, [xsub]) for _ in sent] == sent


# --- raw ZMTP subscribers ---------------------------------------------------------------


class RawSubscriber:
    """A SUB scripted over a plain TCP socket: NULL mechanism, ZMTP 3.0 or 3.1."""

    def __init__(self, endpoint: str, minor: int) -> None:
        host, port = endpoint.removeprefix("tcp://").rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=WAIT_S)
        self.minor = minor
        self.buffer = bytearray()
        greeting = bytearray(build_greeting(b"NULL", False))
        greeting[11] = minor
        ready = encode_command(b"READY", encode_metadata({"Socket-Type": b"SUB"}))
        self.sock.sendall(bytes(greeting) + ready)
        peer = self.read_exact(GREETING_SIZE)
        assert peer[0] == 0xFF, peer[:12]
        assert peer[10] == 3, peer[:12]
        flags, body = self.read_frame()
        assert flags & FLAG_COMMAND, (flags, body)
        assert body.startswith(b"\x05READY"), (flags, body)

    def close(self) -> None:
        self.sock.close()

    def read_exact(self, size: int) -> bytes:
        while len(self.buffer) < size:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("the XPUB closed the connection")
            self.buffer += chunk
        data = bytes(self.buffer[:size])
        del self.buffer[:size]
        return data

    def read_frame(self) -> tuple[int, bytes]:
        flags = self.read_exact(1)[0]
        size = int.from_bytes(self.read_exact(8 if flags & FLAG_LONG else 1), "big")
        return flags, self.read_exact(size)

    def read_message(self) -> list[bytes]:
        """The next data message; commands (PING...) in between are skipped."""
        parts: list[bytes] = []
        while True:
            flags, body = self.read_frame()
            if flags & FLAG_COMMAND:
                continue
            parts.append(body)
            if not flags & FLAG_MORE:
                return parts

    def subscribe(self, topic: bytes, *, cancel: bool = False) -> None:
        """A data frame ``\\x01topic`` in ZMTP 3.0, a SUBSCRIBE / CANCEL command in 3.1."""
        if self.minor == 0:
            body = (b"\x00" if cancel else b"\x01") + topic
            self.sock.sendall(bytes((0, len(body))) + body)
        else:
            self.sock.sendall(encode_command(b"CANCEL" if cancel else b"SUBSCRIBE", topic))


@pytest.fixture
def raw_peers() -> Any:
    peers: list[RawSubscriber] = []
    yield peers
    for peer in peers:
        peer.close()


@pytest.mark.parametrize("minor", [0, 1], ids=["zmtp30", "zmtp31"])
def test_raw_subscriber(ours: Side, raw_peers: list[RawSubscriber], minor: int) -> None:
    """A ZMTP 3.0 subscriber subscribes with ``\\x01topic`` data frames, a 3.1 one with
    SUBSCRIBE / CANCEL commands: the XPUB's user hears of both in the same form."""
    xpub = ours.socket("XPUB")
    xpub.bind("tcp://127.0.0.1:*")
    peer = RawSubscriber(xpub.last_endpoint.decode(), minor)
    raw_peers.append(peer)
    peer.subscribe(b"nl.")
    assert frames(xpub) == [b"\x01nl."]
    xpub.send_multipart([b"nl.news", b"", b"body"])
    xpub.send(b"br.card")
    xpub.send(b"nl.end")
    assert peer.read_message() == [b"nl.news", b"", b"body"]
    assert peer.read_message() == [b"nl.end"]
    peer.subscribe(b"nl.", cancel=True)
    assert frames(xpub) == [b"\x00nl."]


def test_silent_subscriber_dropped_by_heartbeats(
    ours: Side, raw_peers: list[RawSubscriber]
) -> None:
    """Our XPUB PINGs; a subscriber that never answers is dropped, which cancels its topics."""
    xpub = ours.socket("XPUB")
    xpub.setsockopt(ours.module.HEARTBEAT_IVL, 100)
    xpub.setsockopt(ours.module.HEARTBEAT_TIMEOUT, 300)
    xpub.bind("tcp://127.0.0.1:*")
    peer = RawSubscriber(xpub.last_endpoint.decode(), 1)
    raw_peers.append(peer)
    peer.subscribe(b"nl.")
    assert frames(xpub) == [b"\x01nl."]
    assert frames(xpub) == [b"\x00nl."], "the silent subscriber was not dropped"
    flags, body = peer.read_frame()
    assert flags & FLAG_COMMAND, (flags, body)
    assert body.startswith(b"\x04PING"), (flags, body)
