"""Weather update client: subscribes to one zip code and averages its temperature.

The ZeroMQ guide's publish-subscribe example, for zeropipe; run examples/wuserver.py first:

    python examples/wuclient.py                 # zip code 10001, 5 updates
    python examples/wuclient.py 94110 --updates 20 --verbose
"""

from __future__ import annotations

import argparse
import sys

import zeropipe as zmq


def main(
    zipcode: int = 10001,
    connect: str = "tcp://localhost:5556",
    updates: int = 5,
    timeout: int = -1,
    verbose: bool = False,
) -> float | None:
    """Average the temperature of ``updates`` updates for ``zipcode``.

    Waits up to ``timeout`` ms for each update (-1: forever); returns the average, or None
    when an update did not come in time.
    """
    # The server writes zip codes as five digits followed by a space: with the space, the
    # prefix match of SUBSCRIBE selects this zip code only (not 100010, 100011, ...).
    topic = f"{zipcode:05d} "
    with zmq.Context() as context, context.socket(zmq.SUB) as subscriber:
        subscriber.rcvtimeo = timeout
        print("Collecting updates from weather server...", flush=True)
        subscriber.connect(connect)
        subscriber.setsockopt_string(zmq.SUBSCRIBE, topic)
        total_temp = 0
        for _ in range(updates):
            try:
                string = subscriber.recv_string()
            except zmq.Again:
                print(f"No update for {zipcode:05d} within {timeout} ms", file=sys.stderr)
                return None
            _zip, temperature, _relhumidity = string.split()
            total_temp += int(temperature)
            if verbose:
                print(string, flush=True)
    average = total_temp / updates
    print(f"Average temperature for zipcode '{zipcode:05d}' was {average:.1f}F", flush=True)
    return average


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("zipcode", type=int, nargs="?", default=10001, help="default 10001")
    parser.add_argument(
        "--connect", default="tcp://localhost:5556", help="server endpoint (default %(default)s)"
    )
    parser.add_argument("--updates", type=int, default=5, help="how many to average (default 5)")
    parser.add_argument(
        "--timeout", type=int, default=-1, help="ms to wait for each update (default: forever)"
    )
    parser.add_argument("--verbose", action="store_true", help="print every update received")
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.exit(0 if main(**vars(parse_args())) is not None else 1)
