"""Security interop: PLAIN, CURVE and ZAP between zeropipe ("ours") and libzmq ("theirs").

The security role does not depend on who binds, so each scenario runs with our socket as the
security server (their client) and as the client (their server), with the server binding and
with the client binding, over tcp and ipc. A server asks the ZAP handler of its own Context:
the ``ThreadAuthenticator`` of the server's library, or a raw handler socket driven by the test.

* PLAIN: accepted (User-Id is the username), wrong password, unknown user, address deny and
  allow lists;
* CURVE: allow-any and certificate directories (written by either library), User-Id is the
  client's Z85 key; a wrong server key (ZMTP_CRYPTOGRAPHIC on the server), a client key not
  allowed, an address denied; no handler (Stonehouse) and ZAP_ENFORCE_DOMAIN; traffic inside
  the boxes: multipart and 1 MiB messages, PUB/SUB both ways, REQ/REP, heartbeats, a 255-byte
  routing id;
* NULL with a ZAP domain (the handler decides) and without one (it is not asked);
* ZAP handlers that misbehave (each fault with libzmq's protocol error code), statuses 300 and
  500, no handler, a handler that never answers, metadata from the handler;
* the ZAP request itself, frame by frame, against libzmq's for the same setup.

Refusals are checked on both monitors and by a message, queued before the handshake ended,
that must never arrive. The expected events are libzmq 4.3's: ``ZP_IMPL=pyzmq`` runs the file
with pyzmq on both sides, which checks them against libzmq itself.
"""

from __future__ import annotations

import errno
import importlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import pytest
from deadlines import with_deadline
from pubsub_sync import collect, publish, sync

if TYPE_CHECKING:
    from collections.abc import Iterator

    from netutil import Endpoints

    from .conftest import Harness, Side

pytestmark = [pytest.mark.interop, pytest.mark.timeout(30)]

TIMEOUT_MS = 5000
QUIET_MS = 200
"""How long "nothing (more) happens" is watched for."""
ZAP_ENDPOINT = "inproc://zeromq.zap.01"

# Monitor events and protocol error codes, with libzmq's numbers (zmq.h).
EVENT_NAMES = {
    0x0200: "DISCONNECTED",
    0x0800: "HANDSHAKE_FAILED_NO_DETAIL",
    0x1000: "HANDSHAKE_SUCCEEDED",
    0x2000: "HANDSHAKE_FAILED_PROTOCOL",
    0x4000: "HANDSHAKE_FAILED_AUTH",
}
WATCHED_EVENTS = sum(EVENT_NAMES)
ZMTP_CRYPTOGRAPHIC = 0x11000001
ZAP_MALFORMED_REPLY = 0x20000001
ZAP_BAD_REQUEST_ID = 0x20000002
ZAP_BAD_VERSION = 0x20000003
ZAP_INVALID_STATUS_CODE = 0x20000004
ZAP_INVALID_METADATA = 0x20000005

Event = tuple[str, int]
Options = dict[str, Any]

SUCCEEDED: Event = ("HANDSHAKE_SUCCEEDED", 0)
REFUSED: Event = ("HANDSHAKE_FAILED_AUTH", 400)
NO_DETAIL = "HANDSHAKE_FAILED_NO_DETAIL"
"""A client whose server hung up mid-handshake hears this; its errno is incidental."""

USERS = {"admin": "secret"}
PLAIN_SERVER: Options = {"PLAIN_SERVER": 1}
OTHER_IP = "192.0.2.1"
"""An address no test connects from (TEST-NET-1)."""
ROUTING_ID_255 = bytes(range(1, 256))
"""The longest routing id; libzmq reserves ids that start with a zero byte."""
ONE_MIB = bytes(range(256)) * 4096


def plain_client(username: bytes = b"admin", password: bytes = b"secret") -> Options:
    return {"PLAIN_USERNAME": username, "PLAIN_PASSWORD": password}


def library(side: Side, name: str) -> ModuleType:
    """A submodule of the side's library, by pyzmq's path (``auth.thread``, ``utils.z85``)."""
    return importlib.import_module(f"{side.module.__name__}.{name}")


