"""Running a pipeline: the head (ventilator and sink in one process) and its local workers.

The head binds one ROUTER. Each worker process connects a DEALER, says HELLO, gets READY with
its stage, and then receives TASKS only against its credit; its RESULTS and FAILED answer them.
The head tracks every task id per stage until it is answered: tasks held by a worker that
dies, hangs or loses its link are dispatched again, results are accepted once per id, and a
task that fails ``max_attempts`` times becomes a :class:`DeadLetter`. See
docs/pipeline-protocol.md for the messages and docs/pipelines.md for the user's view."""

from __future__ import annotations

import itertools
import logging
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Sized
from dataclasses import dataclass, field
from typing import Any

from . import _zmq as zmq
from . import protocol as p
from .builder import Pipeline, Plan, StagePlan
from .errors import PipelineAborted, PipelineError
from .payload import BatchError, Packer
from .worker import exit_text

log = logging.getLogger("zeropipe.pipelines")

TARGET_BATCH_NS = 10_000_000  # an automatic batch holds about this much work
MAX_BATCH = 8192
MAX_SMALL_INFLIGHT = 1024  # tasks a worker may hold in small batches
REFILL_MIN = 8  # a worker allowed this many tasks or more is refilled once half empty
EXIT_GRACE = 0.1  # seconds between seeing a local worker exit and taking back its tasks
REORDER_WINDOW = 1 << 16  # ordered runs: most ids ahead of the next one the sink needs
_DONE, _DEAD = 1, 2


@dataclass
class DeadLetter:
    """A task that failed ``max_attempts`` times: it raised, timed out, or its worker died."""

    id: int
    stage: str
    task: Any
    error: str
    traceback: str
    attempts: int


@dataclass
class StageStats:
    name: str
    done: int = 0
    failures: int = 0  # attempts that raised, timed out or died with their worker
    retried: int = 0  # tasks sent again (after a failure or with a lost worker)
    dead: int = 0
    duplicates: int = 0  # results of a task already answered, dropped
    workers_joined: int = 0
    workers_lost: int = 0
    busy_s: float = 0.0  # time spent in the stage's function, summed over workers


@dataclass
class RunResult:
    """What a run did. ``results`` holds the results when the pipeline has no sink; ``value``
    is what a stream sink returned."""

    name: str
    tasks: int = 0
    delivered: int = 0
    results: list[Any] | None = None
    value: Any = None
    dead_letters: list[DeadLetter] = field(default_factory=list)
    stages: list[StageStats] = field(default_factory=list)
    interrupted: bool = False
    elapsed: float = 0.0
    first_result: float | None = None  # seconds from the start to the first result
    lost: int = 0  # tasks lost with their worker (only with acks=False)

    @property
    def ok(self) -> bool:
        return not self.dead_letters and not self.interrupted and not self.lost

    def summary(self) -> str:
        rate = self.delivered / self.elapsed if self.elapsed > 0 else 0.0
        lines = [
            f"pipeline {self.name}: {self.delivered}/{self.tasks} results, "
            f"{len(self.dead_letters)} dead letters, {self.elapsed:.2f} s ({rate:,.0f}/s)"
            + (", interrupted (the source was not read to its end)" if self.interrupted else "")
        ]
        if self.first_result is not None:
            lines.append(f"  first result after {self.first_result:.3f} s")
        for s in self.stages:
            lines.append(
                f"  stage {s.name}: {s.done} done, {s.failures} failed attempts, "
                f"{s.retried} retried, {s.dead} dead, {s.duplicates} duplicates dropped, "
                f"workers {s.workers_joined} joined / {s.workers_lost} lost, "
                f"{s.busy_s:.2f} s busy"
            )
        for d in self.dead_letters[:10]:
            lines.append(f"  dead letter: task {d.id} at {d.stage} after {d.attempts}: {d.error}")
        if len(self.dead_letters) > 10:
            lines.append(f"  ... and {len(self.dead_letters) - 10} more dead letters")
        return "\n".join(lines)


def run(
    pipeline: Pipeline | Plan,
    *,
    inprocess: bool = False,
    progress: bool | None = None,
    local_workers: bool = True,
    on_start: Callable[[str], Any] | None = None,
    handle_signals: bool | None = None,
) -> RunResult:
    """Runs ``pipeline`` to the end and returns what happened.

    ``inprocess``: run every stage in this thread, one task at a time, with the same types,
    codecs, retries and dead letters (for unit tests of stage functions).
    ``progress``: show a progress bar (default: when stderr is a terminal).
    ``local_workers``: start each stage's ``workers`` processes here (False: only remote
    workers, joining with ``zeropipe worker``). ``on_start(endpoint)``: called once bound.
    ``handle_signals``: drain on Ctrl-C/SIGTERM (default: when run in the main thread)."""
    plan = pipeline.validate() if isinstance(pipeline, Pipeline) else pipeline
    if inprocess:
        from .inline import run_inline

        return run_inline(plan)
    if progress is None:
        progress = sys.stderr.isatty()
    if handle_signals is None:
        handle_signals = threading.current_thread() is threading.main_thread()
    head = Head(plan, progress=progress, local_workers=local_workers)
    forced = True
    try:
        head.start()
        if on_start is not None:
            on_start(head.endpoint)
        result = head.run(handle_signals)
        forced = False
        return result
    finally:
        head.close(forced)


