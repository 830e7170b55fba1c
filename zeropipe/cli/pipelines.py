"""``zeropipe run`` and ``zeropipe worker``: a pipeline file on this machine, and workers that
join a running pipeline from anywhere."""

from __future__ import annotations

import argparse
import logging
import sys


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    run = sub.add_parser(
        "run",
        help="run a pipeline file: its source, worker processes and sink, with progress",
        description="Run the pipeline declared in FILE (TOML, see docs/pipelines.md) on this "
        "machine until every task is accounted for, then print a summary. Ctrl-C or SIGTERM "
        "drains (no new tasks; the tasks in flight finish); a second Ctrl-C stops at once.",
    )
    run.add_argument("file", metavar="FILE", help="the pipeline file (.toml)")
    run.add_argument(
        "--bind", metavar="ENDPOINT", help="where workers connect (tcp://0.0.0.0:5557)"
    )
    run.add_argument("--workers", type=int, metavar="N", help="local worker processes per stage")
    run.add_argument("--inprocess", action="store_true", help="run in this process (for testing)")
    run.add_argument("--no-progress", action="store_true", help="no progress bar")
    run.add_argument("--quiet", action="store_true", help="no summary")

    worker = sub.add_parser(
        "worker",
        help="join a running pipeline from this host with N worker processes",
        description="Start PROCS worker processes that connect to a pipeline's head and work "
        "until the pipeline ends (or Ctrl-C / SIGTERM: each finishes its batch and leaves). "
        "A process that dies is restarted; the head re-sends what it held.",
    )
    from zeropipe.pipelines.worker import add_arguments

    add_arguments(worker)
    worker.add_argument("--procs", type=int, default=1, help="worker processes (default 1)")


def run_command(ns: argparse.Namespace) -> int:
    from zeropipe.pipelines import PipelineAborted, PipelineError, load

    logging.basicConfig(level=logging.WARNING, format="zeropipe: %(message)s")
    try:
        pipe = load(ns.file)
        if ns.bind:
            pipe.bind = ns.bind
        if ns.workers is not None:
            pipe.set_workers(ns.workers)
        plan = pipe.validate()
    except PipelineError as exc:
        print(f"zeropipe run: {exc}", file=sys.stderr)
        return 2

    def announce(endpoint: str) -> None:
        if endpoint.startswith("tcp://") and not ns.quiet:
            print(
                f"pipeline {plan.name} at {endpoint}: more workers can join with\n"
                f"  zeropipe worker --connect {endpoint} --pipeline {plan.name} --procs N",
                file=sys.stderr,
            )

    try:
        result = pipe.run(
            inprocess=ns.inprocess,
            progress=not ns.no_progress,
            on_start=announce,
        )
    except PipelineError as exc:
        print(f"zeropipe run: {exc}", file=sys.stderr)
        return 2
    except PipelineAborted as exc:
        print(f"zeropipe run: aborted: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("zeropipe run: stopped", file=sys.stderr)
        return 130
    if not ns.quiet:
        print(result.summary())
    return 0 if result.ok else 1


def worker_command(ns: argparse.Namespace) -> int:
    from zeropipe.pipelines import PipelineError
    from zeropipe.pipelines.worker import serve

    if ns.procs < 1:
        print("zeropipe worker: --procs must be at least 1", file=sys.stderr)
        return 2
    try:
        return serve(ns, ns.procs)
    except PipelineError as exc:
        print(f"zeropipe worker: {exc}", file=sys.stderr)
        return 2