def frames(sock: Any) -> list[bytes]:
    return [bytes(frame) for frame in sock.recv_multipart()]


# --- monitors, authenticators, linked sockets ------------------------------------------


class Monitor:
    """The handshake outcomes and disconnections of one socket, as its monitor reports them."""

    def __init__(self, side: Side, sock: Any) -> None:
        self._recv = library(side, "utils.monitor").recv_monitor_message
        self.pipe = sock.get_monitor_socket(WATCHED_EVENTS)
        side.sockets.append(self.pipe)  # closed at teardown, after the socket it watches
        self.pipe.linger = 0
        self.seen: list[Event] = []
        """Every event read so far."""

    def next_event(self, timeout_ms: int) -> Event | None:
        """The next event, or None if there is none within ``timeout_ms``."""
        if not self.pipe.poll(max(timeout_ms, 0)):
            return None
        message = self._recv(self.pipe)
        kind = int(message["event"])
        event = (EVENT_NAMES.get(kind, hex(kind)), int(message["value"]))
        self.seen.append(event)
        return event

    def handshake(self) -> Event:
        """How the next handshake ended: success or a failure (disconnections skipped)."""
        deadline = time.monotonic() + TIMEOUT_MS / 1000
        while True:
            event = self.next_event(int((deadline - time.monotonic()) * 1000))
            if event is None:
                pytest.fail(f"no handshake outcome within {TIMEOUT_MS} ms; events: {self.seen}")
            if event[0] != "DISCONNECTED":
                return event

    def during(self, ms: int) -> list[Event]:
        """Every event of the next ``ms`` milliseconds."""
        deadline = time.monotonic() + ms / 1000
        events = []
        while (left := deadline - time.monotonic()) > 0:
            event = self.next_event(int(left * 1000))
            if event is not None:
                events.append(event)
        return events

    def drain(self) -> list[Event]:
        """The events already queued."""
        events = []
        while (event := self.next_event(0)) is not None:
            events.append(event)
        return events


class Authenticators:
    """Starts ThreadAuthenticators of a side's library on its context; stops them all."""

    def __init__(self) -> None:
        self.started: list[Any] = []

    def start(self, side: Side, configure: Callable[[Any], object]) -> None:
        auth = library(side, "auth.thread").ThreadAuthenticator(side.ctx)
        configure(auth)
        self.started.append(auth)
        auth.start()

    def stop(self) -> None:
        for auth in reversed(self.started):
            with_deadline(auth.stop)


@pytest.fixture
def authenticators(harness: Harness) -> Iterator[Authenticators]:
    """Stops the authenticators after every socket is closed (a NULL server whose handler is
    gone admits anyone) and before the contexts terminate (``harness`` tears down later)."""
    owner = Authenticators()
    yield owner
    for side in harness.sides:
        for sock in side.sockets:
            sock.close()
    owner.stop()


@dataclass
class Link:
    """A security client and server, linked, each with its monitor."""

    client: Any
    server: Any
    client_side: Side
    server_side: Side
    client_events: Monitor
    server_events: Monitor


@dataclass
class Net:
    """Where the security client and server live, and which of them binds."""

    client_side: Side
    server_side: Side
    endpoints: Endpoints
    binder: str

    def socket(self, side: Side, kind: str, options: Options) -> tuple[Any, Monitor]:
        sock = side.socket(kind)
        for name, value in options.items():
            sock.setsockopt(getattr(side.module, name), value)
        return sock, Monitor(side, sock)

    def connect(self, client: Any, server: Any) -> None:
        """Connect the side that does not bind. A libzmq server that connects does so once."""
        if self.binder == "server":
            client.connect(self.endpoints.bind(server))
            return
        if self.server_side.module.__name__ == "zmq":
            # Its session keeps the ZAP pipe across reconnections, and libzmq 4.3.5 aborts
            # ("Transport endpoint is not connected (src/zap_client.cpp:50)") when a handshake
            # reaches its ZAP request while that pipe is terminating: socket closed, or
            # handler stopped, mid-handshake. After a refusal it would re-handshake every
            # 100 ms until teardown.
            server.setsockopt(self.server_side.module.RECONNECT_IVL, -1)
        server.connect(self.endpoints.bind(client))

    def link(
        self, client_options: Options, server_options: Options, kinds: tuple[str, str] | None = None
    ) -> Link:
        """A client (DEALER by default) and a server (ROUTER), linked."""
        client_kind, server_kind = kinds or ("DEALER", "ROUTER")
        client, client_events = self.socket(self.client_side, client_kind, client_options)
        server, server_events = self.socket(self.server_side, server_kind, server_options)
        self.connect(client, server)
        return Link(
            client, server, self.client_side, self.server_side, client_events, server_events
        )


