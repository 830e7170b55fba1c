"""``zeropipe send``, ``recv``, ``monitor`` and ``football``, run as real sub-processes.

Each command runs as ``python -m zeropipe.cli ...`` against a peer in the test process: libzmq
through pyzmq, or zeropipe (the ``peer`` fixture runs both). A command that binds prints
``bound to ENDPOINT`` on stderr, which is how the tests find the port of ``tcp://...:*``.
Every command gets a ``--timeout`` and every wait here a deadline, so a bug fails instead of
hanging; teardown kills whatever still runs.
"""

from __future__ import annotations

import importlib
import io
import json
import signal
import sys
import time
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

import pytest
from children import Child, Children
from deadlines import term_with_deadline
from netutil import endpoint_of, free_tcp_port

from zeropipe.cli import tools

pytestmark = pytest.mark.timeout(60)

TIMEOUT_MS = 5000
WAIT_S = 20.0
"""How long a test waits for a line or an exit of a command (a hang guard, not a speed bound)."""


class Cli(Child):
    """One ``zeropipe`` command running in a child process."""

    def __init__(self, args: list[str], stdin: str | None = None) -> None:
        super().__init__([sys.executable, "-m", "zeropipe.cli", *args], args, WAIT_S, stdin)

    def bound_endpoint(self) -> str:
        """The endpoint from the ``bound to ...`` line of a command with ``--bind``."""
        line = self.err.wait_for(1)[0]
        assert line.startswith("bound to "), f"{self.args}: stderr {self.err.lines!r}"
        return line.removeprefix("bound to ")

    def finish(self, timeout: float = WAIT_S) -> tuple[int, list[str], list[str]]:
        """Wait for the exit; (status, stdout lines, stderr lines)."""
        return self.wait_exit(timeout)

    def interrupt(self) -> tuple[int, list[str], list[str]]:
        """Ctrl-C, then :meth:`finish`."""
        self.proc.send_signal(signal.SIGINT)
        return self.finish()


@pytest.fixture
def cli() -> Iterator[Callable[..., Cli]]:
    """Start ``zeropipe`` commands; each is killed at teardown if still running."""
    children = Children()

    def start(*args: str, stdin: str | None = None) -> Cli:
        return children.add(Cli(list(args), stdin))

    yield start
    children.kill_all()


class Peer:
    """Sockets of one implementation in the test process, with timeouts and linger 0."""

    def __init__(self, module: ModuleType) -> None:
        self.zmq = module
        self.ctx = module.Context()
        self.sockets: list[Any] = []

    def socket(self, kind: str, bind: bool = False) -> Any:
        sock = self.ctx.socket(getattr(self.zmq, kind))
        self.sockets.append(sock)
        sock.setsockopt(self.zmq.LINGER, 0)
        sock.setsockopt(self.zmq.RCVTIMEO, TIMEOUT_MS)
        sock.setsockopt(self.zmq.SNDTIMEO, TIMEOUT_MS)
        if bind:
            sock.bind("tcp://127.0.0.1:*")
        return sock

    def close(self) -> None:
        for sock in self.sockets:
            sock.close()
        term_with_deadline(self.ctx)


def recv_frames(sock: Any) -> list[bytes]:
    return [bytes(frame) for frame in sock.recv_multipart()]


@pytest.fixture(params=["zmq", "zeropipe"], ids=["pyzmq-peer", "zeropipe-peer"])
def peer(request: pytest.FixtureRequest) -> Iterator[Peer]:
    """The peer of the command: libzmq through pyzmq, or zeropipe."""
    side = Peer(importlib.import_module(request.param))
    yield side
    side.close()


@pytest.fixture
def pyzmq_peer() -> Iterator[Peer]:
    side = Peer(importlib.import_module("zmq"))
    yield side
    side.close()


# -- recv --------------------------------------------------------------------------------------


def test_recv_pull_prints_each_message_as_a_line(cli: Callable[..., Cli], peer: Peer) -> None:
    command = cli(
        "recv", "PULL", "tcp://127.0.0.1:*", "--bind", "--count", "4", "--timeout", "5000"
    )
    push = peer.socket("PUSH")
    push.connect(command.bound_endpoint())
    push.send(b"hello")
    push.send_multipart([b"two", b"frames"])
    push.send_multipart([b"\x00\xff", b"", "épée".encode()])
    push.send(b"tab\there")
    status, out, err = command.finish()
    assert (status, err[1:]) == (0, [])
    # binary or unprintable frames print as hex, so one message stays one line
    assert out == ["hello", "two|frames", "0x00ff||épée", "0x" + b"tab\there".hex()]


