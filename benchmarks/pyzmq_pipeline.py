"""The hand-written pyzmq pipeline of ``benchmarks.pipelines``: the anchor of its per-message case.

The ZeroMQ guide's ventilator / workers / sink, written as one would by hand, with one
"driver" process that is both the ventilator and the sink:

* the driver binds a PUSH (tasks) and a PULL (results) on ``tcp://127.0.0.1:*`` and starts the
  worker processes (``python -m benchmarks.pyzmq_pipeline worker VENT SINK WORKLOAD BATCH``);
  each connects a PULL to the tasks and a PUSH to the results;
* slow joiner: the driver waits until every worker's task connection has finished its
  handshake (``EVENT_HANDSHAKE_SUCCEEDED`` on a monitor of the PUSH) before the first task, so
  PUSH's round robin spreads the tasks over all of them from the start;
* then one loop polls both sockets: it sends tasks in ``NOBLOCK`` bursts until the PUSH is at
  its high-water mark and drains the results in ``NOBLOCK`` bursts, until every result is in;
* tasks and results are pickled, ``batch`` of them per message (a list) or one per message
  (``batch`` 1: the bare value); an empty message tells a worker to exit.

No acknowledgements and no recovery: a worker that dies loses what was queued to it (the
pattern's known weakness), which in this benchmark shows up as a stall and an error."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import threading
import time
from typing import Any

import zmq

from benchmarks.pipeline_tasks import TASKS

JOIN_TIMEOUT_S = 15.0  # workers must connect within this
STALL_TIMEOUT_S = 15.0  # no result for this long: a worker died or hung
EXIT_TIMEOUT_S = 3.0  # after the run, workers not gone by then are killed


def drive(workload: str, n: int, batch: int = 1, workers: int = 2) -> dict[str, Any]:
    """Runs ``n`` tasks through ``workers`` worker processes; returns timestamps and the sum.

    ``started`` is when this function was called, ``submit`` when every worker was connected
    (the first task is sent right after), ``first`` when the first result arrived and ``end``
    when the last one had been received and decoded (all ``time.perf_counter``)."""
    started = time.perf_counter()
    ctx = zmq.Context()
    procs: list[subprocess.Popen[bytes]] = []
    vent = ctx.socket(zmq.PUSH)
    sink = ctx.socket(zmq.PULL)
    monitor = None
    try:
        for sock in (vent, sink):
            sock.linger = 0
            sock.bind("tcp://127.0.0.1:*")
        monitor = vent.get_monitor_socket(zmq.EVENT_HANDSHAKE_SUCCEEDED)
        argv = [sys.executable, "-m", "benchmarks.pyzmq_pipeline", "worker"]
        argv += [vent.last_endpoint.decode(), sink.last_endpoint.decode(), workload, str(batch)]
        procs = [subprocess.Popen(argv) for _ in range(workers)]
        _await_handshakes(monitor, workers, procs)
        submit = time.perf_counter()
        first, end, total = _loop(vent, sink, n, batch, procs)
        for _ in procs:  # round robin: one each, as every pipe is connected and empty
            vent.send(b"")
        return {
            "value": total,
            "started": started,
            "submit": submit,
            "first": first,
            "end": end,
        }
    finally:
        if monitor is not None:
            vent.disable_monitor()
            monitor.close(0)
        _reap(procs)
        vent.close(0)
        sink.close(0)
        ctx.term()


def _await_handshakes(monitor: Any, count: int, procs: list[subprocess.Popen[bytes]]) -> None:
    deadline = time.monotonic() + JOIN_TIMEOUT_S
    seen = 0
    while seen < count:
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {seen} of {count} workers connected")
        for proc in procs:
            if proc.poll() is not None:
                raise RuntimeError(f"a worker exited with code {proc.returncode} while joining")
        if monitor.poll(100):
            frames = monitor.recv_multipart()
            if int.from_bytes(frames[0][:2], "little") == zmq.EVENT_HANDSHAKE_SUCCEEDED:
                seen += 1


def _loop(
    vent: Any, sink: Any, n: int, batch: int, procs: list[subprocess.Popen[bytes]]
) -> tuple[float, float, int]:
    dumps, loads = pickle.dumps, pickle.loads
    noblock, again = zmq.NOBLOCK, zmq.Again
    poller = zmq.Poller()
    poller.register(vent, zmq.POLLOUT)
    poller.register(sink, zmq.POLLIN)
    sending = True
    sent = received = total = 0
    first = 0.0
    last_progress = time.monotonic()
    while received < n:
        events = dict(poller.poll(100))
        if not events:
            if time.monotonic() - last_progress > STALL_TIMEOUT_S:
                dead = [p.returncode for p in procs if p.poll() is not None]
                raise TimeoutError(
                    f"stalled at {received}/{n} results (exited workers: {dead or 'none'})"
                )
            continue
        if sink in events:
            last_progress = time.monotonic()
            try:
                while True:
                    msg = sink.recv(noblock)
                    if batch == 1:
                        total += loads(msg)
                        received += 1
                    else:
                        values = loads(msg)
                        total += sum(values)
                        received += len(values)
                    if not first:
                        first = time.perf_counter()
            except again:
                pass
        if sending and vent in events:
            try:
                if batch == 1:
                    while sent < n:
                        vent.send(dumps(sent), noblock)
                        sent += 1
                else:
                    while sent < n:
                        top = min(n, sent + batch)
                        vent.send(dumps(list(range(sent, top))), noblock)
                        sent = top
            except again:
                pass
            if sent == n:
                poller.unregister(vent)
                sending = False
    return first, time.perf_counter(), total


def _reap(procs: list[subprocess.Popen[bytes]]) -> None:
    deadline = time.monotonic() + EXIT_TIMEOUT_S
    for proc in procs:
        try:
            proc.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def worker(vent: str, sink: str, workload: str, batch: int) -> None:
    """One worker: tasks in, results out, until an empty message (or its parent is gone)."""
    _exit_with_parent()
    fn = TASKS[workload]
    dumps, loads = pickle.dumps, pickle.loads
    ctx = zmq.Context()
    pull = ctx.socket(zmq.PULL)
    push = ctx.socket(zmq.PUSH)
    pull.rcvtimeo = int(STALL_TIMEOUT_S * 4 * 1000)  # a hang guard; the driver stops us first
    push.linger = 5000
    pull.connect(vent)
    push.connect(sink)
    try:
        while True:
            msg = pull.recv()
            if not msg:
                break
            if batch == 1:
                push.send(dumps(fn(loads(msg))))
            else:
                push.send(dumps([fn(x) for x in loads(msg)]))
    except zmq.Again:
        pass
    finally:
        pull.close(0)
        push.close()
        ctx.term()


def _exit_with_parent() -> None:
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()


if __name__ == "__main__":
    if len(sys.argv) != 6 or sys.argv[1] != "worker":
        sys.exit("usage: python -m benchmarks.pyzmq_pipeline worker VENT SINK WORKLOAD BATCH")
    worker(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))