@pytest.fixture(params=["ours", "theirs"], ids=["ours-client", "theirs-client"])
def client_is(request: pytest.FixtureRequest) -> str:
    """Whose socket is the security client; the other library's is the server."""
    value: str = request.param
    return value


@pytest.fixture(params=["server", "client"], ids=["server-binds", "client-binds"])
def binder(request: pytest.FixtureRequest) -> str:
    value: str = request.param
    return value


@pytest.fixture
def net(ours: Side, theirs: Side, endpoints: Endpoints, client_is: str, binder: str) -> Net:
    client_side, server_side = (ours, theirs) if client_is == "ours" else (theirs, ours)
    return Net(client_side, server_side, endpoints, binder)


def raw_handler(side: Side, kind: str = "REP") -> Any:
    """A socket of the test's own bound as the side's ZAP handler."""
    handler = side.socket(kind)
    handler.bind(ZAP_ENDPOINT)
    return handler


def zap_reply(
    request: list[bytes],
    status: bytes = b"200",
    text: bytes = b"OK",
    user_id: bytes = b"",
    metadata: bytes = b"",
) -> list[bytes]:
    """The reply to a request (as a REP handler receives it, without the envelope)."""
    return [b"1.0", request[1], status, text, user_id, metadata]


def answer(handler: Any, reply: Callable[[list[bytes]], list[bytes]]) -> list[bytes]:
    """Receive the next request on a REP handler, send ``reply(request)``; return the request."""
    request = frames(handler)
    handler.send_multipart(reply(request))
    return request


def split_envelope(request: list[bytes]) -> tuple[list[bytes], list[bytes]]:
    """A ROUTER handler's request: (routing id and delimiter, the request proper)."""
    assert request[1] == b"", request
    return request[:2], request[2:]


# --- outcomes --------------------------------------------------------------------------


def round_trip(
    client: Any, server: Any, body: list[bytes], user_id: str | None = None
) -> list[Any]:
    """``body`` from a DEALER to a ROUTER and back (reversed); returns the frames (with
    properties) the ROUTER received, routing id first."""
    client.send_multipart(body)
    received = list(server.recv_multipart(copy=False))
    assert [bytes(f) for f in received[1:]] == body
    if user_id is not None:
        assert received[-1].get("User-Id") == user_id
    server.send_multipart([bytes(received[0]), *reversed(body)])
    assert frames(client) == list(reversed(body))
    return received


def accepted(link: Link, user_id: str | None = None) -> list[Any]:
    """Both handshakes succeed and a message goes each way; returns what the server got."""
    assert link.server_events.handshake() == SUCCEEDED
    assert link.client_events.handshake() == SUCCEEDED
    return round_trip(link.client, link.server, [b"hello"], user_id)


def probe(link: Link) -> None:
    """Queue a message on the client that a refused connection must never deliver."""
    try:
        link.client.send(b"must not arrive", link.client_side.module.NOBLOCK)
    except link.client_side.module.Again:
        pass  # a bound client has no pipe before a handshake succeeds


def refused(link: Link, server: Event, client: Event | str | None) -> None:
    """The server reports ``server``; the client ``client`` (an event, or just its kind, or
    None: anything but success); nothing is delivered and no handshake ever succeeds."""
    probe(link)
    assert link.server_events.handshake() == server
    if isinstance(client, str):
        assert link.client_events.handshake()[0] == client
    elif client is not None:
        assert link.client_events.handshake() == client
    nothing_delivered(link)