def test_recv_json_and_hex(cli: Callable[..., Cli], pyzmq_peer: Peer) -> None:
    as_json = cli("recv", "PULL", "tcp://127.0.0.1:*", "--bind", "--json", "--count", "1")
    as_hex = cli("recv", "PULL", "tcp://127.0.0.1:*", "--bind", "--hex", "--count", "1")
    for command in (as_json, as_hex):
        push = pyzmq_peer.socket("PUSH")
        push.connect(command.bound_endpoint())
        push.send_multipart([b"id", b"line\nbreak", b"\xff"])
    status, out, _ = as_json.finish()
    assert status == 0
    assert [json.loads(line) for line in out] == [["id", "line\nbreak", "0xff"]]
    status, out, _ = as_hex.finish()
    assert (status, out) == (0, ["0x6964|0x6c696e650a627265616b|0xff"])


def test_recv_rep_echoes_or_replies(cli: Callable[..., Cli], peer: Peer) -> None:
    echo = cli("recv", "REP", "tcp://127.0.0.1:*", "--bind", "--count", "2", "--timeout", "5000")
    fixed = cli("recv", "REP", "tcp://127.0.0.1:*", "--bind", "--count", "1", "--reply", "ok")
    req = peer.socket("REQ")
    req.connect(echo.bound_endpoint())
    req.send(b"ping")
    assert recv_frames(req) == [b"ping"]
    req.send_multipart([b"a", b"b"])
    assert recv_frames(req) == [b"a", b"b"]
    other = peer.socket("REQ")
    other.connect(fixed.bound_endpoint())
    other.send(b"anything")
    assert recv_frames(other) == [b"ok"]
    assert echo.finish()[:2] == (0, ["ping", "a|b"])
    assert fixed.finish()[:2] == (0, ["anything"])


def test_recv_router_shows_the_peer_identity(cli: Callable[..., Cli], peer: Peer) -> None:
    command = cli("recv", "ROUTER", "tcp://127.0.0.1:*", "--bind", "--count", "1")
    dealer = peer.socket("DEALER")
    dealer.setsockopt(peer.zmq.ROUTING_ID, b"dealer-7")
    dealer.connect(command.bound_endpoint())
    dealer.send_multipart([b"", b"hi"])
    assert command.finish()[:2] == (0, ["dealer-7||hi"])


def test_recv_sub_filters_topics(cli: Callable[..., Cli], peer: Peer) -> None:
    pub = peer.socket("PUB", bind=True)
    command = cli(
        "recv", "SUB", endpoint_of(pub), "--subscribe", "weather", "--subscribe", "traffic",
        "--count", "6", "--timeout", "5000",
    )  # fmt: skip
    # The subscriptions reach the PUB some time after the connect (slow joiner): publish
    # rounds until the command has printed its 6 messages and exited.
    deadline = time.monotonic() + WAIT_S
    rounds = 0
    while command.proc.poll() is None and time.monotonic() < deadline:
        pub.send(b"sports %d" % rounds)
        pub.send(b"weather %d" % rounds)
        pub.send_multipart([b"traffic", b"%d" % rounds])
        pub.send(b"weatherman %d" % rounds)  # a prefix match, so also received
        rounds += 1
        command.out.wait_more(6, timeout=0.02)
    status, out, _ = command.finish()
    assert status == 0
    assert len(out) == 6
    kinds = [line.split(" ")[0].split("|")[0] for line in out]
    assert set(kinds) <= {"weather", "traffic", "weatherman"}, out
    assert "sports" not in " ".join(out)


def test_recv_timeout_before_count_is_a_failure(cli: Callable[..., Cli]) -> None:
    command = cli("recv", "PULL", "tcp://127.0.0.1:*", "--bind", "--count", "1", "--timeout", "200")
    status, out, err = command.finish()
    assert (status, out) == (1, [])
    assert "no message within 200 ms" in err[-1]


