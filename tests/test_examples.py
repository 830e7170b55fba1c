"""The examples in examples/, run as real sub-processes, and each family against libzmq.

Hello world (REQ/REP), weather updates (PUB/SUB), the divide-and-conquer pipeline
(PUSH/PULL) and the football match (PUB/SUB with node coordination). Each program that binds
prints its real endpoint first (``tcp://127.0.0.1:*``), which the tests read to connect the
others. In the "interop" tests one side is written here with pyzmq (libzmq).
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

import pytest
import zmq as pyzmq
from children import REPO, Child, Children
from deadlines import term_with_deadline

import zeropipe

pytestmark = pytest.mark.timeout(60)

EXAMPLES = REPO / "examples"
TIMEOUT_MS = 5000
WAIT_S = 30.0
"""How long a test waits for a line or an exit (a hang guard, not a speed bound)."""


class Example(Child):
    """One example script running in a child process (stdin is not a terminal: taskvent
    starts without waiting for Enter)."""

    def __init__(self, script: str, args: list[str]) -> None:
        super().__init__([sys.executable, str(EXAMPLES / script), *args], [script, *args], WAIT_S)

    def endpoint(self) -> str:
        """The endpoint printed by a program that binds ("...: listening on tcp://...")."""
        first = self.out.wait_for(1)[0]
        match = re.search(r" on (\S+)$", first)
        assert match, f"{self.args}: first line {first!r}, stderr {self.err.lines!r}"
        return match.group(1)

    def finish(self, timeout: float = WAIT_S) -> tuple[int, list[str]]:
        """Wait for the exit; (status, stdout lines); stderr must be empty."""
        status, out, err = self.wait_exit(timeout)
        assert err == [], f"{self.args}: stderr {err!r}"
        return status, out


@pytest.fixture
def run() -> Iterator[Callable[..., Example]]:
    """Start example scripts; each is killed at teardown if still running."""
    children = Children()

    def start(script: str, *args: str) -> Example:
        return children.add(Example(script, list(args)))

    yield start
    children.kill_all()


@pytest.fixture
def libzmq() -> Iterator[Callable[[int], Any]]:
    """pyzmq sockets with timeouts and linger 0, closed and terminated at teardown."""
    ctx = pyzmq.Context()
    sockets: list[Any] = []

    def socket(kind: int) -> Any:
        sock = ctx.socket(kind)
        sockets.append(sock)
        sock.linger = 0
        sock.rcvtimeo = sock.sndtimeo = TIMEOUT_MS
        return sock

    yield socket
    for sock in sockets:
        sock.close()
    term_with_deadline(ctx)


def load_example(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# -- hello world ----------------------------------------------------------------------------


def test_hello_world(run: Callable[..., Example]) -> None:
    server = run("hwserver.py", "--bind", "tcp://127.0.0.1:*", "--requests", "5", "--work", "0")
    client = run(
        "hwclient.py", "--connect", server.endpoint(), "--requests", "5", "--timeout", "5000"
    )
    status, out = client.finish()
    assert status == 0
    assert [line for line in out if line.startswith("Received")] == [
        f"Received reply {i} [ World ]" for i in range(5)
    ]
    status, out = server.finish()
    assert (status, out[1:]) == (0, ["Received request: Hello"] * 5)


def test_hello_world_server_with_libzmq_client(
    run: Callable[..., Example], libzmq: Callable[[int], Any]
) -> None:
    server = run("hwserver.py", "--bind", "tcp://127.0.0.1:*", "--requests", "3", "--work", "0")
    client = libzmq(pyzmq.REQ)
    client.connect(server.endpoint())
    for _ in range(3):
        client.send(b"Hello")
        assert client.recv() == b"World"
    assert server.finish()[0] == 0


def test_hello_world_client_with_libzmq_server(
    run: Callable[..., Example], libzmq: Callable[[int], Any]
) -> None:
    server = libzmq(pyzmq.REP)
    server.bind("tcp://127.0.0.1:*")
    client = run(
        "hwclient.py", "--connect", server.last_endpoint.decode(), "--requests", "3",
        "--timeout", "5000",
    )  # fmt: skip
    for _ in range(3):
        assert server.recv() == b"Hello"
        server.send(b"World")
    status, out = client.finish()
    assert status == 0
    assert out[-1] == "Received reply 2 [ World ]"


def test_hello_world_client_gives_up_without_server(run: Callable[..., Example]) -> None:
    client = run("hwclient.py", "--connect", "tcp://127.0.0.1:1", "--timeout", "200")
    assert client.proc.wait(WAIT_S) == 1
    assert client.err.close() == ["No reply to request 0 within 200 ms"]


# -- weather updates ------------------------------------------------------------------------


def average_line(out: list[str]) -> float:
    match = re.fullmatch(r"Average temperature for zipcode '(\d{5})' was (-?[\d.]+)F", out[-1])
    assert match, out
    return float(match.group(2))


def test_weather(run: Callable[..., Example]) -> None:
    server = run(
        "wuserver.py", "--bind", "tcp://127.0.0.1:*", "--zip-min", "10000", "--zip-max", "10009",
        "--interval", "0.001",
    )  # fmt: skip
    client = run(
        "wuclient.py", "10003", "--connect", server.endpoint(), "--updates", "10", "--verbose",
        "--timeout", "5000",
    )  # fmt: skip
    status, out = client.finish()
    server.kill()
    assert status == 0
    updates = out[1:-1]
    assert len(updates) == 10
    assert all(line.split()[0] == "10003" for line in updates), updates
    temperatures = [int(line.split()[1]) for line in updates]
    assert average_line(out) == round(sum(temperatures) / 10, 1)


def test_weather_client_with_libzmq_server(
    run: Callable[..., Example], libzmq: Callable[[int], Any]
) -> None:
    """Only zip code 10001 counts: not 10002, nor the longer 100011 that shares its prefix."""
    publisher = libzmq(pyzmq.PUB)
    publisher.bind("tcp://127.0.0.1:*")
    client = run(
        "wuclient.py", "10001", "--connect", publisher.last_endpoint.decode(), "--updates", "10",
        "--timeout", "5000",
    )  # fmt: skip
    deadline = time.monotonic() + WAIT_S
    # Alternating 20 and 40, with no loss (each round is paced), averages 30 over any 10.
    while client.proc.poll() is None and time.monotonic() < deadline:
        for update in (b"10001 20 50", b"100011 500 50", b"10002 1000 50", b"10001 40 50"):
            publisher.send(update)
        try:
            client.proc.wait(0.01)
        except subprocess.TimeoutExpired:
            pass
    status, out = client.finish()
    assert status == 0
    assert average_line(out) == 30.0


def test_weather_server_with_libzmq_client(
    run: Callable[..., Example], libzmq: Callable[[int], Any]
) -> None:
    server = run(
        "wuserver.py", "--bind", "tcp://127.0.0.1:*", "--zip-min", "99990", "--zip-max", "99999",
        "--interval", "0.001",
    )  # fmt: skip
    subscriber = libzmq(pyzmq.SUB)
    subscriber.setsockopt_string(pyzmq.SUBSCRIBE, "99995 ")
    subscriber.connect(server.endpoint())
    for _ in range(5):
        zipcode, temperature, humidity = subscriber.recv_string().split()
        assert zipcode == "99995"
        assert -80 <= int(temperature) < 135
        assert 10 <= int(humidity) < 60
    server.kill()


# -- divide and conquer ---------------------------------------------------------------------


def start_sink(run: Callable[..., Example]) -> tuple[Example, str]:
    sink = run("tasksink.py", "--bind", "tcp://127.0.0.1:*", "--timeout", "10000")
    return sink, sink.endpoint()


def sink_result(sink: Example) -> tuple[int, int, int]:
    """(results, batch size, total workload) from the sink's last line."""
    status, out = sink.finish()
    assert status == 0
    match = re.fullmatch(r"Results: (\d+) of (\d+), total workload (\d+) msec", out[-1])
    assert match, out
    results, batch, total = (int(x) for x in match.groups())
    return results, batch, total