def nothing_delivered(link: Link) -> None:
    assert not link.server.poll(QUIET_MS), f"delivered: {frames(link.server)!r}"
    link.server_events.drain()
    link.client_events.drain()
    assert SUCCEEDED not in link.server_events.seen, link.server_events.seen
    assert SUCCEEDED not in link.client_events.seen, link.client_events.seen


# --- PLAIN -----------------------------------------------------------------------------


def test_plain_accepted(net: Net, authenticators: Authenticators) -> None:
    authenticators.start(net.server_side, lambda auth: auth.configure_plain("*", USERS))
    link = net.link(plain_client(), PLAIN_SERVER)
    accepted(link, user_id="admin")


@pytest.mark.parametrize(
    ("username", "password"),
    [(b"admin", b"wrong"), (b"nobody", b"secret")],
    ids=["wrong-password", "unknown-user"],
)
def test_plain_refused(
    net: Net, authenticators: Authenticators, username: bytes, password: bytes
) -> None:
    authenticators.start(net.server_side, lambda auth: auth.configure_plain("*", USERS))
    link = net.link(plain_client(username, password), PLAIN_SERVER)
    refused(link, server=REFUSED, client=REFUSED)


@pytest.mark.parametrize("transport", ["tcp"])  # an ipc peer has no IP address
def test_plain_address_denied(net: Net, authenticators: Authenticators) -> None:
    def configure(auth: Any) -> None:
        auth.deny("127.0.0.1")
        auth.configure_plain("*", USERS)

    authenticators.start(net.server_side, configure)
    link = net.link(plain_client(), PLAIN_SERVER)
    refused(link, server=REFUSED, client=REFUSED)


@pytest.mark.parametrize("transport", ["tcp"])
@pytest.mark.parametrize(
    ("allowed", "password", "admitted"),
    [("127.0.0.1", b"secret", True), ("127.0.0.1", b"wrong", False), (OTHER_IP, b"secret", False)],
    ids=["listed", "listed-wrong-password", "not-listed"],
)
def test_plain_address_allow_list(
    net: Net, authenticators: Authenticators, allowed: str, password: bytes, admitted: bool
) -> None:
    """An allowed address still needs the right password; any other address is refused."""

    def configure(auth: Any) -> None:
        auth.allow(allowed)
        auth.configure_plain("*", USERS)

    authenticators.start(net.server_side, configure)
    link = net.link(plain_client(password=password), PLAIN_SERVER)
    if admitted:
        accepted(link, user_id="admin")
    else:
        refused(link, server=REFUSED, client=REFUSED)


# --- CURVE: authentication -------------------------------------------------------------


@dataclass(frozen=True)
class CurveKeys:
    """Z85 key pairs of a CURVE server and client."""

    server_public: bytes
    server_secret: bytes
    client_public: bytes
    client_secret: bytes

    def server(self, **extra: Any) -> Options:
        return {
            "CURVE_SERVER": 1,
            "CURVE_PUBLICKEY": self.server_public,
            "CURVE_SECRETKEY": self.server_secret,
            **extra,
        }

    def client(self, server_key: bytes | None = None, **extra: Any) -> Options:
        return {
            "CURVE_SERVERKEY": server_key or self.server_public,
            "CURVE_PUBLICKEY": self.client_public,
            "CURVE_SECRETKEY": self.client_secret,
            **extra,
        }


def curve_keys(net: Net, client_keys: tuple[bytes, bytes] | None = None) -> CurveKeys:
    """Each side's keys made by its own library (the client's may be given)."""
    server_public, server_secret = net.server_side.module.curve_keypair()
    client_public, client_secret = client_keys or net.client_side.module.curve_keypair()
    return CurveKeys(server_public, server_secret, client_public, client_secret)


def allow_any(auth: Any) -> None:
    auth.configure_curve("*", "*")  # CURVE_ALLOW_ANY in both libraries


def raw_keys(options: Options, side: Side) -> Options:
    """The same options with every CURVE key as 32 raw bytes instead of Z85."""
    decode = library(side, "utils.z85").decode
    return {
        name: decode(value) if name.startswith("CURVE_") and name != "CURVE_SERVER" else value
        for name, value in options.items()
    }