def test_recv_timeout_without_count_ends_quietly(cli: Callable[..., Cli]) -> None:
    status, out, _ = cli("recv", "PULL", "tcp://127.0.0.1:*", "--bind", "--timeout", "200").finish()
    assert (status, out) == (0, [])


# -- send --------------------------------------------------------------------------------------


def test_send_push_arguments(cli: Callable[..., Cli], peer: Peer) -> None:
    pull = peer.socket("PULL", bind=True)
    ep = endpoint_of(pull)
    # one command at a time: PULL fair-queues between the connections of several commands
    status, _, err = cli("send", "PUSH", ep, "one", "two", "--timeout", "5000").finish()
    assert (status, err) == (0, [])
    assert [recv_frames(pull) for _ in range(2)] == [[b"one"], [b"two"]]
    status, _, _ = cli("send", "PUSH", ep, "--multipart", "a", "", "c", "--count", "2").finish()
    assert status == 0
    assert [recv_frames(pull) for _ in range(2)] == [[b"a", b"", b"c"]] * 2
    status, _, _ = cli("send", "PUSH", ep, "--hex", "--delimiter", ",", "00ff,0x41").finish()
    assert status == 0
    assert recv_frames(pull) == [b"\x00\xff", b"A"]
    assert not pull.poll(50)


def test_send_lines_from_stdin(cli: Callable[..., Cli], peer: Peer) -> None:
    pull = peer.socket("PULL", bind=True)
    command = cli("send", "PUSH", endpoint_of(pull), "--delimiter", "|", stdin="x|y\nz\n\nlast")
    assert command.finish()[0] == 0
    got = [recv_frames(pull) for _ in range(4)]
    assert got == [[b"x", b"y"], [b"z"], [b""], [b"last"]]


def test_send_bind_with_pull_connecting(cli: Callable[..., Cli], peer: Peer) -> None:
    command = cli("send", "PUSH", "tcp://127.0.0.1:*", "--bind", "m1", "m2", "--timeout", "5000")
    pull = peer.socket("PULL")
    pull.connect(command.bound_endpoint())
    assert [recv_frames(pull) for _ in range(2)] == [[b"m1"], [b"m2"]]
    assert command.finish()[0] == 0


def test_send_req_prints_replies(cli: Callable[..., Cli], peer: Peer) -> None:
    rep = peer.socket("REP", bind=True)
    command = cli("send", "REQ", endpoint_of(rep), "hello", "big world", "--timeout", "5000")
    for _ in range(2):
        request = recv_frames(rep)
        rep.send_multipart([b"re:", request[0].upper()])
    status, out, err = command.finish()
    assert (status, out, err) == (0, ["re:|HELLO", "re:|BIG WORLD"], [])


def test_send_req_without_reply_fails(cli: Callable[..., Cli], peer: Peer) -> None:
    rep = peer.socket("REP", bind=True)
    command = cli("send", "REQ", endpoint_of(rep), "hello", "--timeout", "300", "--linger", "0")
    assert recv_frames(rep) == [b"hello"]  # and no answer
    status, out, err = command.finish()
    assert (status, out) == (1, [])
    assert "no reply within 300 ms" in err[-1]


def test_send_dealer_identity_to_router(cli: Callable[..., Cli], peer: Peer) -> None:
    router = peer.socket("ROUTER", bind=True)
    command = cli(
        "send", "DEALER", endpoint_of(router), "--identity", "me", "--multipart", "", "hi"
    )
    assert recv_frames(router) == [b"me", b"", b"hi"]
    assert command.finish()[0] == 0


def test_send_wait_connected_push_times_out_without_peer(cli: Callable[..., Cli]) -> None:
    nowhere = f"tcp://127.0.0.1:{free_tcp_port()}"
    command = cli("send", "PUSH", nowhere, "x", "--wait-connected", "--timeout", "300")
    status, _, err = command.finish()
    assert status == 1
    assert "no peer within 300 ms" in err[-1]


def test_send_wait_connected_pub_reaches_a_late_subscriber(
    cli: Callable[..., Cli], peer: Peer
) -> None:
    """One message, published once: it arrives only because the command waited for the SUB."""
    command = cli(
        "send", "PUB", "tcp://127.0.0.1:*", "--bind", "--wait-connected", "--timeout", "10000",
        "news only once",
    )  # fmt: skip
    endpoint = command.bound_endpoint()
    sub = peer.socket("SUB")
    sub.setsockopt(peer.zmq.SUBSCRIBE, b"news")
    sub.connect(endpoint)
    assert recv_frames(sub) == [b"news only once"]
    status, _, err = command.finish()
    assert (status, err[1:]) == (0, [])


