"""Proxy interop: a libzmq proxy between zeropipe sockets, a zeropipe proxy between libzmq ones.

"ours-proxy": zeropipe runs the proxy (frontend and backend are zeropipe sockets) and pyzmq
sockets talk to it; "theirs-proxy": pyzmq's ``zmq.proxy`` runs over libzmq sockets and the
ends are zeropipe's. Over tcp and ipc: a QUEUE (ROUTER frontend, DEALER backend) between REQ
clients and REP workers, a FORWARDER (XSUB frontend, XPUB backend) between a PUB and two SUBs
with different subscriptions, and a steerable STREAMER whose REP control socket answers
STATISTICS (frames and bytes counted per frame, as libzmq 4.3.5 does) and TERMINATE.

The proxy has a context of its own, run in a thread that closes the proxy's sockets when the
proxy returns; teardown terminates that context and joins the thread with a deadline.
"""

from __future__ import annotations

import importlib
import struct
import threading
from collections.abc import Iterator
from types import ModuleType
from typing import TYPE_CHECKING, Any

import pytest
from pubsub_sync import END, collect, publish, sync

if TYPE_CHECKING:
    from netutil import Endpoints

    from .conftest import Side

pytestmark = [pytest.mark.interop, pytest.mark.timeout(30)]

TIMEOUT_MS = 5000
JOIN_TIMEOUT_S = 10.0
ROUNDS = 10


def proxy_functions(module: ModuleType) -> Any:
    """Where ``module``'s proxy, proxy_steerable and device live."""
    if module.__name__ == "zeropipe":
        return importlib.import_module("zeropipe.sdk.proxy")
    return module


class ProxyHost:
    """A context of one implementation, running a proxy over its own sockets in a thread."""

    def __init__(self, module: ModuleType) -> None:
        self.module = module
        self.ctx = module.Context()
        self.sockets: list[Any] = []
        self.thread: threading.Thread | None = None
        self.result: Any = None
        self.error: BaseException | None = None

    def socket(self, kind: str) -> Any:
        sock = self.ctx.socket(getattr(self.module, kind))
        self.sockets.append(sock)
        sock.linger = 0
        return sock

    def start(self, function: str, *args: Any) -> None:
        target = getattr(proxy_functions(self.module), function)

        def run() -> None:
            try:
                self.result = target(*args)
            except BaseException as exc:
                self.error = exc
            finally:
                for sock in self.sockets:
                    sock.close(linger=0)

        self.thread = threading.Thread(target=run, name=f"proxy-{function}", daemon=True)
        self.thread.start()

    def join(self) -> None:
        if self.thread is not None:
            self.thread.join(JOIN_TIMEOUT_S)
            assert not self.thread.is_alive(), "the proxy is still running"

    def close(self) -> None:
        """Terminate the context (ending the proxy), join the thread, report its failure."""
        if self.thread is None:
            for sock in self.sockets:
                sock.close(linger=0)
        term = threading.Thread(target=self.ctx.term, name="proxy-term", daemon=True)
        term.start()
        term.join(JOIN_TIMEOUT_S)
        assert not term.is_alive(), "Context.term() of the proxy's context is stuck"
        self.join()
        error = self.error
        if error is not None and not isinstance(error, self.module.ContextTerminated):
            raise AssertionError(f"the proxy failed: {error!r}") from error


class Layout:
    """Who runs the proxy and who owns the sockets at both ends."""

    def __init__(self, host: ProxyHost, ends: Side) -> None:
        self.host = host
        self.ends = ends


@pytest.fixture(params=["ours-proxy", "theirs-proxy"])
def layout(request: pytest.FixtureRequest, ours: Side, theirs: Side) -> Iterator[Layout]:
    proxy_side, ends = (ours, theirs) if request.param == "ours-proxy" else (theirs, ours)
    host = ProxyHost(proxy_side.module)
    try:
        yield Layout(host, ends)
    finally:
        host.close()


