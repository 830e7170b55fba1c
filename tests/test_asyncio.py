"""zeropipe.asyncio: async sockets driven from the event loop's own thread.

Each test runs its own loop with ``asyncio.run`` (no pytest-asyncio) and owns its contexts:
``run`` destroys the asyncio context in ``finally``, threads close their sockets and terminate
their contexts in ``finally``. ``run`` bounds the whole coroutine and ``within`` single waits,
so a hang fails the test with a TimeoutError instead of stalling the run.
"""

from __future__ import annotations

import asyncio
import errno
import random
import shutil
import socket
import tempfile
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from typing import Any

import pytest
import zmq as pyzmq

import zeropipe as zp
import zeropipe.asyncio as zaio
from zeropipe.sdk import aio

MiB = 1 << 20
WAIT_S = 5.0
"""Upper bound for any single await that should complete."""
RUN_S = 15.0
"""Upper bound for a whole test's coroutine (below the 20 s pytest timeout)."""

TRANSPORTS = ["tcp", "ipc", "inproc"]

Main = Callable[[zaio.Context], Awaitable[None]]


def run(main: Main) -> None:
    """Run ``main(ctx)`` in a fresh loop; close every socket and terminate ``ctx`` after."""
    ctx = zaio.Context()

    async def checked() -> None:
        await within(main(ctx), RUN_S)
        hub = aio._hub(asyncio.get_running_loop())
        assert not hub.readers, "descriptors still watched after the test"
        assert not hub.writers, "descriptors still watched after the test"

    try:
        asyncio.run(checked())
    finally:
        ctx.destroy(linger=0)


async def within(aw: Awaitable[Any], seconds: float = WAIT_S) -> Any:
    return await asyncio.wait_for(aw, seconds)


def blob(size: int) -> bytes:
    return random.Random(size).randbytes(size)


@pytest.fixture
def ipc_dir() -> Iterator[str]:
    """A short directory for ipc socket files (AF_UNIX paths are limited to ~107 bytes)."""
    path = tempfile.mkdtemp(prefix="zpa", dir="/tmp")
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def bind(sock: Any, transport: str, ipc_dir: str) -> str:
    """Bind ``sock`` to a fresh endpoint of ``transport`` and return it."""
    if transport == "tcp":
        sock.bind("tcp://127.0.0.1:*")
        last = sock.last_endpoint
        return last.decode() if isinstance(last, bytes) else str(last)
    if transport == "ipc":
        endpoint = f"ipc://{ipc_dir}/{uuid.uuid4().hex[:8]}.sock"
    else:
        endpoint = f"inproc://zpa-{uuid.uuid4().hex}"
    sock.bind(endpoint)
    return endpoint


def pair_up(
    ctx: zaio.Context, kinds: tuple[int, int], transport: str, ipc_dir: str
) -> tuple[Any, Any]:
    """Two connected async sockets (the first binds)."""
    a = ctx.socket(kinds[0])
    b = ctx.socket(kinds[1])
    b.connect(bind(a, transport, ipc_dir))
    return a, b


# -- basics -------------------------------------------------------------------


@pytest.mark.timeout(20)
@pytest.mark.parametrize("transport", TRANSPORTS)
def test_push_pull(transport: str, ipc_dir: str) -> None:
    async def main(ctx: zaio.Context) -> None:
        pull, push = pair_up(ctx, (zp.PULL, zp.PUSH), transport, ipc_dir)
        assert isinstance(pull, zaio.Socket)
        await within(push.send(b"hello"))
        assert await within(pull.recv()) == b"hello"
        await push.send_multipart([b"a", b"", b"c"])
        assert await within(pull.recv_multipart()) == [b"a", b"", b"c"]

    run(main)


@pytest.mark.timeout(20)
@pytest.mark.parametrize("transport", TRANSPORTS)
def test_pair_both_ways(transport: str, ipc_dir: str) -> None:
    async def main(ctx: zaio.Context) -> None:
        a, b = pair_up(ctx, (zp.PAIR, zp.PAIR), transport, ipc_dir)
        for i in range(50):
            await a.send(b"ping %d" % i)
            assert await b.recv() == b"ping %d" % i
            await b.send_multipart([b"pong", b"%d" % i])
            assert await a.recv_multipart() == [b"pong", b"%d" % i]

    run(main)