def test_divide_and_conquer(run: Callable[..., Example]) -> None:
    sink, sink_endpoint = start_sink(run)
    ventilator = run(
        "taskvent.py", "--bind", "tcp://127.0.0.1:*", "--sink", sink_endpoint, "--tasks", "40",
        "--max-ms", "5", "--seed", "1",
    )  # fmt: skip
    tasks_endpoint = ventilator.endpoint()
    workers = [
        run("taskwork.py", "--tasks", tasks_endpoint, "--sink", sink_endpoint, "--idle", "2000")
        for _ in range(2)
    ]
    status, out = ventilator.finish()
    assert status == 0
    cost = re.fullmatch(r"Total expected cost: (\d+) msec", out[-1])
    assert cost, out
    # every task was done exactly once: same count and same sum of workloads
    assert sink_result(sink) == (40, 40, int(cost.group(1)))
    done = []
    for worker in workers:  # each exits by itself after 2 s without a task
        status, out = worker.finish()
        assert status == 0
        done.append(int(out[-1].removeprefix("taskwork: ").removesuffix(" tasks")))
    assert sum(done) == 40


def test_divide_and_conquer_with_libzmq_ventilator(
    run: Callable[..., Example], libzmq: Callable[[int], Any]
) -> None:
    sink, sink_endpoint = start_sink(run)
    sender = libzmq(pyzmq.PUSH)
    sender.bind("tcp://127.0.0.1:*")
    to_sink = libzmq(pyzmq.PUSH)
    to_sink.connect(sink_endpoint)
    worker = run(
        "taskwork.py", "--tasks", sender.last_endpoint.decode(), "--sink", sink_endpoint,
        "--idle", "2000",
    )  # fmt: skip
    workloads = [(n % 4) + 1 for n in range(30)]
    to_sink.send_string(f"batch {len(workloads)}")
    for workload in workloads:
        sender.send_string(str(workload))  # blocks until the worker has connected
    assert sink_result(sink) == (30, 30, sum(workloads))
    status, out = worker.finish()
    assert (status, out[-1]) == (0, "taskwork: 30 tasks")