@pytest.mark.parametrize("key_form", ["z85", "raw"])
def test_curve_allow_any(net: Net, authenticators: Authenticators, key_form: str) -> None:
    keys = curve_keys(net)
    authenticators.start(net.server_side, allow_any)
    client_options, server_options = keys.client(), keys.server()
    if key_form == "raw":
        client_options = raw_keys(client_options, net.client_side)
        server_options = raw_keys(server_options, net.server_side)
    link = net.link(client_options, server_options)
    accepted(link, user_id=keys.client_public.decode())


cert_makers = pytest.mark.parametrize(
    "cert_maker", ["ours", "theirs"], ids=["our-certs", "their-certs"]
)


@cert_makers
def test_curve_certificate_directory(
    net: Net,
    authenticators: Authenticators,
    ours: Side,
    theirs: Side,
    tmp_path: Path,
    cert_maker: str,
) -> None:
    """The client's certificate, written by either library, is in the allowed directory."""
    maker = ours if cert_maker == "ours" else theirs
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    _, secret_file = library(maker, "auth").create_certificates(str(allowed), "client")
    public, secret = library(net.client_side, "auth").load_certificate(secret_file)
    keys = curve_keys(net, (public, secret))
    authenticators.start(net.server_side, lambda auth: auth.configure_curve("*", str(allowed)))
    link = net.link(keys.client(), keys.server())
    accepted(link, user_id=public.decode())


@cert_makers
def test_curve_client_key_not_allowed(
    net: Net,
    authenticators: Authenticators,
    ours: Side,
    theirs: Side,
    tmp_path: Path,
    cert_maker: str,
) -> None:
    maker = ours if cert_maker == "ours" else theirs
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    library(maker, "auth").create_certificates(str(allowed), "someone-else")
    keys = curve_keys(net)
    authenticators.start(net.server_side, lambda auth: auth.configure_curve("*", str(allowed)))
    link = net.link(keys.client(), keys.server())
    refused(link, server=REFUSED, client=REFUSED)


def test_curve_wrong_server_key(net: Net, authenticators: Authenticators) -> None:
    """The server cannot open the client's HELLO: a cryptographic error, no ERROR sent."""
    keys = curve_keys(net)
    other_public, _ = net.server_side.module.curve_keypair()
    authenticators.start(net.server_side, allow_any)
    link = net.link(keys.client(server_key=other_public), keys.server())
    refused(link, server=("HANDSHAKE_FAILED_PROTOCOL", ZMTP_CRYPTOGRAPHIC), client=NO_DETAIL)


@pytest.mark.parametrize("transport", ["tcp"])  # an ipc peer has no IP address
def test_curve_address_denied(net: Net, authenticators: Authenticators) -> None:
    def configure(auth: Any) -> None:
        auth.deny("127.0.0.1")
        allow_any(auth)

    keys = curve_keys(net)
    authenticators.start(net.server_side, configure)
    link = net.link(keys.client(), keys.server())
    refused(link, server=REFUSED, client=REFUSED)


def test_curve_without_handler_is_unauthenticated(net: Net) -> None:
    """No ZAP handler bound: CURVE still encrypts, and admits any client ("Stonehouse")."""
    keys = curve_keys(net)
    link = net.link(keys.client(), keys.server())
    accepted(link)


@pytest.mark.parametrize("binder", ["server"])
@pytest.mark.parametrize("transport", ["tcp"])
def test_curve_without_handler_has_no_user_id(net: Net) -> None:
    """Nobody vouched for the client: its messages carry no User-Id (pyzmq: EINVAL)."""
    keys = curve_keys(net)
    link = net.link(keys.client(), keys.server())
    received = accepted(link)
    with pytest.raises(net.server_side.module.ZMQError) as info:
        received[-1].get("User-Id")
    assert info.value.errno == errno.EINVAL


