"""The ZAP handler (RFC 27): Authenticator, ThreadAuthenticator, AsyncioAuthenticator.

The tests speak ZAP themselves: a REQ socket on the authenticator's Context connects to
``inproc://zeromq.zap.01``, sends handcrafted requests and checks the replies frame by frame.
The policy is pyzmq's (``zmq.auth``), and ``test_same_replies_as_pyzmq`` runs one table of
configurations and requests through pyzmq's own ThreadAuthenticator (on libzmq) and ours.
Keys and certificates come from pyzmq (libzmq), independently of zeropipe's own.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import struct
import threading
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import zmq
import zmq.auth
import zmq.auth.thread
import zmq.utils.monitor
from deadlines import term_with_deadline, with_deadline
from zmq.utils import z85 as pyzmq_z85

import zeropipe
import zeropipe.asyncio as zaio
from zeropipe.auth import (
    CURVE_ALLOW_ANY,
    Authenticator,
    ThreadAuthenticator,
    ZapRequest,
    ZapVerdict,
)
from zeropipe.auth.asyncio import AsyncioAuthenticator
from zeropipe.auth.certs import create_certificates

ZAP = "inproc://zeromq.zap.01"
TIMEOUT_MS = 5000
WAIT_S = 5.0
IP = b"127.0.0.1"
OTHER_IP = b"192.168.0.7"


def request(
    mechanism: bytes = b"NULL",
    *credentials: bytes,
    domain: bytes = b"",
    address: bytes = IP,
    request_id: bytes = b"1",
    identity: bytes = b"server",
) -> list[bytes]:
    return [b"1.0", request_id, domain, address, identity, mechanism, *credentials]


def reply(
    code: bytes, text: bytes, user_id: bytes = b"", request_id: bytes = b"1", metadata: bytes = b""
) -> list[bytes]:
    return [b"1.0", request_id, code, text, user_id, metadata]


def ok(user_id: bytes, request_id: bytes = b"1") -> list[bytes]:
    return reply(b"200", b"OK", user_id, request_id)


def no(text: bytes, request_id: bytes = b"1") -> list[bytes]:
    return reply(b"400", text, b"", request_id)


def decode_metadata(data: bytes) -> dict[bytes, bytes]:
    """ZMTP metadata: name length (1 byte), name, value length (4 bytes, big-endian), value."""
    props: dict[bytes, bytes] = {}
    pos = 0
    while pos < len(data):
        size = data[pos]
        name = data[pos + 1 : pos + 1 + size]
        pos += 1 + size
        (vsize,) = struct.unpack(">I", data[pos : pos + 4])
        pos += 4
        props[name] = data[pos : pos + vsize]
        assert len(props[name]) == vsize, "value overruns the frame"
        pos += vsize
    return props


def curve_key() -> tuple[bytes, bytes]:
    """A fresh CURVE public key from libzmq: (raw 32 bytes, Z85)."""
    public, _secret = zmq.curve_keypair()
    return pyzmq_z85.decode(public), public


def ask(ctx: Any, frames: list[bytes], module: Any = zeropipe, **kwargs: Any) -> list[bytes]:
    """Send one ZAP request from a fresh (blocking) REQ on ``ctx``; return the reply."""
    req = ctx.socket(module.REQ, **kwargs)
    try:
        req.linger = 0
        req.rcvtimeo = TIMEOUT_MS
        req.sndtimeo = TIMEOUT_MS
        req.connect(ZAP)
        req.send_multipart(frames)
        return [bytes(f) for f in req.recv_multipart()]
    finally:
        req.close()


@pytest.fixture
def ctx() -> Iterator[zeropipe.Context]:
    context = zeropipe.Context()
    yield context
    with_deadline(lambda: context.destroy(linger=0))


@pytest.fixture
def auth(ctx: zeropipe.Context) -> Iterator[ThreadAuthenticator]:
    authenticator = ThreadAuthenticator(ctx)
    authenticator.start()
    yield authenticator
    with_deadline(authenticator.stop)
    assert not authenticator.is_alive()


@pytest.fixture
def certs(tmp_path: Path) -> dict[str, bytes]:
    """Directories of public certificates, made by libzmq (pyzmq) and by zeropipe.

    Returns the Z85 public key of each client: "theirs" and "ours" are in ``tmp_path/allowed``,
    "stranger" in ``tmp_path/others``.
    """
    allowed, others = tmp_path / "allowed", tmp_path / "others"
    allowed.mkdir()
    others.mkdir()
    theirs_public, _ = zmq.auth.create_certificates(str(allowed), "theirs")
    ours_public, _ = create_certificates(allowed, "ours")
    stranger_public, _ = zmq.auth.create_certificates(str(others), "stranger")
    return {
        name: zmq.auth.load_certificate(path)[0]
        for name, path in (
            ("theirs", theirs_public),
            ("ours", ours_public),
            ("stranger", stranger_public),
        )
    }


# -- NULL and the address lists ---------------------------------------------------------------


def test_null_is_allowed_when_nothing_is_configured(ctx: Any, auth: ThreadAuthenticator) -> None:
    assert ask(ctx, request(request_id=b"abc")) == ok(b"anonymous", b"abc")


def test_allow_list_admits_listed_addresses_only(ctx: Any, auth: ThreadAuthenticator) -> None:
    auth.allow("127.0.0.1", "10.0.0.1")
    assert ask(ctx, request()) == ok(b"anonymous")
    assert ask(ctx, request(address=b"10.0.0.1")) == ok(b"anonymous")
    assert ask(ctx, request(address=OTHER_IP)) == no(b"Address not allowed")


def test_deny_list_refuses_listed_addresses_only(ctx: Any, auth: ThreadAuthenticator) -> None:
    auth.deny(OTHER_IP.decode())
    assert ask(ctx, request(address=OTHER_IP)) == no(b"Address denied")
    assert ask(ctx, request()) == ok(b"anonymous")


def test_allow_and_deny_are_exclusive(ctx: Any) -> None:
    first = Authenticator(ctx)
    first.allow("127.0.0.1")
    with pytest.raises(ValueError, match="allow or deny"):
        first.deny("10.0.0.1")
    second = Authenticator(ctx)
    second.deny("10.0.0.1")
    with pytest.raises(ValueError, match="allow or deny"):
        second.allow("127.0.0.1")


def test_unknown_mechanism_is_refused_unless_the_address_is_allowed(
    ctx: Any, auth: ThreadAuthenticator
) -> None:
    assert ask(ctx, request(b"FOO")) == no(b"NO ACCESS")
    auth.allow("127.0.0.1")
    assert ask(ctx, request(b"FOO")) == ok(b"anonymous")


# -- PLAIN -------------------------------------------------------------------------------------


def test_plain_checks_username_and_password(ctx: Any, auth: ThreadAuthenticator) -> None:
    auth.configure_plain("*", {"admin": "secret", "ünï": "cødé"})
    assert ask(ctx, request(b"PLAIN", b"admin", b"secret")) == ok(b"admin")
    assert ask(ctx, request(b"PLAIN", "ünï".encode(), "cødé".encode())) == ok("ünï".encode())
    assert ask(ctx, request(b"PLAIN", b"admin", b"wrong")) == no(b"Invalid password")
    assert ask(ctx, request(b"PLAIN", b"nobody", b"secret")) == no(b"Invalid username")


def test_plain_without_passwords_refuses(ctx: Any, auth: ThreadAuthenticator) -> None:
    assert ask(ctx, request(b"PLAIN", b"admin", b"secret")) == no(b"No passwords defined")
    auth.configure_plain("*", {})  # an empty mapping configures nothing, as in pyzmq
    assert ask(ctx, request(b"PLAIN", b"admin", b"secret")) == no(b"No passwords defined")


def test_plain_domains(ctx: Any, auth: ThreadAuthenticator) -> None:
    """ "*" serves requests naming no domain; a named domain only requests naming it."""
    auth.configure_plain("*", {"admin": "star"})
    auth.configure_plain("global", {"admin": "named"})
    assert ask(ctx, request(b"PLAIN", b"admin", b"star")) == ok(b"admin")
    assert ask(ctx, request(b"PLAIN", b"admin", b"named", domain=b"global")) == ok(b"admin")
    assert ask(ctx, request(b"PLAIN", b"admin", b"star", domain=b"global")) == no(
        b"Invalid password"
    )
    assert ask(ctx, request(b"PLAIN", b"admin", b"star", domain=b"other")) == no(b"Invalid domain")


def test_plain_password_is_checked_even_for_allowed_addresses(
    ctx: Any, auth: ThreadAuthenticator
) -> None:
    auth.allow("127.0.0.1")
    auth.configure_plain("*", {"admin": "secret"})
    assert ask(ctx, request(b"PLAIN", b"admin", b"wrong")) == no(b"Invalid password")
    assert ask(ctx, request(b"PLAIN", b"admin", b"secret")) == ok(b"admin")
    assert ask(ctx, request(b"PLAIN", b"admin", b"secret", address=OTHER_IP)) == no(
        b"Address not allowed"
    )


def test_plain_passwords_are_read_at_each_request(ctx: Any, auth: ThreadAuthenticator) -> None:
    passwords = {"admin": "secret"}
    auth.configure_plain("*", passwords)
    assert ask(ctx, request(b"PLAIN", b"bob", b"pw")) == no(b"Invalid username")
    passwords["bob"] = "pw"
    assert ask(ctx, request(b"PLAIN", b"bob", b"pw")) == ok(b"bob")


def test_wrong_credential_count_is_refused(ctx: Any, auth: ThreadAuthenticator) -> None:
    auth.configure_plain("*", {"admin": "secret"})
    auth.configure_curve("*", CURVE_ALLOW_ANY)
    assert ask(ctx, request(b"PLAIN", b"admin")) == no(b"Invalid credentials")
    assert ask(ctx, request(b"PLAIN", b"admin", b"secret", b"x")) == no(b"Invalid credentials")
    assert ask(ctx, request(b"CURVE")) == no(b"Invalid credentials")
    auth.deny("127.0.0.1")  # the address is checked first
    assert ask(ctx, request(b"PLAIN", b"admin")) == no(b"Address denied")


# -- CURVE -------------------------------------------------------------------------------------


def test_curve_refuses_until_configured(ctx: Any, auth: ThreadAuthenticator) -> None:
    raw, _ = curve_key()
    assert ask(ctx, request(b"CURVE", raw)) == no(b"Unknown domain")


def test_curve_allow_any(ctx: Any, auth: ThreadAuthenticator) -> None:
    auth.configure_curve(domain="*", location=CURVE_ALLOW_ANY)
    raw, z85 = curve_key()
    assert ask(ctx, request(b"CURVE", raw)) == ok(z85)
    assert ask(ctx, request(b"CURVE", raw, domain=b"anything")) == ok(z85)


@pytest.mark.parametrize("maker", ["theirs", "ours"])
def test_curve_certificate_directory(
    ctx: Any, auth: ThreadAuthenticator, certs: dict[str, bytes], tmp_path: Path, maker: str
) -> None:
    auth.configure_curve("*", tmp_path / "allowed")
    z85 = certs[maker]
    raw = pyzmq_z85.decode(z85)
    assert ask(ctx, request(b"CURVE", raw)) == ok(z85)
    assert ask(ctx, request(b"CURVE", pyzmq_z85.decode(certs["stranger"]))) == no(b"Unknown key")
    assert ask(ctx, request(b"CURVE", raw, domain=b"other")) == no(b"Unknown domain")


def test_curve_certificates_per_domain(
    ctx: Any, auth: ThreadAuthenticator, certs: dict[str, bytes], tmp_path: Path
) -> None:
    auth.configure_curve("*", tmp_path / "allowed")
    auth.configure_curve("partners", tmp_path / "others")
    stranger = pyzmq_z85.decode(certs["stranger"])
    theirs = pyzmq_z85.decode(certs["theirs"])
    assert ask(ctx, request(b"CURVE", stranger, domain=b"partners")) == ok(certs["stranger"])
    assert ask(ctx, request(b"CURVE", theirs, domain=b"partners")) == no(b"Unknown key")
    assert ask(ctx, request(b"CURVE", theirs)) == ok(certs["theirs"])


def test_curve_unreadable_directory_leaves_the_domain_unconfigured(
    ctx: Any, auth: ThreadAuthenticator, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="zeropipe.auth"):
        auth.configure_curve("*", tmp_path / "missing")
    assert "Failed to load CURVE certs" in caplog.text
    raw, _ = curve_key()
    assert ask(ctx, request(b"CURVE", raw)) == no(b"Unknown domain")


class Provider:
    """A credentials provider accepting a set of Z85 keys; it remembers what it was asked."""

    def __init__(self, keys: set[bytes]) -> None:
        self.keys = keys
        self.asked: list[tuple[str, bytes]] = []

    def callback(self, domain: str, key: bytes) -> bool:
        self.asked.append((domain, key))
        return key in self.keys


class AsyncProvider(Provider):
    async def callback(self, domain: str, key: bytes) -> bool:  # type: ignore[override]
        await asyncio.sleep(0)
        return super().callback(domain, key)


@pytest.mark.parametrize("provider_class", [Provider, AsyncProvider])
def test_curve_credentials_provider(
    ctx: Any, auth: ThreadAuthenticator, provider_class: type[Provider]
) -> None:
    (good, good_z85), (bad, bad_z85) = curve_key(), curve_key()
    provider = provider_class({good_z85})
    auth.configure_curve_callback("*", credentials_provider=provider)
    assert ask(ctx, request(b"CURVE", good)) == ok(good_z85)
    assert ask(ctx, request(b"CURVE", bad)) == no(b"Unknown key")
    assert ask(ctx, request(b"CURVE", good, domain=b"other")) == no(b"Unknown domain")
    assert provider.asked == [("*", good_z85), ("*", bad_z85)]


def test_curve_providers_take_over_from_certificates(
    ctx: Any, auth: ThreadAuthenticator, certs: dict[str, bytes], tmp_path: Path
) -> None:
    auth.configure_curve("*", tmp_path / "allowed")
    auth.configure_curve_callback("named", Provider(set()))
    theirs = pyzmq_z85.decode(certs["theirs"])
    assert ask(ctx, request(b"CURVE", theirs)) == no(b"Unknown domain")


def test_curve_user_id_can_be_overridden(ctx: Any) -> None:
    class Named(ThreadAuthenticator):
        def curve_user_id(self, client_public_key: bytes) -> str:
            return "key-of-" + client_public_key[:2].hex()

    authenticator = Named(ctx)
    authenticator.configure_curve("*", CURVE_ALLOW_ANY)
    authenticator.start()
    try:
        raw, _ = curve_key()
        assert ask(ctx, request(b"CURVE", raw)) == ok(b"key-of-" + raw[:2].hex().encode())
    finally:
        with_deadline(authenticator.stop)


# -- the generic callback ----------------------------------------------------------------------


def test_callback_verdict_with_user_id_and_metadata(ctx: Any, auth: ThreadAuthenticator) -> None:
    seen: list[ZapRequest] = []

    def decide(req: ZapRequest) -> ZapVerdict:
        seen.append(req)
        return ZapVerdict(200, "Welcome", "alice", {"Role": "admin", "Blob": b"\x00\xff"})

    auth.configure_callback(decide)
    got = ask(ctx, request(b"PLAIN", b"al", b"pw", domain=b"dom", request_id=b"r7"))
    assert got[:5] == [b"1.0", b"r7", b"200", b"Welcome", b"alice"]
    assert decode_metadata(got[5]) == {b"Role": b"admin", b"Blob": b"\x00\xff"}
    assert len(seen) == 1
    req = seen[0]
    assert (req.request_id, req.domain, req.address, req.identity, req.mechanism) == (
        b"r7",
        "dom",
        "127.0.0.1",
        b"server",
        "PLAIN",
    )
    assert (req.username, req.password, req.public_key) == ("al", "pw", None)
    assert req.credentials == (b"al", b"pw")
    assert "pw" not in repr(req)


def test_callback_sees_curve_keys(ctx: Any, auth: ThreadAuthenticator) -> None:
    seen: list[ZapRequest] = []
    auth.configure_callback(lambda req: seen.append(req) or True)
    raw, z85 = curve_key()
    assert ask(ctx, request(b"CURVE", raw)) == ok(z85)  # default user id: curve_user_id
    assert (seen[0].public_key, seen[0].public_key_z85, seen[0].username) == (raw, z85, None)


def test_callback_booleans_and_fallthrough(ctx: Any, auth: ThreadAuthenticator) -> None:
    answers: dict[bytes, bool | None] = {b"yes": True, b"no": False, b"pass": None}
    auth.configure_callback(lambda req: answers[req.request_id])
    auth.configure_plain("*", {"admin": "secret"})
    assert ask(ctx, request(b"PLAIN", b"admin", b"x", request_id=b"yes")) == ok(b"admin", b"yes")
    assert ask(ctx, request(b"NULL", request_id=b"no")) == no(b"NO ACCESS", b"no")
    assert ask(ctx, request(b"PLAIN", b"admin", b"x", request_id=b"pass")) == no(
        b"Invalid password", b"pass"
    )
    assert ask(ctx, request(b"NULL", request_id=b"pass")) == ok(b"anonymous", b"pass")
    auth.configure_callback(None)
    assert ask(ctx, request(b"NULL", request_id=b"no")) == ok(b"anonymous", b"no")


def test_callback_other_status_codes(ctx: Any, auth: ThreadAuthenticator) -> None:
    verdicts = {
        b"300": ZapVerdict(300, "Try later", user_id="ignored", metadata={"X": "ignored"}),
        b"500": ZapVerdict.deny("Database down", 500),
        b"400": ZapVerdict.deny(),
        b"200": ZapVerdict.allow(user_id="u", metadata={"A": "1"}),
    }
    auth.configure_callback(lambda req: verdicts[req.request_id])
    assert ask(ctx, request(request_id=b"300")) == reply(b"300", b"Try later", b"", b"300")
    assert ask(ctx, request(request_id=b"500")) == reply(b"500", b"Database down", b"", b"500")
    assert ask(ctx, request(request_id=b"400")) == no(b"NO ACCESS", b"400")
    got = ask(ctx, request(request_id=b"200"))
    assert got[:5] == [b"1.0", b"200", b"200", b"OK", b"u"]
    assert decode_metadata(got[5]) == {b"A": b"1"}


def test_async_callback(ctx: Any, auth: ThreadAuthenticator) -> None:
    async def decide(req: ZapRequest) -> ZapVerdict:
        await asyncio.sleep(0)
        return ZapVerdict.allow(user_id=req.address)

    auth.configure_callback(decide)
    assert ask(ctx, request()) == ok(b"127.0.0.1")


def test_failing_callback_is_an_internal_error(
    ctx: Any, auth: ThreadAuthenticator, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(req: ZapRequest) -> bool:
        raise RuntimeError("boom")

    auth.configure_callback(broken)
    with caplog.at_level(logging.ERROR, logger="zeropipe.auth"):
        assert ask(ctx, request()) == reply(b"500", b"Internal error")
        auth.configure_callback(lambda req: "not a verdict")  # type: ignore[arg-type, return-value]
        assert ask(ctx, request()) == reply(b"500", b"Internal error")
    assert "boom" in caplog.text
    auth.configure_callback(None)
    assert ask(ctx, request()) == ok(b"anonymous")  # the handler is still serving


def test_callback_is_not_asked_about_malformed_requests(
    ctx: Any, auth: ThreadAuthenticator
) -> None:
    auth.configure_callback(lambda req: True)
    assert ask(ctx, request(b"PLAIN", b"admin")) == no(b"Invalid credentials")
    assert ask(ctx, [b"2.0", *request()[1:]]) == no(b"Invalid version")


def test_verdict_validation() -> None:
    with pytest.raises(ValueError, match="status code"):
        ZapVerdict(201)
    with pytest.raises(ValueError, match="metadata name"):
        ZapVerdict(metadata={"": "x"})
    with pytest.raises(ValueError, match="metadata name"):
        ZapVerdict(metadata={"x" * 256: "x"})
    with pytest.raises(ValueError, match="metadata name"):
        ZapVerdict(metadata={"né": "x"})


# -- malformed requests ------------------------------------------------------------------------


def test_bad_version(ctx: Any, auth: ThreadAuthenticator) -> None:
    assert ask(ctx, [b"0.9", *request(request_id=b"v")[1:]]) == no(b"Invalid version", b"v")


@pytest.mark.parametrize("count", [2, 3, 4, 5])
def test_too_few_frames(ctx: Any, auth: ThreadAuthenticator, count: int) -> None:
    assert ask(ctx, request(request_id=b"short")[:count]) == no(b"Not enough frames", b"short")


def test_single_frame_request_gets_an_answer_and_the_handler_goes_on(
    ctx: Any, auth: ThreadAuthenticator
) -> None:
    """No request id to echo: pyzmq leaves it unanswered (and its REP stalls for good)."""
    assert ask(ctx, [b"1.0"]) == no(b"Not enough frames", b"")
    assert ask(ctx, request()) == ok(b"anonymous")


# -- running: the base class, the thread, asyncio ----------------------------------------------


def test_base_authenticator_driven_by_hand(ctx: Any) -> None:
    authenticator = Authenticator(ctx)
    authenticator.configure_plain("*", {"admin": "secret"})
    authenticator.start()
    req = ctx.socket(zeropipe.REQ)
    try:
        assert authenticator.zap_socket is not None
        authenticator.zap_socket.rcvtimeo = TIMEOUT_MS
        req.linger, req.rcvtimeo = 0, TIMEOUT_MS
        req.connect(ZAP)
        req.send_multipart(request(b"PLAIN", b"admin", b"secret"))
        message = authenticator.zap_socket.recv_multipart()
        asyncio.run(authenticator.handle_zap_message(message))
        assert req.recv_multipart() == ok(b"admin")
    finally:
        req.close()
        authenticator.stop()
    assert authenticator.zap_socket is None


def test_thread_start_stop_repeatedly(ctx: Any) -> None:
    authenticator = ThreadAuthenticator(ctx)
    authenticator.allow("127.0.0.1")
    for i in range(4):
        authenticator.start()
        assert authenticator.is_alive()
        rid = b"%d" % i
        assert ask(ctx, request(request_id=rid)) == ok(b"anonymous", rid)
        assert ask(ctx, request(address=OTHER_IP)) == no(b"Address not allowed")
        with_deadline(authenticator.stop)
        assert not authenticator.is_alive()
    with_deadline(authenticator.stop)  # stopping a stopped authenticator is harmless


def test_thread_as_a_context_manager(ctx: Any) -> None:
    with ThreadAuthenticator(ctx) as authenticator:
        assert authenticator.is_alive()
        assert ask(ctx, request()) == ok(b"anonymous")
    assert not authenticator.is_alive()


def test_thread_refuses_a_second_start_and_a_second_handler(ctx: Any) -> None:
    first, second = ThreadAuthenticator(ctx), ThreadAuthenticator(ctx)
    first.start()
    try:
        with pytest.raises(RuntimeError, match="already running"):
            first.start()
        with pytest.raises(zeropipe.ZMQError) as info:
            second.start()
        assert info.value.errno == errno.EADDRINUSE
        assert not second.is_alive()
        assert ask(ctx, request()) == ok(b"anonymous")
    finally:
        with_deadline(first.stop)


def test_thread_configuration_while_running(ctx: Any, auth: ThreadAuthenticator) -> None:
    assert ask(ctx, request(b"PLAIN", b"admin", b"secret")) == no(b"No passwords defined")
    errors: list[BaseException] = []

    def configure() -> None:
        try:
            auth.configure_plain("*", {"admin": "secret"})
        except BaseException as exc:
            errors.append(exc)

    other = threading.Thread(target=configure)
    other.start()
    other.join(WAIT_S)
    assert not errors
    assert ask(ctx, request(b"PLAIN", b"admin", b"secret")) == ok(b"admin")


def test_thread_stop_while_requests_are_pending(ctx: Any) -> None:
    """stop() lets the request in hand finish; one still queued is left unanswered."""
    authenticator = ThreadAuthenticator(ctx)
    entered, release = threading.Event(), threading.Event()

    def slow(req: ZapRequest) -> bool:
        entered.set()
        release.wait(WAIT_S)
        return True

    authenticator.configure_callback(slow)
    authenticator.start()
    first, second = ctx.socket(zeropipe.REQ), ctx.socket(zeropipe.REQ)
    stopper = threading.Thread(target=authenticator.stop)
    try:
        for sock in (first, second):
            sock.linger, sock.rcvtimeo, sock.sndtimeo = 0, TIMEOUT_MS, TIMEOUT_MS
            sock.connect(ZAP)
        first.send_multipart(request(request_id=b"first"))
        assert entered.wait(WAIT_S), "the callback was never called"
        second.send_multipart(request(request_id=b"second"))
        stopper.start()
        release.set()
        stopper.join(WAIT_S)
        assert not stopper.is_alive(), "stop() hung"
        assert not authenticator.is_alive()
        assert first.recv_multipart() == ok(b"anonymous", b"first")
        assert second.poll(100) == 0  # the ZAP socket is closed: no reply can come any more
    finally:
        release.set()
        first.close()
        second.close()
        with_deadline(authenticator.stop)


def test_thread_ends_when_the_context_is_terminated(ctx: Any) -> None:
    authenticator = ThreadAuthenticator(ctx)
    authenticator.start()
    assert ask(ctx, request()) == ok(b"anonymous")
    thread = authenticator.thread
    assert thread is not None
    term_with_deadline(ctx)
    thread.join(WAIT_S)
    assert not thread.is_alive()
    with_deadline(authenticator.stop)


def test_thread_on_an_asyncio_context() -> None:
    context = zaio.Context()
    authenticator = ThreadAuthenticator(context)
    try:
        authenticator.start()
        assert ask(context, request(), socket_class=zeropipe.Socket) == ok(b"anonymous")
    finally:
        with_deadline(authenticator.stop)
        with_deadline(lambda: context.destroy(linger=0))


def test_pyzmq_style_imports() -> None:
    import zeropipe.auth.base
    import zeropipe.auth.thread

    assert zeropipe.auth.thread.ThreadAuthenticator is ThreadAuthenticator
    assert zeropipe.auth.base.Authenticator is Authenticator
    assert zeropipe.auth.base.CURVE_ALLOW_ANY == zmq.auth.CURVE_ALLOW_ANY == "*"


def run_async(main: Callable[[zaio.Context], Awaitable[None]]) -> None:
    context = zaio.Context()

    async def bounded() -> None:
        await asyncio.wait_for(main(context), 20)

    try:
        asyncio.run(bounded())
    finally:
        with_deadline(lambda: context.destroy(linger=0))


async def ask_async(ctx: zaio.Context, frames: list[bytes]) -> list[bytes]:
    req = ctx.socket(zeropipe.REQ)
    try:
        req.linger, req.rcvtimeo, req.sndtimeo = 0, TIMEOUT_MS, TIMEOUT_MS
        req.connect(ZAP)
        await req.send_multipart(frames)
        return [bytes(f) for f in await req.recv_multipart()]
    finally:
        req.close()


def test_asyncio_start_stop_repeatedly() -> None:
    async def main(ctx: zaio.Context) -> None:
        authenticator = AsyncioAuthenticator(ctx)
        authenticator.configure_plain("*", {"admin": "secret"})
        for i in range(4):
            authenticator.start()
            rid = b"%d" % i
            got = await ask_async(ctx, request(b"PLAIN", b"admin", b"secret", request_id=rid))
            assert got == ok(b"admin", rid)
            assert await ask_async(ctx, request(b"PLAIN", b"admin", b"x")) == no(
                b"Invalid password"
            )
            authenticator.stop()
            assert authenticator.zap_socket is None
        authenticator.stop()

    run_async(main)


def test_asyncio_authenticator_on_a_blocking_context(ctx: Any) -> None:
    async def main() -> None:
        authenticator = AsyncioAuthenticator(ctx)
        authenticator.start()
        try:
            raw, z85 = curve_key()
            authenticator.configure_curve("*", CURVE_ALLOW_ANY)
            reply_frames = await asyncio.to_thread(ask, ctx, request(b"CURVE", raw))
            assert reply_frames == ok(z85)
        finally:
            authenticator.stop()

    asyncio.run(asyncio.wait_for(main(), 20))


def test_asyncio_stop_while_a_request_is_pending() -> None:
    async def main(ctx: zaio.Context) -> None:
        authenticator = AsyncioAuthenticator(ctx)
        entered, never = asyncio.Event(), asyncio.Event()

        async def stuck(req: ZapRequest) -> bool:
            entered.set()
            await never.wait()
            return True

        authenticator.configure_callback(stuck)
        authenticator.start()
        req = ctx.socket(zeropipe.REQ)
        try:
            req.linger, req.rcvtimeo, req.sndtimeo = 0, TIMEOUT_MS, TIMEOUT_MS
            req.connect(ZAP)
            await req.send_multipart(request())
            await asyncio.wait_for(entered.wait(), WAIT_S)
            authenticator.stop()
            assert await req.poll(100) == 0
        finally:
            req.close()
        authenticator.configure_callback(None)
        authenticator.start()  # the endpoint is free again
        try:
            assert await ask_async(ctx, request()) == ok(b"anonymous")
        finally:
            authenticator.stop()

    run_async(main)


def test_asyncio_start_needs_a_running_loop(ctx: Any) -> None:
    with pytest.raises(RuntimeError):
        AsyncioAuthenticator(ctx).start()
    with pytest.warns(DeprecationWarning, match="deprecated"):
        AsyncioAuthenticator(ctx, loop=object())


# -- the same replies as pyzmq -----------------------------------------------------------------


def keys_dir(tmp_path: Path, names: list[str]) -> tuple[Path, dict[str, bytes]]:
    directory = tmp_path / "keys"
    directory.mkdir()
    keys = {}
    for name in names:
        public, _ = zmq.auth.create_certificates(str(directory), name)
        keys[name] = pyzmq_z85.decode(zmq.auth.load_certificate(public)[0])
    return directory, keys


def scenarios(tmp_path: Path) -> list[tuple[Callable[[Any], None], list[list[bytes]]]]:
    """(configure an authenticator, requests) pairs; the configuring uses the common API."""
    directory, keys = keys_dir(tmp_path, ["a", "b"])
    raw_a, raw_b = keys["a"], keys["b"]
    other, _ = curve_key()
    provider_keys = {pyzmq_z85.encode(raw_a)}

    class Provider:
        def callback(self, domain: str, key: bytes) -> bool:
            return key in provider_keys

    plain_requests = [
        request(b"PLAIN", b"admin", b"secret"),
        request(b"PLAIN", b"admin", b"bad"),
        request(b"PLAIN", b"nobody", b"secret"),
        request(b"PLAIN", b"admin", b"secret", domain=b"dom"),
        request(b"PLAIN", b"admin", b"other", domain=b"dom"),
        request(b"PLAIN", b"admin", b"secret", domain=b"nope"),
        request(b"PLAIN", b"admin", b"secret", address=OTHER_IP),
        request(b"PLAIN", b"admin"),
    ]
    curve_requests = [
        request(b"CURVE", raw_a),
        request(b"CURVE", raw_b),
        request(b"CURVE", other),
        request(b"CURVE", raw_a, domain=b"dom"),
        request(b"CURVE", raw_a, address=OTHER_IP),
        request(b"CURVE"),
    ]
    general = [
        request(),
        request(address=OTHER_IP),
        request(b"FOO"),
        request(request_id=b"x")[:4],
        [b"1.1", *request()[1:]],
        *plain_requests,
        *curve_requests,
    ]

    def nothing(auth: Any) -> None:
        pass

    def allow(auth: Any) -> None:
        auth.allow("127.0.0.1")

    def deny(auth: Any) -> None:
        auth.deny("127.0.0.1")

    def plain(auth: Any) -> None:
        auth.allow("127.0.0.1")
        auth.configure_plain("*", {"admin": "secret"})
        auth.configure_plain("dom", {"admin": "other"})

    def curve_any(auth: Any) -> None:
        auth.configure_curve("*", CURVE_ALLOW_ANY)

    def curve_certs(auth: Any) -> None:
        auth.deny(OTHER_IP.decode())
        auth.configure_curve("*", str(directory))

    def curve_provider(auth: Any) -> None:
        auth.configure_curve_callback("*", Provider())

    return [
        (setup, general)
        for setup in (nothing, allow, deny, plain, curve_any, curve_certs, curve_provider)
    ]


def replies_of(module: Any, auth_class: Any, setup: Callable[[Any], None], requests: Any) -> Any:
    context = module.Context()
    authenticator = auth_class(context)
    try:
        setup(authenticator)
        authenticator.start()
        return [ask(context, frames, module) for frames in requests]
    finally:
        with_deadline(authenticator.stop)
        term_with_deadline(context)


def test_same_replies_as_pyzmq(tmp_path: Path) -> None:
    for setup, requests in scenarios(tmp_path):
        theirs = replies_of(zmq, zmq.auth.thread.ThreadAuthenticator, setup, requests)
        ours = replies_of(zeropipe, ThreadAuthenticator, setup, requests)
        for frames, mine, reference in zip(requests, ours, theirs, strict=True):
            assert mine == reference, f"{setup.__name__}: {frames!r}"


# -- end to end: a secured server, its authenticator, a libzmq client ---------------------------


@pytest.fixture(params=["pyzmq", "zeropipe"])
def server_side(request: pytest.FixtureRequest) -> Iterator[tuple[Any, Any, Any]]:
    """(module, context, authenticator) of the server; "pyzmq" checks the test's expectations."""
    if request.param == "pyzmq":
        module, auth_class = zmq, zmq.auth.thread.ThreadAuthenticator
    else:
        module, auth_class = zeropipe, ThreadAuthenticator
    context = module.Context()
    authenticator = auth_class(context)
    try:
        yield module, context, authenticator
    finally:
        with_deadline(authenticator.stop)
        with_deadline(lambda: context.destroy(linger=0))


