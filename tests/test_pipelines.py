"""End-to-end pipelines on real worker processes: results, sinks, stages, typed messages, the
checks made before anything starts, pipeline files, hooks, in-process runs, batches and credit.

The stage functions live in tests/pipeline_tasks.py, which the workers import by path."""

from __future__ import annotations

import json
import os
import re
import struct
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import msgpack
import pipeline_tasks as t
import pytest
import zmq as libzmq

import zeropipe as zmq
from zeropipe.pipelines import DeadLetter, Pipeline, PipelineError, RunResult, load
from zeropipe.pipelines.head import Head

N = 40


@pytest.fixture(autouse=True)
def tasks_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh directory for what the workers write, and fresh sink state."""
    monkeypatch.setenv(t.DIR_ENV, str(tmp_path))
    t.reset()
    yield tmp_path
    t.reset()


def squares(name: str, n: int = N, **options: Any) -> Pipeline:
    return Pipeline(name, **options).source(t.numbers, args=(n,))


def check_clean(result: RunResult, n: int = N) -> None:
    """Every task delivered, nothing failed."""
    assert result.ok, result.summary()
    assert result.tasks == n
    assert result.delivered == n
    assert result.dead_letters == []
    for stage in result.stages:
        assert stage.done == n, result.summary()
        assert stage.failures == 0, result.summary()
        assert stage.dead == 0, result.summary()
        assert stage.workers_joined >= 1


def log_lines(directory: Path) -> list[tuple[str, int, int]]:
    path = directory / "log"
    if not path.exists():
        return []
    lines = []
    for line in path.read_text().splitlines():
        what, pid, x = line.split()
        lines.append((what, int(pid), int(x)))
    return lines


# -- results ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("workers", "ordered"),
    [(1, True), (2, True), (2, False), (3, False), (4, True), (4, False)],
    ids=["1-ordered", "2-ordered", "2-unordered", "3-unordered", "4-ordered", "4-unordered"],
)
def test_results_with_workers(workers: int, ordered: bool) -> None:
    result = (
        squares(f"sq{workers}", ordered=ordered)
        .map(t.jittery_square, workers=workers, batch=2)
        .run(progress=False)
    )
    check_clean(result)
    assert result.stages[0].workers_joined <= workers
    expected = [x * x for x in range(N)]
    assert result.results is not None
    if ordered:
        assert result.results == expected
    else:
        assert Counter(result.results) == Counter(expected)


@pytest.mark.parametrize("codec", ["json", "bson"])
def test_values_codecs(codec: str | None) -> None:
    result = (
        Pipeline("codecs", codec=codec, ordered=True)
        .source(t.words, args=(N,))
        .map(t.length, workers=1)
        .run(progress=False)
    )
    check_clean(result)
    assert result.results == [len(f"w{i}") for i in range(N)]


def test_stream_sink_sees_every_result_in_order() -> None:
    result = (
        squares("stream-list", ordered=True)
        .map(t.jittery_square, workers=2, batch=3)
        .sink(t.as_list)
        .run(progress=False)
    )
    check_clean(result)
    assert result.value == [x * x for x in range(N)]
    assert result.results is None


def test_per_item_sink() -> None:
    result = squares("per-item").map(t.square, workers=1).sink(t.collect).run(progress=False)
    check_clean(result)
    assert Counter(t.SEEN) == Counter(x * x for x in range(N))
    assert result.value is None
    assert result.results is None


def test_no_sink_gives_results_and_summary() -> None:
    result = squares("no-sink", ordered=True).map(t.square, workers=1).run(progress=False)
    check_clean(result)
    assert result.results == [x * x for x in range(N)]
    summary = result.summary()
    assert f"pipeline no-sink: {N}/{N} results, 0 dead letters" in summary
    assert "stage square" in summary


def test_two_chained_stages() -> None:
    result = (
        squares("chain", ordered=True)
        .map(t.square, workers=2, batch=3)
        .map(t.describe, workers=1, batch=5)
        .run(progress=False)
    )
    check_clean(result)
    assert [s.name for s in result.stages] == ["square", "describe"]
    assert result.results == [f"n{x * x}" for x in range(N)]


def test_three_chained_stages_with_names() -> None:
    result = (
        squares("chain3")
        .map(t.square, workers=1, name="first")
        .map(t.add_one, workers=1)
        .map(t.add_one, workers=1)
        .sink(t.collect_ints)
        .run(progress=False)
    )
    check_clean(result)
    names = [s.name for s in result.stages]
    assert names[0] == "first"
    assert len(set(names)) == 3  # the second add_one gets a name of its own
    assert Counter(t.SEEN) == Counter(x * x + 2 for x in range(N))


# -- typed messages -----------------------------------------------------------------


@pytest.mark.parametrize("codec", [None, "json"])
def test_typed_messages_between_stages(codec: str | None) -> None:
    """int -> Point (a plain-value edge, then a message edge) -> Label."""
    result = (
        squares("typed", codec=codec, ordered=True)
        .map(t.make_point, workers=1)
        .map(t.label, workers=1)
        .sink(t.collect_labels)
        .run(progress=False)
    )
    check_clean(result)
    seen = list(t.SEEN)
    assert seen == [t.Label(x, f"({x}, {x * x})", [str(x), str(x * x)]) for x in range(N)]
    assert all(type(item) is t.Label for item in seen)


@pytest.mark.parametrize("codec", ["protobuf", "thrift-compact"])
def test_typed_messages_from_the_source(codec: str) -> None:
    result = (
        Pipeline("typed-src", codec=codec, ordered=True)
        .source(t.points, args=(N,))
        .map(t.label, workers=2)
        .sink(t.label_list)
        .run(progress=False)
    )
    check_clean(result)
    assert result.value == [t.Label(x, f"({x}, {-x})", [str(x), str(-x)]) for x in range(N)]


# -- checks before anything starts --------------------------------------------------


@pytest.fixture
def no_start(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Fails the test if a head starts (binds, reads its source, starts workers)."""
    started: list[str] = []

    def start(self: Any) -> None:
        started.append(self.plan.name)
        raise AssertionError("the head started")

    monkeypatch.setattr(Head, "start", start)
    return started