def test_curve_enforced_domain_without_handler_is_refused(net: Net) -> None:
    keys = curve_keys(net)
    server_options = keys.server(ZAP_DOMAIN=b"global", ZAP_ENFORCE_DOMAIN=1)
    link = net.link(keys.client(), server_options)
    refused(link, server=("HANDSHAKE_FAILED_NO_DETAIL", errno.EFAULT), client=None)


@pytest.mark.parametrize("handler", ["none", "refusing"], ids=["no-handler", "refusing-handler"])
def test_curve_enforce_without_domain_is_unauthenticated(
    net: Net, authenticators: Authenticators, handler: str
) -> None:
    """ZAP_ENFORCE_DOMAIN without a ZAP domain: libzmq skips ZAP altogether (Stonehouse),
    so a handler that would refuse the client is not asked either."""
    if handler == "refusing":
        authenticators.start(net.server_side, lambda auth: auth.allow(OTHER_IP))
    keys = curve_keys(net)
    link = net.link(keys.client(), keys.server(ZAP_ENFORCE_DOMAIN=1))
    accepted(link)


# --- CURVE: traffic inside the boxes -----------------------------------------------------


def test_curve_multipart_and_large_messages(net: Net) -> None:
    keys = curve_keys(net)
    link = net.link(keys.client(), keys.server())
    accepted(link)
    for body in (
        [b"one", b"", b"three", b"x" * 300],
        [ONE_MIB],
        [b"head", ONE_MIB, b"", ONE_MIB[::-1]],
        [b""],
    ):
        round_trip(link.client, link.server, body)


@pytest.mark.parametrize("curve_server", ["pub", "sub"], ids=["pub-serves", "sub-serves"])
def test_curve_pubsub(net: Net, curve_server: str) -> None:
    """Subscriptions travel inside the boxes too: only subscribed topics arrive."""
    keys = curve_keys(net)
    kinds = ("SUB", "PUB") if curve_server == "pub" else ("PUB", "SUB")
    link = net.link(keys.client(), keys.server(), kinds)
    if curve_server == "pub":
        pub, sub, sub_side = link.server, link.client, link.client_side
    else:
        pub, sub, sub_side = link.client, link.server, link.server_side
    sub.setsockopt(sub_side.module.SUBSCRIBE, b"news.")
    sync([pub], [(sub, [b"news."])])
    publish(
        pub,
        [
            [b"news.1"],
            [b"sport.1"],
            [b"news.2", b"", b"body"],
            [b"news.3", ONE_MIB],
            [b"news.end"],
        ],
    )
    assert collect(sub, b"news.end") == [
        [b"news.1"],
        [b"news.2", b"", b"body"],
        [b"news.3", ONE_MIB],
    ]


def test_curve_req_rep(net: Net) -> None:
    keys = curve_keys(net)
    link = net.link(keys.client(), keys.server(), ("REQ", "REP"))
    for i in range(10):
        request = [b"request %d" % i, b"", b"part" * i]
        link.client.send_multipart(request)
        assert frames(link.server) == request
        link.server.send_multipart([b"reply %d" % i])
        assert frames(link.client) == [b"reply %d" % i]


@pytest.mark.parametrize("pinger", ["client", "server"], ids=["client-pings", "server-pings"])
def test_curve_heartbeats(net: Net, pinger: str) -> None:
    """PING and PONG travel as commands inside MESSAGE boxes. The pinger gives up 300 ms
    after a PING that gets no answer and asks the peer, by the PING's TTL, to give up when
    the pings stop; for a second the link stays up, then carries messages."""
    keys = curve_keys(net)
    heartbeats = {"HEARTBEAT_IVL": 100, "HEARTBEAT_TIMEOUT": 300, "HEARTBEAT_TTL": 500}
    client_options = keys.client(**(heartbeats if pinger == "client" else {}))
    server_options = keys.server(**(heartbeats if pinger == "server" else {}))
    link = net.link(client_options, server_options)
    assert link.server_events.handshake() == SUCCEEDED
    assert link.client_events.handshake() == SUCCEEDED
    assert link.server_events.during(1000) == []
    assert link.client_events.drain() == []
    round_trip(link.client, link.server, [b"still", b"here"])


