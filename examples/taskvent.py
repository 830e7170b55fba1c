"""Task ventilator: PUSHes a batch of tasks to the workers (divide and conquer).

The ZeroMQ guide's parallel pipeline, for zeropipe. Start the sink, the workers, then this:

    python examples/tasksink.py                 # collects results on tcp://*:5558
    python examples/taskwork.py                 # as many workers as you like
    python examples/taskwork.py
    python examples/taskvent.py                 # press Enter once the workers are up

Each task is a workload in milliseconds that a worker "processes" by sleeping. The first
message to the sink is "batch N", so the sink knows how many results to wait for.

PUSH deals tasks round-robin among the workers connected *at that moment*, so the
ventilator waits for Enter: a worker that connects late would get no share of the batch.
When stdin is not a terminal (a script, CI), or with --no-wait, it starts at once; no task
is lost either way (PUSH holds them until a worker is connected), the batch is just not
spread evenly.
"""

from __future__ import annotations

import argparse
import random
import sys

import zeropipe as zmq


def main(
    bind: str = "tcp://*:5557",
    sink: str = "tcp://localhost:5558",
    tasks: int = 100,
    max_ms: int = 100,
    wait: bool = True,
    seed: int | None = None,
) -> int:
    """Send ``tasks`` tasks of 1..max_ms ms each; return their total expected cost in ms."""
    rng = random.Random(seed)
    with (
        zmq.Context() as context,
        context.socket(zmq.PUSH) as sender,  # socket to send tasks on
        context.socket(zmq.PUSH) as to_sink,  # socket to the sink, to announce the batch
    ):
        sender.bind(bind)
        to_sink.connect(sink)
        print(f"taskvent: tasks on {sender.last_endpoint.decode()}", flush=True)

        if wait:
            input("Press Enter when the workers are ready: ")
        print("Sending tasks to workers...", flush=True)

        to_sink.send_string(f"batch {tasks}")  # the batch size, which also starts the clock

        total_msec = 0
        for _ in range(tasks):
            workload = rng.randint(1, max_ms)
            total_msec += workload
            sender.send_string(str(workload))
        print(f"Total expected cost: {total_msec} msec", flush=True)
    # Leaving the block closes the sockets and ends the context, which waits until every
    # queued task has left (LINGER is -1 by default).
    return total_msec


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bind", default="tcp://*:5557", help="tasks endpoint (%(default)s)")
    parser.add_argument("--sink", default="tcp://localhost:5558", help="sink (%(default)s)")
    parser.add_argument("--tasks", type=int, default=100, help="batch size (default 100)")
    parser.add_argument("--max-ms", type=int, default=100, help="max workload (default 100 ms)")
    parser.add_argument(
        "--no-wait",
        dest="wait",
        action="store_false",
        help="start at once instead of waiting for Enter (automatic when stdin is no terminal)",
    )
    parser.add_argument("--seed", type=int, default=None, help="random seed")
    args = parser.parse_args(argv)
    args.wait = args.wait and sys.stdin.isatty()
    return args


if __name__ == "__main__":
    try:
        main(**vars(parse_args()))
    except KeyboardInterrupt:
        pass