MISMATCHES = {
    "source-to-map": (
        lambda: Pipeline("mm").source(t.words, args=(3,)).map(t.square),
        ["words", "square", "str", "int"],
    ),
    "map-to-map": (
        lambda: Pipeline("mm").source(t.numbers, args=(3,)).map(t.describe).map(t.square),
        ["describe", "square", "str", "int"],
    ),
    "map-to-sink": (
        lambda: Pipeline("mm").source(t.numbers, args=(3,)).map(t.describe).sink(t.collect_ints),
        ["describe", "collect_ints", "str", "int"],
    ),
    "map-to-stream-sink": (
        lambda: Pipeline("mm").source(t.numbers, args=(3,)).map(t.describe).sink(t.total),
        ["describe", "total", "str", "int"],
    ),
    "message-to-int": (
        lambda: Pipeline("mm").source(t.points, args=(3,)).map(t.square),
        ["points", "square", "pipetest.Point", "int"],
    ),
    "int-to-message": (
        lambda: Pipeline("mm").source(t.numbers, args=(3,)).map(t.label),
        ["numbers", "label", "pipetest.Point", "int"],
    ),
    "message-to-message": (
        lambda: Pipeline("mm").source(t.points, args=(3,)).map(t.label).map(t.label),
        ["label", "pipetest.Point", "pipetest.Label"],
    ),
}


@pytest.mark.parametrize("case", list(MISMATCHES))
def test_type_mismatch_names_both_sides(case: str, no_start: list[str]) -> None:
    build, names = MISMATCHES[case]
    with pytest.raises(PipelineError) as info:
        build().run(progress=False)
    message = str(info.value)
    for name in names:
        assert name in message, message
    assert no_start == []


def test_compatible_types_pass() -> None:
    """int where float is taken, a typed stage after an untyped one, a stream sink."""
    plan = (
        Pipeline("ok")
        .source(t.numbers, args=(3,))
        .map(t.half)
        .map(t.untyped)
        .map(t.square)
        .sink(t.total)
        .validate()
    )
    assert [s.name for s in plan.stages] == ["half", "untyped", "square"]
    assert plan.sink_stream


def nested_stage_factory() -> Any:
    def nested(x: int) -> int:
        return x

    return nested