def test_curve_longest_routing_id(net: Net) -> None:
    keys = curve_keys(net)
    link = net.link(keys.client(ROUTING_ID=ROUTING_ID_255), keys.server())
    received = accepted(link)
    assert bytes(received[0]) == ROUTING_ID_255


# --- NULL with ZAP -----------------------------------------------------------------------


@pytest.mark.parametrize("transport", ["tcp"])  # an ipc peer has no IP address
def test_null_zap_domain_address_denied(net: Net, authenticators: Authenticators) -> None:
    authenticators.start(net.server_side, lambda auth: auth.deny("127.0.0.1"))
    link = net.link({}, {"ZAP_DOMAIN": b"global"})
    refused(link, server=REFUSED, client=REFUSED)


def test_null_zap_domain_not_allowed(net: Net, authenticators: Authenticators) -> None:
    authenticators.start(net.server_side, lambda auth: auth.allow(OTHER_IP))
    link = net.link({}, {"ZAP_DOMAIN": b"global"})
    refused(link, server=REFUSED, client=REFUSED)


@pytest.mark.parametrize("enforce", [0, 1], ids=["plain-null", "enforce-domain"])
def test_null_without_zap_domain_does_not_ask(
    net: Net, authenticators: Authenticators, enforce: int
) -> None:
    """The handler would refuse the client: that it is accepted shows nobody asked."""
    authenticators.start(net.server_side, lambda auth: auth.allow(OTHER_IP))
    link = net.link({}, {"ZAP_ENFORCE_DOMAIN": enforce})
    accepted(link)


# --- ZAP handlers that misbehave ---------------------------------------------------------


MALFORMED_REPLIES: dict[str, tuple[Callable[[list[bytes]], list[bytes]], int]] = {
    "version-2.0": (lambda r: [b"2.0", *zap_reply(r)[1:]], ZAP_BAD_VERSION),
    "wrong-request-id": (lambda r: [b"1.0", r[1] + b"x", *zap_reply(r)[2:]], ZAP_BAD_REQUEST_ID),
    "status-invalid": (lambda r: zap_reply(r, status=b"invalid"), ZAP_INVALID_STATUS_CODE),
    "extra-frame": (lambda r: [*zap_reply(r), b"extra"], ZAP_MALFORMED_REPLY),
    "missing-frame": (lambda r: zap_reply(r)[:-1], ZAP_MALFORMED_REPLY),
    "bad-metadata": (lambda r: zap_reply(r, metadata=b"\x05Hello\x00\x00"), ZAP_INVALID_METADATA),
}


@pytest.mark.parametrize("fault", list(MALFORMED_REPLIES))
def test_zap_malformed_reply(net: Net, fault: str) -> None:
    """The server reports the fault's ZAP_* code and hangs up without an ERROR."""
    handler = raw_handler(net.server_side)
    link = net.link(plain_client(), PLAIN_SERVER)
    reply, code = MALFORMED_REPLIES[fault]
    answer(handler, reply)
    refused(link, server=("HANDSHAKE_FAILED_PROTOCOL", code), client=NO_DETAIL)


def test_zap_status_300_keeps_the_client_waiting(net: Net) -> None:
    """A temporary failure: the server sends the client no ERROR, so the client learns no
    status; libzmq leaves the handshake hanging (now and then it hangs up instead)."""
    handler = raw_handler(net.server_side)
    link = net.link(plain_client(), PLAIN_SERVER)
    answer(handler, lambda r: zap_reply(r, status=b"300", text=b"try later"))
    probe(link)
    assert link.server_events.handshake() == ("HANDSHAKE_FAILED_AUTH", 300)
    heard = [kind for kind, _ in link.client_events.during(300)]
    assert "HANDSHAKE_FAILED_AUTH" not in heard, link.client_events.seen
    nothing_delivered(link)


def test_zap_status_500(net: Net) -> None:
    handler = raw_handler(net.server_side)
    link = net.link(plain_client(), PLAIN_SERVER)
    answer(handler, lambda r: zap_reply(r, status=b"500", text=b"internal error"))
    internal = ("HANDSHAKE_FAILED_AUTH", 500)
    refused(link, server=internal, client=internal)


