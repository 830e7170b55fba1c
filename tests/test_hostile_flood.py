"""Floods against a zeropipe publisher, and running out of file descriptors.

The publisher (PUB or XPUB, bound on tcp) runs in a child process of its own, driven line by
line over its stdin (see :func:`serve_publisher`): a publisher that stops answering, or burns
its CPU on a flood, is killed at teardown instead of slowing down everything else this worker
runs. The child measures its own memory with tracemalloc.

A raw subscriber completes a NULL handshake as a SUB and floods the publisher with 100,000
distinct subscriptions (ZMTP 3.1 SUBSCRIBE commands, or the ZMTP 3.0 ``\\x01topic`` message
form), then cancels them all. Meanwhile and afterwards:

* a good SUB subscribed to ``good`` receives every message published, each within 2 s (a
  liveness bound, as in tests/test_bad_input.py);
* the subscriptions take effect, in order: the flood ends with a marker subscription, and
  marker probes are published until the raw subscriber receives one; then a flooded topic is
  delivered to it (or, after the cancels, no longer is);
* an XPUB's user hears each flooded topic once, subscribed and then cancelled;
* the publisher's Python memory stays under a stated bound while subscribed, and is back near
  its baseline once the raw subscriber has disconnected;
* nothing goes to the publisher's log (no RecursionError or any other failure of a callback).

The same holds for one subscription to a 1 MiB topic, and a raw subscriber flooding a PUB with
data messages (which it discards) must not make its memory grow.

``ZP_IMPL=pyzmq`` runs the publisher on libzmq, to check the expectations (its memory is not
Python's, so the memory bounds hold trivially there).
"""

from __future__ import annotations

import contextlib
import errno
import gc
import importlib
import logging
import os
import resource
import select
import socket
import subprocess
import sys
import threading
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from deadlines import term_with_deadline
from pubsub_sync import sync
from rawzmtp import split_frames

import zeropipe
from zeropipe.protocol.commands import encode_metadata
from zeropipe.protocol.frames import FLAG_COMMAND, FLAG_LONG, encode_command
from zeropipe.protocol.greeting import build_greeting

pytestmark = pytest.mark.timeout(150)

REPO = Path(__file__).resolve().parent.parent

N_TOPICS = 100_000
NOTICES_PER_ANSWER = 5000
WAIT_S = 10.0
"""Hang guard for any answer of the child, a handshake, a marker, an event."""
FLOOD_WAIT_S = 45.0
"""Hang guard for the publisher to get through one flood (a few seconds: tracemalloc, which
sees every allocation, slows the publisher down several times)."""
GOOD_DELIVERY_S = 2.0
"""Liveness bound for each message to the good SUB, published during a flood or after (the
publisher reads a flood 64 KiB at a time, some tens of milliseconds between two sends)."""
SOCKET_TIMEOUT_MS = 5000

FLOOD_MEMORY_BOUND = 64 * 1024 * 1024
"""Most the publisher's Python memory may grow by while 100,000 subscriptions are held.

The topics themselves are 0.7 MB (7 bytes each); indexing each one in a few dicts (per
subscriber, the publisher's topic index, XPUB's subscriber counts) costs some hundreds of
bytes: about 20-25 MiB in all, measured. 64 MiB (670 bytes a subscription) leaves room for
that and for read buffers, while a publisher keeping each command as received, or a copy of
each topic per prefix length, exceeds it.
"""

LARGE_TOPIC_MEMORY_BOUND = 16 * 1024 * 1024
"""Most the publisher's memory may grow by around one 1 MiB topic: a few copies of it (the
frame being read, the command body, the topic stored; about 4 MiB measured), never one per
byte or per prefix."""

DATA_FLOOD_BYTES = 32 * 1024 * 1024
DATA_FLOOD_MEMORY_BOUND = 8 * 1024 * 1024
"""A PUB discards what a subscriber sends: reading 32 MiB of data messages may take read
buffers and one receive queue of at most RCVHWM (1,000) 1 KiB messages, far below 32 MiB."""

RELEASE_BOUND = 2 * 1024 * 1024
"""How far above its baseline the publisher's memory may stay once the flooding subscriber
has gone (allocator and cache noise; the subscriptions themselves are megabytes)."""

# -- wire helpers ----------------------------------------------------------------------------


def frame(body: bytes, *, flags: int = 0) -> bytes:
    if len(body) < 256:
        return bytes((flags, len(body))) + body
    return bytes((flags | FLAG_LONG,)) + len(body).to_bytes(8, "big") + body