@pytest.fixture
def client_ctx() -> Iterator[zmq.Context]:
    context = zmq.Context()
    yield context
    with_deadline(lambda: context.destroy(linger=0))


def secured_router(module: Any, context: Any, **options: Any) -> Any:
    sock = context.socket(module.ROUTER)
    sock.linger, sock.rcvtimeo, sock.sndtimeo = 0, TIMEOUT_MS, TIMEOUT_MS
    try:
        for name, value in options.items():
            setattr(sock, name, value)
    except zeropipe.ZMQError as exc:
        sock.close()
        if exc.errno == errno.EINVAL:
            pytest.skip(f"zeropipe does not support {', '.join(options)} yet: {exc}")
        raise
    sock.bind("tcp://127.0.0.1:*")
    return sock


SUCCEEDED = ("HANDSHAKE_SUCCEEDED", 0)
REFUSED = ("HANDSHAKE_FAILED_AUTH", 400)


def handshake(
    client_ctx: zmq.Context, endpoint: Any, **options: Any
) -> tuple[zmq.Socket, tuple[str, int]]:
    """Connect a libzmq DEALER; return it and how its first handshake ended (event, value)."""
    client = client_ctx.socket(zmq.DEALER)
    client.linger, client.rcvtimeo, client.sndtimeo = 0, TIMEOUT_MS, TIMEOUT_MS
    for name, value in options.items():
        setattr(client, name, value)
    wanted = (
        zmq.EVENT_HANDSHAKE_SUCCEEDED
        | zmq.EVENT_HANDSHAKE_FAILED_AUTH
        | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
        | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL
    )
    monitor = client.get_monitor_socket(wanted)
    try:
        monitor.rcvtimeo = TIMEOUT_MS
        client.connect(endpoint.decode() if isinstance(endpoint, bytes) else endpoint)
        event = zmq.utils.monitor.recv_monitor_message(monitor)
    finally:
        client.disable_monitor()
        monitor.close()
    return client, (zmq.Event(event["event"]).name or "", int(event["value"]))