@pytest.mark.timeout(20)
@pytest.mark.parametrize("transport", TRANSPORTS)
def test_multipart_and_large_frames(transport: str, ipc_dir: str) -> None:
    messages = [
        [blob(MiB)],
        [blob(255), blob(256), blob(MiB), b""],
        [b"head", blob(3 * MiB + 7)],
    ]

    async def main(ctx: zaio.Context) -> None:
        pull, push = pair_up(ctx, (zp.PULL, zp.PUSH), transport, ipc_dir)

        async def sender() -> None:
            for msg in messages:
                await push.send_multipart(msg)

        task = asyncio.create_task(sender())
        for msg in messages:
            assert await within(pull.recv_multipart()) == msg
        await within(task)
        await push.send(b"x", zp.SNDMORE)
        await push.send(memoryview(blob(MiB)))
        assert await within(pull.recv()) == b"x"
        assert pull.rcvmore
        assert await within(pull.recv()) == blob(MiB)
        assert not pull.rcvmore

    run(main)


@pytest.mark.timeout(20)
@pytest.mark.parametrize("transport", ["tcp", "inproc"])
def test_many_messages_in_order(transport: str, ipc_dir: str) -> None:
    count = 10_000

    async def main(ctx: zaio.Context) -> None:
        pull, push = pair_up(ctx, (zp.PULL, zp.PUSH), transport, ipc_dir)
        push.sndhwm = 100  # the sender has to wait for the receiver now and then

        async def sender() -> None:
            for i in range(count):
                await push.send(b"msg-%05d" % i)

        task = asyncio.create_task(sender())
        for i in range(count):
            assert await pull.recv() == b"msg-%05d" % i
        await within(task)

    run(main)


@pytest.mark.timeout(20)
def test_strings_json_pyobj_and_frames() -> None:
    async def main(ctx: zaio.Context) -> None:
        a, b = pair_up(ctx, (zp.PAIR, zp.PAIR), "inproc", "")
        await a.send_string("héllo")
        assert await within(b.recv_string()) == "héllo"
        await a.send_unicode("unicode")
        assert await within(b.recv_unicode()) == "unicode"
        await a.send_json({"n": [1, 2]})
        assert await within(b.recv_json()) == {"n": [1, 2]}
        await a.send_pyobj({"set": {1, 2}})
        assert await within(b.recv_pyobj()) == {"set": {1, 2}}
        await a.send_multipart([b"f1", b"f2"])
        frames = await within(b.recv_multipart(copy=False))
        assert [f.bytes for f in frames] == [b"f1", b"f2"]
        assert [f.more for f in frames] == [True, False]
        await a.send(b"one")
        frame = await within(b.recv(copy=False))
        assert isinstance(frame, zp.Frame)
        assert frame.bytes == b"one"
        await a.send_serialized({"k": 1}, lambda m: [repr(m).encode()])
        assert await within(b.recv_serialized(lambda parts: parts[0])) == b"{'k': 1}"
        buf = bytearray(4)
        await a.send(b"truncated")
        assert await within(b.recv_into(buf)) == len(b"truncated")
        assert bytes(buf) == b"trun"
        with pytest.raises(TypeError):
            await a.send_string(b"bytes")

    run(main)


# -- timeouts, NOBLOCK, cancellation, closing ---------------------------------


@pytest.mark.timeout(20)
def test_rcvtimeo_raises_again() -> None:
    async def main(ctx: zaio.Context) -> None:
        pull, push = pair_up(ctx, (zp.PULL, zp.PUSH), "tcp", "")
        pull.rcvtimeo = 150
        with pytest.raises(zp.Again):
            await within(pull.recv())
        await push.send(b"later")  # the socket is still usable
        assert await within(pull.recv()) == b"later"
        pull.rcvtimeo = 0
        with pytest.raises(zp.Again):
            await within(pull.recv_multipart())

    run(main)


