"""Live football events over PUB/SUB: each fan subscribes to the countries they follow.

    python examples/football.py         # a publisher and two fans (threads), 40 events

Every event is one message, "<country> <event>" ("netherlands goal", "brazil yellow card"), so
a SUB socket that subscribes to "netherlands" (a prefix match) receives the Dutch events only.

PUB/SUB has a "slow joiner": a subscription reaches the publisher a little after connect(),
and what is published before it arrives is not sent to that subscriber. So the match does not
start until every expected fan has said READY on a side REQ/REP channel (the ZeroMQ guide's
node coordination). A fan says READY only after its SUB socket received a "$hello" probe,
which the publisher repeats while it waits: that proves the fan's subscriptions are in place.
"$end" ends the match. The fan also subscribes to "$", the control prefix, which no country
starts with.

The pieces are functions, to reuse them with other endpoints or fans in other processes:
bind_publisher(), wait_for_fans(), broadcast() on one side, and watch() on the other.
"""

from __future__ import annotations

import argparse
import random
import threading
import time
from collections.abc import Callable, Sequence

import zeropipe as zmq

COUNTRIES = ("netherlands", "brazil", "spain", "argentina", "germany", "japan", "morocco")
EVENTS = ("goal", "yellow card", "red card", "corner", "penalty", "free kick", "offside")
CONTROL = "$"  # prefix of the control messages below
HELLO = "$hello"
END = "$end"
TIMEOUT_MS = 10_000  # a fan gives up after 10 s without a message, the publisher as well

_print_lock = threading.Lock()


def say(line: str) -> None:
    """Print one whole line, even with fans printing from several threads."""
    with _print_lock:
        print(line, flush=True)


def match_events(
    count: int, countries: Sequence[str] = COUNTRIES, seed: int | None = None
) -> list[str]:
    """``count`` random events, such as "spain corner"."""
    rng = random.Random(seed)
    return [f"{rng.choice(countries)} {rng.choice(EVENTS)}" for _ in range(count)]


def bind_publisher(
    context: zmq.Context, endpoint: str, sync_endpoint: str
) -> tuple[zmq.Socket, zmq.Socket]:
    """The PUB socket for the events and the REP socket where fans report READY."""
    publisher = context.socket(zmq.PUB)
    publisher.linger = 0
    publisher.bind(endpoint)
    sync = context.socket(zmq.REP)
    sync.linger = 0
    sync.bind(sync_endpoint)
    return publisher, sync


def wait_for_fans(
    publisher: zmq.Socket, sync: zmq.Socket, fans: int, timeout_ms: int = TIMEOUT_MS
) -> list[str]:
    """Publish "$hello" probes until ``fans`` fans have reported READY; return their names."""
    ready: list[str] = []
    deadline = time.monotonic() + timeout_ms / 1000
    while len(ready) < fans:
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {len(ready)} of {fans} fans ready: {ready}")
        publisher.send_string(HELLO)
        while sync.poll(100):  # a probe every 100 ms until everyone has answered
            name = sync.recv_string()
            sync.send_string("kick-off")
            ready.append(name)
    return ready


def broadcast(publisher: zmq.Socket, events: Sequence[str], interval: float = 0.0) -> None:
    """Publish the events, then "$end"."""
    for event in events:
        say(f"publisher: {event}")
        publisher.send_string(event)
        if interval:
            time.sleep(interval)
    publisher.send_string(END)


def watch(
    context: zmq.Context,
    endpoint: str,
    sync_endpoint: str,
    countries: Sequence[str],
    name: str,
    show: Callable[[str], None] = say,
    timeout_ms: int = TIMEOUT_MS,
) -> list[str]:
    """Follow ``countries`` (all of them if empty) until "$end"; return the events seen."""
    with context.socket(zmq.SUB) as subscriber, context.socket(zmq.REQ) as sync:
        subscriber.rcvtimeo = sync.rcvtimeo = timeout_ms
        subscriber.linger = sync.linger = 0
        subscriber.connect(endpoint)
        for country in countries or [""]:
            subscriber.setsockopt_string(zmq.SUBSCRIBE, country)
        # Subscriptions travel in order: once "$hello" arrives, the ones above are in place.
        subscriber.setsockopt_string(zmq.SUBSCRIBE, CONTROL)
        while subscriber.recv_string() != HELLO:
            pass
        sync.connect(sync_endpoint)
        sync.send_string(name)
        sync.recv_string()  # "kick-off"

        seen: list[str] = []
        while (event := subscriber.recv_string()) != END:
            if event.startswith(CONTROL):
                continue  # probes sent while other fans were still joining
            show(f"{name} [{' '.join(countries) or 'all'}]: {event}")
            seen.append(event)
        return seen


def main(
    endpoint: str = "tcp://127.0.0.1:5556",
    sync_endpoint: str = "tcp://127.0.0.1:5557",
    fans: Sequence[Sequence[str]] = (("netherlands",), ("brazil", "spain")),
    events: int = 40,
    interval: float = 0.05,
    seed: int | None = None,
) -> dict[str, list[str]]:
    """Run a match: one publisher and one thread per fan; return what each fan saw."""
    seen: dict[str, list[str]] = {}
    errors: list[BaseException] = []

    def fan(
        context: zmq.Context, endpoints: tuple[str, str], name: str, countries: Sequence[str]
    ) -> None:
        try:
            seen[name] = watch(context, *endpoints, countries, name)
        except BaseException as exc:
            errors.append(exc)

    with zmq.Context() as context:
        publisher, sync = bind_publisher(context, endpoint, sync_endpoint)
        try:
            # last_endpoint has the real port when bound to "tcp://...:*"
            endpoints = (publisher.last_endpoint.decode(), sync.last_endpoint.decode())
            say(f"publisher: events on {endpoints[0]}, fans report on {endpoints[1]}")
            threads = [
                threading.Thread(target=fan, args=(context, endpoints, f"fan-{i}", countries))
                for i, countries in enumerate(fans, 1)
            ]
            for thread in threads:
                thread.start()
            try:
                names = wait_for_fans(publisher, sync, len(fans))
                say(f"publisher: {len(names)} fans ready, kick-off")
                broadcast(publisher, match_events(events, seed=seed), interval)
            finally:
                for thread in threads:
                    thread.join()
        finally:
            publisher.close()
            sync.close()
    if errors:
        raise errors[0]
    for name, got in sorted(seen.items()):
        say(f"{name}: {len(got)} events")
    return seen


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--endpoint", default="tcp://127.0.0.1:5556", help="PUB (%(default)s)")
    parser.add_argument(
        "--sync", dest="sync_endpoint", default="tcp://127.0.0.1:5557", help="REP (%(default)s)"
    )
    parser.add_argument(
        "--fan",
        dest="fans",
        action="append",
        metavar="COUNTRY[,COUNTRY...]",
        help="a fan and the countries they follow (repeat; default: netherlands; brazil,spain)",
    )
    parser.add_argument("--events", type=int, default=40, help="events in the match (40)")
    parser.add_argument("--interval", type=float, default=0.05, help="seconds between events")
    parser.add_argument("--seed", type=int, default=None, help="random seed")
    args = parser.parse_args(argv)
    if args.fans is None:
        args.fans = [("netherlands",), ("brazil", "spain")]
    else:
        args.fans = [tuple(c for c in fan.split(",") if c) for fan in args.fans]
    return args


if __name__ == "__main__":
    main(**vars(parse_args()))