def sub_handshake(minor: int) -> bytes:
    """A NULL greeting of ZMTP 3.``minor`` and the READY of a SUB."""
    greeting = bytearray(build_greeting(b"NULL", False))
    greeting[11] = minor
    return bytes(greeting) + encode_command(b"READY", encode_metadata({"Socket-Type": b"SUB"}))


def subscription(topic: bytes, *, form: str, cancel: bool = False) -> bytes:
    """One subscription (or cancel) in the 3.1 command form or the 3.0 message form."""
    if form == "3.1":
        return encode_command(b"CANCEL" if cancel else b"SUBSCRIBE", topic)
    return frame((b"\x00" if cancel else b"\x01") + topic)


def flood_topic(i: int) -> bytes:
    return b"t%06d" % i


# -- the publisher, in a child process -------------------------------------------------------


def _implementation() -> Any:
    if os.environ.get("ZP_IMPL", "zeropipe") == "pyzmq":
        import zmq

        return zmq
    return zeropipe


def serve_publisher(kind: str) -> int:
    """The child: a PUB or XPUB bound on tcp, answering one line per command on stdin.

    ``send HEX`` publishes; ``notices`` reads what an XPUB's user hears and answers how many
    subscriptions and cancels of flooded topics it heard so far; ``memory`` answers the
    traced memory now and its peak since the last ``memory`` (after a garbage collection);
    ``disconnected`` waits for a DISCONNECTED monitor event; ``quit`` closes everything.
    """
    zmq = _implementation()
    logging.basicConfig(level=logging.WARNING, format="LOG %(levelname)s %(message)s")
    ctx = zmq.Context()
    pub = ctx.socket(zmq.XPUB if kind == "xpub" else zmq.PUB)
    pub.linger = 0
    pub.sndtimeo = SOCKET_TIMEOUT_MS
    monitor = pub.get_monitor_socket(zmq.EVENT_DISCONNECTED)
    monitor.rcvtimeo = int(WAIT_S * 1000)
    pub.bind("tcp://127.0.0.1:*")
    subscribed = cancelled = 0
    gc.collect()
    tracemalloc.start()
    print("endpoint", pub.last_endpoint.decode(), flush=True)
    for line in sys.stdin:
        verb, _, argument = line.strip().partition(" ")
        if verb == "send":
            pub.send(bytes.fromhex(argument))
            answer = "sent"
        elif verb == "notices":
            with contextlib.suppress(zmq.Again):
                # A bounded batch per question: during a flood the notices keep coming, and
                # an unbounded loop would keep the child from answering.
                for _ in range(NOTICES_PER_ANSWER if kind == "xpub" else 0):
                    notice = pub.recv(zmq.NOBLOCK)
                    if notice[1:2] == b"t":
                        subscribed += notice[0] == 1
                        cancelled += notice[0] == 0
            answer = f"notices {subscribed} {cancelled}"
        elif verb == "memory":
            gc.collect()
            current, peak = tracemalloc.get_traced_memory()
            tracemalloc.reset_peak()
            answer = f"memory {current} {peak}"
        elif verb == "disconnected":
            try:
                monitor.recv_multipart()
                answer = "disconnected"
            except zmq.Again:
                answer = "still connected"
        else:
            break
        print(answer, flush=True)
    monitor.close()
    pub.close()
    ctx.term()
    print("bye", flush=True)
    return 0