@pytest.mark.timeout(20)
def test_sndtimeo_raises_again() -> None:
    async def main(ctx: zaio.Context) -> None:
        push = ctx.socket(zp.PUSH)  # no peer: nowhere to send
        push.sndtimeo = 100
        with pytest.raises(zp.Again):
            await within(push.send(b"nobody"))

    run(main)


@pytest.mark.timeout(20)
def test_noblock() -> None:
    async def main(ctx: zaio.Context) -> None:
        lonely = ctx.socket(zp.PUSH)
        with pytest.raises(zp.Again):
            await lonely.send(b"x", zp.NOBLOCK)
        with pytest.raises(zp.Again):
            await lonely.send_multipart([b"a", b"b"], zp.NOBLOCK)
        pull, push = pair_up(ctx, (zp.PULL, zp.PUSH), "inproc", "")
        pull.rcvtimeo = -1  # NOBLOCK must not wait even when a wait would be forever
        for call in (pull.recv, pull.recv_multipart, pull.recv_many, pull.recv_string):
            with pytest.raises(zp.Again):
                await call(flags=zp.NOBLOCK)
        await push.send(b"now", zp.NOBLOCK)
        assert await pull.recv(zp.NOBLOCK) == b"now"

    run(main)


@pytest.mark.timeout(20)
@pytest.mark.parametrize("transport", ["tcp", "inproc"])
def test_cancelled_recv_loses_nothing(transport: str, ipc_dir: str) -> None:
    async def main(ctx: zaio.Context) -> None:
        pull, push = pair_up(ctx, (zp.PULL, zp.PUSH), transport, ipc_dir)
        pending = asyncio.create_task(pull.recv())
        await asyncio.sleep(0.05)
        assert not pending.done()
        pending.cancel()
        with pytest.raises(asyncio.CancelledError):
            await pending
        await push.send(b"after cancel")
        assert await within(pull.recv()) == b"after cancel"

    run(main)


@pytest.mark.timeout(20)
@pytest.mark.parametrize("transport", ["tcp", "inproc"])
def test_recv_cancelled_at_random_while_messages_arrive(transport: str, ipc_dir: str) -> None:
    """recv() is cancelled at random points while messages arrive: none may be lost."""
    count = 1000
    rng = random.Random(7)

    async def main(ctx: zaio.Context) -> None:
        pull, push = pair_up(ctx, (zp.PULL, zp.PUSH), transport, ipc_dir)

        async def sender() -> None:
            for i in range(count):
                await push.send(b"%d" % i)
                await asyncio.sleep(rng.choice([0, 0.0002, 0.0005]))

        sending = asyncio.create_task(sender())
        got: list[bytes] = []
        cancelled = 0
        while len(got) < count:
            receiving = asyncio.create_task(pull.recv())
            await asyncio.sleep(rng.choice([0, 0, 0.0001, 0.0005]))
            receiving.cancel()
            try:
                got.append(await receiving)
            except asyncio.CancelledError:
                cancelled += 1
        await within(sending)
        assert got == [b"%d" % i for i in range(count)]
        assert cancelled > 0

    run(main)


PENDING_OPS: dict[str, Callable[[Any, Any], Coroutine[Any, Any, Any]]] = {
    "recv": lambda pull, push: pull.recv(),
    "recv_multipart": lambda pull, push: pull.recv_multipart(),
    "poll": lambda pull, push: pull.poll(),
    "send": lambda pull, push: push.send(b"nobody listens"),
}
"""Operations that wait forever (the PUSH socket has no peer), and the socket they use."""


@pytest.mark.timeout(20)
@pytest.mark.parametrize("closer", ["loop", "thread"])
@pytest.mark.parametrize("op", list(PENDING_OPS))
def test_close_while_pending(op: str, closer: str) -> None:
    async def main(ctx: zaio.Context) -> None:
        pull = ctx.socket(zp.PULL)
        pull.bind("tcp://127.0.0.1:*")
        push = ctx.socket(zp.PUSH)
        pending = asyncio.create_task(PENDING_OPS[op](pull, push))
        await asyncio.sleep(0.05)
        assert not pending.done()
        victim = push if op == "send" else pull
        if closer == "loop":
            victim.close()
        else:
            await asyncio.to_thread(victim.close)
        with pytest.raises(zp.ZMQError) as info:
            await within(pending)
        assert info.value.errno == errno.ENOTSOCK
        with pytest.raises(zp.ZMQError):
            await PENDING_OPS[op](pull, push)

    run(main)


