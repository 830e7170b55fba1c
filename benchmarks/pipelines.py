"""zeropipe pipelines against multiprocessing.Pool and a hand-written pyzmq pipeline.

``python -m benchmarks.pipelines [--rounds N] [--quick] [--only REGEX] [--profile NAMES]``

Cases, 2 worker processes everywhere (``--list`` shows the methods):

* tiny: ``x*x`` over 0..N-1; zeropipe ``batch="auto"`` against ``Pool.imap_unordered``
  with chunksize 2000 (goal >= 1x) and chunksize 1 (reference), and serial ``map``;
  tiny-long: the same with N = 1M, where zeropipe's first batches and the second worker's
  join weigh less;
* per-message: one task per message; zeropipe ``batch=1`` (also with ``credit=256``)
  against ``benchmarks.pyzmq_pipeline`` (PUSH/PULL, pickle, vent and sink in one process;
  goal >= 0.75x); zeropipe runs a smaller N (tasks/s are compared);
* cpu: ``sum(range(20000)) + x``; zeropipe auto against ``Pool`` chunksize 50 (goal >= 0.95x)
  and serial;
* start-up: zeropipe ``run()`` called -> first result in the sink (goal <= 0.5 s), next to
  ``Pool(2)`` created -> first result;
* acks: zeropipe tiny, tiny-long (auto) and batch=1 with ``acks=True`` against ``acks=False`` (goal:
  at-least-once costs <= 10 % more time, i.e. rate ratio >= 1/1.1).

Timing (``perf_counter``): tasks/s = N / (last result consumed - submit), where submit is
after start-up: Pool created and warmed by a first map; pyzmq when every worker's connection
finished its handshake; zeropipe when the head first reads its source, which it does once
both workers have joined (``min_workers=2``, the same condition as pyzmq's). The sink sums
the results and the sum is checked. start-up = started -> submit.
Steady/s = (N - 1) / (last result - first result) is reported too, measured alike for all.

Method: every measurement runs in a fresh process (this module with ``--measure SPEC``, which
prints one JSON line), killed with its process group after 180 s. Methods are interleaved
round by round (the order reverses every other round); each figure is the median over rounds,
and each ratio is taken within a round, the median of those ratios being reported. Results go
to ``benchmarks/results/pipelines-<timestamp>.json``. ``--profile`` runs methods once under
py-spy (all processes) and prints where the time goes, by process and category.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import platform
import re
import resource
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.procs import last_line, run_bounded, tail

RESULTS_DIR = Path(__file__).resolve().parent / "results"
PREFIX = "PIPEBENCH "
DEFAULT_ROUNDS, QUICK_ROUNDS = 3, 1
MEASURE_TIMEOUT_S = 180.0  # one measurement, start-up and teardown included
WORKERS = 2

Raw = dict[str, Any]


@dataclass(frozen=True)
class Method:
    """One way of running one workload: a row of the table."""

    name: str
    case: str
    runner: str  # serial | pool | pyzmq | zeropipe
    workload: str  # tiny | cpu (benchmarks.pipeline_tasks.TASKS)
    n: int
    quick_n: int
    params: dict[str, Any] = field(default_factory=dict)

    def spec(self, quick: bool, n: int | None = None) -> dict[str, Any]:
        n = n or (self.quick_n if quick else self.n)
        return {"runner": self.runner, "workload": self.workload, "n": n, **self.params}

    @property
    def label(self) -> str:
        p = self.params
        if self.runner == "serial":
            return "serial: sum(map(fn, range(N)))"
        if self.runner == "pool":
            return f"Pool.imap_unordered chunksize={p['chunksize']}"
        if self.runner == "pyzmq":
            return f"pyzmq PUSH/PULL, {p['batch']} task/msg (driver)"
        text = f"zeropipe batch={p['batch']}"
        if "credit" in p:
            text += f" credit={p['credit']}"
        return text + (" acks=False" if p.get("acks") is False else "")


# Methods compared with each other follow one another, so that a ratio's two figures are
# measured close in time.
METHODS = [
    Method("tiny/serial", "tiny", "serial", "tiny", 200_000, 50_000),
    Method("tiny/pool-c2000", "tiny", "pool", "tiny", 200_000, 50_000, {"chunksize": 2000}),
    Method("tiny/zeropipe-auto", "tiny", "zeropipe", "tiny", 200_000, 50_000, {"batch": "auto"}),
    Method(
        "acks/zeropipe-auto-noacks",
        "acks",
        "zeropipe",
        "tiny",
        200_000,
        50_000,
        {"batch": "auto", "acks": False},
    ),
    Method("tiny/pool-c1", "tiny", "pool", "tiny", 40_000, 10_000, {"chunksize": 1}),
    # tiny with 5x the tasks: less weight on the first batches and on the second worker's join
    Method(
        "tiny-long/pool-c2000", "tiny-long", "pool", "tiny", 1_000_000, 200_000, {"chunksize": 2000}
    ),
    Method(
        "tiny-long/zeropipe-auto",
        "tiny-long",
        "zeropipe",
        "tiny",
        1_000_000,
        200_000,
        {"batch": "auto"},
    ),
    Method(
        "acks/zeropipe-auto-long-noacks",
        "acks",
        "zeropipe",
        "tiny",
        1_000_000,
        200_000,
        {"batch": "auto", "acks": False},
    ),
    Method("msg/pyzmq-1", "per-message", "pyzmq", "tiny", 200_000, 50_000, {"batch": 1}),
    Method("msg/zeropipe-1", "per-message", "zeropipe", "tiny", 20_000, 5_000, {"batch": 1}),
    Method(
        "acks/zeropipe-1-noacks",
        "acks",
        "zeropipe",
        "tiny",
        20_000,
        5_000,
        {"batch": 1, "acks": False},
    ),
    Method(
        "msg/zeropipe-1-credit256",
        "per-message",
        "zeropipe",
        "tiny",
        20_000,
        5_000,
        {"batch": 1, "credit": 256},
    ),
    Method("cpu/serial", "cpu", "serial", "cpu", 5_000, 1_000),
    Method("cpu/pool-c50", "cpu", "pool", "cpu", 5_000, 1_000, {"chunksize": 50}),
    Method("cpu/zeropipe-auto", "cpu", "zeropipe", "cpu", 5_000, 1_000, {"batch": "auto"}),
]
CASES = ["tiny", "tiny-long", "per-message", "cpu", "acks"]  # the order of the table
BY_NAME = {m.name: m for m in METHODS}


@dataclass(frozen=True)
class Goal:
    """A per-round ratio ``metric(subject) / metric(anchor)`` and what it should reach."""

    case: str
    label: str
    subject: str
    anchor: str
    metric: str = "tasks_per_s"
    at_least: float | None = None  # None: reported, no goal


COMPARISONS = [
    Goal(
        "tiny", "zeropipe auto / Pool c2000", "tiny/zeropipe-auto", "tiny/pool-c2000", at_least=1.0
    ),
    Goal("tiny", "Pool c2000 / serial", "tiny/pool-c2000", "tiny/serial"),
    Goal("tiny", "zeropipe auto / serial", "tiny/zeropipe-auto", "tiny/serial"),
    Goal(
        "tiny-long", "zeropipe auto / Pool c2000", "tiny-long/zeropipe-auto", "tiny-long/pool-c2000"
    ),
    Goal(
        "per-message",
        "zeropipe batch=1 / pyzmq 1/msg",
        "msg/zeropipe-1",
        "msg/pyzmq-1",
        at_least=0.75,
    ),
    Goal(
        "per-message",
        "zeropipe batch=1 credit=256 / pyzmq",
        "msg/zeropipe-1-credit256",
        "msg/pyzmq-1",
    ),
    Goal("cpu", "zeropipe auto / Pool c50", "cpu/zeropipe-auto", "cpu/pool-c50", at_least=0.95),
    Goal("cpu", "zeropipe auto / serial", "cpu/zeropipe-auto", "cpu/serial"),
    Goal("cpu", "Pool c50 / serial", "cpu/pool-c50", "cpu/serial"),
    # acks: rate with acks / rate without; >= 1/1.1 means at-least-once costs <= 10 % more time
    Goal(
        "acks",
        "tiny auto: acks=True / acks=False",
        "tiny/zeropipe-auto",
        "acks/zeropipe-auto-noacks",
        at_least=1 / 1.1,
    ),
    Goal(
        "acks",
        "tiny-long auto: acks=True / acks=False",
        "tiny-long/zeropipe-auto",
        "acks/zeropipe-auto-long-noacks",
        at_least=1 / 1.1,
    ),
    Goal(
        "acks",
        "batch=1: acks=True / acks=False",
        "msg/zeropipe-1",
        "acks/zeropipe-1-noacks",
        at_least=1 / 1.1,
    ),
]
STARTUP_GOAL_S = 0.5  # zeropipe: run() called -> first result in the sink


# -- the measurements (run in a fresh process each) ------------------------------------------


def measure(spec: dict[str, Any]) -> Raw:
    """Runs one measurement described by ``spec``; returns its timestamps and figures.

    All times are ``time.perf_counter`` seconds: ``started`` (run() called / Pool() called /
    driver started), ``submit`` (workers are there and the first task goes out), ``first``
    (the first result is consumed), ``end`` (the last result is consumed)."""
    from benchmarks import pipeline_tasks as tasks

    runner, workload, n = spec["runner"], spec["workload"], int(spec["n"])
    fn = tasks.TASKS[workload]
    extra: Raw = {}
    cpu_before = _cpu(resource.RUSAGE_SELF)
    if runner == "serial":
        started = time.perf_counter()
        value = sum(map(fn, range(n)))
        end = time.perf_counter()
        t = {"started": started, "submit": started, "first": started, "end": end}
    elif runner == "pool":
        t, value = _pool(fn, n, int(spec["chunksize"]))
    elif runner == "pyzmq":
        from benchmarks.pyzmq_pipeline import drive

        t = drive(workload, n, int(spec["batch"]), WORKERS)
        value = t.pop("value")
    elif runner == "zeropipe":
        t, value, extra = _zeropipe(spec, fn, n)
    else:
        raise ValueError(f"unknown runner {runner!r}")
    # this process's threads, and every worker process (all reaped by now), start-up included
    extra["cpu_head_s"] = _cpu(resource.RUSAGE_SELF) - cpu_before
    extra["cpu_workers_s"] = _cpu(resource.RUSAGE_CHILDREN)
    expected = tasks.checksum(workload, n)
    if value != expected:
        raise RuntimeError(f"checksum: got {value}, expected {expected}")
    return {
        "tasks_per_s": n / (t["end"] - t["submit"]),
        "steady_per_s": (n - 1) / (t["end"] - t["first"]) if t["end"] > t["first"] else None,
        "submit_to_end_s": t["end"] - t["submit"],
        "startup_s": t["submit"] - t["started"],
        "first_result_s": t["first"] - t["started"],
        **extra,
    }


def _cpu(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def _pool(fn: Any, n: int, chunksize: int) -> tuple[dict[str, float], int]:
    import multiprocessing

    ctx = multiprocessing.get_context()
    started = time.perf_counter()
    with ctx.Pool(WORKERS) as pool:
        # start-up: creating the pool and getting a first result; then the pool is warm
        list(pool.imap_unordered(fn, range(WORKERS), chunksize=1))
        submit = time.perf_counter()
        it = pool.imap_unordered(fn, range(n), chunksize=chunksize)
        value = next(it)
        first = time.perf_counter()
        value += sum(it)
        end = time.perf_counter()
    return {"started": started, "submit": submit, "first": first, "end": end}, value


def _zeropipe(spec: dict[str, Any], fn: Any, n: int) -> tuple[dict[str, float], int, Raw]:
    from benchmarks import pipeline_tasks as tasks
    from zeropipe.pipelines import Pipeline

    pipe = (
        Pipeline("bench", acks=bool(spec.get("acks", True)))
        .source(tasks.numbers, args=(n,))
        .map(
            fn,
            workers=WORKERS,
            batch=spec["batch"],
            credit=spec.get("credit"),
            min_workers=WORKERS,  # timed from when all workers are in, as Pool and pyzmq
        )
        .sink(tasks.total)
    )
    tasks.CLOCK.clear()
    started = time.perf_counter()
    result = pipe.run(progress=False)
    returned = time.perf_counter()
    if not result.ok or result.delivered != n:
        raise RuntimeError(f"run not ok: {result.summary()}")
    clock = tasks.CLOCK
    stats = result.stages[0]
    extra = {
        "run_first_result_s": result.first_result,  # RunResult.first_result
        "run_elapsed_s": result.elapsed,
        "run_wall_s": returned - started,
        "teardown_s": returned - clock["end"],
        "workers_joined": stats.workers_joined,
        "retried": stats.retried,
        "duplicates": stats.duplicates,
        "busy_s": stats.busy_s,
    }
    t = {"started": started, "submit": clock["submit"], "first": clock["first"]}
    t["end"] = clock["end"]
    return t, int(result.value), extra


# -- the orchestrator -----------------------------------------------------------------------


def measure_command(spec: dict[str, Any]) -> list[str]:
    return [sys.executable, "-m", "benchmarks.pipelines", "--measure", json.dumps(spec)]


def run_one(spec: dict[str, Any], wrap: list[str] | None = None) -> Raw:
    """One measurement in a fresh process (its own process group, killed on a hang)."""
    cmd = [*(wrap or []), *measure_command(spec)]
    started = time.perf_counter()
    out, err, returncode, hung = run_bounded(cmd, MEASURE_TIMEOUT_S)
    raw: Raw = {"wall_s": time.perf_counter() - started, "loadavg_1m": os.getloadavg()[0]}
    lines = [line[len(PREFIX) :] for line in out.splitlines() if line.startswith(PREFIX)]
    if hung:
        raw.update(ok=False, error=f"hung: killed after {MEASURE_TIMEOUT_S:.0f} s")
    elif not lines:
        raw.update(ok=False, error=f"exit code {returncode}: {last_line(err)}")
    else:
        raw.update(json.loads(lines[-1]))
    if not raw["ok"]:
        raw["detail"] = tail(err)
    return raw


def run_rounds(methods: list[Method], args: argparse.Namespace) -> list[Raw]:
    raws: list[Raw] = []
    for rnd in range(1, args.rounds + 1):
        order = methods if rnd % 2 else methods[::-1]
        for method in order:
            raw = run_one(method.spec(args.quick, args.n))
            raw.update(round=rnd, method=method.name)
            raws.append(raw)
            print(_progress(raw, method, args.rounds), flush=True)
    return raws


def _progress(raw: Raw, method: Method, rounds: int) -> str:
    head = f"[{raw['round']}/{rounds}] {method.name:<27}"
    if not raw["ok"]:
        return f"{head} ERROR [{raw['wall_s']:.1f} s] {raw['error'][:300]}"
    m = raw["metrics"]
    text = f"{head} {_num(m['tasks_per_s']):>8} tasks/s, start-up {m['startup_s']:.3f} s"
    if "run_first_result_s" in m:
        text += f", first result {m['first_result_s']:.3f} s, {m['workers_joined']} joined"
    return text + f"  [{raw['wall_s']:.1f} s, load {raw['loadavg_1m']:.1f}]"


# -- summary and table ----------------------------------------------------------------------


def _metric(raws: list[Raw], name: str, key: str) -> dict[int, float]:
    out = {}
    for r in raws:
        if r["method"] == name and r["ok"] and r["metrics"].get(key) is not None:
            out[r["round"]] = float(r["metrics"][key])
    return out


def _median(values: Any) -> float | None:
    values = list(values)
    return statistics.median(values) if values else None


def summarize(methods: list[Method], raws: list[Raw], quick: bool, n: int | None) -> Raw:
    rows = []
    for m in methods:
        rate = _metric(raws, m.name, "tasks_per_s")
        row: Raw = {
            "method": m.name,
            "case": m.case,
            "label": m.label,
            "n": m.spec(quick, n)["n"],
            "rounds_ok": len(rate),
            "errors": [
                f"round {r['round']}: {r['error']}"
                for r in raws
                if r["method"] == m.name and not r["ok"]
            ],
            "min": min(rate.values(), default=None),
            "max": max(rate.values(), default=None),
        }
        for key in (
            "tasks_per_s",
            "steady_per_s",
            "startup_s",
            "first_result_s",
            "run_first_result_s",
            "teardown_s",
            "cpu_head_s",
            "cpu_workers_s",
        ):
            row[key] = _median(_metric(raws, m.name, key).values())
        rows.append(row)
    names = {m.name for m in methods}
    ratios = []
    for goal in COMPARISONS:
        if goal.subject not in names or goal.anchor not in names:
            continue
        sub, anc = _metric(raws, goal.subject, goal.metric), _metric(raws, goal.anchor, goal.metric)
        per_round = [sub[r] / anc[r] for r in sorted(sub) if anc.get(r)]
        median = _median(per_round)
        met = None if goal.at_least is None or median is None else median >= goal.at_least
        ratios.append({**asdict(goal), "ratios": per_round, "median": median, "met": met})
    # every zeropipe run goes through the same start-up: all of them are samples of it
    zp = [r["metrics"] for r in raws if r["ok"] and BY_NAME[r["method"]].runner == "zeropipe"]
    firsts = sorted(m["first_result_s"] for m in zp)
    startup = None
    if firsts:
        first = statistics.median(firsts)
        startup = {
            "runs": len(firsts),
            "first_result_s": first,
            "min": firsts[0],
            "max": firsts[-1],
            "worker_joined_s": _median(m["startup_s"] for m in zp),
            "run_first_result_s": _median(m["run_first_result_s"] for m in zp),
            "teardown_s": _median(m["teardown_s"] for m in zp),
            "goal_s": STARTUP_GOAL_S,
            "met": first <= STARTUP_GOAL_S,
        }
    pool = [r["metrics"]["startup_s"] for r in raws if r["ok"] and "pool-" in r["method"]]
    if startup is not None and pool:
        startup["pool_first_result_s"] = statistics.median(pool)
    return {"methods": rows, "ratios": ratios, "startup": startup}


def _num(value: float | None) -> str:
    if value is None:
        return "-"
    if value >= 1e6:
        return f"{value / 1e6:.2f}M"
    if value >= 1e4:
        return f"{value / 1e3:.1f}k"
    return f"{value:.3g}" if value < 100 else f"{value:,.0f}"


def _secs(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _cpu_text(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _table(lines: list[list[str]]) -> list[str]:
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    text = ["  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) for line in lines]
    text.insert(1, "  ".join("-" * w for w in widths))
    return [t.rstrip() for t in text]


def format_report(summary: Raw, rounds: int) -> str:
    out = [
        f"Medians over {rounds} round(s); 2 worker processes everywhere.",
        "tasks/s = N / (last result consumed - submit); submit = after start-up (Pool: created",
        "and warmed; pyzmq: every worker connected; zeropipe: the head's first read of the",
        "source, which happens once the first worker has joined). steady/s = (N - 1) / (last -",
        "first result). start-up = started -> submit; first = started -> first result consumed.",
        "CPU s = CPU time (user + system) of the driver/head process + of the worker processes,",
        "whole measurement (start-up and teardown included).",
        "",
    ]
    lines = [
        ["case", "method", "N", "tasks/s", "min..max", "steady/s", "start-up s", "first s", "CPU s"]
    ]
    for row in sorted(summary["methods"], key=lambda r: CASES.index(r["case"])):
        rate = _num(row["tasks_per_s"])
        if row["errors"]:
            rate += f" [{len(row['errors'])} err]"
        lines.append(
            [
                row["case"],
                row["label"],
                _num(row["n"]),
                rate,
                f"{_num(row['min'])}..{_num(row['max'])}",
                _num(row["steady_per_s"]),
                _secs(row["startup_s"]),
                _secs(row["first_result_s"]),
                f"{_cpu_text(row['cpu_head_s'])} + {_cpu_text(row['cpu_workers_s'])}",
            ]
        )
    out += _table(lines)
    out += ["", "Ratios of tasks/s, taken within each round (median; per round in brackets):", ""]
    lines = [["case", "ratio", "median", "rounds", "goal", "verdict"]]
    for r in summary["ratios"]:
        goal = "-" if r["at_least"] is None else f">= {r['at_least']:.2f}"
        verdict = {None: "", True: "ok", False: "MISSES"}[r["met"]]
        rounds_text = ", ".join(f"{x:.3f}" for x in r["ratios"])
        median = "-" if r["median"] is None else f"{r['median']:.3f}"
        lines.append([r["case"], r["label"], median, f"[{rounds_text}]", goal, verdict])
    out += _table(lines)
    st = summary["startup"]
    if st is not None:
        verdict = "ok" if st["met"] else "MISSES"
        out += [
            "",
            f"Start-up, median of all {st['runs']} zeropipe runs: run() called -> first result "
            f"in the sink {st['first_result_s']:.3f} s ({st['min']:.3f}..{st['max']:.3f}), "
            f"goal <= {st['goal_s']} s: {verdict}",
            f"  of which run() -> the first worker joined and asked for tasks "
            f"{st['worker_joined_s']:.3f} s; RunResult.first_result "
            f"{st['run_first_result_s']:.3f} s; after the last result, run() returns in "
            f"{st['teardown_s']:.3f} s",
        ]
        if "pool_first_result_s" in st:
            out.append(
                f"  Pool(2) created -> first result (median of all Pool runs): "
                f"{st['pool_first_result_s']:.3f} s"
            )
    return "\n".join(out)


def save(document: Raw, started: float) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(started))
    path = RESULTS_DIR / f"pipelines-{stamp}.json"
    suffix = 1
    while path.exists():
        suffix += 1
        path = RESULTS_DIR / f"pipelines-{stamp}-{suffix}.json"
    path.write_text(json.dumps(document, indent=2) + "\n")
    return path


def versions() -> dict[str, str]:
    import msgpack
    import zmq

    import zeropipe

    return {
        "zeropipe": getattr(zeropipe, "__version__", "?"),
        "pyzmq": zmq.__version__,
        "libzmq": zmq.zmq_version(),
        "msgpack": ".".join(map(str, msgpack.version)),
    }


# -- profiling --------------------------------------------------------------------------------

PROFILE_RATE = 250  # samples per second
# A sample whose innermost frame blocks (or sleeps) is "wait"; one with an import on its
# stack is "start-up"; any other is charged to the first category that matches its stack,
# from the innermost frame outwards (py-spy samples threads that block in C as well).
WAIT = re.compile(
    r"^(\S*\.)?("
    r"_PollSet\.wait \(zeropipe/|_wait \(zeropipe/transports/reactor|_poll \(zeropipe/transports/"
    r"|_watchdog \(zeropipe/|watch \(benchmarks/|_await_handshakes \(|poll \(zmq/"
    r"|_recv \(multiprocessing/|poll \(multiprocessing/popen|wait \((threading|multiprocessing|"
    r"selectors|subprocess)|select \(selectors|join \(threading)"
)
IMPORTS = re.compile(r"<frozen importlib")
CATEGORIES = [
    ("stage function", re.compile(r"^(square|cpu) \(benchmarks/pipeline_tasks\.py")),
    ("source and sink (the benchmark's)", re.compile(r"\(benchmarks/pipeline_tasks\.py")),
    (
        "encode/decode",
        re.compile(r"zeropipe/pipelines/(payload|protocol)\.py|pickle|reduction\.py|msgpack"),
    ),
    ("zeropipe sockets (incl. reactor thread)", re.compile(r"zeropipe/(?!pipelines/)")),
    ("pipeline head/worker logic", re.compile(r"zeropipe/pipelines/")),
    ("pyzmq / multiprocessing", re.compile(r"\(zmq/|multiprocessing/")),
    ("benchmark driver/worker loop", re.compile(r"\(benchmarks/")),
]


def profile(method: Method, quick: bool, n: int | None) -> Raw:
    """Runs ``method`` once under py-spy (all its processes) and sorts the samples by process
    role and category; prints and returns the breakdown."""
    spy = Path(sys.executable).parent / "py-spy"
    if not spy.exists():
        raise SystemExit("--profile needs py-spy (pip install py-spy) next to this Python")
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "profile.txt")
        wrap = [str(spy), "record", "--subprocesses", "--format", "raw", "-r", str(PROFILE_RATE)]
        wrap += ["-o", out, "--"]
        raw = run_one(method.spec(quick, n), wrap)
        if not raw["ok"]:
            raise SystemExit(f"{method.name}: {raw['error']}\n{raw.get('detail', '')}")
        text = Path(out).read_text()
    breakdown = _breakdown(text)
    print(f"\n== profile of {method.name} ({method.label}), N = {method.spec(quick, n)['n']}")
    tasks = method.spec(quick, n)["n"]
    print(f"   {_num(raw['metrics']['tasks_per_s'])} tasks/s under the profiler")
    print("   (share of the samples of all threads; us/task = their sampled time / N)")
    for role, data in breakdown.items():
        secs = data["samples"] / PROFILE_RATE
        print(f"  {role}: {data['samples']} samples ({secs:.2f} s of thread time)")
        for cat, count in data["categories"]:
            per_task = count / PROFILE_RATE / tasks * 1e6
            print(f"    {100 * count / data['samples']:5.1f}%  {per_task:8.2f} us/task  {cat}")
        print("    top functions (self):")
        for fn, count in data["top"]:
            per_task = count / PROFILE_RATE / tasks * 1e6
            print(f"    {100 * count / data['samples']:5.1f}%  {per_task:8.2f} us/task  {fn}")
    return {"method": method.name, "metrics": raw["metrics"], "breakdown": breakdown}


def _breakdown(text: str) -> Raw:
    cats: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    tops: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    for line in text.splitlines():
        if not line.strip():
            continue
        stack, count = line.rsplit(" ", 1)
        frames = stack.split(";")
        # the root process's frames, or a child's after its own "process N:..." frame
        procs = [i for i, f in enumerate(frames) if f.startswith("process ")]
        role = "head/driver process" if len(procs) <= 1 else "worker processes"
        frames = frames[procs[-1] + 1 :] if procs else frames
        frames = [_short(f) for f in frames]
        n = int(count)
        cats[role][_category(frames)] += n
        if frames:
            tops[role][frames[-1]] += n
    return {
        role: {
            "samples": sum(cats[role].values()),
            "categories": cats[role].most_common(),
            "top": tops[role].most_common(12),
        }
        for role in sorted(cats)
    }


def _short(frame: str) -> str:
    return re.sub(r"\((/[^():]*/)(site-packages/|main/|lib/python3\.\d+/)", "(", frame)


def _category(frames: list[str]) -> str:
    if not frames:
        return "no Python frame (native thread, or a stack py-spy could not read)"
    if WAIT.search(frames[-1]):
        return "wait (poll/select/recv/sleep)"
    if any(IMPORTS.search(frame) for frame in frames):
        return "start-up (imports)"
    for frame in reversed(frames):
        for name, pattern in CATEGORIES:
            if pattern.search(frame):
                return name
    return "other"


# -- command line -----------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.pipelines",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="smaller N, 1 round (< 1 min)")
    parser.add_argument("--rounds", type=int, help=f"rounds (default {DEFAULT_ROUNDS}, quick 1)")
    parser.add_argument("--only", type=re.compile, help="run the methods whose name matches")
    parser.add_argument(
        "--profile",
        metavar="NAMES",
        help="instead of the rounds, run these methods (comma-separated names, see --list) "
        "once each under py-spy and print where the time goes",
    )
    parser.add_argument("--n", type=int, help="N for every method run (default: each method's own)")
    parser.add_argument("--list", action="store_true", help="list the methods and exit")
    parser.add_argument("--measure", metavar="SPEC", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if (args.rounds is not None and args.rounds < 1) or (args.n is not None and args.n < 2):
        parser.error("--rounds must be positive, --n at least 2")
    if args.rounds is None:
        args.rounds = QUICK_ROUNDS if args.quick else DEFAULT_ROUNDS
    return args


def _child(spec_text: str) -> int:
    try:
        line: Raw = {"ok": True, "metrics": measure(json.loads(spec_text))}
    except Exception as exc:
        import traceback

        traceback.print_exc()
        line = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    print(PREFIX + json.dumps(line), flush=True)
    return 0 if line["ok"] else 1


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.measure is not None:
        return _child(args.measure)
    if args.list:
        for m in METHODS:
            print(f"{m.name:<27} {m.label}")
        return 0
    if args.profile:
        unknown = [n for n in args.profile.split(",") if n not in BY_NAME]
        if unknown:
            print(f"unknown methods {unknown}; see --list", file=sys.stderr)
            return 2
        for name in args.profile.split(","):
            profile(BY_NAME[name], args.quick, args.n)
        return 0
    methods = [m for m in METHODS if not args.only or args.only.search(m.name)]
    if not methods:
        print(f"no method matches {args.only.pattern!r}", file=sys.stderr)
        return 2
    started = time.time()
    print(f"{len(methods)} method(s) x {args.rounds} round(s)", flush=True)
    raws = run_rounds(methods, args)
    summary = summarize(methods, raws, args.quick, args.n)
    document = {
        "meta": {
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
            "duration_s": time.time() - started,
            "argv": sys.argv[1:],
            "rounds": args.rounds,
            "quick": args.quick,
            "versions": versions(),
            "python": sys.version,
            "platform": platform.platform(),
            "cpu_count": os.cpu_count(),
            "loadavg_at_end": os.getloadavg(),
        },
        "methods": [{**asdict(m), "spec": m.spec(args.quick, args.n)} for m in methods],
        "comparisons": [asdict(g) for g in COMPARISONS],
        "raw": raws,
        "summary": summary,
    }
    print()
    print(format_report(summary, args.rounds))
    path = save(document, started)
    print(f"\nresults: {path}  ({document['meta']['duration_s']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