class Publisher:
    """The child publisher, seen from the test."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "publisher", kind],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=REPO,
        )
        self._lines: list[str] = []
        self._errors: list[str] = []
        self._cond = threading.Condition()
        self._readers = [
            threading.Thread(target=self._read, args=(pipe, into), daemon=True)
            for pipe, into in ((self.proc.stdout, self._lines), (self.proc.stderr, self._errors))
        ]
        for reader in self._readers:
            reader.start()
        self._answered = 0
        words = self._next().split()
        assert words[0] == "endpoint", words
        self.endpoint = words[1]
        host, port = self.endpoint.removeprefix("tcp://").rsplit(":", 1)
        self.address = (host, int(port))

    def _read(self, pipe: Any, into: list[str]) -> None:
        for line in pipe:
            with self._cond:
                into.append(line.rstrip("\n"))
                self._cond.notify_all()

    def _next(self) -> str:
        with self._cond:
            if not self._cond.wait_for(lambda: len(self._lines) > self._answered, WAIT_S):
                raise AssertionError(
                    f"the {self.kind} publisher did not answer within {WAIT_S} s "
                    f"(busy or dead: exit status {self.proc.poll()}); log: {self.log()!r}"
                )
            line = self._lines[self._answered]
        self._answered += 1
        return line

    def ask(self, line: str) -> str:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        return self._next()

    def send(self, message: bytes) -> None:
        """Publish ``message`` (the one method tests/pubsub_sync.py needs of a PUB)."""
        assert self.ask("send " + message.hex()) == "sent"

    def notices(self) -> tuple[int, int]:
        """(subscriptions, cancels) of flooded topics an XPUB's user heard so far."""
        _, subscribed, cancelled = self.ask("notices").split()
        return int(subscribed), int(cancelled)

    def memory(self) -> tuple[int, int]:
        """(traced bytes now, peak since the last call)."""
        _, current, peak = self.ask("memory").split()
        return int(current), int(peak)

    def log(self) -> list[str]:
        with self._cond:
            return list(self._errors)

    def quit(self) -> None:
        """Close the publisher; it must exit cleanly, having logged nothing."""
        assert self.ask("quit") == "bye"
        status = self.proc.wait(WAIT_S)
        assert status == 0, f"the publisher exited with {status}: {self.log()!r}"

    def kill(self) -> None:
        """Kill the child if it still runs; release its pipes."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        for reader in self._readers:
            reader.join(WAIT_S)
        for pipe in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()


# -- the test side ---------------------------------------------------------------------------


class RawSubscriber:
    """A raw tcp peer that speaks just enough ZMTP to be a SUB."""

    def __init__(self, address: tuple[str, int], minor: int) -> None:
        self.sock = socket.create_connection(address, timeout=WAIT_S)
        self.sock.sendall(sub_handshake(minor))
        self._received = bytearray()
        self.messages: list[bytes] = []
        self._sender: threading.Thread | None = None
        self._send_error: list[BaseException] = []
        # the publisher's greeting and READY: then the handshake is done
        deadline = time.monotonic() + WAIT_S
        while True:
            frames, used = split_frames(bytes(self._received[64:]))
            if len(self._received) >= 64 and frames:
                assert frames[0][0] & FLAG_COMMAND, frames[0]
                assert frames[0][1][1:6] == b"READY", frames[0]
                del self._received[: 64 + used]
                break
            assert time.monotonic() < deadline, "the publisher did not answer the handshake"
            self._read(0.05)

    def _read(self, timeout: float) -> None:
        # select, not a socket timeout: that would apply to the sender thread's sendall too
        if not select.select([self.sock], [], [], timeout)[0]:
            return
        chunk = self.sock.recv(65536)
        if not chunk:
            raise AssertionError("the publisher closed the raw subscriber's connection")
        self._received += chunk

    def take_messages(self, timeout: float) -> None:
        """Read what has arrived (waiting up to ``timeout`` for it) into ``messages``."""
        self._read(timeout)
        frames, used = split_frames(bytes(self._received))
        self.messages += [body for flags, body in frames if not flags & FLAG_COMMAND]
        del self._received[:used]

    def send_in_background(self, data: bytes) -> None:
        """Send ``data`` from a thread (the publisher reads it while the test publishes)."""
        self.join_sender()

        def run() -> None:
            try:
                self.sock.sendall(data)
            except BaseException as exc:  # reported by join_sender
                self._send_error.append(exc)

        self._sender = threading.Thread(target=run, name="flood", daemon=True)
        self._sender.start()

    def check_sender(self) -> None:
        """Raise what made the sender thread fail, if it did."""
        if self._send_error:
            raise self._send_error[0]

    def join_sender(self) -> None:
        if self._sender is not None:
            self._sender.join(FLOOD_WAIT_S)
            assert not self._sender.is_alive(), "the flood could not be sent"
            self._sender = None
        self.check_sender()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()


class Rig:
    """The test's own sockets and children; everything is closed or killed at teardown."""

    def __init__(self) -> None:
        self.ctx = zeropipe.Context()
        self.sockets: list[Any] = []
        self.publishers: list[Publisher] = []
        self.raws: list[RawSubscriber] = []

    def publisher(self, kind: str) -> Publisher:
        publisher = Publisher(kind)
        self.publishers.append(publisher)
        return publisher

    def good_sub(self, publisher: Publisher) -> Any:
        """A zeropipe SUB on ``good``, its subscription known to take effect."""
        sub = self.ctx.socket(zeropipe.SUB)
        self.sockets.append(sub)
        sub.linger = 0
        sub.rcvtimeo = SOCKET_TIMEOUT_MS
        sub.subscribe(b"good")
        sub.connect(publisher.endpoint)
        sync([publisher], [(sub, [b"good"])])
        return sub

    def raw(self, publisher: Publisher, minor: int = 1) -> RawSubscriber:
        raw = RawSubscriber(publisher.address, minor)
        self.raws.append(raw)
        return raw

    def close(self) -> None:
        for raw in self.raws:
            raw.close()
        for publisher in self.publishers:
            publisher.kill()
        for sock in self.sockets:
            sock.close(linger=0)
        term_with_deadline(self.ctx)


