"""zeropipe demo: a PUSH/PULL exchange and a PAIR ping-pong between real processes.

The parent binds; each worker is a separate Python process that connects.
One worker runs zeropipe, the other (when pyzmq is installed) runs libzmq
through pyzmq, to show that both speak the same ZMTP 3.1 on the wire.

    make demo      # or: python examples/demo.py
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time

import zeropipe as zmq

WORKER = r"""
import os, sys
impl, tasks_ep, results_ep = sys.argv[1:4]
if impl == "libzmq":
    import zmq
else:
    import zeropipe as zmq
ctx = zmq.Context()
tasks = ctx.socket(zmq.PULL)
tasks.connect(tasks_ep)
results = ctx.socket(zmq.PUSH)
results.connect(results_ep)
results.send_multipart([b"ready", impl.encode(), str(os.getpid()).encode(), b""])
while True:
    kind, body = tasks.recv_multipart()
    if kind == b"stop":
        break
    n = int(body)
    results.send_multipart([impl.encode(), str(os.getpid()).encode(), body, str(n * n).encode()])
tasks.close()
results.close()
ctx.term()
"""

PONG = r"""
import sys
import zeropipe as zmq
ctx = zmq.Context()
pair = ctx.socket(zmq.PAIR)
pair.connect(sys.argv[1])
while (msg := pair.recv()) != b"bye":
    pair.send(msg)
pair.close()
ctx.term()
"""


def _has_pyzmq() -> bool:
    try:
        import zmq as _pyzmq  # noqa: F401
    except ImportError:
        return False
    return True


def pipeline(ctx: zmq.Context) -> None:
    """Fan tasks out to two worker processes over tcp and collect results over ipc."""
    tmp = tempfile.mkdtemp(prefix="zp-demo-", dir="/tmp")
    tasks = ctx.socket(zmq.PUSH)
    tasks.bind("tcp://127.0.0.1:*")
    results = ctx.socket(zmq.PULL)
    results.bind(f"ipc://{tmp}/results")
    results.rcvtimeo = 10000
    tasks_ep = tasks.last_endpoint.decode()
    results_ep = results.last_endpoint.decode()
    impls = ["zeropipe", "libzmq" if _has_pyzmq() else "zeropipe"]
    workers = [
        subprocess.Popen([sys.executable, "-c", WORKER, impl, tasks_ep, results_ep])
        for impl in impls
    ]
    print(f"ventilator: PUSH bound at {tasks_ep}, sink: PULL bound at {results_ep}")
    for _ in workers:  # wait for every worker, so no one joins late (ZeroMQ's slow joiner)
        _kind, impl, pid, _ = results.recv_multipart()
        print(f"worker ready: {impl.decode()} (pid {pid.decode()})")
    count = 10
    for n in range(1, count + 1):
        tasks.send_multipart([b"task", str(n).encode()])
    for _ in range(count):
        impl, pid, n, square = results.recv_multipart()
        print(f"  {impl.decode():>8} pid {pid.decode():>7}: {n.decode():>2}^2 = {square.decode()}")
    for _ in workers:
        tasks.send_multipart([b"stop", b""])
    for w in workers:
        w.wait(timeout=10)
    tasks.close()
    results.close()
    shutil.rmtree(tmp, ignore_errors=True)


def ping_pong(ctx: zmq.Context) -> None:
    """Round trips with a PAIR in another process; print the median latency."""
    pair = ctx.socket(zmq.PAIR)
    pair.bind("tcp://127.0.0.1:*")
    pair.rcvtimeo = 10000
    child = subprocess.Popen([sys.executable, "-c", PONG, pair.last_endpoint.decode()])
    times = []
    for i in range(2000):
        t0 = time.perf_counter()
        pair.send(b"ping %d" % i)
        assert pair.recv() == b"ping %d" % i
        times.append(time.perf_counter() - t0)
    pair.send(b"bye")
    child.wait(timeout=10)
    pair.close()
    times.sort()
    print(f"PAIR ping-pong with pid {child.pid}: 2000 round trips, ", end="")
    p50, p99 = times[len(times) // 2] * 1e6, times[int(len(times) * 0.99)] * 1e6
    print(f"p50 {p50:.0f} us, p99 {p99:.0f} us")


def main() -> None:
    with zmq.Context() as ctx:
        pipeline(ctx)
        ping_pong(ctx)
    print("done: every message crossed a real socket between processes")


if __name__ == "__main__":
    main()
