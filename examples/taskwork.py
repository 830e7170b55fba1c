"""Task worker: PULLs workloads from the ventilator, "works", PUSHes results to the sink.

The ZeroMQ guide's parallel pipeline, for zeropipe; see examples/taskvent.py for how to run
the whole pipeline. Start as many workers as you like: the ventilator deals tasks among them.

    python examples/taskwork.py                 # works until interrupted
    python examples/taskwork.py --idle 5000     # exits after 5 s without a task
"""

from __future__ import annotations

import argparse
import time

import zeropipe as zmq


def main(
    tasks: str = "tcp://localhost:5557",
    sink: str = "tcp://localhost:5558",
    idle: int = -1,
) -> int:
    """Process tasks until none comes for ``idle`` ms (-1: forever); return how many."""
    done = 0
    with (
        zmq.Context() as context,
        context.socket(zmq.PULL) as receiver,  # socket to receive tasks on
        context.socket(zmq.PUSH) as sender,  # socket to send results to
    ):
        receiver.rcvtimeo = idle
        receiver.connect(tasks)
        sender.connect(sink)
        while True:
            try:
                workload = receiver.recv_string()
            except zmq.Again:
                break
            print(".", end="", flush=True)  # a simple progress indicator
            time.sleep(int(workload) * 0.001)  # do the work
            sender.send_string(f"done {workload}")  # the result, for the sink to add up
            done += 1
    print(f"\ntaskwork: {done} tasks", flush=True)
    return done


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default="tcp://localhost:5557", help="ventilator (%(default)s)")
    parser.add_argument("--sink", default="tcp://localhost:5558", help="sink (%(default)s)")
    parser.add_argument(
        "--idle", type=int, default=-1, help="exit after MS ms without a task (default: never)"
    )
    return parser.parse_args(argv)


if __name__ == "__main__":
    try:
        main(**vars(parse_args()))
    except KeyboardInterrupt:
        pass
