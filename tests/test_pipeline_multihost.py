"""Pipelines across hosts, each host a Linux network namespace joined to this one by a veth pair.

The head runs in the test process (the root namespace), bound on tcp to the root-side address
of the first namespace's veth; remote workers (``python -m zeropipe.pipelines.worker``) run
inside the namespaces (``ip netns exec``) and reach the head over their veth. Cutting a link is
``ip link set <root-side veth> down``: packets are dropped, nothing resets the connection, so
only heartbeats can tell.

Needs root and iproute2; skipped otherwise. Each test makes its own namespaces with random
names and free /30 subnets, and removes them (and kills its workers) even when it fails.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib
import ipaddress
import os
import random
import shutil
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from multihost_tasks import numbers, tagged

import zeropipe as zmq
from zeropipe.pipelines import Pipeline, RunResult

# the module of the head
run_module = importlib.import_module("zeropipe.pipelines.head")
REPO = Path(__file__).resolve().parent.parent
LOCK = "/tmp/zeropipe-multihost-subnets.lock"
RUN_DEADLINE_S = 40.0  # hang guard for one run (the whole test stays far below it)
WAIT_S = 20.0  # hang guard for the waits on workers and the head
EXIT_REFUSED = 4  # zeropipe.pipelines.worker: the head refused the worker
HEARTBEAT = 0.2
HEARTBEAT_TIMEOUT = 1.5
ROOT_NETNS = os.stat("/proc/self/ns/net").st_ino


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=15)
    if check and done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.strip()}")
    return done


def _networks_in_use() -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """Every IPv4 network this namespace has an address or a route in (default routes aside)."""
    nets = []
    for line in _ip("-o", "-4", "addr", "show").stdout.splitlines():
        words = line.split()
        if "inet" in words:
            nets.append(ipaddress.ip_network(words[words.index("inet") + 1], strict=False))
    kinds = {"local", "broadcast", "unicast", "multicast", "unreachable", "blackhole", "prohibit"}
    for line in _ip("-4", "route", "show", "table", "all").stdout.splitlines():
        words = line.split()
        if not words:
            continue
        prefix = words[1] if words[0] in kinds and len(words) > 1 else words[0]
        with contextlib.suppress(ValueError):
            net = ipaddress.ip_network(prefix, strict=False)
            if net.prefixlen > 0:
                nets.append(net)
    return nets


@dataclass
class Host:
    """A network namespace with a veth to the root namespace."""

    ns: str
    head_if: str  # the root side of the veth
    head_addr: str  # its address (what workers in this namespace reach the head by)
    addr: str  # the namespace side's address
    inode: int  # the namespace's inode (what multihost_tasks.tagged reports)


@dataclass
class Proc:
    popen: subprocess.Popen[bytes]
    stderr_path: Path

    def wait(self, timeout: float = WAIT_S) -> int:
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"worker {self.popen.args!r} still running") from None

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")


class Net:
    """Namespaces and the worker processes in them; :meth:`close` removes everything."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.tag = uuid.uuid4().hex[:6]
        self.hosts: list[Host] = []
        self.procs: list[Proc] = []

    def add_host(self) -> Host:
        i = len(self.hosts)
        ns = f"zp-{self.tag}-{i}"
        head_if, ns_if = f"zph{self.tag}{i}", f"zpw{self.tag}{i}"
        if _ip("netns", "add", ns, check=False).returncode != 0:
            raise RuntimeError(f"cannot create the network namespace {ns}")
        host = Host(ns, head_if, "", "", os.stat(f"/run/netns/{ns}").st_ino)
        self.hosts.append(host)
        _ip("link", "add", head_if, "type", "veth", "peer", "name", ns_if, "netns", ns)
        with open(LOCK, "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # another test choosing a subnet waits for ours
            used = _networks_in_use()
            while True:
                net = ipaddress.ip_network(
                    f"10.{random.randint(64, 254)}.{random.randint(0, 255)}."
                    f"{4 * random.randint(0, 63)}/30"
                )
                if not any(net.overlaps(u) for u in used):
                    break
            first, second = (str(a) for a in net.hosts())
            _ip("addr", "add", f"{first}/30", "dev", head_if)
        host.head_addr, host.addr = first, second
        _ip("link", "set", head_if, "up")
        _ip("-n", ns, "addr", "add", f"{second}/30", "dev", ns_if)
        _ip("-n", ns, "link", "set", ns_if, "up")
        _ip("-n", ns, "link", "set", "lo", "up")
        _ip("-n", ns, "route", "add", "default", "via", first)
        return host

    def worker(
        self,
        host: Host,
        connect: str,
        *args: str,
        delay: float = 0.0,
        peers: int = 1,
        join_timeout: float = 30.0,
    ) -> Proc:
        """A remote worker in ``host``'s namespace; ``delay``/``peers``: see multihost_tasks."""
        n = len(self.procs)
        barrier = self.tmp / "barrier"
        barrier.mkdir(exist_ok=True)
        env = dict(
            os.environ,
            ZP_MH_DELAY=str(delay),
            ZP_MH_BARRIER=str(barrier) if peers > 1 else "",
            ZP_MH_PEERS=str(peers),
        )
        argv = [
            "ip", "netns", "exec", host.ns,
            sys.executable, "-m", "zeropipe.pipelines.worker",
            "--connect", connect,
            "--path", os.pathsep.join(sys.path),
            "--join-timeout", str(join_timeout),
            *args,
        ]  # fmt: skip
        stderr_path = self.tmp / f"worker{n}.err"
        with open(self.tmp / f"worker{n}.out", "wb") as out, open(stderr_path, "wb") as err:
            popen = subprocess.Popen(argv, stdout=out, stderr=err, env=env, cwd=REPO)
        proc = Proc(popen, stderr_path)
        self.procs.append(proc)
        return proc

    def cut(self, host: Host) -> None:
        _ip("link", "set", host.head_if, "down")

    def restore(self, host: Host) -> None:
        _ip("link", "set", host.head_if, "up")

    def close(self) -> None:
        for proc in self.procs:
            if proc.popen.poll() is None:
                proc.popen.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.popen.wait(10)
        for host in self.hosts:
            _ip("netns", "del", host.ns, check=False)  # takes the veth pair with it
            _ip("link", "del", host.head_if, check=False)


@pytest.fixture
def net(tmp_path: Path) -> Iterator[Net]:
    if sys.platform != "linux" or os.geteuid() != 0:
        pytest.skip("network namespaces need Linux and root")
    if shutil.which("ip") is None:
        pytest.skip("needs iproute2 (the ip command)")
    nets = Net(tmp_path)
    try:
        try:
            nets.add_host()
        except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
            pytest.skip(f"cannot create a network namespace with a veth: {exc}")
        yield nets
    finally:
        nets.close()


@pytest.fixture
def heads(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The Head of each run in this test (records them; :func:`run_guarded` aborts them)."""
    made: list[Any] = []

    class Recorded(run_module.Head):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            made.append(self)

    monkeypatch.setattr(run_module, "Head", Recorded)
    return made


def run_guarded(pipe: Pipeline, heads: list[Any], **options: Any) -> RunResult:
    """``pipe.run`` that raises PipelineAborted instead of waiting forever for lost tasks."""

    def expire() -> None:
        for head in heads:
            head.abort = f"the test's deadline passed with {head.result.delivered} results"

    timer = threading.Timer(RUN_DEADLINE_S, expire)
    timer.start()
    try:
        return pipe.run(progress=False, handle_signals=False, **options)
    finally:
        timer.cancel()


def wait_until(cond: Callable[[], bool], what: str, timeout: float = WAIT_S) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


class Controller:
    """Steps run on a thread while the head runs; its failures are re-raised by :meth:`join`."""

    def __init__(self, steps: Callable[[], None]) -> None:
        self.errors: list[BaseException] = []
        self.thread = threading.Thread(target=self._run, args=(steps,), daemon=True)

    def _run(self, steps: Callable[[], None]) -> None:
        try:
            steps()
        except BaseException as exc:
            self.errors.append(exc)

    def start(self) -> None:
        self.thread.start()

    def join(self) -> None:
        self.thread.join(WAIT_S)
        assert not self.thread.is_alive(), "the test's controller thread is stuck"
        if self.errors:
            raise self.errors[0]


def pipeline_name() -> str:
    return f"mh-{uuid.uuid4().hex[:8]}"


def tcp_pipeline(head: Host, name: str | None = None, **options: Any) -> Pipeline:
    return Pipeline(
        name or pipeline_name(),
        bind=f"tcp://{head.head_addr}:*",
        heartbeat=HEARTBEAT,
        heartbeat_timeout=HEARTBEAT_TIMEOUT,
        **options,
    )


def assert_each_once(results: list[list[int]], n: int) -> Counter[int]:
    ids = Counter(task_id for task_id, _ in results)
    repeated = {task_id: k for task_id, k in ids.items() if k != 1}
    assert not repeated, f"results delivered more than once: {repeated}"
    missing = sorted(set(range(n)) - set(ids))
    assert not missing, f"{len(missing)} tasks lost: {missing[:20]}"
    assert len(results) == n
    return Counter(where for _, where in results)


def test_workers_in_two_namespaces_share_the_work(net: Net, heads: list[Any]) -> None:
    a, b = net.hosts[0], net.add_host()
    n = 200
    workers: list[Proc] = []

    def on_start(endpoint: str) -> None:
        assert endpoint.startswith(f"tcp://{a.head_addr}:")
        workers.extend(net.worker(h, endpoint, delay=0.005, peers=2) for h in (a, b))

    pipe = tcp_pipeline(a).source(numbers, args=(n,)).map(tagged, workers=0, batch=1)
    result = run_guarded(pipe, heads, on_start=on_start)

    assert result.ok, result.summary()
    assert result.results is not None
    by_host = assert_each_once(result.results, n)
    assert set(by_host) == {a.inode, b.inode}, (by_host, a.inode, b.inode, ROOT_NETNS)
    stats = result.stages[0]
    assert (stats.done, stats.workers_joined, stats.workers_lost) == (n, 2, 0), result.summary()
    assert stats.duplicates == 0
    assert not result.dead_letters
    for proc in workers:  # END from the head: a clean exit
        assert proc.wait() == 0, proc.stderr()


def _cut_run(
    net: Net, heads: list[Any], kill_other: bool, outage_s: float = 0.0
) -> tuple[RunResult, dict[str, Any]]:
    """300 slow tasks over workers A and B (B on its own link). After B's 10th result, its
    link is cut; once the head has given up on B (and ``outage_s`` more seconds) the link is
    restored. With ``kill_other``, A is killed before the link returns, so that only a
    rejoined B can finish the run."""
    a, b = net.hosts[0], net.add_host()
    n = 300
    procs: dict[str, Proc] = {}
    seen: dict[str, Any] = {"results": [], "from_b": 0, "cut_at": None, "restored_at": None}
    cut = threading.Event()

    def on_start(endpoint: str) -> None:
        procs["a"] = net.worker(a, endpoint, delay=0.02, peers=2)
        procs["b"] = net.worker(b, endpoint, delay=0.02, peers=2)

    def sink(item: list[int]) -> None:
        seen["results"].append(item)
        if item[1] == b.inode:
            seen["from_b"] += 1
            if seen["from_b"] == 10:
                net.cut(b)
                seen["cut_at"] = len(seen["results"])
                cut.set()

    def steps() -> None:
        assert cut.wait(WAIT_S), "worker B never sent 10 results"
        stats = heads[0].result.stages[0]
        wait_until(lambda: stats.workers_lost >= 1, "the head to give up on the cut worker")
        if kill_other:
            procs["a"].popen.kill()
        time.sleep(outage_s)  # the outage's length, not a synchronization
        seen["restored_at"] = len(seen["results"])
        net.restore(b)

    controller = Controller(steps)
    controller.start()
    pipe = tcp_pipeline(a).source(numbers, args=(n,)).map(tagged, workers=2, batch=1).sink(sink)
    try:
        result = run_guarded(pipe, heads, on_start=on_start, local_workers=False)
    finally:
        cut.set()  # lets the controller end if the run failed before the cut
    controller.join()
    seen.update(procs)
    return result, seen


def test_cut_link_loses_no_task(net: Net, heads: list[Any]) -> None:
    result, seen = _cut_run(net, heads, kill_other=False)

    assert seen["cut_at"] is not None, "the link was never cut"
    assert seen["cut_at"] < 300, "the cut was not mid-run"
    assert result.ok, result.summary()
    assert result.delivered == result.tasks == 300
    assert_each_once(seen["results"], 300)
    stats = result.stages[0]
    assert stats.workers_lost >= 1, result.summary()
    assert stats.retried >= 1, result.summary()  # B held tasks when its link went down
    assert stats.dead == 0


@pytest.mark.parametrize("outage_s", [0.0, 4.0], ids=["short", "long"])
def test_cut_worker_rejoins_after_the_link_returns(
    net: Net, heads: list[Any], outage_s: float
) -> None:
    """B rejoins once the link is back and finishes the run alone (A was killed). After the
    long outage B has said HELLO several times into the dead link."""
    result, seen = _cut_run(net, heads, kill_other=True, outage_s=outage_s)
    b = net.hosts[1]

    assert result.ok, result.summary()
    by_host = assert_each_once(seen["results"], 300)
    after_restore = {where for _, where in seen["results"][seen["restored_at"] :]}
    assert after_restore == {b.inode}, (after_restore, by_host)
    stats = result.stages[0]
    assert stats.workers_joined >= 3, result.summary()  # A, B, and B again
    assert seen["b"].wait() == 0, seen["b"].stderr()
    if outage_s:
        # B said HELLO into the dead link more than once, but it is one worker joining once:
        # no extra sessions, and no failed attempts beyond the tasks the cut B and the
        # killed A held (a stale session answering tasks of a newer one blames a task)
        assert stats.workers_joined == 3, result.summary()
        assert stats.failures <= 2, result.summary()


@pytest.mark.parametrize("case", ["pipeline", "stage", "schema"])
def test_wrong_worker_is_refused_clearly(net: Net, heads: list[Any], case: str) -> None:
    a, b = net.hosts[0], net.add_host()
    name = pipeline_name()
    if case == "pipeline":
        args, expected = ["--pipeline", "other-name"], [name, "other-name"]
    elif case == "stage":
        args, expected = ["--stage", "nosuch"], [name, "nosuch"]
    else:  # the same pipeline, but the worker's copy of the stage has other types
        toml = net.tmp / "stale.toml"
        toml.write_text(
            f'[pipeline]\nname = "{name}"\n\n'
            '[source]\nfn = "multihost_tasks:words"\nargs = [1]\n\n'
            '[[map]]\nfn = "multihost_tasks:tagged_text"\nname = "tagged"\n'
        )
        args, expected = ["--pipeline", str(toml)], ["tagged", "str", "int"]
    wrong: list[Proc] = []
    good: list[Proc] = []

    def on_start(endpoint: str) -> None:
        wrong.append(net.worker(b, endpoint, *args))

    def steps() -> None:
        wait_until(lambda: bool(wrong), "the wrong worker to start")
        wrong[0].wait()  # refused while the head runs; then a good worker finishes the run
        good.append(net.worker(a, heads[0].endpoint))

    controller = Controller(steps)
    controller.start()
    pipe = tcp_pipeline(a, name).source(numbers, args=(20,)).map(tagged, workers=0)
    result = run_guarded(pipe, heads, on_start=on_start)
    controller.join()

    rc, stderr = wrong[0].wait(), wrong[0].stderr()
    assert rc == EXIT_REFUSED, (rc, stderr)
    assert "refused" in stderr, stderr
    for word in expected:
        assert word in stderr, (word, stderr)
    assert result.ok, result.summary()
    assert result.results is not None
    assert_each_once(result.results, 20)
    assert result.stages[0].workers_joined == 1, result.summary()  # only the good worker


def test_curve_workers_over_tcp(net: Net, heads: list[Any]) -> None:
    from zeropipe.sdk.keys import has_curve

    if not has_curve():
        pytest.skip("CURVE needs PyNaCl")
    a, b = net.hosts[0], net.add_host()
    public, secret = (k.decode() for k in zmq.curve_keypair())
    plain: list[Proc] = []
    secure: list[Proc] = []

    def on_start(endpoint: str) -> None:
        plain.append(net.worker(b, endpoint, join_timeout=2.0))

    def steps() -> None:
        wait_until(lambda: bool(plain), "the plaintext worker to start")
        plain[0].wait()  # cannot join a CURVE head: gives up after its join timeout
        endpoint = heads[0].endpoint
        secure.append(net.worker(b, endpoint, "--server-key", public))

    controller = Controller(steps)
    controller.start()
    pipe = (
        tcp_pipeline(a, curve_secret_key=secret, curve_public_key=public)
        .source(numbers, args=(100,))
        .map(tagged, workers=0, batch=1)
    )
    result = run_guarded(pipe, heads, on_start=on_start)
    controller.join()

    assert plain[0].wait() != 0, plain[0].stderr()
    assert result.ok, result.summary()
    assert result.results is not None
    assert_each_once(result.results, 100)
    stats = result.stages[0]
    assert stats.workers_joined == 1, result.summary()  # never the plaintext worker
    assert secure[0].wait() == 0, secure[0].stderr()
