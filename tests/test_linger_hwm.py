"""LINGER and high-water marks: what happens to messages a socket still holds.

LINGER: a PUSH that closes right after sending must still deliver everything (the default
linger is infinite), to a PULL in another process, over tcp and ipc; linger=0 and a finite
linger must not make ``close``/``term`` wait for a peer that does not read; ``term`` must not
hang for a PUSH that never had a peer.

SNDHWM/RCVHWM: a PUSH towards a PULL that never reads stops accepting (Again with NOBLOCK)
after a bounded number of messages and resumes once the PULL drains; inproc capacity is
exactly SNDHWM + RCVHWM; a multipart message is never delivered in part.

Every test is parallel-safe and cannot hang (timeouts on every blocking call, children killed,
contexts terminated under a deadline). ``ZP_IMPL=pyzmq`` runs the same tests against pyzmq.
"""

from __future__ import annotations

import os
import select
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from deadlines import term_with_deadline, with_deadline
from netutil import IMPLEMENTATIONS, TestEnv, endpoint_of, implementation

IMPL, zmq = implementation("ZP_IMPL")
MODULE = IMPLEMENTATIONS[IMPL]

TIMEOUT_MS = 5000
TERM_TIMEOUT_S = 10.0
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

MESSAGES = 100_000
"""How many messages the LINGER tests send before closing."""


# -- helpers ---------------------------------------------------------------------------


def message(i: int) -> bytes:
    """Message ``i``: 16 bytes, so order, loss and duplicates are all visible."""
    return b"%016d" % i


class Env(TestEnv):
    """Contexts and sockets of one test, closed and terminated at teardown."""

    def __init__(self) -> None:
        super().__init__(zmq, own_context=False)

    def socket(self, ctx: Any, kind: int, *, timeout: int = TIMEOUT_MS, **options: Any) -> Any:
        linger = options.pop("linger", None)  # the default LINGER unless a test asks
        return self.new_socket(ctx, kind, timeout=timeout, linger=linger, **options)


@pytest.fixture
def env() -> Iterator[Env]:
    owner = Env()
    try:
        yield owner
    finally:
        owner.close()


# -- LINGER: every message reaches a receiver in another process ------------------------

CHILD = r"""
import importlib, sys, time
repo, module, role, endpoint, count, delay = sys.argv[1:7]
sys.path.insert(0, repo)
zmq = importlib.import_module(module)
ctx = zmq.Context()
pull = ctx.socket(zmq.PULL)
pull.linger = 0
pull.rcvtimeo = 10000
if role == "bind":
    pull.bind(endpoint)
    last = pull.last_endpoint
    print(last.decode() if isinstance(last, bytes) else last, flush=True)
else:
    pull.connect(endpoint)
    print("connected", flush=True)
time.sleep(float(delay))  # a slow receiver: the sender's queues fill up meanwhile
count = int(count)
got = out_of_order = 0
first_bad = None
try:
    while got < count:
        msg = pull.recv()
        if msg != b"%016d" % got:
            out_of_order += 1
            if first_bad is None:
                first_bad = (got, msg)
        got += 1
    # Anything beyond ``count`` is a duplicate.
    pull.rcvtimeo = 200
    try:
        extra = pull.recv()
        print("EXTRA", extra, flush=True)
    except zmq.Again:
        pass
except zmq.Again:
    pass
print("RESULT", got, out_of_order, first_bad, flush=True)
pull.close()
ctx.term()
"""