def test_sink_counts_results_that_overtake_the_batch_size(
    run: Callable[..., Example], libzmq: Callable[[int], Any]
) -> None:
    """Results and "batch N" come over different connections, in any order."""
    sink, sink_endpoint = start_sink(run)
    worker = libzmq(pyzmq.PUSH)
    worker.connect(sink_endpoint)
    for _ in range(3):
        worker.send_string("done 7")
    ventilator = libzmq(pyzmq.PUSH)
    ventilator.connect(sink_endpoint)
    ventilator.send_string("batch 5")
    for _ in range(2):
        worker.send_string("done 1")
    assert sink_result(sink) == (5, 5, 23)


# -- football -------------------------------------------------------------------------------


def parse_match(out: list[str]) -> tuple[list[str], dict[str, list[str]]]:
    """The events the publisher sent, and those each fan printed, from the script's output."""
    published = [line.removeprefix("publisher: ") for line in out if line.startswith("publisher: ")]
    published = [e for e in published if " fans ready" not in e and " on tcp://" not in e]
    fans: dict[str, list[str]] = {}
    for line in out:
        match = re.fullmatch(r"(fan-\d+) \[[^\]]*\]: (.*)", line)
        if match:
            fans.setdefault(match.group(1), []).append(match.group(2))
    return published, fans


def test_football_match(run: Callable[..., Example]) -> None:
    match = run(
        "football.py", "--endpoint", "tcp://127.0.0.1:*", "--sync", "tcp://127.0.0.1:*",
        "--events", "60", "--interval", "0", "--seed", "5",
        "--fan", "netherlands", "--fan", "brazil,spain", "--fan", "japan,",
    )  # fmt: skip
    status, out = match.finish()
    assert status == 0
    published, fans = parse_match(out)
    assert len(published) == 60
    follows = {"fan-1": ("netherlands",), "fan-2": ("brazil", "spain"), "fan-3": ("japan",)}
    for name, countries in follows.items():
        expected = [e for e in published if e.split(" ")[0] in countries]
        assert expected, f"seed 5 gives {name} nothing to see"
        assert fans.get(name) == expected, name  # all of them, in order, and nothing else
        assert f"{name}: {len(expected)} events" in out


def test_football_publisher_with_libzmq_fan() -> None:
    """The example's publisher (zeropipe) and two fans: one from the example, one libzmq."""
    football = load_example("football")
    events = football.match_events(50, seed=11)
    with zeropipe.Context() as zctx:
        publisher, sync = football.bind_publisher(zctx, "tcp://127.0.0.1:*", "tcp://127.0.0.1:*")
        endpoint = publisher.last_endpoint.decode()
        sync_endpoint = sync.last_endpoint.decode()
        seen: dict[str, list[str]] = {}
        errors: list[BaseException] = []

        def zeropipe_fan() -> None:
            try:
                seen["zeropipe"] = football.watch(
                    zctx, endpoint, sync_endpoint, ["spain", "germany"], "zp", show=lambda _: None
                )
            except BaseException as exc:
                errors.append(exc)

        def libzmq_fan() -> None:
            try:
                seen["libzmq"] = libzmq_watch(endpoint, sync_endpoint, ["netherlands"])
            except BaseException as exc:
                errors.append(exc)

        fans = [threading.Thread(target=zeropipe_fan), threading.Thread(target=libzmq_fan)]
        try:
            for fan in fans:
                fan.start()
            assert sorted(football.wait_for_fans(publisher, sync, 2)) == ["libzmq", "zp"]
            football.broadcast(publisher, events)
        finally:
            for fan in fans:
                fan.join(WAIT_S)
            publisher.close()
            sync.close()
    assert errors == []
    assert seen["libzmq"] == [e for e in events if e.startswith("netherlands")]
    assert seen["libzmq"]
    assert seen["zeropipe"] == [e for e in events if e.split(" ")[0] in ("spain", "germany")]


def libzmq_watch(endpoint: str, sync_endpoint: str, countries: list[str]) -> list[str]:
    """A fan written with pyzmq, following the example's handshake."""
    ctx = pyzmq.Context()
    subscriber = ctx.socket(pyzmq.SUB)
    sync = ctx.socket(pyzmq.REQ)
    try:
        for sock in (subscriber, sync):
            sock.linger = 0
            sock.rcvtimeo = TIMEOUT_MS
        subscriber.connect(endpoint)
        for country in countries:
            subscriber.setsockopt_string(pyzmq.SUBSCRIBE, country)
        subscriber.setsockopt_string(pyzmq.SUBSCRIBE, "$")
        while subscriber.recv_string() != "$hello":
            pass
        sync.connect(sync_endpoint)
        sync.send_string("libzmq")
        assert sync.recv_string() == "kick-off"
        seen = []
        while (event := subscriber.recv_string()) != "$end":
            if not event.startswith("$"):
                seen.append(event)
        return seen
    finally:
        subscriber.close()
        sync.close()
        ctx.term()
