"""Hello World client: a REQ socket sends "Hello" and waits for "World", N times.

The first example of the ZeroMQ guide, for zeropipe; run examples/hwserver.py first:

    python examples/hwclient.py                 # 10 requests to tcp://localhost:5555
"""

from __future__ import annotations

import argparse
import sys

import zeropipe as zmq


def main(connect: str = "tcp://localhost:5555", requests: int = 10, timeout: int = -1) -> int:
    """Send ``requests`` requests; wait up to ``timeout`` ms for each reply (-1: forever).

    Returns the number of replies received.
    """
    with zmq.Context() as context, context.socket(zmq.REQ) as socket:
        socket.rcvtimeo = socket.sndtimeo = timeout
        socket.linger = 0  # if the server is gone, do not wait to deliver a pending request
        print("Connecting to hello world server...", flush=True)
        socket.connect(connect)
        for request in range(requests):
            print(f"Sending request {request} ...", flush=True)
            try:
                socket.send(b"Hello")
                message = socket.recv()
            except zmq.Again:
                print(f"No reply to request {request} within {timeout} ms", file=sys.stderr)
                return request
            print(f"Received reply {request} [ {message.decode()} ]", flush=True)
    return requests


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--connect", default="tcp://localhost:5555", help="server endpoint (default %(default)s)"
    )
    parser.add_argument("--requests", type=int, default=10, help="how many (default 10)")
    parser.add_argument(
        "--timeout", type=int, default=-1, help="ms to wait for each reply (default: forever)"
    )
    return parser.parse_args(argv)


if __name__ == "__main__":
    args = parse_args()
    sys.exit(0 if main(**vars(args)) == args.requests else 1)