@pytest.mark.timeout(20)
def test_context_term_ends_pending_recv() -> None:
    ctx = zaio.Context()
    pull = ctx.socket(zp.PULL)
    term = threading.Thread(target=ctx.term, daemon=True)

    async def main() -> None:
        pull.bind("tcp://127.0.0.1:*")
        pending = asyncio.create_task(pull.recv())
        await asyncio.sleep(0.05)
        term.start()
        with pytest.raises(zp.ContextTerminated):
            await within(pending)

    try:
        asyncio.run(main())
    finally:
        pull.close(linger=0)
        if term.ident is None:  # main() failed before starting it
            ctx.term()
        else:
            term.join(WAIT_S)
    assert not term.is_alive()


# -- several operations at once -----------------------------------------------


@pytest.mark.timeout(20)
@pytest.mark.parametrize("transport", ["tcp", "inproc"])
def test_recv_and_blocked_send_on_one_socket(transport: str, ipc_dir: str) -> None:
    """A pending recv and a send waiting for room share one socket (and its waker)."""
    count = 3000
    padding = bytes(16384)  # enough to fill the kernel's buffers too

    async def main(ctx: zaio.Context) -> None:
        ctx.sndhwm = ctx.rcvhwm = 5
        a, b = pair_up(ctx, (zp.PAIR, zp.PAIR), transport, ipc_dir)
        incoming = asyncio.create_task(a.recv())

        async def flood() -> None:
            for i in range(count):
                await a.send(b"%d" % i + padding)

        sending = asyncio.create_task(flood())
        await asyncio.sleep(0.02)
        assert not sending.done()  # blocked on the high-water mark
        for i in range(count):
            assert await b.recv() == b"%d" % i + padding
        await within(sending)
        await b.send(b"reply")
        assert await within(incoming) == b"reply"

    run(main)


@pytest.mark.timeout(20)
def test_two_pending_recvs_on_one_socket() -> None:
    async def main(ctx: zaio.Context) -> None:
        pull, push = pair_up(ctx, (zp.PULL, zp.PUSH), "tcp", "")
        first = asyncio.create_task(pull.recv())
        second = asyncio.create_task(pull.recv())
        await asyncio.sleep(0.05)
        await push.send(b"1")
        await push.send(b"2")
        assert sorted(await within(asyncio.gather(first, second))) == [b"1", b"2"]

    run(main)


# -- send_many / recv_many ------------------------------------------------------


@pytest.mark.timeout(20)
@pytest.mark.parametrize("transport", ["tcp", "inproc"])
def test_send_many_recv_many(transport: str, ipc_dir: str) -> None:
    messages: list[Any] = [b"m%d" % i if i % 3 else [b"p", b"%d" % i] for i in range(5000)]

    async def main(ctx: zaio.Context) -> None:
        pull, push = pair_up(ctx, (zp.PULL, zp.PUSH), transport, ipc_dir)
        push.sndhwm = pull.rcvhwm = 50  # send_many must wait for room several times
        sending = asyncio.create_task(push.send_many(messages))
        got: list[Any] = []
        while len(got) < len(messages):
            batch = await pull.recv_many(max_messages=64)
            assert 1 <= len(batch) <= 64
            got.extend(batch)
        await within(sending)
        assert got == messages
        with pytest.raises(zp.Again):
            await pull.recv_many(flags=zp.NOBLOCK)

    run(main)


# -- polling --------------------------------------------------------------------