class _Batch:
    __slots__ = ("answered", "id_frame", "ids", "items", "open")

    def __init__(self, ids: list[int], items: list[Any], id_frame: bytes) -> None:
        self.ids = ids
        self.items = items
        self.id_frame = id_frame
        self.open = len(ids)
        self.answered: set[int] | None = None

    def items_of(self, task_ids: list[int]) -> list[Any]:
        if len(task_ids) == 1:
            return [self.items[self.ids.index(task_ids[0])]]
        where = {task_id: k for k, task_id in enumerate(self.ids)}
        return [self.items[where[task_id]] for task_id in task_ids]

    def unanswered(self) -> list[tuple[int, Any]]:
        done = self.answered or set()
        return [(i, x) for i, x in zip(self.ids, self.items, strict=True) if i not in done]


class _Worker:
    __slots__ = (
        "credit",
        "doomed",
        "held",
        "ident",
        "inflight",
        "last_seen",
        "name",
        "stage",
        "token",
    )

    def __init__(self, ident: bytes, stage: _Stage, credit: int, name: str, token: str) -> None:
        self.ident = ident
        self.stage = stage
        self.credit = credit
        self.name = name
        self.token = token
        self.inflight: deque[_Batch] = deque()
        self.held = 0
        self.last_seen = time.monotonic()
        self.doomed = False  # reported a timeout: it exits next, running nothing else


class _Stage:
    def __init__(self, plan: StagePlan, index: int, max_batch_bytes: int, tracked: bool) -> None:
        self.plan = plan
        self.index = index
        self.max_batch_bytes = max_batch_bytes
        self.tracked = tracked  # acks: the window below is kept
        self.stats = StageStats(plan.name)
        self.pending: deque[tuple[list[int], list[Any]]] = deque()
        self.retry: deque[tuple[int, Any]] = deque()
        self.suspects: deque[tuple[int, Any]] = deque()  # each runs alone (see _lost)
        self.state = bytearray()  # per id from base: 0 open, 1 answered, 2 dead-lettered
        self.base = 0
        self.attempts: dict[int, int] = {}
        self.workers: list[_Worker] = []
        self.est_ns = 0.0  # time per task, measured by the workers
        self.bytes_per_task = 0.0
        self.tasks_out = Packer(plan.inbound)
        self.results_in = Packer(plan.outbound)

    def batch_size(self) -> int:
        if self.plan.batch is not None:
            return self.plan.batch
        if self.est_ns <= 0:
            return 1
        n = int(TARGET_BATCH_NS / self.est_ns)
        if self.bytes_per_task > 0:
            n = min(n, int(self.max_batch_bytes / self.bytes_per_task))
        return max(1, min(n, MAX_BATCH))

    def capacity(self, w: _Worker) -> int:
        """Most tasks ``w`` may hold: its credit, the stage's, or by default two batches or
        about 20 ms of work (at most 1024 tasks), whichever is more."""
        if self.plan.credit is not None:
            return min(self.plan.credit, w.credit)
        batch = self.batch_size()
        cap = 2 * batch
        if self.est_ns > 0:
            cap = max(cap, min(int(2 * TARGET_BATCH_NS / self.est_ns), MAX_SMALL_INFLIGHT))
        return min(cap, w.credit)

    def measured(self, busy_ns: int, n: int) -> None:
        """A worker spent ``busy_ns`` on ``n`` tasks (0: it did not say)."""
        if busy_ns:
            self.stats.busy_s += busy_ns / 1e9
            per = busy_ns / n
            self.est_ns = per if self.est_ns == 0 else 0.7 * self.est_ns + 0.3 * per

    def ensure(self, hi: int) -> None:
        """The window covers ids below ``hi``."""
        need = hi - self.base - len(self.state)
        if need > 0 and self.tracked:
            self.state.extend(bytes(need))

    def mark(self, task_id: int, state: int) -> None:
        if self.tracked:
            self.ensure(task_id + 1)
            self.state[task_id - self.base] = state

    def is_open(self, task_id: int) -> bool:
        k = task_id - self.base
        return k >= len(self.state) or (k >= 0 and self.state[k] == 0)

    def compact(self) -> None:
        first_open = self.state.find(0)
        if first_open < 0:
            first_open = len(self.state)
        if first_open >= 1 << 16:
            del self.state[:first_open]
            self.base += first_open