REFUSED = {
    "lambda-map": (lambda: squares("bad").map(lambda x: x), "lambda"),
    "nested-map": (lambda: squares("bad").map(nested_stage_factory()), "nested"),
    "lambda-init": (lambda: squares("bad").map(t.square, init=lambda: None), "lambda"),
    "lambda-close": (lambda: squares("bad").map(t.square, close=lambda: None), "lambda"),
    "two-args": (lambda: squares("bad").map(t.takes_two), "takes_two"),
    "source-not-iterable": (
        lambda: Pipeline("bad").source(t.not_iterable, args=(3,)).map(t.square),
        "iterable",
    ),
    "source-arity": (lambda: Pipeline("bad").source(t.numbers).map(t.square), "numbers"),
    "not-callable": (lambda: squares("bad").map(42), "not callable"),
    "no-source": (lambda: Pipeline("bad").map(t.square), "no source"),
    "no-stage": (lambda: squares("bad"), "no map stage"),
    "zero-attempts": (lambda: squares("bad").map(t.square, max_attempts=0), "max_attempts"),
    "bad-batch": (lambda: squares("bad").map(t.square, batch="big"), "batch"),
    "zero-batch": (lambda: squares("bad").map(t.square, batch=0), "batch"),
    "bad-credit": (lambda: squares("bad").map(t.square, credit=0), "credit"),
    "bad-timeout": (lambda: squares("bad").map(t.square, timeout=-1), "timeout"),
    "bad-workers": (lambda: squares("bad").map(t.square, workers=-1), "workers"),
}


@pytest.mark.parametrize("case", list(REFUSED))
def test_refused_declarations(case: str, no_start: list[str]) -> None:
    build, fragment = REFUSED[case]
    with pytest.raises(PipelineError, match=fragment):
        build().run(progress=False)
    assert no_start == []


def test_bad_pipeline_name() -> None:
    with pytest.raises(PipelineError, match="name"):
        Pipeline("no spaces allowed")


CODEC_ERRORS = {
    "unknown-codec-values": (
        lambda: squares("c", codec="nope").map(t.square),
        ["nope", "unknown"],
    ),
    "unknown-codec-messages": (
        lambda: Pipeline("c", codec="nope").source(t.points, args=(3,)).map(t.label),
        ["nope", "unknown"],
    ),
    "protobuf-plain-values": (
        lambda: squares("c", codec="protobuf").map(t.square),
        ["protobuf", "plain value"],
    ),
    "thrift-plain-values": (
        lambda: squares("c", codec="thrift-binary").map(t.square),
        ["thrift-binary", "plain value"],
    ),
    "json-bytes": (lambda: squares("c", codec="json").map(t.to_bytes), ["json", "bytes"]),
}


@pytest.mark.parametrize("case", list(CODEC_ERRORS))
def test_codec_errors(case: str, no_start: list[str]) -> None:
    build, fragments = CODEC_ERRORS[case]
    with pytest.raises(PipelineError) as info:
        build().run(progress=False)
    for fragment in fragments:
        assert fragment in str(info.value).lower(), str(info.value)
    assert no_start == []


@pytest.mark.parametrize(
    "bind",
    [
        "",
        "127.0.0.1:5555",
        "tcp://127.0.0.1",
        "udp://127.0.0.1:5555",
        "tcp://127.0.0.1:70000",
        "tcp://127.0.0.1:0x10",
        "inproc://head",
    ],
)
def test_bad_endpoint(bind: str, no_start: list[str]) -> None:
    with pytest.raises(PipelineError, match=r"endpoint|port"):
        squares("ep", bind=bind).map(t.square).run(progress=False)
    assert no_start == []


def test_endpoint_in_use() -> None:
    ctx = zmq.Context()
    holder = ctx.socket(zmq.ROUTER)
    holder.setsockopt(zmq.LINGER, 0)
    try:
        holder.bind("tcp://127.0.0.1:*")
        taken = holder.getsockopt_string(zmq.LAST_ENDPOINT)
        with pytest.raises(PipelineError, match="cannot bind"):
            squares("in-use", bind=taken).map(t.square, workers=1).run(progress=False)
    finally:
        holder.close(0)
        ctx.term()


def test_tcp_endpoint() -> None:
    endpoints: list[str] = []
    result = (
        squares("tcp", bind="tcp://127.0.0.1:*", ordered=True)
        .map(t.square, workers=2)
        .run(progress=False, on_start=endpoints.append)
    )
    check_clean(result)
    assert result.results == [x * x for x in range(N)]
    assert len(endpoints) == 1
    assert endpoints[0].startswith("tcp://127.0.0.1:")
    assert not endpoints[0].endswith(":*")