@pytest.mark.timeout(20)
def test_socket_poll() -> None:
    async def main(ctx: zaio.Context) -> None:
        pull, push = pair_up(ctx, (zp.PULL, zp.PUSH), "tcp", "")
        assert await within(pull.poll(50)) == 0
        assert await within(push.poll(2000, zp.POLLOUT)) == zp.POLLOUT
        waiting = asyncio.create_task(pull.poll())
        await asyncio.sleep(0.05)
        assert not waiting.done()
        await push.send(b"wake")
        assert await within(waiting) == zp.POLLIN
        assert await within(pull.poll(0)) == zp.POLLIN
        assert await pull.recv() == b"wake"
        assert await within(pull.poll(0)) == 0

    run(main)


@pytest.mark.timeout(20)
def test_poller_two_sockets() -> None:
    async def main(ctx: zaio.Context) -> None:
        pull_a, push_a = pair_up(ctx, (zp.PULL, zp.PUSH), "tcp", "")
        pull_b, push_b = pair_up(ctx, (zp.PULL, zp.PUSH), "inproc", "")
        poller = zaio.Poller()
        poller.register(pull_a, zp.POLLIN)
        poller.register(pull_b, zp.POLLIN)
        assert await within(poller.poll(50)) == []

        waiting = asyncio.create_task(poller.poll())
        await asyncio.sleep(0.05)
        assert not waiting.done()
        await push_b.send(b"to b")
        assert await within(waiting) == [(pull_b, zp.POLLIN)]

        await push_a.send(b"to a")
        deadline = time.monotonic() + WAIT_S
        ready: dict[Any, int] = {}
        while len(ready) < 2 and time.monotonic() < deadline:
            ready = dict(await within(poller.poll(1000)))
        assert ready == {pull_a: zp.POLLIN, pull_b: zp.POLLIN}

        poller.unregister(pull_b)
        assert await within(poller.poll(1000)) == [(pull_a, zp.POLLIN)]
        assert await pull_a.recv() == b"to a"
        poller.modify(pull_b, zp.POLLIN | zp.POLLOUT)
        assert await within(poller.poll(1000)) == [(pull_b, zp.POLLIN)]
        assert await pull_b.recv() == b"to b"
        assert await within(poller.poll(30)) == []

    run(main)


@pytest.mark.timeout(20)
def test_poller_plain_descriptor_and_closed_socket() -> None:
    async def main(ctx: zaio.Context) -> None:
        pull = ctx.socket(zp.PULL)
        blocking_ctx = zp.Context()
        left, right = socket.socketpair()
        try:
            poller = zaio.Poller()
            poller.register(pull, zp.POLLIN)
            poller.register(left, zp.POLLIN)
            waiting = asyncio.create_task(poller.poll())
            await asyncio.sleep(0.05)
            right.send(b"!")
            assert await within(waiting) == [(left, zp.POLLIN)]
            with pytest.raises(TypeError):
                poller.register(blocking_ctx.socket(zp.PULL), zp.POLLIN)
            poller.unregister(left)
            waiting = asyncio.create_task(poller.poll())
            await asyncio.sleep(0.05)
            pull.close()
            with pytest.raises(zp.ZMQError):
                await within(waiting)
        finally:
            left.close()
            right.close()
            blocking_ctx.destroy(linger=0)

    run(main)


# -- against blocking peers in a thread -----------------------------------------

PEERS = {"zeropipe": zp, "pyzmq": pyzmq}
PEER_MESSAGES = [[b"one"], [b"multi", b"", b"part"], [blob(MiB)], [b"%d" % i for i in range(3)]]
PEER_MESSAGES += [[b"n-%04d" % i] for i in range(1000)]


def blocking_peer(module: Any, kind: str, endpoint: str, job: Callable[[Any], Any]) -> Any:
    """Open a blocking socket of ``module`` in this thread, run ``job`` on it, clean up."""
    ctx = module.Context()
    sock = None
    try:
        sock = ctx.socket(getattr(module, kind))
        sock.linger = 5000
        sock.rcvtimeo = sock.sndtimeo = int(WAIT_S * 1000)
        sock.connect(endpoint)
        return job(sock)
    finally:
        if sock is not None:
            sock.close()
        ctx.term()


