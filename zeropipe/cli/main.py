"""The ``zeropipe`` command."""

from __future__ import annotations

import argparse
import importlib.util
import runpy
import sys

import zeropipe
from zeropipe.cli import codegen, keygen, pipelines, tools

TYPE_HELP = "socket type: PUSH, PULL, PUB, SUB, REQ, REP, DEALER, ROUTER, PAIR, XPUB, XSUB"


def _bench(args: list[str]) -> int:
    """Run the benchmark suite of a source checkout (``benchmarks/`` beside the package)."""
    if importlib.util.find_spec("benchmarks.run") is None:
        print(
            "zeropipe bench runs the benchmarks of a source checkout: "
            "run it from the repository root (or use `make bench`).",
            file=sys.stderr,
        )
        return 2
    sys.argv = ["benchmarks.run", *args]
    runpy.run_module("benchmarks.run", run_name="__main__", alter_sys=True)
    return 0


def _add_socket_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("type", metavar="TYPE", help=TYPE_HELP)
    parser.add_argument("endpoint", metavar="ENDPOINT", help="e.g. tcp://127.0.0.1:5555")
    parser.add_argument("--bind", action="store_true", help="bind (default: connect)")


def _add_transfer_arguments(parser: argparse.ArgumentParser, delimiter: str | None) -> None:
    parser.add_argument(
        "--timeout",
        type=int,
        default=-1,
        metavar="MS",
        help="give up after MS ms without progress (default: wait forever)",
    )
    parser.add_argument(
        "--linger", type=int, default=-1, metavar="MS", help="LINGER at exit (default: -1)"
    )
    parser.add_argument("--identity", help="ROUTING_ID of the socket (for a ROUTER peer)")
    parser.add_argument("--hex", action="store_true", help="frames as hex")
    parser.add_argument(
        "--delimiter",
        default=delimiter,
        help="separates the frames of a message"
        + (" (default: no splitting)" if delimiter is None else " (default %(default)s)"),
    )


def _parser() -> tuple[argparse.ArgumentParser, dict[tuple[str, ...], argparse.ArgumentParser]]:
    """The parser, and the sub-command parsers whose positionals may mix with options."""
    parser = argparse.ArgumentParser(
        prog="zeropipe", description="zeropipe: broker-free messaging, a pure-Python ZeroMQ."
    )
    parser.add_argument("--version", action="version", version=zeropipe.__version__)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.add_parser("version", help="print the version and the ZMTP/libzmq level followed")
    bench = sub.add_parser(
        "bench", help="zeropipe vs pyzmq in the same run (from a checkout)", add_help=False
    )
    bench.add_argument("args", nargs=argparse.REMAINDER)

    send = sub.add_parser(
        "send",
        help="send messages to any ZeroMQ peer (REQ prints the replies)",
        description="Send each MESSAGE as a message, or each line of stdin without MESSAGE.",
    )
    _add_socket_arguments(send)
    send.add_argument("messages", nargs="*", metavar="MESSAGE")
    _add_transfer_arguments(send, None)
    send.add_argument(
        "--multipart", action="store_true", help="all MESSAGEs are the frames of one message"
    )
    send.add_argument(
        "--count", type=int, default=1, help="send the messages N times (0: until interrupted)"
    )
    send.add_argument(
        "--delay", type=float, default=0.0, metavar="S", help="seconds between messages"
    )
    send.add_argument(
        "--wait-connected",
        action="store_true",
        help="wait for a peer before sending (PUB: for a first subscription)",
    )

    recv = sub.add_parser(
        "recv",
        help="print the messages received from any ZeroMQ peer (REP replies)",
        description="Print each message as a line: printable UTF-8 frames as text, others as "
        "0x-hex, joined by the delimiter.",
    )
    _add_socket_arguments(recv)
    _add_transfer_arguments(recv, tools.DEFAULT_DELIMITER)
    recv.add_argument(
        "--subscribe",
        action="append",
        default=[],
        metavar="TOPIC",
        help="SUB: a topic prefix (repeat; default: everything)",
    )
    recv.add_argument("--count", type=int, default=0, help="exit after N messages")
    recv.add_argument("--json", action="store_true", help="print each message as a JSON list")
    recv.add_argument("--reply", metavar="TEXT", help="REP: answer TEXT (default: an echo)")

    monitor = sub.add_parser("monitor", help="print the monitor events of a socket, live")
    _add_socket_arguments(monitor)
    monitor.add_argument("--count", type=int, default=0, help="exit after N events")
    monitor.add_argument(
        "--timeout", type=int, default=-1, metavar="MS", help="exit after MS ms without an event"
    )

    football = sub.add_parser("football", help="a live feed of football events on PUB/SUB")
    roles = football.add_subparsers(dest="role", metavar="ROLE", required=True)
    publish = roles.add_parser("publish", help="publish random match events")
    publish.add_argument("--bind", default="tcp://*:5556", help="endpoint (%(default)s)")
    publish.add_argument("--events", type=int, default=0, help="how many (default: forever)")
    publish.add_argument(
        "--interval", type=float, default=0.5, metavar="S", help="seconds between events (0.5)"
    )
    publish.add_argument("--seed", type=int, help="random seed")
    watch = roles.add_parser("watch", help="print the events of some countries")
    watch.add_argument("--connect", default="tcp://127.0.0.1:5556", help="(%(default)s)")
    watch.add_argument("countries", nargs="*", metavar="COUNTRY", help="default: all")
    watch.add_argument("--count", type=int, default=0, help="exit after N events")
    watch.add_argument(
        "--timeout", type=int, default=-1, metavar="MS", help="exit after MS ms without an event"
    )

    keys = sub.add_parser(
        "keygen",
        help="make a CURVE key pair (needs PyNaCl)",
        description="Print a new CURVE key pair (Z85), or with NAME write it as the certificates "
        "DIR/NAME.key (public) and DIR/NAME.key_secret (secret, mode 0600).",
    )
    keys.add_argument("name", nargs="?", metavar="NAME", help="write certificates for NAME")
    keys.add_argument("-d", "--directory", metavar="DIR", help="where to write them (default: .)")
    keys.add_argument(
        "--metadata",
        action="append",
        default=[],
        type=keygen.metadata_item,
        metavar="NAME=VALUE",
        help="a metadata property of the certificates (repeat)",
    )
    keys.add_argument("--force", action="store_true", help="replace existing certificates of NAME")

    gen = sub.add_parser(
        "codegen",
        help="typed-message modules from .proto/.thrift schemas, or schemas from modules",
        description="Write one Python module of typed messages per .proto/.thrift file "
        "(SOURCE: files or directories) into the package DIR; with --emit, import the Python "
        "modules or packages SOURCE and write their messages as .proto/.thrift files into DIR. "
        "Needs the codegen extra: pip install 'zeropipe[codegen]'.",
    )
    gen.add_argument("sources", nargs="+", metavar="SOURCE")
    gen.add_argument("-o", "--output", required=True, metavar="DIR", help="output directory")
    gen.add_argument(
        "--emit", choices=("proto", "thrift"), help="write schemas from Python messages"
    )
    pipelines.add_parsers(sub)
    return parser, {("send",): send, ("football", "watch"): watch, ("codegen",): gen}