# -- pipeline files -----------------------------------------------------------------

GOOD_TOML = """
[pipeline]
name = "toml-squares"
ordered = true
heartbeat = 0.2

[source]
fn = "pipeline_tasks:numbers"
args = [25]

[[map]]
fn = "pipeline_tasks:square"
workers = 2
batch = 3

[[map]]
name = "plus"
fn = "pipeline_tasks:add_one"
workers = 1
max_attempts = 2

[sink]
fn = "pipeline_tasks:as_list"

[dead_letter]
fn = "pipeline_tasks:on_dead"
"""


def test_pipeline_file_runs(tmp_path: Path) -> None:
    path = tmp_path / "squares.toml"
    path.write_text(GOOD_TOML)
    result = load(str(path)).run(progress=False)
    check_clean(result, 25)
    assert result.name == "toml-squares"
    assert [s.name for s in result.stages] == ["square", "plus"]
    assert result.value == [x * x + 1 for x in range(25)]
    assert t.DEAD == []


def test_pipeline_file_with_a_module_beside_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A module next to the file is importable by the head and by its workers."""
    monkeypatch.setattr(sys, "path", list(sys.path))  # load() adds the file's directory
    folder = tmp_path / "job"
    folder.mkdir()
    (folder / "beside_toml_job.py").write_text(
        "from collections.abc import Iterator\n"
        "def evens(n: int) -> Iterator[int]:\n"
        "    return iter(range(0, 2 * n, 2))\n"
        "def halve(x: int) -> int:\n"
        "    return x // 2\n"
    )
    (folder / "job.toml").write_text(
        '[pipeline]\nname = "beside"\nordered = true\n'
        '[source]\nfn = "beside_toml_job:evens"\nargs = [10]\n'
        '[[map]]\nfn = "beside_toml_job:halve"\nworkers = 1\n'
    )
    try:
        result = load(str(folder / "job.toml")).run(progress=False)
    finally:
        sys.modules.pop("beside_toml_job", None)
    check_clean(result, 10)
    assert result.results == list(range(10))


BAD_FILES = {
    "unknown-pipeline-key": (
        GOOD_TOML.replace("ordered = true", 'ordered = true\ncolour = "red"'),
        "unknown key colour",
    ),
    "unknown-map-key": (GOOD_TOML.replace("batch = 3", "batches = 3"), "unknown key batches"),
    "unknown-top-table": (GOOD_TOML + '\n[extra]\nfn = "x:y"\n', "unknown key extra"),
    "unknown-source-key": (GOOD_TOML.replace("args = [25]", "argv = [25]"), "unknown key argv"),
    "missing-fn": (GOOD_TOML.replace('fn = "pipeline_tasks:square"\n', ""), "needs fn"),
    "missing-sink-fn": (
        GOOD_TOML.replace('fn = "pipeline_tasks:as_list"', ""),
        r"\[sink\]: needs fn",
    ),
    "fn-not-a-string": (
        GOOD_TOML.replace('fn = "pipeline_tasks:square"', "fn = 3"),
        "needs fn",
    ),
    "no-colon": (
        GOOD_TOML.replace('"pipeline_tasks:square"', '"pipeline_tasks.square"'),
        "not an import path",
    ),
    "no-such-function": (
        GOOD_TOML.replace('"pipeline_tasks:square"', '"pipeline_tasks:cube"'),
        "pipeline_tasks has no cube",
    ),
    "no-such-module": (
        GOOD_TOML.replace('"pipeline_tasks:square"', '"no_such_module_zp:square"'),
        "cannot import no_such_module_zp",
    ),
    "no-such-script": (
        GOOD_TOML.replace('"pipeline_tasks:square"', '"/nonexistent/job.py:square"'),
        "no such script",
    ),
    "invalid-toml": (GOOD_TOML.replace("[source]", "[source"), "not valid TOML"),
    "missing-source": (
        GOOD_TOML.replace('[source]\nfn = "pipeline_tasks:numbers"\nargs = [25]\n', ""),
        r"needs a \[source\] table",
    ),
    "missing-map": (
        GOOD_TOML.split("[[map]]")[0] + '[sink]\nfn = "pipeline_tasks:as_list"\n',
        r"at least one \[\[map\]\]",
    ),
    "missing-name": (GOOD_TOML.replace('name = "toml-squares"\n', ""), "needs a name"),
    "bad-workers": (GOOD_TOML.replace("workers = 2", 'workers = "two"'), "workers"),
    "bad-type-chain": (
        GOOD_TOML.replace('"pipeline_tasks:add_one"', '"pipeline_tasks:length"'),
        "length",
    ),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_bad_pipeline_files(case: str, tmp_path: Path, no_start: list[str]) -> None:
    text, fragment = BAD_FILES[case]
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(PipelineError, match=fragment):
        load(str(path)).run(progress=False)
    assert no_start == []


def test_missing_pipeline_file(tmp_path: Path) -> None:
    with pytest.raises(PipelineError, match="cannot read"):
        load(str(tmp_path / "absent.toml"))


def test_file_errors_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "named.toml"
    path.write_text(GOOD_TOML.replace("batch = 3", "batches = 3"))
    with pytest.raises(PipelineError, match=re.escape(str(path))):
        load(str(path))


# -- hooks --------------------------------------------------------------------------


def test_init_and_close_run_once_per_worker(tasks_dir: Path) -> None:
    result = (
        squares("hooks", n=60)
        .map(
            t.logged_square,
            workers=3,
            batch=1,
            init=t.init_hook,
            close="pipeline_tasks:close_hook",
        )
        .run(progress=False)
    )
    check_clean(result, 60)
    lines = log_lines(tasks_dir)
    by_pid: dict[int, list[str]] = {}
    for what, pid, _ in lines:
        by_pid.setdefault(pid, []).append(what)
    inits = [pid for what, pid, _ in lines if what == "init"]
    assert len(inits) == len(set(inits)) == result.stages[0].workers_joined
    assert set(by_pid) == set(inits), "a process ran tasks without its init hook"
    for pid, events in by_pid.items():
        assert events[0] == "init", (pid, events)
        assert events[-1] == "close", (pid, events)
        assert events.count("init") == events.count("close") == 1, (pid, events)
    ran = Counter(x for what, _, x in lines if what == "task")
    assert set(ran) == set(range(60))


def test_hooks_in_process(tasks_dir: Path) -> None:
    result = (
        squares("hooks-inline", n=5)
        .map(t.logged_square, init=t.init_hook, close=t.close_hook)
        .run(inprocess=True)
    )
    assert result.results == [x * x for x in range(5)]
    events = [what for what, pid, _ in log_lines(tasks_dir) if pid == os.getpid()]
    assert events == ["init", *["task"] * 5, "close"]


# -- in-process runs ----------------------------------------------------------------


def flaky_pipeline(name: str) -> Pipeline:
    return (
        squares(name, n=30, ordered=True)
        .map(t.flaky, workers=2, max_attempts=2, batch=4)
        .map(t.add_one, workers=1)
        .dead_letter(t.on_dead)
    )


def letter_key(d: Any) -> tuple[int, str, Any, int, str]:
    return (d.id, d.stage, d.task, d.attempts, d.error)


def test_inprocess_matches_processes() -> None:
    inline = flaky_pipeline("inline").run(inprocess=True)
    inline_dead = list(t.DEAD)
    t.reset()
    real = flaky_pipeline("real").run(progress=False)
    real_dead = list(t.DEAD)

    expected_dead = [x for x in range(30) if x % 7 == 3]
    for result, handled in ((inline, inline_dead), (real, real_dead)):
        assert not result.ok
        assert result.tasks == 30
        assert result.delivered == 30 - len(expected_dead)
        assert result.results == [x * 10 + 1 for x in range(30) if x not in expected_dead]
        assert sorted(d.id for d in result.dead_letters) == expected_dead
        for d in result.dead_letters:
            assert isinstance(d, DeadLetter)
            assert d.stage == "flaky"
            assert d.task == d.id
            assert d.attempts == 2
            assert d.error == f"ValueError: no luck with {d.id}"
            assert "Traceback" in d.traceback
            assert "no luck" in d.traceback
        assert [letter_key(d) for d in handled] == [letter_key(d) for d in result.dead_letters]
        flaky, plus = result.stages
        assert flaky.dead == len(expected_dead)
        assert flaky.failures == 2 * len(expected_dead)
        assert flaky.done == plus.done == 30 - len(expected_dead)
    assert sorted(map(letter_key, inline.dead_letters)) == sorted(
        map(letter_key, real.dead_letters)
    )


def test_inprocess_typed_messages() -> None:
    result = (
        Pipeline("inline-typed", codec="json")
        .source(t.points, args=(5,))
        .map(t.label)
        .sink(t.label_list)
        .run(inprocess=True)
    )
    assert result.value == [t.Label(x, f"({x}, {-x})", [str(x), str(-x)]) for x in range(5)]


def test_inprocess_codec_failures_match_processes() -> None:
    """A result its edge's codec cannot carry is a failed attempt in both modes."""
    letters = []
    for inprocess in (True, False):
        result = (
            squares(f"uncarried-{inprocess}", n=12)
            .map(t.set_for_five, workers=1, max_attempts=2)
            .run(inprocess=inprocess, progress=False)
        )
        assert Counter(result.results or []) == Counter(x for x in range(12) if x != 5)
        assert [(d.id, d.task, d.attempts) for d in result.dead_letters] == [(5, 5, 2)]
        letters.append(result.dead_letters[0].error)
    for error in letters:
        assert "cannot" in error, letters
        assert "result" in error, letters


