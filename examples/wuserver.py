"""Weather update server: a PUB socket broadcasts random "<zipcode> <temperature> <humidity>".

The ZeroMQ guide's publish-subscribe example, for zeropipe:

    python examples/wuserver.py                 # publishes forever on tcp://*:5556
    python examples/wuclient.py 10001           # averages 5 updates for zip code 10001

Zip codes are always five digits ("00042"), so a subscription to "10001 " (with the space)
selects exactly one zip code.
"""

from __future__ import annotations

import argparse
import random
import time

import zeropipe as zmq


def main(
    bind: str = "tcp://*:5556",
    updates: int = 0,
    zip_min: int = 1,
    zip_max: int = 99999,
    interval: float = 0.0,
    seed: int | None = None,
) -> None:
    """Publish ``updates`` updates (0: forever) for zip codes in [zip_min, zip_max]."""
    rng = random.Random(seed)
    with zmq.Context() as context, context.socket(zmq.PUB) as publisher:
        publisher.linger = 0  # nobody waits for weather that was not delivered
        publisher.bind(bind)
        print(f"wuserver: publishing on {publisher.last_endpoint.decode()}", flush=True)
        sent = 0
        while updates == 0 or sent < updates:
            zipcode = rng.randint(zip_min, zip_max)
            temperature = rng.randrange(-80, 135)
            relhumidity = rng.randrange(10, 60)
            publisher.send_string(f"{zipcode:05d} {temperature} {relhumidity}")
            sent += 1
            if interval:
                time.sleep(interval)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bind", default="tcp://*:5556", help="endpoint (default %(default)s)")
    parser.add_argument(
        "--updates", type=int, default=0, help="exit after N updates (default: forever)"
    )
    parser.add_argument("--zip-min", type=int, default=1, help="lowest zip code (default 1)")
    parser.add_argument("--zip-max", type=int, default=99999, help="highest (default 99999)")
    parser.add_argument(
        "--interval", type=float, default=0.0, help="seconds between updates (default 0)"
    )
    parser.add_argument("--seed", type=int, default=None, help="random seed")
    return parser.parse_args(argv)


if __name__ == "__main__":
    try:
        main(**vars(parse_args()))
    except KeyboardInterrupt:
        pass
