"""Benchmark zeropipe against pyzmq: ``python -m benchmarks.run [--quick] [--rounds N] ...``.

Method: every case runs in fresh processes for each implementation: a receiver process binds,
starts a sender process that connects, and takes all timestamps itself (see
``benchmarks.receiver``).  Both implementations run every case in the same invocation,
interleaved in rounds (case by case, alternating which implementation goes first), so that
machine noise hits both alike.  Each zeropipe/pyzmq ratio is taken within one round and the
median over rounds is reported next to the median figure of each implementation.  Raw results
and the summary are written to ``benchmarks/results/<timestamp>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from benchmarks.cases import METRICS, Case, build_cases
from benchmarks.impl import IMPLS
from benchmarks.procs import WATCHDOG_EXIT, last_line, run_bounded, tail, worker_command
from benchmarks.receiver import STARTUP_S
from benchmarks.report import Raw, fmt_number, format_table, summarize
from benchmarks.worker import RESULT_PREFIX

RESULTS_DIR = Path(__file__).resolve().parent / "results"
DEFAULT_ROUNDS, QUICK_ROUNDS = 3, 1
DEFAULT_BUDGET_S, QUICK_BUDGET_S = 3.0, 1.0
TEARDOWN_SLACK_S = 15.0  # on top of start-up + budget, before a receiver is killed


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.run",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="fewer messages, 1 round (< 1 min)")
    parser.add_argument("--rounds", type=int, help=f"rounds (default {DEFAULT_ROUNDS}, quick 1)")
    parser.add_argument("--only", type=re.compile, help="run only cases whose name matches")
    parser.add_argument(
        "--impl", default=",".join(IMPLS), help="comma-separated implementations to run"
    )
    parser.add_argument(
        "--budget",
        type=float,
        help=f"max measuring seconds per case run (default {DEFAULT_BUDGET_S}, quick "
        f"{QUICK_BUDGET_S}); a slower run is cut short and marked capped",
    )
    args = parser.parse_args(argv)
    args.impls = [name.strip() for name in args.impl.split(",") if name.strip()]
    unknown = sorted(set(args.impls) - set(IMPLS))
    if unknown or not args.impls:
        parser.error(f"--impl: unknown {unknown}; choose from {', '.join(IMPLS)}")
    if (args.rounds is not None and args.rounds < 1) or (
        args.budget is not None and args.budget <= 0
    ):
        parser.error("--rounds and --budget must be positive")
    if args.rounds is None:
        args.rounds = QUICK_ROUNDS if args.quick else DEFAULT_ROUNDS
    if args.budget is None:
        args.budget = QUICK_BUDGET_S if args.quick else DEFAULT_BUDGET_S
    return args


def run_one(impl: str, case: Case, budget_s: float) -> Raw:
    """Run one case for one implementation in a fresh receiver process (and its sender)."""
    lifetime = STARTUP_S + budget_s + TEARDOWN_SLACK_S
    cmd = worker_command(
        "receiver", impl, case.to_json(), f"--budget={budget_s}", f"--lifetime={lifetime}"
    )
    out, err, code, timed_out = run_bounded(cmd, lifetime + 5)
    return parse_output(out, err, code, timed_out, lifetime)


def parse_output(out: str, err: str, code: int, timed_out: bool, lifetime: float) -> Raw:
    """The receiver's first result line; later error lines and a hang become warnings."""
    lines = [
        json.loads(line[len(RESULT_PREFIX) :])
        for line in out.splitlines()
        if line.startswith(RESULT_PREFIX)
    ]
    hung = timed_out or code == WATCHDOG_EXIT
    if not lines:
        reason = f"hung: killed after {lifetime:.0f} s" if hung else f"receiver exit code {code}"
        summary = last_line(err)
        error = f"{reason}: {summary}" if summary else reason
        return {"ok": False, "error": error, "detail": tail(err), "hung": hung}
    result: Raw = lines[0]
    warnings: list[str] = result.setdefault("warnings", [])
    warnings += [f"teardown: {line['error']}" for line in lines[1:] if not line.get("ok")]
    if hung:
        warnings.append("receiver hung after reporting; killed")
    elif code != 0:
        warnings.append(f"receiver exit code {code}: {last_line(err)}")
    return result