# -- batches and credit -------------------------------------------------------------


@pytest.mark.parametrize(
    ("batch", "credit"), [(1, None), (5, None), (3, 2), (4, 9), ("auto", 1), (100, None)]
)
def test_batch_and_credit_results(batch: int | str, credit: int | None) -> None:
    result = (
        squares(f"bc{batch}-{credit}", n=50, ordered=True)
        .map(t.square, workers=2, batch=batch, credit=credit)
        .run(progress=False)
    )
    check_clean(result, 50)
    assert result.results == [x * x for x in range(50)]


class FakeWorker:
    """A worker on pyzmq speaking the pipeline protocol, recording every TASKS it gets.

    It holds the tasks it gets until it holds ``limit`` of them (then watches a moment for
    tasks beyond it) or nothing more comes, and then answers the oldest batch; ``max_held``
    is the most task ids it held unanswered at once."""

    FULL_MS = 20  # how long a full worker watches for tasks beyond its credit
    QUIET_MS = 300  # how long a worker with room waits for more before answering
    TASK_NS = 20_000_000  # the time per task it reports: slow tasks, so credit is two batches

    def __init__(self, endpoint: str, limit: int) -> None:
        self.endpoint = endpoint
        self.limit = limit
        self.batches: list[list[int]] = []
        self.max_held = 0
        self.ready: dict[str, Any] = {}
        self.errors: list[BaseException] = []
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def join(self) -> None:
        self.thread.join(20)
        assert not self.thread.is_alive(), "the fake worker never got END"
        if self.errors:
            raise self.errors[0]

    def _run(self) -> None:
        try:
            self._serve()
        except BaseException as exc:
            self.errors.append(exc)

    def _serve(self) -> None:
        ctx = libzmq.Context()
        sock = ctx.socket(libzmq.DEALER)
        sock.setsockopt(libzmq.LINGER, 0)
        sock.setsockopt(libzmq.RCVTIMEO, 10000)
        sock.setsockopt(libzmq.SNDTIMEO, 5000)
        try:
            sock.connect(self.endpoint)
            hello = {"protocol": 1, "pipeline": "", "stage": "", "schemas": {}, "credit": 1 << 16}
            hello.update(token="", worker="fake")
            sock.send_multipart([b"HELLO", json.dumps(hello).encode()])
            command, body = sock.recv_multipart()
            assert command == b"READY", (command, body)
            self.ready = json.loads(body)
            assert self.ready["in"]["layout"] == "values"
            held: list[tuple[bytes, list[int], list[Any]]] = []
            while True:
                count = sum(len(h[1]) for h in held)
                wait = self.FULL_MS if count >= self.limit else self.QUIET_MS
                if held and not sock.poll(wait):
                    id_frame, ids, items = held.pop(0)
                    payload = msgpack.packb([x * x for x in items])
                    busy = struct.pack("<Q", len(ids) * self.TASK_NS)
                    sock.send_multipart([b"RESULTS", id_frame, busy, payload])
                    continue
                frames = sock.recv_multipart()
                if frames[0] == b"END":
                    return
                if frames[0] != b"TASKS":
                    continue
                id_frame, payload = frames[1], frames[2:]
                ids = list(struct.unpack(f"<{len(id_frame) // 8}Q", id_frame))
                items = msgpack.unpackb(payload[0])
                assert len(items) == len(ids)
                self.batches.append(ids)
                held.append((id_frame, ids, items))
                self.max_held = max(self.max_held, sum(len(h[1]) for h in held))
        finally:
            sock.close(0)
            ctx.term()


