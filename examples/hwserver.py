"""Hello World server: a REP socket that answers "World" to every "Hello".

The first example of the ZeroMQ guide, for zeropipe. Start the server, then the client:

    python examples/hwserver.py                 # serves forever on tcp://*:5555
    python examples/hwclient.py                 # 10 requests, then exits

Any ZeroMQ client can talk to it: a libzmq (pyzmq, C, ...) REQ socket works just the same.
"""

from __future__ import annotations

import argparse
import time

import zeropipe as zmq


def main(bind: str = "tcp://*:5555", requests: int = 0, work: float = 1.0) -> None:
    """Answer ``requests`` requests (0: forever), spending ``work`` seconds on each."""
    with zmq.Context() as context, context.socket(zmq.REP) as socket:
        socket.bind(bind)
        print(f"hwserver: listening on {socket.last_endpoint.decode()}", flush=True)
        served = 0
        while requests == 0 or served < requests:
            message = socket.recv()
            print(f"Received request: {message.decode()}", flush=True)
            time.sleep(work)  # do some 'work'
            socket.send(b"World")
            served += 1


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bind", default="tcp://*:5555", help="endpoint (default %(default)s)")
    parser.add_argument(
        "--requests", type=int, default=0, help="exit after N requests (default: serve forever)"
    )
    parser.add_argument(
        "--work", type=float, default=1.0, help="seconds of 'work' per request (default 1)"
    )
    return parser.parse_args(argv)


if __name__ == "__main__":
    try:
        main(**vars(parse_args()))
    except KeyboardInterrupt:
        pass