@pytest.fixture
def rig() -> Iterator[Rig]:
    r = Rig()
    try:
        yield r
    finally:
        r.close()


def publish_good(publisher: Publisher, good: Any, n: int) -> None:
    """Publish ``good n``; the good SUB must have it within GOOD_DELIVERY_S, and nothing else."""
    message = b"good %d" % n
    publisher.send(message)
    if not good.poll(int(GOOD_DELIVERY_S * 1000)):
        pytest.fail(f"the good SUB did not get {message!r} within {GOOD_DELIVERY_S} s")
    assert good.recv() == message


def await_marker(
    publisher: Publisher, good: Any, raw: RawSubscriber, marker: bytes, what: str
) -> None:
    """Publish to the good SUB and probe ``marker`` until the raw subscriber receives a probe.

    The raw subscriber subscribed to ``marker`` after its flood, so once a probe reaches it
    the publisher has applied everything before.
    """
    deadline = time.monotonic() + FLOOD_WAIT_S
    n = 0
    while not any(m.startswith(marker) for m in raw.messages):
        if time.monotonic() > deadline:
            pytest.fail(f"the publisher did not get through {what} within {FLOOD_WAIT_S} s")
        raw.check_sender()
        try:
            if publisher.kind == "xpub":
                publisher.notices()  # its user reads what it hears, or it stops reading
            publish_good(publisher, good, n)
            publisher.send(marker + b" probe")
        except (AssertionError, pytest.fail.Exception) as exc:
            pytest.fail(f"unresponsive during {what} ({n} good messages went through): {exc}")
        n += 1
        raw.take_messages(0.01)


def fence(publisher: Publisher, raw: RawSubscriber, marker: bytes, topic: bytes) -> list[bytes]:
    """Publish ``topic`` then a fence on ``marker``; what the raw subscriber got before the fence.

    Messages to one subscriber keep their order, so ``topic`` arrives before the fence or never.
    """
    raw.messages.clear()
    publisher.send(topic)
    publisher.send(marker + b" fence")
    deadline = time.monotonic() + WAIT_S
    while marker + b" fence" not in raw.messages:
        assert time.monotonic() < deadline, "the fence never reached the raw subscriber"
        raw.take_messages(0.05)
    got = raw.messages[: raw.messages.index(marker + b" fence")]
    return [m for m in got if not m.startswith(marker)]


def await_notices(publisher: Publisher, expected: tuple[int, int]) -> None:
    """The XPUB's user hears ``expected`` (subscriptions, cancels) of flooded topics."""
    deadline = time.monotonic() + WAIT_S
    while (heard := publisher.notices()) != expected:
        assert heard[0] <= expected[0], f"heard {heard}"
        assert heard[1] <= expected[1], f"heard {heard}"
        assert time.monotonic() < deadline, f"the XPUB's user heard {heard}, not {expected}"
        time.sleep(0.01)


def check_released(publisher: Publisher, raw: RawSubscriber, good: Any, baseline: int) -> None:
    """The raw subscriber leaves: the publisher lets go of what it held for it."""
    raw.close()
    assert publisher.ask("disconnected") == "disconnected"
    if publisher.kind == "xpub":
        publisher.notices()  # the cancels of a leaving subscriber's topics, if any left
    publish_good(publisher, good, -1)
    # The DISCONNECTED event may come a moment before the connection's state is dropped.
    deadline = time.monotonic() + WAIT_S
    while (held := publisher.memory()[0] - baseline) > RELEASE_BOUND:
        if time.monotonic() > deadline:
            pytest.fail(f"{mib(held)} still held after the flooding subscriber left")
        time.sleep(0.05)


