"""PUSH/PULL and PAIR interop: zeropipe ("ours") against libzmq through pyzmq ("theirs").

Covers both directions, either side binding, tcp and ipc, ZMTP short/long frame boundaries
(255/256 bytes), 1 MiB frames, multipart and empty frames, ordering of many messages,
connect-before-bind and reconnection, plus zeropipe talking to itself over tcp, ipc and inproc.
"""

from __future__ import annotations

import random
import threading
import time
from types import ModuleType
from typing import TYPE_CHECKING, Any

import pytest
from netutil import Endpoints, bind_with_retry

if TYPE_CHECKING:
    from .conftest import Harness, Side

pytestmark = pytest.mark.interop

SENDER_JOIN_S = 10.0
CONNECT_HEAD_START_S = 0.3
"""How long a connecting socket waits for its absent peer before the peer binds."""


def _blob(size: int) -> bytes:
    """Deterministic non-repeating bytes, so truncation or shifting is detectable."""
    return random.Random(size).randbytes(size)


MiB = 1 << 20

PAYLOADS: dict[str, list[list[bytes]]] = {
    "single": [[b"hello zeropipe"]],
    "multipart-3": [[b"alpha", b"beta", b"gamma"]],
    "empty": [[b""]],
    "empty-in-multipart": [[b"", b"middle", b""], [b"head", b"", b"tail"]],
    "frame-255": [[_blob(255)]],
    "frame-256": [[_blob(256)]],
    "frame-1MiB": [[_blob(MiB)]],
    "multipart-255-256-1MiB": [[_blob(255), _blob(256), _blob(MiB)]],
    "many-10000": [[b"msg-%05d" % i] for i in range(10_000)],
}
"""Each payload is a list of messages; each message is a list of frames."""

with_payloads = pytest.mark.parametrize("messages", list(PAYLOADS.values()), ids=list(PAYLOADS))

PATTERNS = {"push": ("PUSH", "PULL"), "pull": ("PULL", "PUSH"), "pair": ("PAIR", "PAIR")}
"""Connect-before-bind cases: (type of the early connecting socket, type of the late binder)."""


def _describe(frames: list[bytes]) -> str:
    """A short description of a message, instead of dumping megabytes in a failure."""
    sizes = ", ".join(f"{len(f)}B" for f in frames[:5])
    more = ", ..." if len(frames) > 5 else ""
    head = frames[0][:16] if frames else b""
    return f"{len(frames)} frame(s) [{sizes}{more}] starting {head!r}"


def transfer(sender: Any, receiver: Any, messages: list[list[bytes]]) -> None:
    """Send ``messages`` from a background thread; receive and check them in order here.

    Single-frame messages go through send()/recv(), multipart ones through
    send_multipart()/recv_multipart(). Sending concurrently keeps large batches from
    deadlocking on high-water marks. Afterwards nothing else may be readable.
    """
    errors: list[BaseException] = []

    def send_all() -> None:
        try:
            for frames in messages:
                if len(frames) == 1:
                    sender.send(frames[0])
                else:
                    sender.send_multipart(frames)
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=send_all, name="zp-sender", daemon=True)
    thread.start()
    try:
        for index, expected in enumerate(messages):
            if len(expected) == 1:
                got = [bytes(receiver.recv())]
            else:
                got = [bytes(frame) for frame in receiver.recv_multipart()]
            if got != expected:
                pytest.fail(
                    f"message {index}: expected {_describe(expected)}, got {_describe(got)}"
                )
    finally:
        thread.join(SENDER_JOIN_S)
    assert not thread.is_alive(), "sender thread still blocked after the receiver finished"
    if errors:
        raise errors[0]
    assert not receiver.poll(10), "unexpected extra data after the last message"


def link(binding: Any, connecting: Any, endpoints: Endpoints) -> str:
    """Bind one socket, connect the other to it, and return the endpoint."""
    endpoint = endpoints.bind(binding)
    connecting.connect(endpoint)
    return endpoint


def exchange_pair(a: Any, b: Any, messages: list[list[bytes]]) -> None:
    """PAIR is bidirectional: each side sends ``messages`` and receives them."""
    transfer(a, b, messages)
    transfer(b, a, messages)


def check_connect_before_bind(
    first: Side, second: Side, endpoints: Endpoints, pattern: str
) -> None:
    """``first`` connects to an endpoint nobody serves; ``second`` binds it afterwards."""
    early_kind, late_kind = PATTERNS[pattern]
    endpoint = endpoints.fresh()
    early = first.socket(early_kind)
    early.connect(endpoint)
    time.sleep(CONNECT_HEAD_START_S)  # the first connection attempt(s) fail meanwhile
    late = second.socket(late_kind)
    endpoints.bind(late, endpoint)
    messages = [[b"after the peer appeared"], [b"two", b"frames"]]
    if pattern == "push":
        transfer(early, late, messages)
    elif pattern == "pull":
        transfer(late, early, messages)
    else:
        exchange_pair(early, late, messages)


# --- ours <-> theirs -------------------------------------------------------------------