def test_plain_without_handler(net: Net) -> None:
    """PLAIN cannot work without a handler: the server reports EFAULT."""
    link = net.link(plain_client(), PLAIN_SERVER)
    refused(link, server=("HANDSHAKE_FAILED_NO_DETAIL", errno.EFAULT), client=None)


def test_zap_handler_that_never_answers(net: Net) -> None:
    """One client's request stays unanswered: another client is served meanwhile, and the
    server socket and its context still close."""
    handler = raw_handler(net.server_side, "ROUTER")
    server, server_events = net.socket(net.server_side, "ROUTER", PLAIN_SERVER)
    stuck, stuck_events = net.socket(net.client_side, "DEALER", plain_client(b"stuck", b"pw"))
    net.connect(stuck, server)
    envelope, request = split_envelope(frames(handler))
    assert request[-2:] == [b"stuck", b"pw"]
    good, good_events = net.socket(net.client_side, "DEALER", plain_client(b"good", b"pw"))
    net.connect(good, server)
    while True:
        envelope, request = split_envelope(frames(handler))
        if request[-2] == b"good":
            break
    handler.send_multipart([*envelope, *zap_reply(request, user_id=b"good")])
    assert good_events.handshake() == SUCCEEDED
    assert server_events.handshake() == SUCCEEDED
    round_trip(good, server, [b"hello"], user_id="good")
    assert SUCCEEDED not in stuck_events.drain()
    with_deadline(server.close, 5.0)  # while the request of "stuck" is still pending
    net.server_side.close()  # the handler, then the context (raises if term() hangs)


def test_zap_metadata_reaches_the_messages(net: Net) -> None:
    handler = raw_handler(net.server_side)
    link = net.link(plain_client(), PLAIN_SERVER)
    metadata = b"\x05Hello\x00\x00\x00\x05World"
    answer(handler, lambda r: zap_reply(r, user_id=b"alice", metadata=metadata))
    received = accepted(link, user_id="alice")
    assert received[-1].get("Hello") == "World"


# --- the ZAP request ---------------------------------------------------------------------


REQUEST_CASES = ["NULL", "PLAIN", "PLAIN-defaults", "CURVE"]
"""A mechanism; "-defaults": no ZAP_DOMAIN and no ROUTING_ID on the server."""


@pytest.mark.parametrize("case", REQUEST_CASES)
def test_zap_request_matches_libzmq(
    ours: Side, theirs: Side, endpoints: Endpoints, binder: str, case: str
) -> None:
    """Our server's request equals libzmq's, frame by frame, for the same client and setup."""
    mechanism = case.split("-")[0]
    server_public, server_secret = theirs.module.curve_keypair()
    client_public, client_secret = theirs.module.curve_keypair()
    keys = CurveKeys(server_public, server_secret, client_public, client_secret)
    client_options, server_options = {
        "NULL": ({}, {}),
        "PLAIN": (plain_client(b"user", b"password"), PLAIN_SERVER),
        "CURVE": (keys.client(), keys.server()),
    }[mechanism]
    if case != "PLAIN-defaults":
        server_options = {**server_options, "ZAP_DOMAIN": b"global", "ROUTING_ID": b"srv"}

    requests = {}
    for server_side, client_side in ((ours, theirs), (theirs, ours)):
        handler = raw_handler(server_side)
        link = Net(client_side, server_side, endpoints, binder).link(client_options, server_options)
        requests[server_side.label] = answer(handler, zap_reply)
        assert link.server_events.handshake() == SUCCEEDED

    request = requests["theirs"]
    assert requests["ours"] == request
    credentials = {
        "NULL": [],
        "PLAIN": [b"user", b"password"],
        "CURVE": [library(theirs, "utils.z85").decode(client_public)],
    }[mechanism]
    domain, identity = (b"", b"") if case == "PLAIN-defaults" else (b"global", b"srv")
    assert request[0] == b"1.0"
    assert request[2] == domain
    assert request[4:] == [identity, mechanism.encode(), *credentials]
    if endpoints.transport == "tcp":
        assert request[3] == b"127.0.0.1"