class Child:
    """A receiver process running CHILD; always killed at the end."""

    def __init__(self, role: str, endpoint: str, count: int, delay: float = 0.0) -> None:
        args = [REPO_ROOT, MODULE, role, endpoint, str(count), str(delay)]
        self.proc = subprocess.Popen(
            [sys.executable, "-c", CHILD, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=REPO_ROOT,
        )

    def first_line(self, timeout: float = 15.0) -> str:
        stdout = self.proc.stdout
        assert stdout is not None
        ready, _, _ = select.select([stdout], [], [], timeout)
        if not ready:
            raise AssertionError(f"the receiver process printed nothing in {timeout} s")
        line = stdout.readline().strip()
        if not line:
            _, err = self.proc.communicate(timeout=5)
            raise AssertionError(f"the receiver process failed to start:\n{err}")
        return line

    def result(self, timeout: float = 30.0) -> tuple[int, int, str]:
        out, err = self.proc.communicate(timeout=timeout)
        lines = out.strip().splitlines()
        results = [line for line in lines if line.startswith("RESULT")]
        assert results, f"no RESULT from the receiver; stdout={out!r} stderr={err!r}"
        extra = [line for line in lines if line.startswith("EXTRA")]
        assert not extra, f"duplicate messages: {extra}"
        _, got, out_of_order, first_bad = results[0].split(" ", 3)
        return int(got), int(out_of_order), first_bad

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.communicate(timeout=10)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("transport", ["tcp", "ipc"])
@pytest.mark.parametrize("linger", [None, 10_000], ids=["default-linger", "linger-10s"])
def test_linger_delivers_everything_to_another_process(
    env: Env, transport: str, linger: int | None
) -> None:
    """The child binds a PULL; we connect, send 100,000 messages, close at once and term."""
    endpoint = env.bind_endpoint(transport)
    child = Child("bind", endpoint, MESSAGES)
    try:
        bound = child.first_line()
        assert bound.startswith(f"{transport}://")
        ctx = env.context()
        push = env.socket(ctx, zmq.PUSH, timeout=15000)
        if linger is None:
            assert push.linger == -1  # the default: deliver everything
        else:
            push.linger = linger
        push.connect(bound)
        for i in range(MESSAGES):
            push.send(message(i))
        push.close()  # at once, with the socket's own linger
        term_with_deadline(ctx, 30.0)  # raises if term() hangs
        got, out_of_order, first_bad = child.result()
        assert got == MESSAGES, f"the receiver got {got} of {MESSAGES}"
        assert out_of_order == 0, f"{out_of_order} out of order, first: {first_bad}"
    finally:
        child.kill()


@pytest.mark.timeout(60)
@pytest.mark.parametrize("transport", ["tcp", "ipc"])
def test_linger_delivers_everything_to_a_slow_receiver(env: Env, transport: str) -> None:
    """The child starts reading 1 s late, so at close our messages still sit in the kernel
    buffers (tcp) or in our queues (ipc): closing and terminating must not lose them."""
    endpoint = env.bind_endpoint(transport)
    child = Child("bind", endpoint, MESSAGES, delay=1.0)
    try:
        bound = child.first_line()
        ctx = env.context()
        push = env.socket(ctx, zmq.PUSH, timeout=15000)
        push.connect(bound)
        for i in range(MESSAGES):
            push.send(message(i))
        push.close()
        term_with_deadline(ctx, 30.0)
        got, out_of_order, first_bad = child.result()
        assert got == MESSAGES, f"the receiver got {got} of {MESSAGES}"
        assert out_of_order == 0, f"{out_of_order} out of order, first: {first_bad}"
    finally:
        child.kill()


@pytest.mark.timeout(60)
@pytest.mark.parametrize("transport", ["tcp", "ipc"])
def test_linger_delivers_everything_when_the_receiver_connects(env: Env, transport: str) -> None:
    """We bind the PUSH; the child connects; we send, close at once and term."""
    ctx = env.context()
    push = env.socket(ctx, zmq.PUSH, timeout=15000)
    push.bind(env.bind_endpoint(transport))
    endpoint = endpoint_of(push)
    child = Child("connect", endpoint, MESSAGES)
    try:
        assert child.first_line() == "connected"
        for i in range(MESSAGES):  # the first send waits for the child's connection
            push.send(message(i))
        push.close()
        term_with_deadline(ctx, 30.0)
        got, out_of_order, first_bad = child.result()
        assert got == MESSAGES, f"the receiver got {got} of {MESSAGES}"
        assert out_of_order == 0, f"{out_of_order} out of order, first: {first_bad}"
    finally:
        child.kill()


@pytest.mark.timeout(60)
def test_linger_delivers_multipart_batches_to_another_process(env: Env) -> None:
    """send_multipart of many small messages, then close/term: the receiver gets them all."""
    endpoint = env.bind_endpoint("tcp")
    child = Child("bind", endpoint, MESSAGES)
    try:
        bound = child.first_line()
        ctx = env.context()
        push = env.socket(ctx, zmq.PUSH, timeout=15000)
        push.connect(bound)
        # One-part messages via send_multipart: a different code path from send().
        for i in range(MESSAGES):
            push.send_multipart([message(i)])
        push.close()
        term_with_deadline(ctx, 30.0)
        got, out_of_order, first_bad = child.result()
        assert got == MESSAGES
        assert out_of_order == 0, first_bad
    finally:
        child.kill()


# -- LINGER: close and term do not wait for a peer that does not read -------------------


def _fill(push: Any, payload: bytes, limit: int = 1_000_000, settle_s: float = 0.3) -> int:
    """Send with NOBLOCK until the PUSH stays full for ``settle_s``; return how many went."""
    sent = 0
    full_since: float | None = None
    started = time.monotonic()
    while sent < limit and time.monotonic() - started < 20.0:
        try:
            push.send(payload, zmq.NOBLOCK)
        except zmq.Again:
            now = time.monotonic()
            if full_since is None:
                full_since = now
            elif now - full_since >= settle_s:
                return sent
            time.sleep(0.01)
            continue
        sent += 1
        full_since = None
    return sent


def _stuck_pair(env: Env, transport: str, **push_options: Any) -> tuple[Any, Any, Any]:
    """A PULL (own context) that never reads, and a PUSH (own context) filled up to it."""
    pull_ctx = env.context()
    pull = env.socket(pull_ctx, zmq.PULL, rcvhwm=1, linger=0)
    pull.bind(env.bind_endpoint(transport))
    push_ctx = env.context()
    push = env.socket(push_ctx, zmq.PUSH, sndhwm=1, **push_options)
    push.connect(endpoint_of(pull))
    push.send(b"hello")  # waits for the connection
    assert pull.recv() == b"hello"
    sent = _fill(push, b"x" * 65536)
    assert sent < 1_000_000, "the PUSH never became full"
    return push_ctx, push, pull


@pytest.mark.timeout(30)
@pytest.mark.parametrize("transport", ["tcp", "ipc"])
@pytest.mark.parametrize("how", ["close-arg", "option", "destroy"])
def test_linger_zero_returns_fast_when_peer_is_not_reading(
    env: Env, transport: str, how: str
) -> None:
    push_ctx, push, _pull = _stuck_pair(env, transport)
    # The peer never reads, so only dropping the queue lets term() end: each call below
    # raises if it has not returned by its deadline.
    if how == "close-arg":
        with_deadline(lambda: push.close(linger=0))
        term_with_deadline(push_ctx)
    elif how == "option":
        push.linger = 0
        with_deadline(push.close)
        term_with_deadline(push_ctx)
    else:
        with_deadline(lambda: push_ctx.destroy(linger=0))
    assert push_ctx.closed


@pytest.mark.timeout(30)
@pytest.mark.parametrize("transport", ["tcp", "ipc"])
def test_finite_linger_expires_when_peer_is_not_reading(env: Env, transport: str) -> None:
    push_ctx, push, _pull = _stuck_pair(env, transport, linger=300)
    push.close()
    term_with_deadline(push_ctx)  # the peer never reads: only the expired linger ends term()
    assert push_ctx.closed


@pytest.mark.timeout(30)
def test_term_returns_when_a_bound_push_never_had_a_peer(env: Env) -> None:
    ctx = env.context()
    push = env.socket(ctx, zmq.PUSH)
    push.bind("tcp://127.0.0.1:*")
    with pytest.raises(zmq.Again):
        push.send(b"nobody", zmq.NOBLOCK)
    push.close()  # default linger
    term_with_deadline(ctx)  # raises if term() hangs on the unsendable messages


@pytest.mark.timeout(30)
def test_term_returns_when_a_push_was_never_connected(env: Env) -> None:
    ctx = env.context()
    push = env.socket(ctx, zmq.PUSH)
    with pytest.raises(zmq.Again):
        push.send(b"nobody", zmq.NOBLOCK)
    push.close()
    term_with_deadline(ctx)  # raises if term() hangs on the unsendable messages


@pytest.mark.timeout(30)
@pytest.mark.parametrize("transport", ["tcp", "ipc"])  # libzmq ignores IMMEDIATE for inproc
def test_immediate_push_never_queues_to_a_missing_peer(env: Env, transport: str) -> None:
    """With IMMEDIATE, NOBLOCK sends raise Again and term() does not wait for anything."""
    ctx = env.context()
    push = env.socket(ctx, zmq.PUSH)
    push.setsockopt(zmq.IMMEDIATE, 1)
    push.connect(_nowhere(env, transport))
    time.sleep(0.2)  # some reconnect attempts
    for _ in range(10):
        with pytest.raises(zmq.Again):
            push.send(b"undeliverable", zmq.NOBLOCK)
    push.close()  # default linger: infinite, and nothing to wait for
    term_with_deadline(ctx)


@pytest.mark.timeout(30)
@pytest.mark.parametrize("transport", ["tcp", "ipc", "inproc"])
def test_push_queues_to_a_missing_peer_up_to_its_hwm(env: Env, transport: str) -> None:
    """IMMEDIATE 0 (the default): the connecting pipe takes SNDHWM messages, then Again."""
    ctx = env.context()
    push = env.socket(ctx, zmq.PUSH)
    push.sndhwm = 5
    push.connect(_nowhere(env, transport))
    queued = 0
    refused = False
    for _ in range(100):
        try:
            push.send(b"waiting", zmq.NOBLOCK)
        except zmq.Again:
            refused = True
            break
        queued += 1
    assert refused
    assert 5 <= queued < 100
    if IMPL == "zeropipe":
        assert queued == 5  # exactly SNDHWM: nothing else buffers them
    push.close(linger=0)  # with LINGER -1, term() would wait for that peer, as libzmq does
    term_with_deadline(ctx)


def _nowhere(env: Env, transport: str) -> str:
    """An endpoint nobody binds."""
    if transport == "tcp":
        return f"tcp://127.0.0.1:{_free_port()}"
    return env.bind_endpoint(transport)


def _free_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


# -- SNDHWM over tcp and ipc ------------------------------------------------------------

HWM = 10
SMALL = 16
WIRE = SMALL + 2  # ZMTP short frame: flags byte + size byte + body


def _kernel_limit_messages() -> int:
    """How many SMALL messages the kernel can hold between a PUSH and a PULL that never reads.

    With default buffers Linux lets the sender's buffer grow to ``tcp_wmem`` max (4 MiB is
    common: ~233,000 such messages), the receiver's holds about ``tcp_rmem`` default, and the
    PULL parses at most one 64 KiB chunk beyond its RCVHWM. Half as much again is margin;
    anything beyond means the sender queues without limit.
    """
    try:
        with open("/proc/sys/net/ipv4/tcp_wmem") as f:
            wmem_max = int(f.read().split()[2])
        with open("/proc/sys/net/ipv4/tcp_rmem") as f:
            rmem_default = int(f.read().split()[1])
    except (OSError, ValueError, IndexError):
        return 200_000
    budget = wmem_max + 2 * rmem_default + 2 * 65536
    return max(200_000, int(1.5 * budget / WIRE))


def _hwm_pair(env: Env, transport: str, **buffers: int) -> tuple[Any, Any]:
    ctx = env.context()
    pull = env.socket(ctx, zmq.PULL, rcvhwm=HWM, linger=0, **buffers)
    pull.bind(env.bind_endpoint(transport))
    push = env.socket(ctx, zmq.PUSH, sndhwm=HWM, linger=0, **buffers)
    push.connect(endpoint_of(pull))
    push.send(b"sync")  # waits for the connection
    assert pull.recv() == b"sync"
    return pull, push


def _fill_numbered(push: Any, limit: int, settle_s: float = 0.3) -> int:
    """Send message(0), message(1)... with NOBLOCK until full for ``settle_s``; return count."""
    sent = 0
    full_since: float | None = None
    started = time.monotonic()
    while sent < limit and time.monotonic() - started < 20.0:
        try:
            push.send(message(sent), zmq.NOBLOCK)
        except zmq.Again:
            now = time.monotonic()
            if full_since is None:
                full_since = now
            elif now - full_since >= settle_s:
                break
            time.sleep(0.01)
            continue
        sent += 1
        full_since = None
    return sent


def _drain_numbered(pull: Any, count: int) -> None:
    for i in range(count):
        msg = pull.recv()
        assert msg == message(i), f"message {i} of {count}: got {msg[:32]!r}"
    assert pull.poll(200) == 0, "more messages than were sent"


def _sending_resumes(pull: Any, push: Any) -> None:
    assert push.poll(TIMEOUT_MS, zmq.POLLOUT) == zmq.POLLOUT
    for i in range(HWM):
        push.send(b"resumed %d" % i, zmq.NOBLOCK)
    for i in range(HWM):
        assert pull.recv() == b"resumed %d" % i


@pytest.mark.timeout(60)
@pytest.mark.parametrize("transport", ["tcp", "ipc"])
def test_sndhwm_bounds_a_push_to_a_pull_that_never_reads(env: Env, transport: str) -> None:
    """Default socket buffers: Again after a bounded number of sends; all arrive after."""
    pull, push = _hwm_pair(env, transport)
    bound = _kernel_limit_messages() if transport == "tcp" else 200_000
    cap = 2 * bound  # where the fill gives up (a PUSH that never says Again)
    sent = _fill_numbered(push, cap)
    assert sent > HWM, f"only {sent} sent: the kernel buffers should hold more than SNDHWM"
    assert sent < bound, f"{sent} messages accepted (bound {bound}): SNDHWM is not enforced"
    with pytest.raises(zmq.Again):
        push.send(b"still full", zmq.NOBLOCK)
    _drain_numbered(pull, sent)
    _sending_resumes(pull, push)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("transport", ["tcp", "ipc"])
def test_sndhwm_bound_with_small_socket_buffers(env: Env, transport: str) -> None:
    """With SNDBUF/RCVBUF set to 64 KiB the bound is tight: well under 200,000 messages."""
    pull, push = _hwm_pair(env, transport, sndbuf=65536, rcvbuf=65536)
    sent = _fill_numbered(push, 400_000)
    assert HWM < sent < 200_000, sent
    _drain_numbered(pull, sent)
    _sending_resumes(pull, push)


@pytest.mark.timeout(30)
@pytest.mark.parametrize("transport", ["tcp", "ipc", "inproc"])
def test_blocked_send_resumes_when_the_pull_reads(env: Env, transport: str) -> None:
    pull, push = _hwm_pair(env, transport, sndbuf=65536, rcvbuf=65536)
    sent = _fill_numbered(push, 400_000)
    errors: list[BaseException] = []
    done = threading.Event()

    def blocked_send() -> None:
        try:
            push.send(b"blocked")  # SNDTIMEO is 5 s
        except BaseException as exc:
            errors.append(exc)
        finally:
            done.set()

    thread = threading.Thread(target=blocked_send, daemon=True)
    thread.start()
    assert not done.wait(0.3), "the send did not block on a full PUSH"
    _drain_numbered_then(pull, sent, b"blocked")
    assert done.wait(TIMEOUT_MS / 1000)
    assert not errors, errors
    thread.join(5)


def _drain_numbered_then(pull: Any, count: int, last: bytes) -> None:
    for i in range(count):
        assert pull.recv() == message(i)
    assert pull.recv() == last


@pytest.mark.timeout(30)
@pytest.mark.parametrize("transport", ["tcp", "ipc", "inproc"])
def test_sndtimeo_on_a_full_push_raises_again(env: Env, transport: str) -> None:
    pull, push = _hwm_pair(env, transport, sndbuf=65536, rcvbuf=65536)
    sent = _fill_numbered(push, 400_000)
    push.sndtimeo = 300
    with pytest.raises(zmq.Again):
        push.send(b"times out")
    _drain_numbered(pull, sent)


# -- inproc: capacity is exactly SNDHWM + RCVHWM -----------------------------------------


@pytest.mark.timeout(30)
@pytest.mark.parametrize(("sndhwm", "rcvhwm"), [(10, 10), (5, 15), (1, 1), (1000, 7)])
def test_inproc_capacity_is_sndhwm_plus_rcvhwm(env: Env, sndhwm: int, rcvhwm: int) -> None:
    ctx = env.context()
    endpoint = env.bind_endpoint("inproc")
    pull = env.socket(ctx, zmq.PULL, rcvhwm=rcvhwm, linger=0)
    pull.bind(endpoint)
    push = env.socket(ctx, zmq.PUSH, sndhwm=sndhwm, linger=0)
    push.connect(endpoint)
    capacity = sndhwm + rcvhwm
    for i in range(capacity):
        push.send(message(i), zmq.NOBLOCK)
    with pytest.raises(zmq.Again):
        push.send(b"one too many", zmq.NOBLOCK)
    with pytest.raises(zmq.Again):
        push.send_multipart([b"still", b"too many"], zmq.NOBLOCK)
    _drain_numbered(pull, capacity)
    for i in range(capacity):  # the same room again once drained
        push.send(message(i), zmq.NOBLOCK)
    with pytest.raises(zmq.Again):
        push.send(b"one too many", zmq.NOBLOCK)
    _drain_numbered(pull, capacity)


@pytest.mark.timeout(30)
def test_inproc_capacity_when_connected_first(env: Env) -> None:
    """Connect before bind: the pipe still holds SNDHWM + RCVHWM once the bind happens."""
    ctx = env.context()
    endpoint = env.bind_endpoint("inproc")
    push = env.socket(ctx, zmq.PUSH, sndhwm=10, linger=0)
    push.connect(endpoint)
    pull = env.socket(ctx, zmq.PULL, rcvhwm=10, linger=0)
    pull.bind(endpoint)
    sent = 0
    while sent < 1000:
        try:
            push.send(message(sent), zmq.NOBLOCK)
        except zmq.Again:
            break
        sent += 1
    assert 10 <= sent <= 20, sent
    _drain_numbered(pull, sent)


@pytest.mark.timeout(30)
def test_inproc_zero_hwm_means_no_limit(env: Env) -> None:
    ctx = env.context()
    endpoint = env.bind_endpoint("inproc")
    pull = env.socket(ctx, zmq.PULL, rcvhwm=0, linger=0)
    pull.bind(endpoint)
    push = env.socket(ctx, zmq.PUSH, sndhwm=0, linger=0)
    push.connect(endpoint)
    for i in range(20_000):
        push.send(message(i), zmq.NOBLOCK)
    _drain_numbered(pull, 20_000)


# -- multipart atomicity ------------------------------------------------------------------


def _send_parts_noblock(push: Any, parts: list[bytes]) -> int | None:
    """Send ``parts`` with SNDMORE and NOBLOCK; return the index that raised Again, if any."""
    for index, part in enumerate(parts):
        flags = zmq.NOBLOCK | (zmq.SNDMORE if index < len(parts) - 1 else 0)
        try:
            push.send(part, flags)
        except zmq.Again:
            return index
    return None


def _finish_parts(push: Any, parts: list[bytes], start: int) -> None:
    for index in range(start, len(parts)):
        push.send(parts[index], zmq.SNDMORE if index < len(parts) - 1 else 0)


@pytest.mark.timeout(30)
def test_inproc_multipart_is_atomic_when_the_last_part_hits_hwm(env: Env) -> None:
    ctx = env.context()
    endpoint = env.bind_endpoint("inproc")
    pull = env.socket(ctx, zmq.PULL, rcvhwm=1, linger=0)
    pull.bind(endpoint)
    push = env.socket(ctx, zmq.PUSH, sndhwm=1, linger=0)
    push.connect(endpoint)
    push.send(b"filler-0", zmq.NOBLOCK)
    push.send(b"filler-1", zmq.NOBLOCK)
    parts = [b"a", b"b", b"c"]
    failed = _send_parts_noblock(push, parts)
    assert failed is not None, "a full pipe accepted a whole multipart message"
    if IMPL == "zeropipe":
        assert failed == 2, "zeropipe queues parts until the last one"
    # Nothing of [a, b, c] is visible: only the fillers, each complete.
    assert pull.recv_multipart() == [b"filler-0"]
    assert pull.recv_multipart() == [b"filler-1"]
    assert pull.poll(200) == 0, f"partial message delivered: {pull.recv_multipart()}"
    # Retrying the part that failed completes the message, exactly once.
    _finish_parts(push, parts, failed)
    assert pull.recv_multipart() == parts
    assert pull.poll(200) == 0


@pytest.mark.timeout(30)
@pytest.mark.parametrize("transport", ["tcp", "ipc"])
def test_multipart_is_atomic_when_the_push_is_full(env: Env, transport: str) -> None:
    pull, push = _hwm_pair(env, transport)
    filler = b"f" * 16384
    sent = _fill(push, filler, limit=100_000)
    assert sent < 100_000
    parts = [b"a", b"b", b"c" * 100]
    failed = _send_parts_noblock(push, parts)
    assert failed is not None, "a full PUSH accepted a whole multipart message"
    if IMPL == "zeropipe":
        assert failed == 2, "zeropipe queues parts until the last one"
    for i in range(sent):
        msg = pull.recv_multipart()
        assert msg == [filler], f"message {i}: {[p[:8] for p in msg]} is not a filler"
    assert pull.poll(200) == 0, f"partial message delivered: {pull.recv_multipart()}"
    _finish_parts(push, parts, failed)
    assert pull.recv_multipart() == parts
    assert pull.poll(200) == 0


@pytest.mark.timeout(30)
@pytest.mark.parametrize("transport", ["tcp", "inproc"])
def test_send_multipart_noblock_on_a_full_push_is_all_or_nothing(env: Env, transport: str) -> None:
    pull, push = _hwm_pair(env, transport)
    filler = b"f" * 16384
    sent = _fill(push, filler, limit=100_000)
    with pytest.raises(zmq.Again):
        push.send_multipart([b"x", b"y", b"z"], zmq.NOBLOCK)
    for _ in range(sent):
        assert pull.recv_multipart() == [filler]
    assert pull.poll(200) == 0, f"partial message delivered: {pull.recv_multipart()}"
    push.send_multipart([b"x", b"y", b"z"])
    assert pull.recv_multipart() == [b"x", b"y", b"z"]


@pytest.mark.skipif(IMPL != "zeropipe", reason="zeropipe's term() warning")
def test_term_says_which_peer_it_waits_for(
    env: Env, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """LINGER waiting for a peer that never came: term() names the endpoint in a warning."""
    from zeropipe.sdk import context as context_module

    monkeypatch.setattr(context_module, "LINGER_WARNING_S", 0.05)
    ctx = zmq.Context()
    push = ctx.socket(zmq.PUSH)
    endpoint = _nowhere(env, "tcp")
    push.connect(endpoint)
    push.send(b"for nobody", zmq.NOBLOCK)
    push.close(linger=500)  # term() waits up to 0.5 s for it
    with caplog.at_level("WARNING", logger="zeropipe"):
        term_with_deadline(ctx)
    assert any(endpoint in record.getMessage() for record in caplog.records)
