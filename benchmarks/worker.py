"""Worker processes: ``python -m benchmarks.worker {receiver|sender} IMPL ...``.

The orchestrator (``benchmarks.run``) starts one receiver per case and implementation; the
receiver binds, starts the sender (two subscribers in the fanout case, where the receiver is
the publisher), measures, and prints one ``BENCH-RESULT {json}`` line on stdout before tearing
its sockets down (so a hang in teardown cannot lose the figures).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from typing import Any

from benchmarks.cases import SENDER_COUNTS, SOCKETS, Case
from benchmarks.fanout import measure_fanout, run_subscriber
from benchmarks.impl import (
    HAS_BATCH_API,
    IMPLS,
    bind_endpoint,
    close_quietly,
    impl_version,
    last_endpoint,
    load_impl,
    secure_server,
)
from benchmarks.procs import SenderGroup, WorkerDied, start_watchdog
from benchmarks.receiver import BenchError, Limits, Link, measure
from benchmarks.sender import run_sender

RESULT_PREFIX = "BENCH-RESULT "
SENDER_GRACE_S = 2.0  # time a finished sender gets to flush and exit before it is killed


def emit(result: dict[str, Any]) -> None:
    """Hand a result to the orchestrator."""
    print(RESULT_PREFIX + json.dumps(result), flush=True)


def describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def receiver_main(impl: str, case: Case, limits: Limits, lifetime_s: float) -> None:
    """Bind, start the sender, measure ``case`` and emit the result.

    The orchestrator keeps the first emitted line; an error emitted after it (teardown)
    becomes a warning of that result.
    """
    endpoint, tmpdir = bind_endpoint(case.transport)
    try:
        _receive(impl, case, limits, lifetime_s, endpoint)
    except Exception as exc:
        emit({"ok": False, "error": describe(exc), "detail": getattr(exc, "detail", "")})
    finally:
        if tmpdir:
            shutil.rmtree(tmpdir, ignore_errors=True)


def _receive(impl: str, case: Case, limits: Limits, lifetime_s: float, endpoint: str) -> None:
    zmq = load_impl(impl)
    ctx = zmq.Context()
    sock = ctx.socket(getattr(zmq, SOCKETS[case.kind][0]))
    try:
        if case.hwm is not None:
            sock.sndhwm = sock.rcvhwm = case.hwm
        server_key = secure_server(zmq, sock, case.mechanism)
        sock.bind(endpoint)
        args = ["sender", impl, last_endpoint(sock), case.to_json(), f"--lifetime={lifetime_s}"]
        if server_key:
            args.append(f"--server-key={server_key}")
        count = SENDER_COUNTS.get(case.kind, 1)
        arg_lists = [[*args, f"--index={i}"] for i in range(count)]
        sender = SenderGroup(arg_lists, report=count > 1)
        try:
            link = Link(zmq, sock, case, sender, limits, HAS_BATCH_API[impl])
            emit(_measured(link, impl_version(zmq)))
        except WorkerDied:
            raise
        except Exception as exc:
            note = sender.stop(0)
            raise BenchError(describe(exc) + (f" [{note}]" if note else "")) from exc
        finally:
            sender.stop(0)
    finally:
        close_quietly(sock, ctx)


def _measured(link: Link, version: str) -> dict[str, Any]:
    metrics = measure_fanout(link) if link.case.kind == "fanout" else measure(link)
    note = link.sender.stop(0 if metrics.get("capped") else SENDER_GRACE_S)
    # A sender cut short by the measurement budget is killed on purpose: not a warning.
    warnings = [note] if note and not metrics.get("capped") else []
    warnings += metrics.pop("warnings", [])
    return {"ok": True, "metrics": metrics, "version": version, "warnings": warnings}


def sender_main(impl: str, endpoint: str, case: Case, index: int, server_key: str) -> None:
    """Produce the traffic for ``case``; errors go to stderr with a non-zero exit code."""
    zmq = load_impl(impl)
    if case.kind == "fanout":
        stats = run_subscriber(zmq, endpoint, case, index)
    else:
        stats = run_sender(zmq, impl, endpoint, case, server_key)
    print(json.dumps(stats), flush=True)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.worker")
    sub = parser.add_subparsers(dest="role", required=True)
    receiver = sub.add_parser("receiver")
    receiver.add_argument("impl", choices=IMPLS)
    receiver.add_argument("case", type=Case.from_json)
    receiver.add_argument("--budget", type=float, required=True)
    receiver.add_argument("--lifetime", type=float, required=True)
    sender = sub.add_parser("sender")
    sender.add_argument("impl", choices=IMPLS)
    sender.add_argument("endpoint")
    sender.add_argument("case", type=Case.from_json)
    sender.add_argument("--lifetime", type=float, required=True)
    sender.add_argument("--index", type=int, default=0, help="which of several senders")
    sender.add_argument("--server-key", default="", help="the receiver's CURVE public key (Z85)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    start_watchdog(args.lifetime)
    if args.role == "receiver":
        receiver_main(args.impl, args.case, Limits(budget_s=args.budget), args.lifetime)
    else:
        sender_main(args.impl, args.endpoint, args.case, args.index, args.server_key)
    return 0


if __name__ == "__main__":
    sys.exit(main())