def progress_line(raw: Raw, case: Case, rounds: int) -> str:
    head = f"[{raw['round']}/{rounds}] {case.name:<26} {raw['impl']:<8}"
    if not raw["ok"]:
        return f"{head} ERROR [{raw['wall_s']:.1f} s] {raw['error'][:300]}"
    metrics = raw["metrics"]
    parts = [f"{m.label} {fmt_number(metrics[m.key])}" for m in METRICS[case.kind]]
    if METRICS[case.kind][0].secondary:
        parts.append(f"{fmt_number(metrics['mb_per_s'])} MB/s")
    flags = " (capped)" if metrics.get("capped") else ""
    flags += f" warnings: {raw['warnings']}" if raw.get("warnings") else ""
    return f"{head} {', '.join(parts)}  [{raw['wall_s']:.1f} s]{flags}"


def run_rounds(cases: list[Case], args: argparse.Namespace) -> list[Raw]:
    """All case runs, interleaved: round by round, case by case, both impls back to back.

    A case that hung for an implementation is not retried in later rounds (it would cost the
    full timeout again); it is recorded as an error there.
    """
    raws: list[Raw] = []
    hung: dict[tuple[str, str], int] = {}
    for rnd in range(1, args.rounds + 1):
        order = args.impls if rnd % 2 else args.impls[::-1]
        for case in cases:
            for impl in order:
                raw = _run_or_skip(impl, case, args.budget, hung.get((impl, case.name)))
                raw.update(round=rnd, case=case.name, impl=impl)
                if raw.get("hung"):
                    hung.setdefault((impl, case.name), rnd)
                raws.append(raw)
                print(progress_line(raw, case, args.rounds), flush=True)
    return raws


def _run_or_skip(impl: str, case: Case, budget_s: float, hung_in: int | None) -> Raw:
    if hung_in is not None:
        return {"ok": False, "error": f"skipped: hung in round {hung_in}", "wall_s": 0.0}
    start = time.perf_counter()
    raw = run_one(impl, case, budget_s)
    raw["wall_s"] = time.perf_counter() - start
    raw["loadavg_1m"] = os.getloadavg()[0]  # other load on the machine, to judge noise
    return raw


def metadata(args: argparse.Namespace, raws: list[Raw], started: float) -> dict[str, Any]:
    versions = {r["impl"]: r.get("version") for r in raws if r["ok"]}
    return {
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
        "duration_s": time.time() - started,
        "argv": sys.argv[1:],
        "impls": args.impls,
        "rounds": args.rounds,
        "quick": args.quick,
        "budget_s": args.budget,
        "only": args.only.pattern if args.only else None,
        "versions": versions,
        "python": sys.version,
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
    }


def save(document: dict[str, Any], started: float) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(started))
    path = RESULTS_DIR / f"{stamp}.json"
    suffix = 1
    while path.exists():
        suffix += 1
        path = RESULTS_DIR / f"{stamp}-{suffix}.json"
    path.write_text(json.dumps(document, indent=2) + "\n")
    return path


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    cases = [c for c in build_cases(args.quick) if not args.only or args.only.search(c.name)]
    if not cases:
        print(f"no case matches {args.only.pattern!r}", file=sys.stderr)
        return 2
    started = time.time()
    impls = ", ".join(args.impls)
    print(f"{len(cases)} case(s) x impls {impls} x {args.rounds} round(s)", flush=True)
    raws = run_rounds(cases, args)
    rows = summarize(cases, raws, args.impls)
    meta = metadata(args, raws, started)
    document = {
        "meta": meta,
        "cases": [asdict(c) for c in cases],
        "raw": raws,
        "summary": rows,
    }
    print()
    print(format_table(rows, args.impls, args.rounds))
    print(f"\nresults: {save(document, started)}  ({meta['duration_s']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