def test_send_wait_connected_router_reaches_a_late_dealer(
    cli: Callable[..., Cli], peer: Peer
) -> None:
    """A ROUTER drops messages to unknown peers: this one arrives because the command waited."""
    command = cli(
        "send", "ROUTER", "tcp://127.0.0.1:*", "--bind", "--wait-connected", "--timeout", "10000",
        "--multipart", "d1", "for d1",
    )  # fmt: skip
    dealer = peer.socket("DEALER")
    dealer.setsockopt(peer.zmq.ROUTING_ID, b"d1")
    dealer.connect(command.bound_endpoint())
    assert recv_frames(dealer) == [b"for d1"]
    status, _, err = command.finish()
    assert (status, err[1:]) == (0, [])


def test_pair_both_ways(cli: Callable[..., Cli], peer: Peer) -> None:
    pair = peer.socket("PAIR", bind=True)
    receiver = cli("recv", "PAIR", endpoint_of(pair), "--count", "1", "--timeout", "5000")
    pair.send(b"to the command")  # PAIR waits for its peer: no slow joiner
    assert receiver.finish()[:2] == (0, ["to the command"])
    sender = cli("send", "PAIR", endpoint_of(pair), "from the command", "--timeout", "5000")
    assert recv_frames(pair) == [b"from the command"]
    assert sender.finish()[0] == 0


# -- errors ------------------------------------------------------------------------------------


def test_unknown_socket_type(cli: Callable[..., Cli]) -> None:
    status, _, err = cli("send", "FOO", "tcp://127.0.0.1:1", "x").finish()
    assert status == 1
    assert "unknown socket type 'FOO'" in err[-1]


def test_bind_failure_is_reported(cli: Callable[..., Cli], pyzmq_peer: Peer) -> None:
    taken = endpoint_of(pyzmq_peer.socket("PULL", bind=True))
    status, _, err = cli("recv", "PULL", taken, "--bind", "--timeout", "100").finish()
    assert status == 1
    assert f"cannot bind {taken}" in err[-1]


def test_subscribe_is_for_sub(cli: Callable[..., Cli]) -> None:
    status, _, err = cli("recv", "PULL", "tcp://127.0.0.1:1", "--subscribe", "x").finish()
    assert status == 1
    assert "--subscribe is for SUB sockets" in err[-1]


# -- monitor -----------------------------------------------------------------------------------


def test_monitor_bound_socket(cli: Callable[..., Cli], pyzmq_peer: Peer) -> None:
    command = cli(
        "monitor", "PULL", "tcp://127.0.0.1:*", "--bind", "--count", "4", "--timeout", "5000"
    )
    endpoint = command.bound_endpoint()
    listening = command.out.wait_for(1)[0]
    assert listening.split(" ")[::2] == ["LISTENING", endpoint]
    push = pyzmq_peer.socket("PUSH")
    push.connect(endpoint)
    command.out.wait_for(3)  # accepted and handshake done: now leave
    push.close()
    status, out, _ = command.finish()
    assert status == 0
    assert [line.split(" ")[0] for line in out] == [
        "LISTENING",
        "ACCEPTED",
        "HANDSHAKE_SUCCEEDED",
        "DISCONNECTED",
    ]
    assert all(line.split(" ")[2] == endpoint for line in out)


def test_monitor_connecting_socket(cli: Callable[..., Cli], pyzmq_peer: Peer) -> None:
    pull = pyzmq_peer.socket("PULL", bind=True)
    endpoint = endpoint_of(pull)
    command = cli("monitor", "PUSH", endpoint, "--count", "2", "--timeout", "5000")
    status, out, err = command.finish()
    names = [line.split(" ")[0] for line in out]
    # libzmq may first report CONNECT_DELAYED (a non-blocking connect in progress)
    assert (status, err) == (0, [])
    assert names in (["CONNECTED", "HANDSHAKE_SUCCEEDED"], ["CONNECT_DELAYED", "CONNECTED"])
    assert all(line.endswith(" " + endpoint) for line in out)


# -- football ----------------------------------------------------------------------------------