@pytest.mark.timeout(20)
@pytest.mark.parametrize("peer", list(PEERS))
@pytest.mark.parametrize("transport", ["tcp", "ipc"])
def test_async_pull_from_blocking_push(peer: str, transport: str, ipc_dir: str) -> None:
    def job(sock: Any) -> None:
        for msg in PEER_MESSAGES:
            sock.send_multipart(msg)

    async def main(ctx: zaio.Context) -> None:
        pull = ctx.socket(zp.PULL)
        endpoint = bind(pull, transport, ipc_dir)
        thread = asyncio.create_task(
            asyncio.to_thread(blocking_peer, PEERS[peer], "PUSH", endpoint, job)
        )
        for msg in PEER_MESSAGES:
            assert await pull.recv_multipart() == msg
        await within(thread)

    run(main)


@pytest.mark.timeout(20)
@pytest.mark.parametrize("peer", list(PEERS))
@pytest.mark.parametrize("transport", ["tcp", "ipc"])
def test_async_push_to_blocking_pull(peer: str, transport: str, ipc_dir: str) -> None:
    def job(sock: Any) -> list[list[bytes]]:
        return [sock.recv_multipart() for _ in PEER_MESSAGES]

    async def main(ctx: zaio.Context) -> None:
        push = ctx.socket(zp.PUSH)
        push.linger = 5000
        endpoint = bind(push, transport, ipc_dir)
        thread = asyncio.create_task(
            asyncio.to_thread(blocking_peer, PEERS[peer], "PULL", endpoint, job)
        )
        for msg in PEER_MESSAGES:
            await push.send_multipart(msg)
        assert await within(thread) == PEER_MESSAGES

    run(main)


@pytest.mark.timeout(20)
@pytest.mark.parametrize("peer", list(PEERS))
def test_async_pair_with_blocking_echo(peer: str) -> None:
    rounds = 200

    def echo(sock: Any) -> None:
        for _ in range(rounds):
            sock.send_multipart(sock.recv_multipart())

    async def main(ctx: zaio.Context) -> None:
        pair = ctx.socket(zp.PAIR)
        endpoint = bind(pair, "tcp", "")
        thread = asyncio.create_task(
            asyncio.to_thread(blocking_peer, PEERS[peer], "PAIR", endpoint, echo)
        )
        for i in range(rounds):
            msg = [b"echo", b"%d" % i] if i % 2 else [blob(1000 + i)]
            await pair.send_multipart(msg)
            assert await pair.recv_multipart() == msg
        await within(thread)

    run(main)


@pytest.mark.timeout(20)
def test_inproc_with_blocking_socket_of_same_context() -> None:
    async def main(ctx: zaio.Context) -> None:
        pull = ctx.socket(zp.PULL)
        endpoint = bind(pull, "inproc", "")
        push = ctx.socket(zp.PUSH, socket_class=zp.Socket)
        assert not isinstance(push, zaio.Socket)
        push.connect(endpoint)
        push.sndhwm = 10

        def send_all() -> None:
            for i in range(2000):
                push.send(b"%d" % i)

        thread = asyncio.create_task(asyncio.to_thread(send_all))
        for i in range(2000):
            assert await pull.recv() == b"%d" % i
        await within(thread)

    run(main)


# -- the module -------------------------------------------------------------------


@pytest.mark.timeout(20)
def test_module_and_context_instance() -> None:
    assert zp.asyncio is zaio
    assert zaio.PUSH == zp.PUSH
    assert zaio.NOBLOCK == zp.NOBLOCK
    assert zaio.Again is zp.Again
    assert zaio.ZMQError is zp.ZMQError
    assert zaio.Context is not zp.Context
    assert issubclass(zaio.Socket, zp.Socket)
    assert issubclass(zaio.Context, zp.Context)
    assert "Poller" in zaio.__all__
    assert "PULL" in zaio.__all__
    inst = zaio.Context.instance()
    try:
        assert isinstance(inst, zaio.Context)
        assert zaio.Context.instance() is inst
        assert zp.Context.instance() is not inst
        sock = inst.socket(zp.PAIR)
        assert isinstance(sock, zaio.Socket)
        assert "zeropipe.asyncio.Socket" in repr(sock)
        sock.close()
    finally:
        inst.term()
        zp.Context.instance().term()