@pytest.mark.timeout(20)
@pytest.mark.parametrize("binder", ["ours", "theirs"], ids=["ours-binds", "theirs-binds"])
@pytest.mark.parametrize("direction", ["ours-to-theirs", "theirs-to-ours"])
@with_payloads
def test_push_pull(
    ours: Side,
    theirs: Side,
    endpoints: Endpoints,
    direction: str,
    binder: str,
    messages: list[list[bytes]],
) -> None:
    push_side, pull_side = (ours, theirs) if direction == "ours-to-theirs" else (theirs, ours)
    push = push_side.socket("PUSH")
    pull = pull_side.socket("PULL")
    push_binds = (binder == "ours") == (push_side is ours)
    if push_binds:
        link(push, pull, endpoints)
    else:
        link(pull, push, endpoints)
    transfer(push, pull, messages)


@pytest.mark.timeout(20)
@pytest.mark.parametrize("binder", ["ours", "theirs"], ids=["ours-binds", "theirs-binds"])
@with_payloads
def test_pair(
    ours: Side, theirs: Side, endpoints: Endpoints, binder: str, messages: list[list[bytes]]
) -> None:
    mine = ours.socket("PAIR")
    peer = theirs.socket("PAIR")
    if binder == "ours":
        link(mine, peer, endpoints)
    else:
        link(peer, mine, endpoints)
    exchange_pair(mine, peer, messages)


@pytest.mark.timeout(20)
@pytest.mark.parametrize("pattern", list(PATTERNS))
def test_ours_connects_before_theirs_binds(
    ours: Side, theirs: Side, endpoints: Endpoints, pattern: str
) -> None:
    check_connect_before_bind(ours, theirs, endpoints, pattern)


@pytest.mark.timeout(20)
def test_push_reconnects_after_peer_restarts(
    ours: Side, harness: Harness, pyzmq: ModuleType, endpoints: Endpoints
) -> None:
    """Their PULL goes away (socket and context); a new one binds the same endpoint.

    Our PUSH must reconnect by itself. Messages sent while disconnected may be held or
    lost, so only messages sent once the new peer is up must arrive (in order).
    """
    first = harness.side("theirs-1", pyzmq)
    old_pull = first.socket("PULL")
    endpoint = endpoints.bind(old_pull)
    push = ours.socket("PUSH")
    push.sndtimeo = 250
    push.connect(endpoint)
    push.send(b"before-restart")
    assert old_pull.recv() == b"before-restart"

    first.close()  # closes the PULL and terminates its context, releasing the endpoint
    second = harness.side("theirs-2", pyzmq)
    new_pull = second.socket("PULL")
    bind_with_retry(new_pull, endpoint, pyzmq)  # the same port / path as before

    received: list[bytes] = []
    deadline = time.monotonic() + 10
    sent = 0
    while not received:
        assert time.monotonic() < deadline, f"no message reached the new peer ({sent} sent)"
        try:
            push.send(b"after-%d" % sent)
            sent += 1
        except ours.module.Again:
            pass
        if new_pull.poll(100):
            received.append(new_pull.recv())

    push.sndtimeo = 5000
    push.send(b"final")
    while received[-1] != b"final":
        received.append(new_pull.recv())
    early = received[:-1]
    assert all(m.startswith(b"after-") for m in early), received
    indices = [int(m.removeprefix(b"after-")) for m in early]
    assert indices == sorted(set(indices)), f"out of order or duplicated: {indices}"


# --- ours <-> ours ---------------------------------------------------------------------

own_transports = pytest.mark.parametrize("transport", ["tcp", "ipc", "inproc"])


def own_peer(harness: Harness, ours: Side, transport: str) -> Side:
    """inproc works only within one context; tcp and ipc use a second one of ours."""
    return ours if transport == "inproc" else harness.side("ours-2", ours.module)


@pytest.mark.timeout(20)
@own_transports
@pytest.mark.parametrize("binder", ["push", "pull"], ids=["push-binds", "pull-binds"])
@with_payloads
def test_ours_push_pull(
    ours: Side,
    harness: Harness,
    endpoints: Endpoints,
    transport: str,
    binder: str,
    messages: list[list[bytes]],
) -> None:
    push = ours.socket("PUSH")
    pull = own_peer(harness, ours, transport).socket("PULL")
    if binder == "push":
        link(push, pull, endpoints)
    else:
        link(pull, push, endpoints)
    transfer(push, pull, messages)


@pytest.mark.timeout(20)
@own_transports
@with_payloads
def test_ours_pair(
    ours: Side,
    harness: Harness,
    endpoints: Endpoints,
    transport: str,
    messages: list[list[bytes]],
) -> None:
    a = ours.socket("PAIR")
    b = own_peer(harness, ours, transport).socket("PAIR")
    link(a, b, endpoints)
    exchange_pair(a, b, messages)


@pytest.mark.timeout(20)
@own_transports
@pytest.mark.parametrize("pattern", list(PATTERNS))
def test_ours_connect_before_bind(
    ours: Side, harness: Harness, endpoints: Endpoints, transport: str, pattern: str
) -> None:
    check_connect_before_bind(ours, own_peer(harness, ours, transport), endpoints, pattern)
