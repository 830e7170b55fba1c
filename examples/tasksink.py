"""Task sink: PULLs the results of one batch from the workers and times the batch.

The ZeroMQ guide's parallel pipeline, for zeropipe; see examples/taskvent.py for how to run
the whole pipeline. The ventilator's first message, "batch N", says how many results to
collect; each worker result is "done <workload ms>".
"""

from __future__ import annotations

import argparse
import sys
import time

import zeropipe as zmq


def main(bind: str = "tcp://*:5558", timeout: int = -1) -> tuple[int, int] | None:
    """Collect one batch; return (results, total workload in ms).

    Waits up to ``timeout`` ms for each message (-1: forever); None if one did not come.
    """
    with zmq.Context() as context, context.socket(zmq.PULL) as receiver:
        receiver.rcvtimeo = timeout
        receiver.bind(bind)
        print(f"tasksink: results on {receiver.last_endpoint.decode()}", flush=True)

        batch: int | None = None
        results = 0
        total_ms = 0
        tstart = time.monotonic()
        # The announcement and the results come from different peers, over different
        # connections, so a result may overtake "batch N": count whatever comes first.
        while batch is None or results < batch:
            try:
                kind, value = receiver.recv_string().split()
            except zmq.Again:
                print(f"\nNo message within {timeout} ms: {results} results", file=sys.stderr)
                return None
            if kind == "batch":
                batch = int(value)
                tstart = time.monotonic()
                continue
            results += 1
            total_ms += int(value)
            print(":" if results % 10 == 0 else ".", end="", flush=True)

        elapsed = (time.monotonic() - tstart) * 1000
    print(f"\nTotal elapsed time: {elapsed:.0f} msec", flush=True)
    print(f"Results: {results} of {batch}, total workload {total_ms} msec", flush=True)
    return results, total_ms


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bind", default="tcp://*:5558", help="endpoint (default %(default)s)")
    parser.add_argument(
        "--timeout", type=int, default=-1, help="ms to wait for each message (default: forever)"
    )
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.exit(0 if main(**vars(parse_args())) is not None else 1)
