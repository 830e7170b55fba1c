"""A pipeline worker written from docs/pipeline-protocol.md alone, against zeropipe's head.

The worker below (``ForeignWorker``) uses only what a worker in another language would have:
a ZeroMQ library (pyzmq, i.e. libzmq), msgpack / json / bson, struct, and protobuf classes
built from schemas/*.proto by protoc. It imports nothing from zeropipe and computes its own
results; the pipeline's declared functions (tests/foreign_tasks.py) are never called by it.
The head runs in a thread with ``run(local_workers=False, on_start=...)`` and no local
workers, so only foreign workers serve.
"""

from __future__ import annotations

import json
import struct
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import foreign_tasks
import msgpack
import pytest
import zmq

from zeropipe.pipelines import Pipeline, RunResult

# -- the foreign worker: pyzmq, msgpack, bson, json, struct, protobuf; nothing from zeropipe ----

PROTOCOL = 1
JOIN_WAIT_S = 3.0  # wait this long for READY or REFUSE before saying HELLO again
HELLO_ATTEMPTS = 3
LIFETIME_S = 30.0  # hang guard: a worker gives up (and records an error) after this long
IO_TIMEOUT_MS = 5000


def pack_ids(ids: list[int]) -> bytes:
    return struct.pack(f"<{len(ids)}Q", *ids)


def unpack_ids(frame: bytes) -> list[int]:
    if not frame or len(frame) % 8:
        raise ValueError(f"an id frame of {len(frame)} bytes")
    return list(struct.unpack(f"<{len(frame) // 8}Q", frame))


def control(command: bytes, body: dict[str, Any]) -> list[bytes]:
    return [command, json.dumps(body).encode()]


def body_of(frames: list[bytes]) -> dict[str, Any]:
    if len(frames) != 2:
        raise ValueError(f"{frames[0]!r} with {len(frames) - 1} body frames")
    body = json.loads(frames[1])
    if not isinstance(body, dict):
        raise ValueError(f"{frames[0]!r}: the body is not a JSON object")
    return body


def _bson_dumps(values: list[Any]) -> bytes:
    import bson  # pymongo's

    return bson.encode({"v": values})


def _bson_loads(data: bytes) -> Any:
    import bson

    return bson.decode(data)["v"]


#: The `values` layout: one frame holding the whole batch as one array.
VALUE_CODECS: dict[str, tuple[Callable[[list[Any]], bytes], Callable[[bytes], Any]]] = {
    "msgpack": (
        lambda values: msgpack.packb(values, use_bin_type=True),
        lambda data: msgpack.unpackb(data, raw=False),
    ),
    "json": (lambda values: json.dumps(values).encode(), json.loads),
    "bson": (_bson_dumps, _bson_loads),
}


class Mismatch(Exception):
    """READY describes a stage this worker does not implement."""


class Stopped(Exception):
    """The test stopped the worker (at teardown)."""