def _parse(
    parser: argparse.ArgumentParser,
    mixed: dict[tuple[str, ...], argparse.ArgumentParser],
    argv: list[str],
) -> argparse.Namespace:
    """Parse ``argv``; ``send PUSH ep --multipart a b`` and the like take options anywhere."""
    for path, leaf in mixed.items():
        if tuple(argv[: len(path)]) == path:
            ns = argparse.Namespace(command=path[0], role=path[1] if len(path) > 1 else None)
            return leaf.parse_intermixed_args(argv[len(path) :], namespace=ns)
    return parser.parse_args(argv)


def _dispatch(ns: argparse.Namespace) -> int:
    if ns.command == "run":
        return pipelines.run_command(ns)
    if ns.command == "worker":
        return pipelines.worker_command(ns)
    if ns.command == "codegen":
        return codegen.codegen(ns.sources, ns.output, emit=ns.emit)
    if ns.command == "keygen":
        return keygen.keygen(ns.name, ns.directory, ns.metadata, force=ns.force)
    if ns.command == "send":
        return tools.send(
            ns.type,
            ns.endpoint,
            ns.messages,
            bind=ns.bind,
            multipart=ns.multipart,
            delimiter=ns.delimiter,
            as_hex=ns.hex,
            count=ns.count,
            delay=ns.delay,
            wait_connected=ns.wait_connected,
            timeout=ns.timeout,
            linger=ns.linger,
            identity=ns.identity,
        )
    if ns.command == "recv":
        return tools.recv(
            ns.type,
            ns.endpoint,
            bind=ns.bind,
            subscribe=ns.subscribe,
            count=ns.count,
            timeout=ns.timeout,
            as_hex=ns.hex,
            as_json=ns.json,
            delimiter=ns.delimiter,
            reply=ns.reply,
            linger=ns.linger,
            identity=ns.identity,
        )
    if ns.command == "monitor":
        return tools.monitor(ns.type, ns.endpoint, bind=ns.bind, count=ns.count, timeout=ns.timeout)
    if ns.role == "publish":
        return tools.football_publish(ns.bind, events=ns.events, interval=ns.interval, seed=ns.seed)
    return tools.football_watch(ns.connect, ns.countries, count=ns.count, timeout=ns.timeout)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``zeropipe`` console script."""
    parser, mixed = _parser()
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["bench"]:  # everything after "bench" belongs to the benchmark runner
        return _bench(argv[1:])
    ns = _parse(parser, mixed, argv)
    if ns.command == "version":
        level = zeropipe.zmq_version()
        print(f"zeropipe {zeropipe.__version__} (ZMTP 3.1, behaves as libzmq {level})")
        return 0
    if ns.command == "bench":
        return _bench(ns.args)
    if ns.command is None:
        parser.print_help()
        return 0
    return _dispatch(ns)


if __name__ == "__main__":
    raise SystemExit(main())