def test_football_publisher_watched_by_libzmq(cli: Callable[..., Cli], pyzmq_peer: Peer) -> None:
    publisher = cli(
        "football", "publish", "--bind", "tcp://127.0.0.1:*", "--interval", "0.01", "--seed", "7"
    )
    sub = pyzmq_peer.socket("SUB")
    sub.setsockopt_string(pyzmq_peer.zmq.SUBSCRIBE, "netherlands")
    sub.setsockopt_string(pyzmq_peer.zmq.SUBSCRIBE, "brazil")
    sub.connect(publisher.bound_endpoint())
    events = [sub.recv_string() for _ in range(5)]
    # the publisher prints each event after sending it: one more line, and the 5th is printed
    publisher.out.wait_for(len(publisher.out.lines) + 1)
    status, published, _ = publisher.interrupt()
    assert status == 130
    assert all(e.split(" ")[0] in ("netherlands", "brazil") for e in events), events
    # the subscriber got what was published, in order, and the feed had other countries too
    mine = [e for e in published if e.split(" ")[0] in ("netherlands", "brazil")]
    assert any(mine[i : i + 5] == events for i in range(len(mine))), (events, mine)
    assert {e.split(" ")[0] for e in published} - {"netherlands", "brazil"}


def test_football_watch_follows_countries(cli: Callable[..., Cli]) -> None:
    publisher = cli(
        "football", "publish", "--bind", "tcp://127.0.0.1:*", "--interval", "0.01", "--seed", "3"
    )
    endpoint = publisher.bound_endpoint()
    watcher = cli(
        "football", "watch", "--connect", endpoint, "spain", "japan",
        "--count", "4", "--timeout", "5000",
    )  # fmt: skip
    status, watched, err = watcher.finish()
    publisher.interrupt()
    assert (status, err) == (0, [])
    assert len(watched) == 4
    assert all(e.split(" ")[0] in ("spain", "japan") for e in watched), watched
    assert all(e.split(" ", 1)[1] in tools.FOOTBALL_EVENTS for e in watched), watched


def test_football_watch_a_libzmq_publisher(cli: Callable[..., Cli], pyzmq_peer: Peer) -> None:
    pub = pyzmq_peer.socket("PUB", bind=True)
    watcher = cli(
        "football", "watch", "--connect", endpoint_of(pub), "netherlands", "--timeout", "5000"
    )
    deadline = time.monotonic() + WAIT_S
    while len(watcher.out.lines) < 3 and time.monotonic() < deadline:
        pub.send_string("$hello")  # control messages of examples/football.py are skipped
        pub.send_string("spain corner")
        pub.send_string("netherlands goal")
        watcher.out.wait_more(3, timeout=0.02)
    pub.send_string("$end")  # ends the watch
    status, watched, _ = watcher.finish()
    assert status == 0
    assert len(watched) >= 3
    assert set(watched) == {"netherlands goal"}


# -- in-process units --------------------------------------------------------------------------


def test_render_and_parse_round_trip() -> None:
    frames = [b"text", b"", b"\x00\x01", "ünï".encode()]
    line = tools.render(frames)
    assert line == "text||0x0001|ünï"
    assert tools.parse_frames(tools.render(frames, as_hex=True), "|", True) == frames
    assert json.loads(tools.render(frames, as_json=True)) == ["text", "", "\x00\x01", "ünï"]


def test_outgoing_messages() -> None:
    assert list(tools.outgoing(["a", "b"], [], count=2)) == [[b"a"], [b"b"], [b"a"], [b"b"]]
    assert list(tools.outgoing(["a", "b"], [], multipart=True)) == [[b"a", b"b"]]
    lines = io.StringIO("1;2\n3\n")
    assert list(tools.outgoing([], lines, delimiter=";")) == [[b"1", b"2"], [b"3"]]
    lines = io.StringIO("1\n2\n")
    assert list(tools.outgoing([], lines, multipart=True)) == [[b"1", b"2"]]
    with pytest.raises(tools.ToolError):
        tools.parse_frames("0xzz", None, True)


def test_unsupported_options_fail_in_process(capsys: pytest.CaptureFixture[str]) -> None:
    assert tools.recv("PUSH", "tcp://127.0.0.1:1", reply="x") == 1
    assert "--reply is for REP sockets" in capsys.readouterr().err