class ForeignWorker:
    """One worker (one DEALER) in a thread: HELLO, READY, then TASKS answered by RESULTS or
    FAILED, heartbeats both ways, until END (or REFUSE without rejoin).

    ``compute(task) -> result`` runs per task; an exception fails that task. ``classes`` maps
    message full names to protobuf classes, for edges in the `messages` layout. ``expect``
    holds what READY must say (stage, schema, edge members); anything else makes it leave.

    Scenario switches: ``split`` answers each task in its own message, last id first;
    ``hold(worker)`` returning True keeps the oldest batch unanswered (the worker still
    heartbeats unless ``silent_while_holding``); ``corrupt_first_answer`` answers with ids it
    was never sent; ``leave_after_first_batch`` says BYE on its first TASKS; ``start_after``
    delays connecting until that event is set. Every wait is bounded by LIFETIME_S and by
    ``stop``."""

    def __init__(
        self,
        endpoint: str,
        compute: Callable[[Any], Any],
        *,
        name: str = "foreign",
        pipeline: str = "",
        stage: str = "",
        schemas: Any = None,
        credit: int = 64,
        protocol: int = PROTOCOL,
        expect: dict[str, Any] | None = None,
        classes: dict[str, Any] | None = None,
        split: bool = False,
        hold: Callable[[ForeignWorker], bool] | None = None,
        silent_while_holding: bool = False,
        corrupt_first_answer: bool = False,
        leave_after_first_batch: bool = False,
        start_after: threading.Event | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.compute = compute
        self.name = name
        self.pipeline = pipeline
        self.stage = stage
        self.schemas = schemas
        self.credit = credit
        self.protocol = protocol
        self.expect = expect or {}
        self.classes = classes or {}
        self.split = split
        self.hold = hold
        self.silent_while_holding = silent_while_holding
        self.corrupt_first_answer = corrupt_first_answer
        self.leave_after_first_batch = leave_after_first_batch
        self.start_after = start_after
        # what happened, for the test to check
        self.readies: list[dict[str, Any]] = []
        self.refusals: list[dict[str, Any]] = []
        self.ends: list[dict[str, Any]] = []
        self.batches: list[list[int]] = []
        self.answered = 0
        self.head_beats = 0
        self.max_held = 0
        self.lost_head = 0
        self.mismatch: str | None = None
        self.error: BaseException | None = None
        self.got_tasks = threading.Event()
        self.refused = threading.Event()
        self.finished = threading.Event()
        self.stop = threading.Event()
        self._deadline = 0.0
        self._ctx: Any = None
        self._sock: Any = None
        self._thread = threading.Thread(target=self._main, name=f"foreign-{name}", daemon=True)

    def start(self) -> ForeignWorker:
        self._thread.start()
        return self

    def join(self, timeout: float = 10.0) -> None:
        self._thread.join(timeout)
        if self._thread.is_alive():
            self.stop.set()
            self._thread.join(timeout)
            raise AssertionError(f"worker {self.name} still running after {timeout} s")

    # -- life cycle ---------------------------------------------------------------------

    def _main(self) -> None:
        self._ctx = zmq.Context()
        try:
            self._deadline = time.monotonic() + LIFETIME_S
            if self.start_after is not None:
                self._wait(self.start_after)
            self._connect()
            while (ready := self._join()) is not None:
                if not self._serve(ready):
                    break
                self._reconnect()  # a new session goes on a new connection
        except BaseException as exc:
            self.error = exc
        finally:
            if self._sock is not None:
                self._sock.close(linger=1000)  # bounded: lets a last BYE or answer go out
            self._ctx.term()
            self.finished.set()

    def _connect(self) -> None:
        sock = self._ctx.socket(zmq.DEALER)
        self._sock = sock
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.RCVTIMEO, IO_TIMEOUT_MS)
        sock.setsockopt(zmq.SNDTIMEO, IO_TIMEOUT_MS)
        sock.setsockopt(zmq.SNDHWM, 0)
        sock.setsockopt(zmq.RCVHWM, 0)
        # no IMMEDIATE: with it, libzmq drops unread messages (END) of a closed connection
        sock.connect(self.endpoint)

    def _reconnect(self) -> None:
        """Drops this connection and whatever of its session is still queued on it."""
        self._sock.close(linger=0)
        self._sock = None
        self._connect()

    def _alive(self) -> None:
        if self.stop.is_set():
            raise Stopped(self.name)
        if time.monotonic() > self._deadline:
            raise TimeoutError(f"worker {self.name}: still running after {LIFETIME_S} s")

    def _wait(self, event: threading.Event) -> None:
        while not event.wait(0.05):
            self._alive()

    def _send(self, frames: list[bytes]) -> None:
        self._sock.send_multipart(frames)

    def _recv(self, until: float) -> list[bytes] | None:
        """The next message, or None once ``until`` passes."""
        while (left := until - time.monotonic()) > 0:
            self._alive()
            if self._sock.poll(max(1, int(min(left, 0.05) * 1000))):
                frames: list[bytes] = self._sock.recv_multipart()
                return frames
        return None

    # -- joining ------------------------------------------------------------------------

    def _join(self) -> dict[str, Any] | None:
        """READY's body, or None when refused for good or ended."""
        hello: dict[str, Any] = {
            "protocol": self.protocol,
            "pipeline": self.pipeline,
            "stage": self.stage,
            "credit": self.credit,
            "worker": self.name,
        }
        if self.schemas is not None:
            hello["schemas"] = self.schemas
        for attempt in range(HELLO_ATTEMPTS):
            if attempt:  # one HELLO per connection
                self._reconnect()
            self._send(control(b"HELLO", hello))
            until = time.monotonic() + JOIN_WAIT_S
            while (frames := self._recv(until)) is not None:
                if frames[0] == b"READY":
                    ready = body_of(frames)
                    self.readies.append(ready)
                    return ready
                if frames[0] == b"REFUSE":
                    refusal = body_of(frames)
                    self.refusals.append(refusal)
                    self.refused.set()
                    if refusal.get("rejoin") is True:
                        break
                    return None
                if frames[0] == b"END":
                    self.ends.append(body_of(frames))
                    return None
                # TASKS or HEARTBEAT of an earlier session: ignored
        raise TimeoutError(f"worker {self.name}: no READY after {HELLO_ATTEMPTS} HELLOs")

    def _check(self, ready: dict[str, Any]) -> None:
        if ready.get("protocol") != PROTOCOL:
            raise Mismatch(f"protocol {ready.get('protocol')!r}")
        for key in ("stage", "schema"):
            if key in self.expect and ready.get(key) != self.expect[key]:
                raise Mismatch(f"{key} {ready.get(key)!r}, expected {self.expect[key]!r}")
        for side in ("in", "out"):
            edge = ready[side]
            for key, value in self.expect.get(side, {}).items():
                if edge.get(key) != value:
                    raise Mismatch(f"{side}.{key} {edge.get(key)!r}, expected {value!r}")
            if edge["layout"] == "values" and edge["codec"] not in VALUE_CODECS:
                raise Mismatch(f"{side}: no values codec {edge['codec']!r} here")
            if edge["layout"] == "messages" and (
                edge["codec"] != "protobuf" or edge["type"] not in self.classes
            ):
                raise Mismatch(f"{side}: cannot carry {edge['type']} in {edge['codec']}")

    def _decoder(self, edge: dict[str, Any]) -> Callable[[list[bytes], int], list[Any]]:
        if edge["layout"] == "values":
            loads = VALUE_CODECS[edge["codec"]][1]

            def values(payload: list[bytes], n: int) -> list[Any]:
                if len(payload) != 1:
                    raise ValueError(f"{len(payload)} frames of values")
                items = loads(payload[0])
                if not isinstance(items, list) or len(items) != n:
                    raise ValueError(f"not an array of {n} values")
                return items

            return values
        cls = self.classes[edge["type"]]

        def messages(payload: list[bytes], n: int) -> list[Any]:
            if len(payload) != n:
                raise ValueError(f"{len(payload)} message frames for {n} ids")
            return [cls.FromString(frame) for frame in payload]

        return messages

    def _encoder(self, edge: dict[str, Any]) -> Callable[[list[Any]], list[bytes]]:
        if edge["layout"] == "values":
            dumps = VALUE_CODECS[edge["codec"]][0]
            return lambda items: [dumps(items)]
        return lambda items: [m.SerializeToString() for m in items]

    # -- working ------------------------------------------------------------------------

    def _serve(self, ready: dict[str, Any]) -> bool:
        """Works one session; True to say HELLO again, False to stop."""
        try:
            self._check(ready)
        except Mismatch as exc:
            self.mismatch = str(exc)
            self._send(control(b"BYE", {"reason": "refused", "error": str(exc)}))
            return False
        beat = float(ready["heartbeat"])
        beat_timeout = float(ready["heartbeat_timeout"])
        decode, encode = self._decoder(ready["in"]), self._encoder(ready["out"])
        queue: deque[tuple[list[int], list[bytes]]] = deque()
        held = 0
        last_sent = 0.0
        last_heard = time.monotonic()
        while True:
            self._alive()
            holding = bool(queue) and self.hold is not None and self.hold(self)
            now = time.monotonic()
            if now - last_sent >= beat and not (holding and self.silent_while_holding):
                try:  # a heartbeat that cannot be queued now is not worth waiting for
                    self._sock.send(b"HEARTBEAT", zmq.NOBLOCK)
                except zmq.Again:
                    pass
                last_sent = now
            wait_ms = 0 if queue and not holding else max(1, int(min(beat, 0.05) * 1000))
            if self._sock.poll(wait_ms):
                while True:
                    try:
                        frames = self._sock.recv_multipart(zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    last_heard = time.monotonic()
                    command = frames[0]
                    if command == b"TASKS":
                        ids = unpack_ids(frames[1])
                        queue.append((ids, frames[2:]))
                        self.batches.append(ids)
                        held += len(ids)
                        self.max_held = max(self.max_held, held)
                        self.got_tasks.set()
                        if self.leave_after_first_batch:
                            self._send(control(b"BYE", {"reason": "leaving"}))
                            return False
                    elif command == b"HEARTBEAT":
                        self.head_beats += 1
                    elif command == b"END":
                        self.ends.append(body_of(frames))
                        return False
                    elif command == b"REFUSE":
                        refusal = body_of(frames)
                        self.refusals.append(refusal)
                        self.refused.set()
                        return refusal.get("rejoin") is True  # what we held is dropped
                    # any other command: ignored (a later protocol version's)
            elif time.monotonic() - last_heard > beat_timeout:
                self.lost_head += 1
                return True  # the head is gone: drop what we hold, say HELLO again
            if queue and not (self.hold is not None and self.hold(self)):
                ids, payload = queue.popleft()
                held -= len(ids)
                self._answer(ids, payload, decode, encode)
                last_sent = time.monotonic()

    def _answer(
        self,
        ids: list[int],
        payload: list[bytes],
        decode: Callable[[list[bytes], int], list[Any]],
        encode: Callable[[list[Any]], list[bytes]],
    ) -> None:
        started = time.perf_counter_ns()
        try:
            tasks = decode(payload, len(ids))
        except Exception as exc:
            failed = [{"id": i, "error": f"cannot decode the task: {exc}"} for i in ids]
            self._send(control(b"FAILED", {"failed": failed}))
            return
        done: list[tuple[int, Any]] = []
        failures: list[dict[str, Any]] = []
        for task_id, task in zip(ids, tasks, strict=True):
            try:
                done.append((task_id, self.compute(task)))
            except Exception as exc:
                tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
                failures.append({"id": task_id, "error": f"{type(exc).__name__}: {exc}"})
                failures[-1]["traceback"] = tb
        busy = max(1, time.perf_counter_ns() - started)
        if self.corrupt_first_answer:
            self.corrupt_first_answer = False
            done = [(task_id + 1_000_000, result) for task_id, result in done]
        self.answered += len(ids)
        if self.split:  # one message per task, last id first, results and failures mixed
            answers: list[tuple[int, Any, dict[str, Any] | None]] = [
                (task_id, result, None) for task_id, result in done
            ]
            answers += [(f["id"], None, f) for f in failures]
            for task_id, result, failure in sorted(answers, key=lambda a: a[0], reverse=True):
                if failure is None:
                    self._send(self._results([task_id], busy // len(ids), encode([result])))
                else:
                    self._send(control(b"FAILED", {"failed": [failure]}))
            return
        if done:
            ok_ids = [task_id for task_id, _ in done]
            self._send(self._results(ok_ids, busy, encode([result for _, result in done])))
        if failures:
            self._send(control(b"FAILED", {"failed": failures}))

    @staticmethod
    def _results(ids: list[int], busy_ns: int, payload: list[bytes]) -> list[bytes]:
        return [b"RESULTS", pack_ids(ids), struct.pack("<Q", max(1, busy_ns)), *payload]


# -- the head, and the scenarios -------------------------------------------------------------

HEAD_TIMEOUT_S = 30.0


def run_head(pipeline: Pipeline, on_start: Callable[[str], Any]) -> RunResult:
    """Runs ``pipeline``'s head in a thread, with no local workers, and returns its result;
    fails (instead of hanging) if it has not finished after HEAD_TIMEOUT_S."""
    box: dict[str, Any] = {}

    def head() -> None:
        try:
            box["result"] = pipeline.run(
                local_workers=False, on_start=on_start, progress=False, handle_signals=False
            )
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=head, name="pipeline-head", daemon=True)
    thread.start()
    thread.join(HEAD_TIMEOUT_S)
    if thread.is_alive():
        raise AssertionError(f"the head did not finish within {HEAD_TIMEOUT_S} s")
    if "error" in box:
        raise box["error"]
    result: RunResult = box["result"]
    return result


@pytest.fixture
def workers() -> Iterator[list[ForeignWorker]]:
    """The test's foreign workers: stopped and joined at teardown, their errors raised."""
    started: list[ForeignWorker] = []
    yield started
    for w in started:
        w.stop.set()
    for w in started:
        w.join()
    for w in started:
        if w.error is not None and not isinstance(w.error, Stopped):
            raise w.error


def squares(pipeline: str = "squares", **options: Any) -> Pipeline:
    opts: dict[str, Any] = {"bind": "tcp://127.0.0.1:*", **options}
    return Pipeline(pipeline, **opts)


def square_stage(p: Pipeline, n: int, **stage: Any) -> Pipeline:
    return p.source(foreign_tasks.numbers, args=(n,)).map(foreign_tasks.square, workers=0, **stage)


def squared(x: int) -> int:
    """The foreign worker's own computation."""
    if not isinstance(x, int):
        raise TypeError(f"not an int: {x!r}")
    return x * x


def finished(w: ForeignWorker) -> ForeignWorker:
    """``w`` after its thread ended without an error."""
    w.join()
    if w.error is not None:
        raise w.error
    return w


INT_EDGE = {"layout": "values", "type": "int"}


# -- plain values ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("codec", "transport"),
    [("msgpack", "tcp"), ("json", "tcp"), ("bson", "tcp"), ("msgpack", "ipc")],
)
def test_plain_values_through_a_foreign_worker(
    codec: str, transport: str, tmp_path: Path, workers: list[ForeignWorker]
) -> None:
    if codec == "bson":
        pytest.importorskip("bson")
    bind = f"ipc://{tmp_path}/head.sock" if transport == "ipc" else "tcp://127.0.0.1:*"
    n = 200
    pipeline = square_stage(squares(codec=codec, bind=bind, heartbeat=0.2), n)
    edge = {**INT_EDGE, "codec": codec}

    def start(endpoint: str) -> None:
        workers.append(
            ForeignWorker(
                endpoint,
                squared,
                pipeline="squares",
                schemas={"square": "int -> int"},
                credit=3,
                expect={"stage": "square", "schema": "int -> int", "in": edge, "out": edge},
            ).start()
        )

    result = run_head(pipeline, start)
    w = finished(workers[0])

    assert result.ok, result.summary()
    assert sorted(result.results or []) == [x * x for x in range(n)]
    assert w.mismatch is None
    (ready,) = w.readies
    assert ready["pipeline"] == "squares"
    assert ready["heartbeat"] == 0.2
    assert ready["heartbeat_timeout"] == 5.0
    assert ready["timeout"] is None
    assert (ready["init"], ready["close"]) == (None, None)
    assert ready["fn"] == "foreign_tasks:square"
    assert w.ends[0] == {"reason": "done"}
    assert sorted(i for batch in w.batches for i in batch) == list(range(n))
    assert all(1 <= len(batch) <= 3 for batch in w.batches)
    assert w.max_held <= 3  # never more than the credit of HELLO
    stats = result.stages[0]
    assert (stats.done, stats.failures, stats.duplicates) == (n, 0, 0)
    assert (stats.workers_joined, stats.workers_lost) == (1, 0)


def test_failed_tasks_are_retried_then_dead_lettered(workers: list[ForeignWorker]) -> None:
    n = 20
    failed_once: set[int] = set()

    def flaky(x: int) -> int:
        if x == 7:
            raise ValueError("seven is unlucky")
        if x == 3 and x not in failed_once:
            failed_once.add(x)
            raise RuntimeError("three fails the first time")
        return x * x

    pipeline = square_stage(squares(), n, max_attempts=3)
    result = run_head(pipeline, lambda ep: workers.append(ForeignWorker(ep, flaky).start()))
    finished(workers[0])

    assert not result.ok
    assert sorted(result.results or []) == [x * x for x in range(n) if x != 7]
    (letter,) = result.dead_letters
    assert (letter.id, letter.task, letter.stage, letter.attempts) == (7, 7, "square", 3)
    assert letter.error == "ValueError: seven is unlucky"
    assert "seven is unlucky" in letter.traceback  # the worker's traceback text, kept as sent
    stats = result.stages[0]
    assert (stats.done, stats.dead, stats.failures, stats.retried) == (n - 1, 1, 4, 3)
    assert (result.tasks, result.delivered) == (n, n - 1)
    sent = [i for batch in workers[0].batches for i in batch]
    assert (sent.count(7), sent.count(3)) == (3, 2)


def test_answers_may_be_split_and_reordered_within_a_batch(
    workers: list[ForeignWorker],
) -> None:
    n = 40
    pipeline = square_stage(squares(), n, batch=5)

    def odd_fails(x: int) -> int:
        if x % 10 == 9:
            raise ValueError("nine")
        return x * x

    result = run_head(
        pipeline,
        lambda ep: workers.append(ForeignWorker(ep, odd_fails, split=True, credit=12).start()),
    )
    w = finished(workers[0])

    assert sorted(result.results or []) == [x * x for x in range(n) if x % 10 != 9]
    assert sorted(d.id for d in result.dead_letters) == [9, 19, 29, 39]
    stats = result.stages[0]
    assert (stats.duplicates, stats.workers_lost) == (0, 0)
    assert w.max_held <= 12  # the credit of its HELLO
    assert all(len(batch) <= 5 for batch in w.batches)


# -- joining -----------------------------------------------------------------------------------


REFUSED_HELLOS = {
    "other-pipeline": ({"pipeline": "cubes"}, "'cubes'"),
    "protocol-2": ({"protocol": 2}, "protocol 2"),
    "other-types": ({"schemas": {"square": "str -> str"}}, "'str -> str'"),
    "unknown-stage-in-schemas": ({"schemas": {"cube": "int -> int"}}, "no stage 'cube'"),
    "unknown-stage": ({"stage": "cube"}, "no stage 'cube'"),
    "schemas-not-an-object": ({"schemas": ["square"]}, "schemas"),
}


@pytest.mark.parametrize("case", list(REFUSED_HELLOS))
def test_a_refused_hello_gets_refuse_and_the_head_keeps_going(
    case: str, workers: list[ForeignWorker]
) -> None:
    hello, reason = REFUSED_HELLOS[case]
    n = 30

    def start(endpoint: str) -> None:
        refused = ForeignWorker(endpoint, squared, name="refused", **hello)
        good = ForeignWorker(endpoint, squared, name="good", start_after=refused.finished)
        workers.extend([refused.start(), good.start()])

    result = run_head(square_stage(squares(), n), start)
    refused, good = finished(workers[0]), finished(workers[1])

    (refusal,) = refused.refusals
    assert refusal["rejoin"] is False
    assert reason in refusal["reason"]
    assert (refused.readies, refused.batches) == ([], [])
    assert result.ok, result.summary()
    assert sorted(result.results or []) == [x * x for x in range(n)]
    assert result.stages[0].workers_joined == 1
    assert good.ends


def test_a_worker_expecting_other_types_leaves_with_bye(workers: list[ForeignWorker]) -> None:
    n = 30

    def start(endpoint: str) -> None:
        other = ForeignWorker(endpoint, squared, name="other", expect={"schema": "str -> str"})
        good = ForeignWorker(endpoint, squared, name="good", start_after=other.finished)
        workers.extend([other.start(), good.start()])

    result = run_head(square_stage(squares(), n), start)
    other, _ = finished(workers[0]), finished(workers[1])

    assert other.mismatch is not None
    assert "'int -> int'" in other.mismatch
    assert other.answered == 0
    assert result.ok, result.summary()
    stats = result.stages[0]
    assert (stats.workers_joined, stats.workers_lost, stats.failures) == (2, 1, 0)


# -- leaving, liveness, violations -------------------------------------------------------------


def test_bye_returns_held_tasks_without_an_attempt(workers: list[ForeignWorker]) -> None:
    n = 30

    def start(endpoint: str) -> None:
        leaver = ForeignWorker(endpoint, squared, name="leaver", leave_after_first_batch=True)
        good = ForeignWorker(endpoint, squared, name="good", start_after=leaver.finished)
        workers.extend([leaver.start(), good.start()])

    result = run_head(square_stage(squares(), n, batch=4, max_attempts=1), start)
    leaver, good = finished(workers[0]), finished(workers[1])

    assert leaver.answered == 0
    assert result.ok, result.summary()  # max_attempts=1: one counted attempt would be fatal
    stats = result.stages[0]
    assert stats.failures == 0
    assert stats.retried >= len(leaver.batches[0])
    assert set(leaver.batches[0]) <= {i for batch in good.batches for i in batch}


def test_a_protocol_violation_ends_the_session_and_the_batch_runs_again(
    workers: list[ForeignWorker],
) -> None:
    n = 16

    def start(endpoint: str) -> None:
        # its first answer names ids it was never sent; then it rejoins and behaves
        w = ForeignWorker(endpoint, squared, corrupt_first_answer=True, credit=4)
        workers.append(w.start())

    result = run_head(square_stage(squares(linger=5.0), n, batch=4), start)
    w = finished(workers[0])

    (refusal,) = w.refusals
    assert refusal["rejoin"] is True
    assert refusal["reason"].startswith("protocol error")
    assert len(w.readies) == 2
    # the batch it was running comes back one task per TASKS (suspects), no attempt counted
    assert w.batches[:5] == [[0, 1, 2, 3], [0], [1], [2], [3]]
    assert result.ok, result.summary()
    assert sorted(result.results or []) == [x * x for x in range(n)]
    stats = result.stages[0]
    assert (stats.workers_joined, stats.workers_lost) == (2, 1)
    assert (stats.failures, stats.duplicates) == (0, 0)


def test_worker_heartbeats_keep_a_long_batch_alive(workers: list[ForeignWorker]) -> None:
    # The worker holds its first batch until the head has sent 25 heartbeats, spaced at least
    # `heartbeat` apart: longer than heartbeat_timeout, so only its own heartbeats save it.
    beats = 25
    pipeline = square_stage(squares(heartbeat=0.05, heartbeat_timeout=1.0), 10)

    def start(endpoint: str) -> None:
        w = ForeignWorker(endpoint, squared, hold=lambda w: w.head_beats < beats)
        workers.append(w.start())

    result = run_head(pipeline, start)
    w = finished(workers[0])

    assert w.head_beats >= beats
    assert result.ok, result.summary()
    stats = result.stages[0]
    assert (stats.workers_lost, stats.retried, stats.failures) == (0, 0, 0)


def test_a_silent_worker_is_lost_refused_and_rejoins(workers: list[ForeignWorker]) -> None:
    n = 5
    # one batch of all five tasks, held by A while it says nothing
    pipeline = square_stage(squares(heartbeat=0.1, heartbeat_timeout=1.0, linger=5.0), n, batch=8)

    def start(endpoint: str) -> None:
        a = ForeignWorker(endpoint, squared, name="A", silent_while_holding=True)
        b = ForeignWorker(
            endpoint, squared, name="B", start_after=a.got_tasks, hold=lambda w: len(a.readies) < 2
        )
        a.hold = lambda w: not b.got_tasks.is_set()  # silent until B was sent A's tasks
        workers.extend([a.start(), b.start()])

    result = run_head(pipeline, start)
    a, b = finished(workers[0]), finished(workers[1])

    assert a.batches[0] == list(range(n))
    # A answered after the head had dropped it: REFUSE with rejoin, then a new session
    assert a.refusals[0]["rejoin"] is True
    assert a.refusals[0]["reason"].startswith("unknown worker")
    assert len(a.readies) == 2
    assert a.ends
    assert b.ends
    # A's running batch came back one task per TASKS, each sent to an idle worker: B first,
    # then B or the rejoined A
    assert b.batches[0] == [0]
    assert sorted(b.batches + a.batches[1:]) == [[i] for i in range(n)]
    assert result.ok, result.summary()
    assert sorted(result.results or []) == [x * x for x in range(n)]
    stats = result.stages[0]
    assert (stats.workers_joined, stats.workers_lost) == (3, 1)
    assert (stats.retried, stats.failures, stats.duplicates) == (n, 0, 0)


# -- typed messages: protobuf classes from schemas/*.proto, built by protoc ---------------------

SCHEMAS = Path(__file__).resolve().parent.parent / "schemas"
_PROTOBUF: dict[str, Any] = {}


@pytest.fixture(scope="module")
def proto(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """{"files": FileDescriptorProtos, "classes": full name -> class} of market.proto and
    football.proto, in a private descriptor pool (protobuf's default pool takes a file once)."""
    protoc = pytest.importorskip("grpc_tools.protoc")
    pytest.importorskip("google.protobuf")
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    if not _PROTOBUF:
        out = tmp_path_factory.mktemp("protoc") / "schemas.pb"
        args = ["protoc", f"-I{SCHEMAS}", f"--descriptor_set_out={out}", "--include_imports"]
        assert protoc.main([*args, "market.proto", "football.proto"]) == 0
        files = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes()).file
        pool = descriptor_pool.DescriptorPool()
        for f in files:
            pool.Add(f)
        classes = {}
        for f in files:
            for name in _message_names(f):
                classes[name] = message_factory.GetMessageClass(pool.FindMessageTypeByName(name))
        _PROTOBUF.update(files=list(files), classes=classes)
    return _PROTOBUF


def _message_names(f: Any) -> Iterator[str]:
    def walk(prefix: str, messages: Any) -> Iterator[str]:
        for m in messages:
            if not m.options.map_entry:
                yield f"{prefix}.{m.name}"
                yield from walk(f"{prefix}.{m.name}", m.nested_type)

    yield from walk(f.package, f.message_type)


# FieldDescriptorProto's type and label numbers (descriptor.proto)
_SCALARS = {1: "double", 3: "int64", 5: "int32", 8: "bool", 9: "string", 12: "bytes"}
_ENUM, _REPEATED = 14, 3


def schema_text(files: list[Any], full_name: str) -> str:
    """The message set text of ``full_name``, built from the .proto's descriptors by the
    rules of docs/pipeline-protocol.md section 10 (as a worker in another language would)."""
    messages: dict[str, Any] = {}
    enums: set[str] = set()  # full names

    def index(pkg: str, prefix: str, msgs: Any, enum_types: Any) -> None:
        for e in enum_types:
            enums.add(f"{prefix}.{e.name}")
        for m in msgs:
            messages[f"{prefix}.{m.name}"] = m
            index(pkg, f"{prefix}.{m.name}", m.nested_type, m.enum_type)

    for f in files:
        index(f.package, f.package, f.message_type, f.enum_type)
    seen: dict[str, str] = {}

    def base(fd: Any) -> str:
        if fd.type in _SCALARS:
            return _SCALARS[fd.type]
        name = fd.type_name.lstrip(".")
        if fd.type == _ENUM:
            assert name in enums
            return f"enum {name}"
        visit(name)
        return name

    def kind(fd: Any) -> str:
        if fd.label == _REPEATED:
            entry = messages.get(fd.type_name.lstrip("."))
            if entry is not None and entry.options.map_entry:
                key, value = sorted(entry.field, key=lambda e: e.number)
                return f"map<{_SCALARS[key.type]}, {base(value)}>"
            return f"list<{base(fd)}>"
        if fd.proto3_optional:
            return f"optional<{base(fd)}>"
        return base(fd)

    def visit(name: str) -> None:
        if name in seen:
            return
        seen[name] = ""
        fields = sorted(messages[name].field, key=lambda fd: fd.number)
        seen[name] = f"{name} {{" + ", ".join(f"{f.number} {f.name} {kind(f)}" for f in fields)
        seen[name] += "}"

    visit(full_name)
    return "; ".join(seen[name] for name in sorted(seen))


@pytest.mark.parametrize(
    ("module", "name"),
    [
        ("market_proto", "market.Trade"),
        ("market_proto", "market.Quote"),
        ("market_proto", "market.Snapshot"),
        ("football_proto", "football.MatchEvent"),
    ],
)
def test_schema_text_from_the_proto_matches_the_heads(
    module: str, name: str, proto: dict[str, Any]
) -> None:
    import importlib

    from zeropipe.codecs import MESSAGES
    from zeropipe.pipelines.types import schema_text as heads_schema_text

    importlib.import_module(f"codegen_golden.{module}")
    assert schema_text(proto["files"], name) == heads_schema_text(MESSAGES[name])


def test_typed_messages_through_a_foreign_protobuf_worker(
    proto: dict[str, Any], workers: list[ForeignWorker]
) -> None:
    classes = proto["classes"]
    Quote = classes["market.Quote"]
    sell = 2  # market.Side.SELL

    def quote_of(t: Any) -> Any:
        q = Quote(
            symbol=t.symbol,
            bid=t.price - 0.5,
            ask=t.price + 0.5,
            bid_qty=t.qty,
            ask_qty=t.qty if t.side == sell else 0,
            ts=t.ts,
            venue=t.venue,
        )
        if t.tags:
            q.last = t.price
        return q

    trade_text = schema_text(proto["files"], "market.Trade")
    quote_text = schema_text(proto["files"], "market.Quote")
    stage_text = f"{trade_text} -> {quote_text}"
    n = 60

    def pipeline() -> Pipeline:
        return (
            Pipeline("market-quotes", ordered=True, bind="tcp://127.0.0.1:*")
            .source(foreign_tasks.trades, args=(n,))
            .map(foreign_tasks.quote_of, workers=0)
        )

    def start(endpoint: str) -> None:
        w = ForeignWorker(
            endpoint,
            quote_of,
            pipeline="market-quotes",
            schemas={"quote_of": stage_text},
            classes=classes,
            expect={
                "stage": "quote_of",
                "schema": stage_text,
                "in": {"layout": "messages", "codec": "protobuf", "type": "market.Trade"},
                "out": {"layout": "messages", "codec": "protobuf", "type": "market.Quote"},
            },
        )
        workers.append(w.start())

    result = run_head(pipeline(), start)
    w = finished(workers[0])

    assert w.mismatch is None
    assert w.readies[0]["in"]["schema"] == trade_text
    assert w.readies[0]["out"]["schema"] == quote_text
    assert result.ok, result.summary()
    expected = pipeline().run(inprocess=True).results
    assert result.results == expected
    assert len(expected or []) == n
    assert sum(q.last is None for q in expected or []) == n // 2  # absent `optional` survives