def check_log(publisher: Publisher) -> None:
    publisher.quit()
    log = publisher.log()
    assert not log, f"the publisher logged: {log[:20]!r}"


def flood(
    publisher: Publisher, good: Any, raw: RawSubscriber, data: bytes, marker: bytes, what: str
) -> int:
    """Send ``data``, which ends with a subscription to ``marker``, and wait until the publisher
    has got through it, the good SUB served all along; return the memory peak meanwhile."""
    publisher.memory()  # the peak starts here: what the test itself had the child do is not in it
    raw.send_in_background(data)
    await_marker(publisher, good, raw, marker, what)
    raw.join_sender()
    return publisher.memory()[1]


def mib(size: int) -> str:
    return f"{size / 2**20:.1f} MiB"


@pytest.mark.parametrize(
    ("kind", "form"),
    [("pub", "3.1"), ("xpub", "3.1"), ("pub", "3.0")],
    ids=["pub-3.1", "xpub-3.1", "pub-3.0"],
)
def test_subscription_flood(rig: Rig, kind: str, form: str) -> None:
    topics = [flood_topic(i) for i in range(N_TOPICS)]
    subscribe_all = b"".join(subscription(t, form=form) for t in topics)
    cancel_all = b"".join(subscription(t, form=form, cancel=True) for t in topics)
    publisher = rig.publisher(kind)
    good = rig.good_sub(publisher)
    baseline, _ = publisher.memory()
    raw = rig.raw(publisher, minor=1 if form == "3.1" else 0)

    data = subscribe_all + subscription(b"marker-1", form=form)
    peak = flood(publisher, good, raw, data, b"marker-1", f"{N_TOPICS} subscriptions")
    assert peak - baseline <= FLOOD_MEMORY_BOUND, f"subscribed: peak {mib(peak - baseline)}"
    assert fence(publisher, raw, b"marker-1", b"t050000 subscribed") == [b"t050000 subscribed"]
    if kind == "xpub":
        await_notices(publisher, (N_TOPICS, 0))

    data = cancel_all + subscription(b"marker-2", form=form)
    peak = flood(publisher, good, raw, data, b"marker-2", f"{N_TOPICS} cancels")
    assert peak - baseline <= FLOOD_MEMORY_BOUND, f"cancelling: peak {mib(peak - baseline)}"
    assert fence(publisher, raw, b"marker-2", b"t050000 cancelled") == []
    if kind == "xpub":
        await_notices(publisher, (N_TOPICS, N_TOPICS))

    check_released(publisher, raw, good, baseline)
    check_log(publisher)


@pytest.mark.parametrize("kind", ["pub", "xpub"])
def test_one_mebibyte_topic(rig: Rig, kind: str) -> None:
    topic = b"L" * 2**20
    publisher = rig.publisher(kind)
    good = rig.good_sub(publisher)
    baseline, _ = publisher.memory()
    raw = rig.raw(publisher)

    data = subscription(topic, form="3.1") + subscription(b"marker-1", form="3.1")
    peak = flood(publisher, good, raw, data, b"marker-1", "a 1 MiB subscription")
    assert peak - baseline <= LARGE_TOPIC_MEMORY_BOUND, f"subscribed: peak {mib(peak - baseline)}"
    # a message on the topic (the topic is a prefix of it) reaches the raw subscriber
    assert fence(publisher, raw, b"marker-1", topic + b"!") == [topic + b"!"]

    data = subscription(topic, form="3.1", cancel=True) + subscription(b"marker-2", form="3.1")
    peak = flood(publisher, good, raw, data, b"marker-2", "the cancel of a 1 MiB subscription")
    assert peak - baseline <= LARGE_TOPIC_MEMORY_BOUND, f"cancelling: peak {mib(peak - baseline)}"
    assert fence(publisher, raw, b"marker-2", topic + b"!") == []

    check_released(publisher, raw, good, baseline)
    check_log(publisher)