class Head:
    """The ventilator and the sink of one run (use :func:`run`)."""

    def __init__(self, plan: Plan, *, progress: bool = False, local_workers: bool = True) -> None:
        self.plan = plan
        self.stages = [
            _Stage(s, i, plan.max_batch_bytes, plan.acks) for i, s in enumerate(plan.stages)
        ]
        self.result = RunResult(plan.name, stages=[s.stats for s in self.stages])
        self.show_progress = progress
        self.local_workers = local_workers
        self.ctx = zmq.Context()
        self.sock: Any = None
        self.endpoint = ""
        self.workers: dict[bytes, _Worker] = {}
        self.tokens: dict[str, tuple[_Stage, subprocess.Popen[bytes] | None]] = {}
        self.refused: dict[bytes, float] = {}
        self.next_id = 0
        self.source: Iterator[Any] | None = None
        self.source_done = False
        self.draining = False
        self.finished = 0
        self.out: deque[list[Any]] = deque()
        self.reorder: dict[int, Any] = {}
        self.next_out = 0
        self.started = time.monotonic()
        self.bar: Any = None
        self.ipc_dir: str | None = None
        self.curve_keys: tuple[bytes, bytes] | None = None
        self.abort: str | None = None
        self.spawn_failures = 0
        self.next_beat = 0.0
        self.outbox: list[list[bytes]] = []
        self.exits: dict[str, float] = {}  # local worker processes seen exited, and when
        self.joined: set[str] = set()  # tokens of local workers that said HELLO
        self.auth: Any = None

    # -- set-up -------------------------------------------------------------------

    def start(self) -> None:
        plan = self.plan
        self.started = time.monotonic()
        sock: Any = self.ctx.socket(zmq.ROUTER)
        sock.setsockopt(zmq.LINGER, 500)
        sock.setsockopt(zmq.SNDHWM, 0)
        sock.setsockopt(zmq.RCVHWM, 0)
        sock.setsockopt(zmq.MAXMSGSIZE, plan.max_message_bytes)  # a peer cannot bloat us
        if plan.curve_secret_key:
            self._secure(sock)
        bind = plan.bind
        if bind is None:
            self.ipc_dir = tempfile.mkdtemp(prefix="zeropipe-")
            bind = f"ipc://{self.ipc_dir}/{plan.name}.sock"
        try:
            sock.bind(bind)
        except zmq.ZMQError as exc:
            sock.close(0)
            raise PipelineError(f"pipeline {plan.name}: cannot bind {bind}: {exc}") from exc
        self.sock = sock
        self.endpoint = sock.getsockopt_string(zmq.LAST_ENDPOINT)
        try:
            produced = plan.source(*plan.source_args, **plan.source_kwargs)
            self.source = iter(produced)
        except Exception as exc:
            raise PipelineError(f"pipeline {plan.name}: the source raised {exc!r}") from exc
        total = plan.source_total
        if total is None and isinstance(produced, Sized):
            total = len(produced)
        if self.show_progress:
            from tqdm import tqdm  # type: ignore[import-untyped,unused-ignore]

            self.bar = tqdm(total=total, desc=plan.name, unit="task", smoothing=0.1)
        if self.local_workers:
            for stage in self.stages:
                for _ in range(stage.plan.workers):
                    self._spawn(stage)

    def _secure(self, sock: zmq.Socket) -> None:
        plan = self.plan
        assert plan.curve_secret_key is not None
        secret = plan.curve_secret_key.encode()
        public = (plan.curve_public_key or "").encode() or zmq.curve_public(secret)
        from zeropipe.auth import ThreadAuthenticator

        self.auth = ThreadAuthenticator(self.ctx)
        self.auth.start()
        self.curve_keys = zmq.curve_keypair()
        keys = {self.curve_keys[0]}
        any_client = plan.curve_clients is None
        if plan.curve_clients is not None:
            from zeropipe.auth import load_certificates

            keys |= set(load_certificates(plan.curve_clients))

        def allowed(domain: str, key: bytes) -> bool:
            return any_client or key in keys

        self.auth.configure_curve_callback("*", credentials_provider=_Callback(allowed))
        sock.setsockopt(zmq.CURVE_SERVER, 1)
        sock.setsockopt(zmq.CURVE_SECRETKEY, secret)
        sock.setsockopt(zmq.CURVE_PUBLICKEY, public)
        self.server_public = public.decode()

    def _spawn(self, stage: _Stage) -> None:
        token = f"{stage.plan.name}-{uuid.uuid4().hex[:8]}"
        endpoint = self.endpoint
        if endpoint.startswith("tcp://0.0.0.0:"):
            endpoint = "tcp://127.0.0.1:" + endpoint.rsplit(":", 1)[1]
        argv = [
            sys.executable,
            "-m",
            "zeropipe.pipelines.worker",
            "--connect",
            endpoint,
            "--token",
            token,
            "--local",
            "--path",
            os.pathsep.join([*self.plan.paths, *sys.path]),
        ]
        if self.curve_keys is not None:
            argv += ["--server-key", self.server_public]
            argv += ["--public-key", self.curve_keys[0].decode()]
            argv += ["--secret-key", self.curve_keys[1].decode()]
        proc = subprocess.Popen(argv, start_new_session=True)
        self.tokens[token] = (stage, proc)

    # -- the loop -------------------------------------------------------------------

    def run(self, handle_signals: bool) -> RunResult:
        restore = self._install_signals() if handle_signals else None
        plan = self.plan
        try:
            if plan.sink is None:
                results: list[Any] = []
                for chunk in self._chunks():
                    results.extend(chunk)
                self.result.results = results
            elif plan.sink_stream:
                self.result.value = plan.sink(self._items())
                for _ in self._chunks():  # the sink stopped early: run to the end anyway
                    pass
            else:
                sink = plan.sink
                for chunk in self._chunks():
                    for item in chunk:
                        sink(item)
        finally:
            if restore is not None:
                restore()
        self.result.tasks = self.next_id
        self.result.interrupted = self.draining
        self.result.elapsed = time.monotonic() - self.started
        return self.result

    def _items(self) -> Iterator[Any]:
        for chunk in self._chunks():
            yield from chunk

    def _chunks(self) -> Iterator[list[Any]]:
        sock = self.sock
        assert sock is not None
        out = self.out
        next_tick = 0.0
        while True:
            while out:
                yield out.popleft()
            if self.abort is not None:
                raise PipelineAborted(self.abort)
            if self.source_done and self.finished == self.next_id:
                self._end()
                return
            now = time.monotonic()
            if now >= next_tick:
                self._tick(now)
                next_tick = now + min(0.05, self.plan.heartbeat / 2)
            self._dispatch()
            wait = 0 if out else max(1, int((next_tick - time.monotonic()) * 1000))
            if out or sock.poll(wait):
                try:
                    msgs = sock.recv_many(4096, zmq.NOBLOCK)
                except zmq.Again:
                    continue
                for msg in msgs:
                    if isinstance(msg, list) and len(msg) >= 2:
                        self._handle(msg)

    def _handle(self, msg: list[bytes]) -> None:
        ident, command = msg[0], msg[1]
        frames = msg[1:]
        w = self.workers.get(ident)
        try:
            if command == p.HELLO:
                self._hello(ident, p.parse_control(frames))
                return
            if w is None:
                # a worker we gave up on (its link was cut): what it held was sent again
                self._refuse(ident, "unknown worker: send HELLO", rejoin=True)
                return
            w.last_seen = time.monotonic()
            if command == p.RESULTS:
                self._results(w, frames)
            elif command == p.FAILED:
                self._failed(w, p.parse_control(frames))
            elif command == p.HEARTBEAT:
                pass
            elif command == p.BYE:
                self._bye(w, p.parse_control(frames))
            else:
                raise p.ProtocolViolation(f"unknown command {command[:16]!r}")
        except (
            p.ProtocolViolation,
            BatchError,
            AttributeError,
            KeyError,
            TypeError,
            ValueError,
        ) as exc:
            log.warning(
                "pipeline %s: worker %s broke the protocol: %s",
                self.plan.name,
                w.name if w else ident.hex(),
                exc,
            )
            if w is not None:
                self._lost(w, f"protocol error: {exc}", crashed=True)
            self._refuse(ident, f"protocol error: {exc}", rejoin=True)

    def _send(self, ident: bytes, frames: list[bytes]) -> None:
        assert self.sock is not None
        try:
            self.sock.send_multipart([ident, *frames], zmq.NOBLOCK)
        except zmq.ZMQError:
            pass  # the peer is gone: its heartbeats stop and _tick forgets it

    def _refuse(self, ident: bytes, reason: str, rejoin: bool) -> None:
        now = time.monotonic()
        if now - self.refused.get(ident, 0.0) < 1.0:
            return
        self.refused[ident] = now
        self._send(ident, p.control(p.REFUSE, {"reason": reason, "rejoin": rejoin}))

    # -- joining ------------------------------------------------------------------

    def _hello(self, ident: bytes, body: dict[str, Any]) -> None:
        plan = self.plan
        reason = None
        if body.get("protocol") != p.VERSION:
            reason = f"protocol {body.get('protocol')!r} (this head speaks {p.VERSION})"
        elif body.get("pipeline") and body["pipeline"] != plan.name:
            reason = f"this is pipeline {plan.name!r}, not {body['pipeline']!r}"
        stage = None
        token = str(body.get("token") or "")
        schemas = body.get("schemas") or {}
        if reason is None and not (
            isinstance(schemas, dict) and all(isinstance(v, str) for v in schemas.values())
        ):
            reason = "schemas must be a JSON object of strings"
        if reason is None:
            for name, schema in schemas.items():
                st = plan.stage(name)
                if st is None:
                    reason = f"pipeline {plan.name} has no stage {name!r}"
                elif st.schema != schema:
                    reason = (
                        f"stage {name}: the worker's types {schema!r} differ from the "
                        f"pipeline's {st.schema!r}"
                    )
            if token in self.tokens:
                stage = self.tokens[token][0]
            elif body.get("stage"):
                stage = next((s for s in self.stages if s.plan.name == body["stage"]), None)
                if stage is None:
                    reason = f"pipeline {plan.name} has no stage {body['stage']!r}"
            else:
                stage = min(self.stages, key=lambda s: len(s.workers) / max(1, s.plan.workers))
        if reason is not None or stage is None:
            log.warning("pipeline %s: refused worker %s: %s", plan.name, body.get("worker"), reason)
            self._send(ident, p.control(p.REFUSE, {"reason": reason, "rejoin": False}))
            return
        old = self.workers.get(ident)
        if old is not None:
            self._lost(old, "said HELLO again", crashed=False)
        credit = body.get("credit")
        if not isinstance(credit, int) or credit < 1:
            credit = 1
        if token in self.tokens:
            self.joined.add(token)
        w = _Worker(ident, stage, credit, str(body.get("worker", ident.hex())), token)
        self.workers[ident] = w
        stage.workers.append(w)
        stage.stats.workers_joined += 1
        ready = {
            "protocol": p.VERSION,
            "pipeline": plan.name,
            "heartbeat": plan.heartbeat,
            "heartbeat_timeout": plan.heartbeat_timeout,
            **stage.plan.ready(),
        }
        self._send(ident, p.control(p.READY, ready))

    def _bye(self, w: _Worker, body: dict[str, Any]) -> None:
        if body.get("reason") == "init":
            error = body.get("error", "")
            message = f"stage {w.stage.plan.name}: the init hook raised {error}"
            if w.token in self.tokens:
                self.abort = message
            log.error("pipeline %s: worker %s: %s", self.plan.name, w.name, message)
        elif body.get("error"):
            log.warning("pipeline %s: worker %s left: %s", self.plan.name, w.name, body["error"])
        self._lost(w, f"left ({body.get('reason', '')})", crashed=False)

    # -- dispatching ----------------------------------------------------------------

    def _dispatch(self) -> None:
        outbox = self.outbox
        for stage in self.stages:
            if stage.stats.workers_joined < stage.plan.min_workers:
                continue
            workers = stage.workers
            if len(workers) > 1:
                workers = sorted(workers, key=_held)
            for w in workers:
                if w.doomed:
                    continue
                cap = stage.capacity(w)
                if w.held > cap // 2 and cap >= REFILL_MIN:
                    continue  # topped up in bursts: one write, and one wake-up, per burst
                if stage.suspects:
                    self._send_suspect(stage, w)
                elif cap > w.held:
                    self._send_batches(stage, w, cap - w.held)
        if outbox:
            try:
                self.sock.send_many(outbox, zmq.NOBLOCK)
            except zmq.ZMQError:
                pass  # a peer gone: its heartbeats stop and _tick forgets it
            outbox.clear()

    def _send_suspect(self, stage: _Stage, w: _Worker) -> None:
        """A suspect runs alone on an idle worker, so that a death blames it alone; the other
        workers get nothing new meanwhile and soon become idle."""
        if not w.held:
            task_id, item = stage.suspects.popleft()
            self._send_batches(stage, w, 1, ([task_id], [item]))

    def _send_batches(
        self,
        stage: _Stage,
        w: _Worker,
        free: int,
        tasks: tuple[list[int], list[Any]] | None = None,
    ) -> None:
        """Up to ``free`` tasks to ``w``, taken at once and sent as batches of the stage's
        batch size."""
        ids, items = tasks or self._take(stage, free)
        if not ids:
            return
        size = stage.batch_size()
        encode, outbox, track = stage.tasks_out.encode, self.outbox, self.plan.acks
        sent_bytes = 0
        start = 0
        while start < len(ids):
            batch_ids, batch_items = ids[start : start + size], items[start : start + size]
            start += size
            payload, bad = encode(batch_items)
            if bad:
                for k, why in bad:
                    error = f"cannot encode the task: {why}"
                    self._dead(stage, batch_ids[k], batch_items[k], error, "", 1)
                skip = {k for k, _ in bad}
                batch_ids = [x for k, x in enumerate(batch_ids) if k not in skip]
                batch_items = [x for k, x in enumerate(batch_items) if k not in skip]
                if not batch_ids:
                    continue
            id_frame = p.pack_ids(batch_ids)
            if track:
                w.inflight.append(_Batch(batch_ids, batch_items, id_frame))
            w.held += len(batch_ids)
            sent_bytes += sum(map(len, payload))
            outbox.append([w.ident, p.TASKS, id_frame, *payload])
        if ids:
            stage.bytes_per_task = 0.8 * stage.bytes_per_task + 0.2 * (sent_bytes / len(ids))

    def _take(self, stage: _Stage, n: int) -> tuple[list[int], list[Any]]:
        ids: list[int] = []
        items: list[Any] = []
        while stage.retry and len(ids) < n:
            task_id, item = stage.retry.popleft()
            if stage.is_open(task_id):
                ids.append(task_id)
                items.append(item)
        while stage.pending and len(ids) < n:
            chunk_ids, chunk_items = stage.pending.popleft()
            want = n - len(ids)
            if len(chunk_ids) > want:
                stage.pending.appendleft((chunk_ids[want:], chunk_items[want:]))
                chunk_ids, chunk_items = chunk_ids[:want], chunk_items[:want]
            ids.extend(chunk_ids)
            items.extend(chunk_items)
        if stage.index == 0 and len(ids) < n and not self.source_done and not self.draining:
            fresh = self._pull(n - len(ids))
            if fresh:
                first = self.next_id
                self.next_id += len(fresh)
                stage.ensure(self.next_id)
                ids.extend(range(first, self.next_id))
                items.extend(fresh)
        return ids, items

    def _pull(self, n: int) -> list[Any]:
        """Up to ``n`` tasks from the source: fewer once the linger passes (a slow source)."""
        if self.plan.ordered:
            n = min(n, self.next_out + REORDER_WINDOW - self.next_id)
            if n <= 0:
                return []
        assert self.source is not None
        source = self.source
        deadline = time.monotonic() + self.plan.linger
        got: list[Any] = []
        step = 1
        try:
            while len(got) < n:
                want = min(step, n - len(got))
                chunk = list(itertools.islice(source, want))
                got.extend(chunk)
                if len(chunk) < want:
                    self.source_done = True
                    break
                if time.monotonic() >= deadline:
                    break
                step = min(step * 4, 4096)
        except Exception as exc:
            log.error("pipeline %s: the source raised %r; no more tasks", self.plan.name, exc)
            self.source_done = True
            self.abort = f"the source raised {exc!r}"
        return got

    # -- answers ----------------------------------------------------------------------

    def _results(self, w: _Worker, frames: list[bytes]) -> None:
        stage = w.stage
        if not self.plan.acks:  # taken as they come: no tracking, no de-duplication
            _, ids, busy, payload = p.parse_batch(frames, with_busy=True)
            items = stage.results_in.decode(payload, len(ids))
            w.held -= len(ids)
            stage.measured(busy, len(ids))
            stage.stats.done += len(ids)
            self._forward(stage, ids, items)
            return
        inflight = w.inflight
        if not inflight:
            raise p.ProtocolViolation("RESULTS without tasks in flight")
        batch = inflight[0]
        whole = len(frames) > 3 and frames[1] == batch.id_frame and batch.answered is None
        if whole:  # the common case: the whole batch, its id frame echoed
            ids = batch.ids
            busy = p.parse_busy(frames[2])
            payload = frames[3:]
        else:
            _, ids, busy, payload = p.parse_batch(frames, with_busy=True)
        n = len(ids)
        items = stage.results_in.decode(payload, n)  # first: a bad answer changes nothing
        if whole:
            batch.open = 0
        else:
            self._answer_part(batch, ids)
        if batch.open == 0:
            inflight.popleft()
        w.held -= n
        stage.measured(busy, n)
        self._accept(stage, ids, items)

    def _answer_part(self, batch: _Batch, ids: list[int]) -> None:
        members = set(batch.ids)
        answered = batch.answered if batch.answered is not None else set()
        fresh = set(ids)
        if len(fresh) != len(ids) or not fresh <= members or fresh & answered:
            raise p.ProtocolViolation("an answer's ids are not the unanswered ids of the batch")
        answered |= fresh
        batch.answered = answered
        batch.open -= len(ids)

    def _accept(self, stage: _Stage, ids: list[int], items: list[Any]) -> None:
        n = len(ids)
        first = ids[0]
        state, base = stage.state, stage.base
        lo = first - base
        if n == 1 and 0 <= lo < len(state) and state[lo] == 0:
            state[lo] = _DONE
        elif ids[-1] - first == n - 1 and lo >= 0 and state.count(0, lo, lo + n) == n:
            state[lo : lo + n] = b"\x01" * n  # a run of ids, none answered before
        else:
            keep = []
            for k, task_id in enumerate(ids):
                if stage.is_open(task_id):
                    stage.mark(task_id, _DONE)
                    keep.append(k)
                else:
                    stage.stats.duplicates += 1
            if len(keep) != n:
                ids = [ids[k] for k in keep]
                items = [items[k] for k in keep]
            if not ids:
                return
        stage.stats.done += len(ids)
        if len(stage.state) > 1 << 17:
            stage.compact()
        self._forward(stage, ids, items)

    def _forward(self, stage: _Stage, ids: list[int], items: list[Any]) -> None:
        """Results of ``stage`` become the next stage's tasks, or go to the sink."""
        if stage.index + 1 < len(self.stages):
            nxt = self.stages[stage.index + 1]
            nxt.ensure(max(ids) + 1)
            nxt.pending.append((ids, items))
        else:
            self._deliver(ids, items)

    def _deliver(self, ids: list[int], items: list[Any]) -> None:
        if self.result.first_result is None:
            self.result.first_result = time.monotonic() - self.started
        self.finished += len(ids)
        self.result.delivered += len(ids)
        if self.bar is not None:
            self.bar.update(len(ids))
        if not self.plan.ordered:
            self.out.append(items)
            return
        reorder = self.reorder
        for task_id, item in zip(ids, items, strict=True):
            reorder[task_id] = item
        self._release()

    def _release(self) -> None:
        reorder = self.reorder
        ready = []
        nxt = self.next_out
        while nxt in reorder:
            item = reorder.pop(nxt)
            if item is not _SKIP:
                ready.append(item)
            nxt += 1
        self.next_out = nxt
        if ready:
            self.out.append(ready)

    def _failed(self, w: _Worker, body: dict[str, Any]) -> None:
        failed = body.get("failed")
        if not self.plan.acks and isinstance(failed, list):
            w.held -= len(failed)
            for f in failed:
                self._dead(w.stage, int(f["id"]), None, str(f.get("error")), "", 1)
            return
        if not isinstance(failed, list) or not failed or not w.inflight:
            raise p.ProtocolViolation("FAILED without failures, or without tasks in flight")
        batch = w.inflight[0]
        entries = [(int(f["id"]), f) for f in failed]
        self._answer_part(batch, [i for i, _ in entries])
        if batch.open == 0:
            w.inflight.popleft()
        w.held -= len(entries)
        tasks = batch.items_of([task_id for task_id, _ in entries])
        for (task_id, f), task in zip(entries, tasks, strict=True):
            if f.get("kind") == "timeout":
                w.doomed = True
            self._attempt_failed(
                w.stage,
                task_id,
                task,
                str(f.get("error", "failed")),
                str(f.get("traceback", "")),
                suspect=False,
            )

    def _attempt_failed(
        self, stage: _Stage, task_id: int, item: Any, error: str, tb: str, suspect: bool
    ) -> None:
        if not stage.is_open(task_id):
            return
        stage.stats.failures += 1
        attempts = stage.attempts.get(task_id, 0) + 1
        if attempts >= stage.plan.max_attempts:
            stage.attempts.pop(task_id, None)
            self._dead(stage, task_id, item, error, tb, attempts)
            return
        stage.attempts[task_id] = attempts
        stage.stats.retried += 1
        (stage.suspects if suspect else stage.retry).append((task_id, item))

    def _dead(
        self, stage: _Stage, task_id: int, item: Any, error: str, tb: str, attempts: int
    ) -> None:
        stage.mark(task_id, _DEAD)
        stage.stats.dead += 1
        letter = DeadLetter(task_id, stage.plan.name, item, error, tb, attempts)
        self.result.dead_letters.append(letter)
        self.finished += 1
        if self.bar is not None:
            self.bar.update(1)
        if self.plan.ordered:
            self.reorder[task_id] = _SKIP
            self._release()
        if self.plan.dead_letter is not None:
            try:
                self.plan.dead_letter(letter)
            except Exception as exc:
                log.error("pipeline %s: the dead-letter handler raised %r", self.plan.name, exc)

    def _lost(self, w: _Worker, cause: str, crashed: bool) -> None:
        """Forgets a worker; what it held goes back to its stage (see the protocol doc)."""
        if self.workers.get(w.ident) is not w:
            return
        del self.workers[w.ident]
        crashed = crashed and not w.doomed
        stage = w.stage
        stage.workers.remove(w)
        stage.stats.workers_lost += 1
        if not self.plan.acks:
            self.result.lost += w.held
            self.finished += w.held
        if w.inflight:
            log.info(
                "pipeline %s: worker %s %s holding %d tasks", self.plan.name, w.name, cause, w.held
            )
        for k, batch in enumerate(w.inflight):
            pending = batch.unanswered()
            if crashed and k == 0 and len(batch.ids) == 1:
                task_id, item = pending[0]
                error = f"its worker {w.name} was lost while running it: {cause}"
                self._attempt_failed(stage, task_id, item, error, "", suspect=True)
                continue
            stage.stats.retried += len(pending)
            target = stage.suspects if crashed and k == 0 else stage.retry
            target.extend(pending)
        w.inflight.clear()
        w.held = 0
        self.refused.pop(w.ident, None)

    # -- time -----------------------------------------------------------------------

    def _tick(self, now: float) -> None:
        beat = now >= self.next_beat
        if beat:
            self.next_beat = now + self.plan.heartbeat
        for w in list(self.workers.values()):
            if now - w.last_seen > self.plan.heartbeat_timeout:
                self._lost(w, f"silent for {now - w.last_seen:.1f} s", crashed=True)
            elif beat:
                self._send(w.ident, [p.HEARTBEAT])
        for token, (stage, proc) in list(self.tokens.items()):
            if proc is None or (rc := proc.poll()) is None:
                continue
            if token not in self.exits:  # what it sent before it died is read first
                self.exits[token] = now
                continue
            if now - self.exits[token] < EXIT_GRACE:
                continue
            self._drain()
            del self.tokens[token], self.exits[token]
            gone = next((w for w in self.workers.values() if w.token == token), None)
            if gone is not None:
                self._lost(gone, f"process exited ({exit_text(rc)})", crashed=True)
            elif token not in self.joined:
                self.spawn_failures += 1
            self.joined.discard(token)
            if self.abort is None and not (self.source_done and self.finished == self.next_id):
                if self.spawn_failures > 3 * max(1, stage.plan.workers) + 5:
                    self.abort = f"stage {stage.plan.name}: worker processes keep failing to start"
                else:
                    self._spawn(stage)
        if len(self.refused) > 1024:
            self.refused = {k: t for k, t in self.refused.items() if now - t < 1.0}
        if self.bar is not None:
            self.bar.set_postfix_str(self._postfix(), refresh=False)

    def _drain(self) -> None:
        while True:
            try:
                msgs = self.sock.recv_many(4096, zmq.NOBLOCK)
            except zmq.Again:
                return
            for msg in msgs:
                if isinstance(msg, list) and len(msg) >= 2:
                    self._handle(msg)

    def _postfix(self) -> str:
        parts = []
        for s in self.stages:
            text = f"{s.plan.name}: {len(s.workers)}w"
            if s.stats.retried:
                text += f" {s.stats.retried} retried"
            if s.stats.dead:
                text += f" {s.stats.dead} dead"
            parts.append(text)
        return ", ".join(parts)

    # -- ending ---------------------------------------------------------------------

    def _end(self) -> None:
        for w in list(self.workers.values()):
            self._send(w.ident, p.control(p.END, {"reason": "done"}))

    def _await_byes(self, deadline: float) -> None:
        """Workers answer END with BYE: once they have, END cannot be lost with the socket."""
        waiting = set(self.workers)
        while waiting and (left := deadline - time.monotonic()) > 0:
            if not self.sock.poll(int(left * 1000) + 1):
                break
            for msg in self.sock.recv_many(4096, zmq.NOBLOCK):
                if isinstance(msg, list) and len(msg) >= 2 and msg[1] == p.BYE:
                    waiting.discard(msg[0])

    def _install_signals(self) -> Callable[[], None]:
        def on_signal(signum: int, frame: Any) -> None:
            if self.draining:
                raise KeyboardInterrupt
            self.draining = True
            self.source_done = True
            log.warning("pipeline %s: draining (again to force)", self.plan.name)
            if self.bar is not None:
                self.bar.write("draining: finishing the tasks in flight (Ctrl-C again to stop now)")

        old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}

        def restore() -> None:
            for s, handler in old.items():
                signal.signal(s, handler)

        return restore

    def close(self, forced: bool = False) -> None:
        """Ends the workers (killing local ones that do not exit) and releases everything."""
        if self.bar is not None:
            self.bar.close()
        if self.sock is not None:
            self._end()
            self._await_byes(time.monotonic() + (0.0 if forced else 1.0))
        joined = {w.token for w in self.workers.values()}
        procs = []
        for token, (_, proc) in self.tokens.items():
            if proc is None:
                continue
            if token not in joined and proc.poll() is None:
                proc.terminate()  # still starting: it holds no work
            procs.append(proc)
        deadline = time.monotonic() + (0.0 if forced else 2.0)
        for proc in procs:
            try:
                proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self.sock is not None:
            self.sock.close(linger=0 if forced else 200)
        if self.auth is not None:
            self.auth.stop()
        self.ctx.term()
        if self.ipc_dir is not None:
            import shutil

            shutil.rmtree(self.ipc_dir, ignore_errors=True)


def _held(w: _Worker) -> int:
    return w.held


class _Skip:
    pass


_SKIP = _Skip()


class _Callback:
    """A CURVE credentials provider for the authenticator (callback(domain, key) -> bool)."""

    def __init__(self, fn: Callable[[str, bytes], bool]) -> None:
        self.fn = fn

    def callback(self, domain: str, key: bytes) -> bool:
        return self.fn(domain, key)