@pytest.mark.parametrize(("batch", "credit"), [(4, None), (4, 6), (1, 3)])
def test_batch_size_and_credit_on_the_wire(batch: int, credit: int | None) -> None:
    """The head sends batches of exactly ``batch`` tasks (a slow source is not a concern
    here: the linger is long) and never more than ``credit`` (default, for tasks as slow as
    the fake worker reports: two batches)."""
    fakes: list[FakeWorker] = []
    n = 41
    limit = credit if credit is not None else 2 * batch
    result = (
        squares("wire", n=n, ordered=True, linger=10.0)
        .map(t.square, workers=0, batch=batch, credit=credit)
        .run(
            progress=False,
            local_workers=False,
            on_start=lambda ep: fakes.append(FakeWorker(ep, limit)),
        )
    )
    fakes[0].join()
    check_clean(result, n)
    assert result.results == [x * x for x in range(n)]
    fake = fakes[0]
    assert fake.max_held == limit
    sizes = [len(ids) for ids in fake.batches]
    assert all(size <= batch for size in sizes), sizes
    if limit % batch == 0:
        assert all(size == batch for size in sizes[:-1]), sizes
    assert sorted(i for ids in fake.batches for i in ids) == list(range(n))
    assert fake.ready["stage"] == "square"
    assert fake.ready["fn"] == "pipeline_tasks:square"