def test_data_flood_to_a_pub_is_discarded(rig: Rig) -> None:
    publisher = rig.publisher("pub")
    good = rig.good_sub(publisher)
    baseline, _ = publisher.memory()
    raw = rig.raw(publisher)
    message = frame(b"D" * 1024)
    data = message * (DATA_FLOOD_BYTES // len(message)) + subscription(b"marker-1", form="3.1")

    peak = flood(publisher, good, raw, data, b"marker-1", f"{mib(DATA_FLOOD_BYTES)} of data")
    assert peak - baseline <= DATA_FLOOD_MEMORY_BOUND, f"peak {mib(peak - baseline)}"
    assert not good.poll(0), "the raw subscriber's data reached the good SUB"

    check_released(publisher, raw, good, baseline)
    check_log(publisher)


# -- file descriptors run out ----------------------------------------------------------------

FREED_DESCRIPTORS = 16
"""Closed once accept has failed: room for the pending connection and a new PUSH (its waker,
its connecting socket, the PULL's accepted end)."""


def fd_exhaustion_child() -> int:
    """The child: a PULL whose process runs out of descriptors, then gets some back.

    Prints one line per step; the test compares them.
    """
    zmq = _implementation()
    monitor_messages = importlib.import_module(zmq.__name__ + ".utils.monitor")
    ctx = zmq.Context()
    pull = ctx.socket(zmq.PULL)
    pull.linger = 0
    pull.rcvtimeo = SOCKET_TIMEOUT_MS
    monitor = pull.get_monitor_socket(zmq.EVENT_ACCEPT_FAILED)
    monitor.rcvtimeo = SOCKET_TIMEOUT_MS
    pull.bind("tcp://127.0.0.1:*")
    endpoint = pull.last_endpoint.decode()
    host, port = endpoint.removeprefix("tcp://").rsplit(":", 1)

    def good_push(message: bytes) -> Any:
        push = ctx.socket(zmq.PUSH)
        push.linger = 0
        push.sndtimeo = SOCKET_TIMEOUT_MS
        push.connect(endpoint)
        push.send(message)
        return push

    # One whole round first, so that nothing is left to import once descriptors run out. The
    # PUSH stays: closing it would free descriptors at some moment in the background.
    warm_up = good_push(b"warm-up")
    assert pull.recv() == b"warm-up"

    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    in_use = len(os.listdir("/proc/self/fd"))
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(in_use + 64, hard), hard))
    fillers: list[int] = []
    try:
        while True:
            fillers.append(os.open(os.devnull, os.O_RDONLY))
    except OSError as exc:
        if exc.errno != errno.EMFILE:
            raise
    os.close(fillers.pop())  # for the client end: the listener then has none for accept
    raw = socket.create_connection((host, int(port)), timeout=WAIT_S)
    print("exhausted", flush=True)

    event = monitor_messages.recv_monitor_message(monitor)
    print("accept failed:", errno.errorcode.get(event["value"], event["value"]), flush=True)

    for fd in fillers[:FREED_DESCRIPTORS]:
        os.close(fd)
    del fillers[:FREED_DESCRIPTORS]
    # The pending connection is accepted on a retry. Meanwhile the monitor is read: libzmq
    # retries at once, again and again, and blocks once its monitor's queue is full.
    deadline = time.monotonic() + WAIT_S
    while not select.select([raw], [], [], 0.05)[0] and time.monotonic() < deadline:
        with contextlib.suppress(zmq.Again):
            while True:
                monitor.recv_multipart(zmq.NOBLOCK)
    greeting = raw.recv(64)
    print("pending connection accepted:", greeting[:1] == b"\xff", flush=True)
    push = good_push(b"after exhaustion")
    print("received:", pull.recv().decode(), flush=True)

    for fd in fillers:
        os.close(fd)
    raw.close()
    push.close()
    warm_up.close()
    monitor.close()
    pull.close()
    ctx.term()
    return 0


def test_listener_survives_running_out_of_descriptors() -> None:
    """accept() fails with EMFILE: ACCEPT_FAILED is reported and accept is retried, so the
    connection waiting in the backlog and a new PUSH are served once descriptors are free."""
    proc = subprocess.Popen(
        [sys.executable, __file__, "fd-exhaustion"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    try:
        out, err = proc.communicate(timeout=4 * WAIT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"the child hung; stdout {out!r}, stderr {err[-2000:]!r}")
    assert out.splitlines() == [
        "exhausted",
        "accept failed: EMFILE",
        "pending connection accepted: True",
        "received: after exhaustion",
    ], f"stderr: {err[-2000:]}"
    assert proc.returncode == 0, err[-2000:]


if __name__ == "__main__":
    role = sys.argv[1]
    if role == "publisher":
        sys.exit(serve_publisher(sys.argv[2]))
    sys.exit(fd_exhaustion_child())
