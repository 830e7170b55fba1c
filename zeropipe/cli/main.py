"""The ``zeropipe`` command."""

from __future__ import annotations

import argparse
import importlib.util
import runpy
import sys

import zeropipe


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


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``zeropipe`` console script."""
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
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["bench"]:  # everything after "bench" belongs to the benchmark runner
        return _bench(argv[1:])
    ns = parser.parse_args(argv)
    if ns.command == "version":
        level = zeropipe.zmq_version()
        print(f"zeropipe {zeropipe.__version__} (ZMTP 3.1, behaves as libzmq {level})")
        return 0
    if ns.command == "bench":
        return _bench(ns.args)
    parser.print_help()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