def test_end_to_end_plain(server_side: tuple[Any, Any, Any], client_ctx: zmq.Context) -> None:
    module, context, authenticator = server_side
    authenticator.configure_plain("*", {"admin": "secret"})
    authenticator.start()
    server = secured_router(module, context, plain_server=True)
    try:
        good, outcome = handshake(
            client_ctx, server.last_endpoint, plain_username=b"admin", plain_password=b"secret"
        )
        assert outcome == SUCCEEDED
        good.send(b"hello")
        frames = server.recv_multipart(copy=False)
        assert bytes(frames[-1]) == b"hello"
        assert frames[-1].get("User-Id") == "admin"
        good.close()
        bad, outcome = handshake(
            client_ctx, server.last_endpoint, plain_username=b"admin", plain_password=b"wrong"
        )
        bad.close()
        assert outcome == REFUSED
    finally:
        server.close()


def test_end_to_end_curve(
    server_side: tuple[Any, Any, Any], client_ctx: zmq.Context, tmp_path: Path
) -> None:
    module, context, authenticator = server_side
    server_public, server_secret = zmq.curve_keypair()
    allowed_public, allowed_secret = zmq.curve_keypair()
    other_public, other_secret = zmq.curve_keypair()
    authenticator.configure_curve_callback("*", Provider({allowed_public}))
    authenticator.start()
    server = secured_router(module, context, curve_server=True, curve_secretkey=server_secret)
    try:
        good, outcome = handshake(
            client_ctx,
            server.last_endpoint,
            curve_serverkey=server_public,
            curve_publickey=allowed_public,
            curve_secretkey=allowed_secret,
        )
        assert outcome == SUCCEEDED
        good.send(b"hello")
        frames = server.recv_multipart(copy=False)
        assert bytes(frames[-1]) == b"hello"
        assert frames[-1].get("User-Id") == allowed_public.decode()
        good.close()
        bad, outcome = handshake(
            client_ctx,
            server.last_endpoint,
            curve_serverkey=server_public,
            curve_publickey=other_public,
            curve_secretkey=other_secret,
        )
        bad.close()
        assert outcome == REFUSED
    finally:
        server.close()


def test_end_to_end_callback_metadata(client_ctx: zmq.Context) -> None:
    """A verdict's user id and metadata become properties of the client's messages."""
    context = zeropipe.Context()
    authenticator = ThreadAuthenticator(context)
    authenticator.configure_callback(
        lambda req: ZapVerdict.allow(f"user-{req.username}", {"Role": "admin"})
    )
    try:
        authenticator.start()
        server = secured_router(zeropipe, context, plain_server=True)
        try:
            client, outcome = handshake(
                client_ctx, server.last_endpoint, plain_username=b"bob", plain_password=b"x"
            )
            client.send(b"hello")
            client.close()
            assert outcome == SUCCEEDED
            frame = server.recv_multipart(copy=False)[-1]
            assert (frame.get("User-Id"), frame.get("Role")) == ("user-bob", "admin")
        finally:
            server.close()
    finally:
        with_deadline(authenticator.stop)
        with_deadline(lambda: context.destroy(linger=0))