def test_ordered_without_acks_is_refused() -> None:
    pipe = Pipeline("unordered-acks", ordered=True, acks=False).source(t.numbers, args=(3,))
    with pytest.raises(PipelineError, match="ordered=True needs acks"):
        pipe.map(t.square).validate()


def test_without_acks_a_failure_is_a_dead_letter_at_once() -> None:
    result = (
        Pipeline("no-acks", acks=False)
        .source(t.numbers, args=(6,))
        .map(t.fail_on_three, workers=1, max_attempts=3)
        .run(progress=False)
    )
    assert sorted(result.results or []) == [0, 1, 4, 16, 25]
    assert [(d.id, d.attempts) for d in result.dead_letters] == [(3, 1)]


def test_min_workers_holds_the_tasks_until_enough_workers_joined(tasks_dir: Path) -> None:
    late: list[subprocess.Popen[bytes]] = []
    early: list[tuple[str, int, int]] = []

    def second_worker(endpoint: str) -> None:
        def start() -> None:
            # one local worker is in (or about to be): no task may start until the second
            time.sleep(0.5)
            early.extend(x for x in log_lines(tasks_dir) if x[0] == "task")
            late.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "zeropipe.pipelines.worker",
                        "--connect",
                        endpoint,
                        "--path",
                        os.pathsep.join(sys.path),
                        "--join-timeout",
                        "30",
                    ]
                )
            )

        threading.Thread(target=start, daemon=True).start()

    try:
        result = (
            squares("min-workers", n=30)
            .map(t.logged_square, workers=1, batch=1, min_workers=2)
            .run(progress=False, on_start=second_worker)
        )
    finally:
        for proc in late:
            proc.wait(timeout=20)
    check_clean(result, 30)
    assert result.stages[0].workers_joined == 2
    assert early == []  # nothing ran while one worker was in
    assert late
    assert late[0].returncode == 0


def test_results_that_do_not_encode_fail_alone_in_their_batch() -> None:
    result = (
        Pipeline("too-big")
        .source(t.numbers, args=(200,))
        .map(t.too_big_on_odd, workers=1, batch=50, max_attempts=1)
        .run(progress=False)
    )
    assert sorted(result.results or []) == list(range(0, 200, 2))
    assert sorted(d.id for d in result.dead_letters) == list(range(1, 200, 2))
    assert all("cannot encode the result" in d.error for d in result.dead_letters)
