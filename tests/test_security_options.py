"""Security options: which mechanism and role each selects, the forms keys take, misuse errors.

Sequences of option settings are replayed on a libzmq socket (pyzmq) and on a zeropipe socket,
and MECHANISM, PLAIN_SERVER and CURVE_SERVER must read the same after every step.
"""

from __future__ import annotations

import errno
from collections.abc import Iterator
from typing import Any

import pytest
import zmq as pyzmq

import zeropipe as zp
from zeropipe.sdk import z85

pytestmark = pytest.mark.timeout(20)

SERVER_PUBLIC, SERVER_SECRET = pyzmq.curve_keypair()


@pytest.fixture
def pair() -> Iterator[tuple[Any, Any]]:
    zctx, pctx = zp.Context(), pyzmq.Context()
    zs, ps = zctx.socket(zp.DEALER), pctx.socket(pyzmq.DEALER)
    try:
        yield zs, ps
    finally:
        zs.close(0)
        ps.close(0)
        zctx.term()
        pctx.term()


SEQUENCES = {
    "plain server": [("PLAIN_SERVER", 1)],
    "plain client": [("PLAIN_USERNAME", b"u"), ("PLAIN_PASSWORD", b"p")],
    "plain server then off": [("PLAIN_SERVER", 1), ("PLAIN_SERVER", 0)],
    "curve server": [("CURVE_SERVER", 1), ("CURVE_SECRETKEY", SERVER_SECRET)],
    "curve client": [("CURVE_SERVERKEY", SERVER_PUBLIC), ("CURVE_SECRETKEY", SERVER_SECRET)],
    "curve server then serverkey": [("CURVE_SERVER", 1), ("CURVE_SERVERKEY", SERVER_PUBLIC)],
    "plain then curve": [("PLAIN_SERVER", 1), ("CURVE_PUBLICKEY", SERVER_PUBLIC)],
    "curve then plain user": [("CURVE_SERVER", 1), ("PLAIN_USERNAME", b"u")],
    "curve server off": [("CURVE_SERVER", 1), ("CURVE_SERVER", 0)],
}


@pytest.mark.parametrize("name", list(SEQUENCES))
def test_mechanism_and_role_follow_libzmq(pair: tuple[Any, Any], name: str) -> None:
    zs, ps = pair
    for option, value in SEQUENCES[name]:
        zs.setsockopt(getattr(zp, option), value)
        ps.setsockopt(getattr(pyzmq, option), value)
        for read in ("MECHANISM", "PLAIN_SERVER", "CURVE_SERVER"):
            assert zs.getsockopt(getattr(zp, read)) == ps.getsockopt(getattr(pyzmq, read)), (
                option,
                read,
            )


def test_mechanism_constants_and_protocol_error_codes_are_libzmq_s() -> None:
    assert (zp.NULL, zp.PLAIN, zp.CURVE, zp.GSSAPI) == (
        pyzmq.NULL,
        pyzmq.PLAIN,
        pyzmq.CURVE,
        pyzmq.GSSAPI,
    )
    names = [n for n in dir(pyzmq) if n.startswith("PROTOCOL_ERROR_") and "WS" not in n]
    assert names
    for name in names:
        assert getattr(zp, name) == getattr(pyzmq, name), name


@pytest.mark.parametrize(
    "form",
    ["raw", "z85", "z85-str", "z85-nul"],
)
def test_curve_key_forms(form: str) -> None:
    raw = z85.decode(SERVER_PUBLIC)
    value: Any = {
        "raw": raw,
        "z85": SERVER_PUBLIC,
        "z85-str": SERVER_PUBLIC.decode(),
        "z85-nul": SERVER_PUBLIC + b"\x00",
    }[form]
    ctx = zp.Context()
    sock = ctx.socket(zp.DEALER)
    try:
        sock.curve_serverkey = value
        assert sock.curve_serverkey == SERVER_PUBLIC
        assert sock.mechanism == zp.CURVE
    finally:
        sock.close(0)
        ctx.term()


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("CURVE_SERVERKEY", b"x" * 31),
        ("CURVE_SERVERKEY", b"~" * 40),  # not Z85
        ("CURVE_PUBLICKEY", b"0" * 39),
        ("PLAIN_USERNAME", b""),
        ("PLAIN_USERNAME", b"u" * 256),
        ("PLAIN_PASSWORD", b"p" * 256),
        ("ZAP_DOMAIN", b"d" * 256),
        ("PLAIN_SERVER", 2),
        ("CURVE_SERVER", -1),
    ],
)
def test_bad_values_are_einval_as_in_libzmq(pair: tuple[Any, Any], option: str, value: Any) -> None:
    zs, ps = pair
    with pytest.raises(pyzmq.ZMQError) as theirs:
        ps.setsockopt(getattr(pyzmq, option), value)
    with pytest.raises(zp.ZMQError) as ours:
        zs.setsockopt(getattr(zp, option), value)
    assert ours.value.errno == theirs.value.errno == errno.EINVAL


def test_mechanism_is_read_only(pair: tuple[Any, Any]) -> None:
    zs, _ = pair
    with pytest.raises(zp.ZMQError) as info:
        zs.setsockopt(zp.MECHANISM, 1)
    assert info.value.errno == errno.EINVAL


def test_curve_without_the_keys_it_needs_is_refused_at_bind_and_connect() -> None:
    ctx = zp.Context()
    server, client = ctx.socket(zp.PULL), ctx.socket(zp.PUSH)
    try:
        server.curve_server = True
        with pytest.raises(zp.ZMQError, match="CURVE_SECRETKEY"):
            server.bind("tcp://127.0.0.1:*")
        client.curve_secretkey = SERVER_SECRET
        client.curve_server = False
        client.plain_server = False
        client.curve_publickey = SERVER_PUBLIC  # CURVE again, but a client with no server key
        with pytest.raises(zp.ZMQError, match="CURVE_SERVERKEY"):
            client.connect("tcp://127.0.0.1:5555")
    finally:
        server.close(0)
        client.close(0)
        ctx.term()


def test_a_missing_public_key_is_derived_from_the_secret_key() -> None:
    """Only the secret key is set on either side: the handshake still completes."""
    ctx = zp.Context()
    server, client = ctx.socket(zp.PULL), ctx.socket(zp.PUSH)
    client_public, client_secret = zp.curve_keypair()
    try:
        server.curve_server = True
        server.curve_secretkey = SERVER_SECRET
        server.bind("tcp://127.0.0.1:*")
        assert server.curve_publickey == SERVER_PUBLIC
        client.curve_serverkey = SERVER_PUBLIC
        client.curve_secretkey = client_secret
        client.connect(server.last_endpoint)
        assert client.curve_publickey == client_public
        client.send(b"secret")
        server.rcvtimeo = 5000
        assert server.recv() == b"secret"
    finally:
        server.close(0)
        client.close(0)
        ctx.term()


def test_has_curve() -> None:
    assert zp.has("curve") is True
    public, secret = zp.curve_keypair()
    assert zp.curve_public(secret) == public