def test_queue_between_req_clients_and_rep_workers(layout: Layout, endpoints: Endpoints) -> None:
    host, ends = layout.host, layout.ends
    frontend = host.socket("ROUTER")
    backend = host.socket("DEALER")
    front_ep = endpoints.bind(frontend)
    back_ep = endpoints.bind(backend)
    host.start("proxy", frontend, backend)

    clients = [ends.socket("REQ") for _ in range(3)]
    workers = [ends.socket("REP") for _ in range(2)]
    poller = ends.module.Poller()
    for client in clients:
        client.connect(front_ep)
    for worker in workers:
        worker.connect(back_ep)
        poller.register(worker, ends.module.POLLIN)

    for round_ in range(ROUNDS):
        for i, client in enumerate(clients):
            client.send_multipart([b"client %d" % i, b"round %d" % round_])
        served = 0
        while served < len(clients):
            ready = dict(poller.poll(TIMEOUT_MS))
            assert ready, f"round {round_}: only {served} requests reached the workers"
            for w, worker in enumerate(workers):
                if ready.get(worker, 0) & ends.module.POLLIN:
                    worker.send_multipart([*worker.recv_multipart(), b"by worker %d" % w])
                    served += 1
        for i, client in enumerate(clients):
            reply = client.recv_multipart()
            assert reply[:2] == [b"client %d" % i, b"round %d" % round_], reply
            assert reply[2] in {b"by worker 0", b"by worker 1"}, reply


def test_forwarder_between_pub_and_subs(layout: Layout, endpoints: Endpoints) -> None:
    host, ends = layout.host, layout.ends
    frontend = host.socket("XSUB")
    backend = host.socket("XPUB")
    front_ep = endpoints.bind(frontend)
    back_ep = endpoints.bind(backend)
    host.start("proxy", frontend, backend)

    pub = ends.socket("PUB")
    pub.connect(front_ep)
    topics = [[b"alpha", END], [b"beta", END]]
    subs = [ends.socket("SUB") for _ in topics]
    for sub, sub_topics in zip(subs, topics, strict=True):
        for topic in sub_topics:
            sub.setsockopt(ends.module.SUBSCRIBE, topic)
        sub.connect(back_ep)
    # The PUB sends nothing a SUB asked for unless the subscription crossed the proxy.
    sync([pub], list(zip(subs, topics, strict=True)))
    publish(
        pub,
        [[b"alpha 1"], [b"beta 1", b"part"], [b"gamma"], [b"alpha 2", b"x", b"y"], [END]],
    )
    assert collect(subs[0], END) == [[b"alpha 1"], [b"alpha 2", b"x", b"y"]]
    assert collect(subs[1], END) == [[b"beta 1", b"part"]]


def test_steerable_statistics_and_terminate(layout: Layout, endpoints: Endpoints) -> None:
    host, ends = layout.host, layout.ends
    frontend = host.socket("PULL")
    backend = host.socket("PUSH")
    control = host.socket("REP")
    front_ep = endpoints.bind(frontend)
    back_ep = endpoints.bind(backend)
    control_ep = endpoints.bind(control)
    host.start("proxy_steerable", frontend, backend, None, control)

    producer = ends.socket("PUSH")
    consumer = ends.socket("PULL")
    commander = ends.socket("REQ")
    producer.connect(front_ep)
    consumer.connect(back_ep)
    commander.connect(control_ep)
    messages = [[b"one"], [b"two", b"parts"], [b"three"]]
    for msg in messages:
        producer.send_multipart(msg)
    assert [consumer.recv_multipart() for _ in messages] == messages

    commander.send(b"STATISTICS")
    reply = commander.recv_multipart()
    assert [len(f) for f in reply] == [8] * 8, reply
    counts = [struct.unpack("=Q", f)[0] for f in reply]
    # 4 frames, 16 bytes in through the frontend and out through the backend.
    assert counts == [4, 16, 0, 0, 0, 0, 4, 16]

    commander.send(b"TERMINATE")
    assert commander.recv_multipart() == [b""]
    host.join()
    assert host.error is None
    assert host.result == 0
