"""A pipeline worker: joins a head, runs one stage's function over batches of tasks.

``python -m zeropipe.pipelines.worker --connect ENDPOINT`` runs one worker process; the head
starts its local workers this way, and ``zeropipe worker --procs N`` starts N of them under
a supervisor (see :func:`serve`). The worker's main thread does the I/O and calls the
function; a watchdog thread sends heartbeats while the function runs and ends the process
when one task runs past the stage's timeout (after reporting it)."""

from __future__ import annotations

import argparse
import ctypes
import os
import signal
import socket as _socket
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from . import _zmq as zmq
from . import protocol as p
from .errors import PipelineError, WorkerRefused
from .payload import MESSAGES, BatchError, Edge, Packer
from .types import map_types, resolve, schema_text

#: Exit codes a supervisor reads.
EXIT_DONE = 0
EXIT_LOST = 1  # the head went away (a local worker does not outlive its head)
EXIT_INIT = 3  # the stage's init hook raised
EXIT_REFUSED = 4  # wrong pipeline or schema
EXIT_TIMEOUT = 75  # a task ran past its timeout
ANSWER_DELAY = 0.002  # answers of queued batches go out together, once 2 ms of them are ready


@dataclass
class Options:
    """How a worker joins: where, and what it insists on."""

    connect: str
    pipeline: str = ""  # the pipeline name it must join ("" = any)
    stage: str = ""  # the stage it asks for ("" = the head chooses)
    schemas: dict[str, str] = field(default_factory=dict)  # stage -> schema text it expects
    token: str = ""  # a local worker's name, given by the head that started it
    credit: int = 1 << 16  # at most this many tasks in flight
    local: bool = False  # exit when the head goes away (else wait for it to come back)
    server_key: str | None = None  # CURVE: the head's public key (Z85)
    public_key: str | None = None
    secret_key: str | None = None
    join_timeout: float = 0.0  # give up joining after this long (0: keep trying)


class _Lost(Exception):
    """The head is gone (no message from it for heartbeat_timeout) or asked us to rejoin."""


class Worker:
    def __init__(self, opts: Options, ctx: zmq.Context | None = None) -> None:
        self.opts = opts
        self.ctx = ctx or zmq.Context()
        self._own_ctx = ctx is None
        self.sock: Any = self._socket()
        self.send_lock = threading.Lock()
        self.stopping = False  # SIGTERM: finish the batch in hand, then leave
        # watchdog's view of the main thread
        self.running: list[int] | None = None  # ids of the batch being computed
        self.done_count: Callable[[], int] = lambda: 0
        self.heartbeat_ivl = 1.0
        self.heartbeat_timeout = 10.0
        self.timeout: float | None = None
        self.last_beat = 0.0

    def _socket(self) -> Any:
        sock: Any = self.ctx.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 2000)
        sock.setsockopt(zmq.IMMEDIATE, 1)
        sock.setsockopt(zmq.SNDHWM, 0)
        sock.setsockopt(zmq.RCVHWM, 0)
        if self.opts.server_key:
            sock.setsockopt(zmq.CURVE_SERVERKEY, self.opts.server_key.encode())
            if self.opts.public_key and self.opts.secret_key:
                public, secret = self.opts.public_key.encode(), self.opts.secret_key.encode()
            else:
                public, secret = zmq.curve_keypair()
            sock.setsockopt(zmq.CURVE_PUBLICKEY, public)
            sock.setsockopt(zmq.CURVE_SECRETKEY, secret)
        sock.connect(self.opts.connect)
        return sock

    # -- life cycle -----------------------------------------------------------

    def run(self) -> int:
        """Join, work until the head ends the pipeline; returns an exit code."""
        threading.Thread(target=self._watchdog, name="zeropipe-watchdog", daemon=True).start()
        started = time.monotonic()
        try:
            while True:
                try:
                    ready = self._join(started)
                except _Lost:
                    if self.opts.local or self.stopping:
                        return EXIT_LOST
                    self._reconnect()
                    continue
                if ready is None:
                    return EXIT_LOST
                try:
                    return self._serve(ready)
                except _Lost:
                    if self.opts.local or self.stopping:
                        return EXIT_LOST
                    self._reconnect()
                    started = time.monotonic()
        finally:
            self.sock.close(linger=1000)
            if self._own_ctx:
                self.ctx.term()

    def _send_many(self, messages: list[list[bytes]]) -> None:
        with self.send_lock:
            try:
                self.sock.send_many(messages)
            except zmq.Again:
                raise _Lost() from None

    def _reconnect(self) -> None:
        """A new connection (and routing id): nothing of an earlier session, such as a HELLO
        queued on a link that stalled, can reach the head after this."""
        with self.send_lock:
            self.sock.close(linger=0)
            self.sock = self._socket()

    def _send(self, frames: list[bytes], block: bool = True) -> None:
        with self.send_lock:
            try:
                self.sock.send_multipart(frames, 0 if block else zmq.NOBLOCK)
            except zmq.Again:
                if block:
                    raise _Lost() from None

    def _join(self, started: float) -> dict[str, Any] | None:
        hello = {
            "protocol": p.VERSION,
            "pipeline": self.opts.pipeline,
            "stage": self.opts.stage,
            "schemas": self.opts.schemas,
            "credit": self.opts.credit,
            "token": self.opts.token,
            "worker": f"{_socket.gethostname()}:{os.getpid()}",
        }
        sent = False
        while True:
            if sent:  # no READY for that HELLO: the next one goes on a new connection
                self._reconnect()
                sent = False
            if self.opts.join_timeout and time.monotonic() - started > self.opts.join_timeout:
                return None
            if self.stopping:
                return None
            if self.opts.local and time.monotonic() - started > self.heartbeat_timeout + 10:
                return None
            try:  # IMMEDIATE: refused (Again) until connected
                with self.send_lock:
                    self.sock.send_multipart(p.control(p.HELLO, hello), zmq.NOBLOCK)
                sent = True
            except zmq.Again:
                time.sleep(0.01)
                continue
            deadline = time.monotonic() + max(self.heartbeat_timeout, 2.0)
            while (left := deadline - time.monotonic()) > 0:
                if not self.sock.poll(int(left * 1000) + 1):
                    break
                frames = self.sock.recv_multipart()
                if frames[0] == p.READY:
                    return p.parse_control(frames)
                if frames[0] == p.REFUSE:
                    body = p.parse_control(frames)
                    if not body.get("rejoin"):
                        raise WorkerRefused(f"the head refused this worker: {body.get('reason')}")
                    break
                if frames[0] == p.END:
                    return None
                # TASKS or HEARTBEAT meant for an earlier session of ours: ignored

    def _serve(self, ready: dict[str, Any]) -> int:
        try:
            stage = Stage.from_ready(ready)
        except PipelineError as exc:  # this host's code differs from the head's
            self._send(p.control(p.BYE, {"reason": "refused", "error": str(exc)}), block=False)
            raise WorkerRefused(str(exc)) from None
        self.heartbeat_ivl = float(ready["heartbeat"])
        self.heartbeat_timeout = float(ready["heartbeat_timeout"])
        self.timeout = ready.get("timeout")
        self.sock.setsockopt(zmq.SNDTIMEO, int(self.heartbeat_timeout * 1000))
        if stage.init is not None:
            try:
                stage.init()
            except Exception as exc:
                self._send(p.control(p.BYE, {"reason": "init", "error": _error(exc)}))
                _report(f"the init hook of stage {stage.name} raised", exc)
                return EXIT_INIT
        try:
            return self._loop(stage)
        finally:
            if stage.close is not None:
                try:
                    stage.close()
                except Exception as exc:
                    _report(f"the close hook of stage {stage.name} raised", exc)

    def _loop(self, stage: Stage) -> int:
        sock = self.sock
        last_from_head = time.monotonic()
        ivl_ms = int(self.heartbeat_ivl * 1000)
        while True:
            now = time.monotonic()
            if now - self.last_beat >= self.heartbeat_ivl:
                self._send([p.HEARTBEAT], block=False)
                self.last_beat = now
            if self.stopping:
                self._send(p.control(p.BYE, {"reason": "leaving"}))
                return EXIT_DONE
            if not sock.poll(ivl_ms):
                if time.monotonic() - last_from_head > self.heartbeat_timeout:
                    raise _Lost()
                continue
            last_from_head = time.monotonic()
            answers: list[list[bytes]] = []
            flush_at = time.monotonic() + ANSWER_DELAY
            try:
                for msg in sock.recv_many(1024):
                    frames = msg if isinstance(msg, list) else [msg]
                    command = frames[0]
                    if command == p.TASKS:
                        self._tasks(stage, frames, answers)
                        if self.stopping:
                            break
                        if time.monotonic() >= flush_at:  # the head refills as answers come
                            self._send_many(answers)
                            answers = []
                            flush_at = time.monotonic() + ANSWER_DELAY
                    elif command == p.END:
                        self._send(p.control(p.BYE, {"reason": "end"}), block=False)
                        return EXIT_DONE
                    elif command == p.REFUSE:
                        raise _Lost()
            finally:
                if answers:
                    self._send_many(answers)

    def _tasks(self, stage: Stage, frames: list[bytes], answers: list[list[bytes]]) -> None:
        id_frame, ids, _, payload = p.parse_batch(frames, with_busy=False)
        try:
            items = stage.inbound.decode(payload, len(ids))
        except BatchError as exc:
            failed = [{"id": i, "error": f"cannot decode the task: {exc}"} for i in ids]
            answers.append(p.control(p.FAILED, {"failed": failed}))
            return
        outs: list[Any] = []
        fails: list[dict[str, Any]] = []
        self.done_count = lambda: len(outs) + len(fails)
        self.running = ids
        fn = stage.fn
        started = time.perf_counter_ns()
        it = iter(items)
        append = outs.append
        while True:
            try:
                for item in it:
                    append(fn(item))
                break
            except Exception as exc:
                fails.append({"id": ids[len(outs) + len(fails)], **_error(exc)})
        busy = time.perf_counter_ns() - started
        self.running = None
        ok_ids = ids
        if fails:
            failed_ids = {f["id"] for f in fails}
            ok_ids = [i for i in ids if i not in failed_ids]
            id_frame = p.pack_ids(ok_ids)
        self._answer(stage, ok_ids, id_frame, outs, fails, busy, answers)

    def _answer(
        self,
        stage: Stage,
        ids: list[int],
        id_frame: bytes,
        outs: list[Any],
        fails: list[dict[str, Any]],
        busy: int,
        answers: list[list[bytes]],
    ) -> None:
        payload, bad = stage.outbound.encode(outs)
        if bad:
            fails.extend(
                {"id": ids[k], "error": f"cannot encode the result: {why}"} for k, why in bad
            )
            skip = {k for k, _ in bad}
            ids = [task_id for k, task_id in enumerate(ids) if k not in skip]
            id_frame = p.pack_ids(ids)
        if ids:
            answers.append(p.results(id_frame, busy, payload))
        if fails:
            answers.append(p.control(p.FAILED, {"failed": fails}))

    # -- watchdog ---------------------------------------------------------------

    def _watchdog(self) -> None:
        seen: tuple[int, int] | None = None
        since = time.monotonic()
        while True:
            time.sleep(min(0.05, self.heartbeat_ivl / 4))
            running = self.running
            if running is None:
                seen = None
                continue
            now = time.monotonic()
            state = (id(running), self.done_count())
            if state != seen:
                seen, since = state, now
            if now - self.last_beat >= self.heartbeat_ivl and self.send_lock.acquire(False):
                try:
                    self.sock.send_multipart([p.HEARTBEAT], zmq.NOBLOCK)
                    self.last_beat = now
                except zmq.ZMQError:
                    pass
                finally:
                    self.send_lock.release()
            if self.timeout and now - since > self.timeout and self.running is running:
                index = state[1]
                if index < len(running):
                    self._timed_out(running[index])

    def _timed_out(self, task_id: int) -> None:
        error = f"TimeoutError: the task ran longer than its timeout of {self.timeout:g} s"
        failed = {"failed": [{"id": task_id, "error": error, "kind": "timeout"}]}
        with self.send_lock:
            try:
                self.sock.send_multipart(p.control(p.FAILED, failed), zmq.NOBLOCK)
            except zmq.ZMQError:
                pass
        time.sleep(0.2)  # lets the reactor write it out
        os._exit(EXIT_TIMEOUT)


HOOKS = ("init", "close")


@dataclass
class Stage:
    """What READY told us, resolved against this host's code."""

    name: str
    fn: Callable[[Any], Any]
    init: Callable[[], Any] | None
    close: Callable[[], Any] | None
    inbound: Packer
    outbound: Packer

    @classmethod
    def from_ready(cls, ready: dict[str, Any]) -> Stage:
        fn = resolve(ready["fn"], "map stage")
        in_t, out_t = map_types(fn)
        mine = f"{schema_text(in_t)} -> {schema_text(out_t)}"
        if mine != ready["schema"]:
            raise WorkerRefused(
                f"stage {ready['stage']}: {ready['fn']} on this host has the types "
                f"{mine!r}, the pipeline's is {ready['schema']!r}"
            )
        hooks = [
            resolve(ready[h], f"{h} hook") if ready.get(h) else None for h in ("init", "close")
        ]
        return cls(
            ready["stage"],
            fn,
            hooks[0],
            hooks[1],
            Packer(_edge(ready["in"])),
            Packer(_edge(ready["out"])),
        )


def _edge(desc: dict[str, Any]) -> Edge:
    t: Any = Any
    if desc["layout"] == MESSAGES:
        t = resolve(desc["path"], "message type")
    return Edge(desc["layout"], desc["codec"], t)


def _error(exc: BaseException) -> dict[str, str]:
    return {
        "error": f"{type(exc).__name__}: {exc}",
        "traceback": "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)),
    }


def _report(what: str, exc: BaseException) -> None:
    print(f"zeropipe worker: {what}:", file=sys.stderr)
    traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)


def _die_with_parent() -> None:
    """Linux: this process gets SIGKILL when the process that started it exits."""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass


# -- command line ------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--connect", required=True, help="the head's endpoint (tcp://host:port)")
    parser.add_argument("--pipeline", default="", help="a pipeline file, or the name to insist on")
    parser.add_argument(
        "--stage", default="", help="the stage to work on (default: the head's choice)"
    )
    parser.add_argument("--credit", type=int, default=1 << 16, help="most tasks held at once")
    parser.add_argument("--server-key", help="CURVE: the head's public key (Z85)")
    parser.add_argument("--public-key", help="CURVE: this worker's public key (Z85)")
    parser.add_argument("--secret-key", help="CURVE: this worker's secret key (Z85)")
    parser.add_argument("--join-timeout", type=float, default=0.0, help="seconds (0: forever)")


def options_from(args: argparse.Namespace) -> Options:
    name, schemas = args.pipeline, {}
    if name and (name.endswith(".toml") or os.path.exists(name)):
        from .builder import load

        plan = load(name).validate()
        name, schemas = plan.name, {s.name: s.schema for s in plan.stages}
    return Options(
        connect=args.connect,
        pipeline=name,
        stage=args.stage,
        schemas=schemas,
        credit=args.credit,
        server_key=args.server_key,
        public_key=args.public_key,
        secret_key=args.secret_key,
        join_timeout=args.join_timeout,
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m zeropipe.pipelines.worker")
    add_arguments(parser)
    parser.add_argument("--token", default="", help=argparse.SUPPRESS)
    parser.add_argument("--local", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--path", default="", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.path:
        sys.path[:0] = [p for p in args.path.split(os.pathsep) if p not in sys.path]
    try:
        opts = options_from(args)
    except PipelineError as exc:
        print(f"zeropipe worker: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    opts.token, opts.local = args.token, args.local
    if opts.local:
        _die_with_parent()
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # the head drains on Ctrl-C, not us
    worker = Worker(opts)

    def leave(signum: int, frame: Any) -> None:
        worker.stopping = True

    signal.signal(signal.SIGTERM, leave)
    try:
        return worker.run()
    except WorkerRefused as exc:
        print(f"zeropipe worker: {exc}", file=sys.stderr)
        return EXIT_REFUSED


def serve(args: argparse.Namespace, procs: int) -> int:
    """``zeropipe worker --procs N``: N worker processes, restarted when one dies, until the
    pipeline ends (or Ctrl-C / SIGTERM: each finishes its batch and leaves)."""
    argv = [sys.executable, "-m", "zeropipe.pipelines.worker", "--connect", args.connect]
    for flag in ("pipeline", "stage", "server_key", "public_key", "secret_key"):
        if value := getattr(args, flag):
            argv += [f"--{flag.replace('_', '-')}", str(value)]
    argv += ["--credit", str(args.credit), "--join-timeout", str(args.join_timeout)]
    argv += ["--path", os.pathsep.join(sys.path)]
    children: dict[int, subprocess.Popen[bytes]] = {}
    stopping = False

    def stop(signum: int, frame: Any) -> None:
        nonlocal stopping
        stopping = True
        for child in children.values():
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for n in range(procs):
        children[n] = subprocess.Popen(argv, preexec_fn=_ignore_sigint)
    code = EXIT_DONE
    while children:
        time.sleep(0.1)
        for n, child in list(children.items()):
            rc = child.poll()
            if rc is None:
                continue
            del children[n]
            if rc in (EXIT_DONE, EXIT_REFUSED, EXIT_INIT) or stopping:
                code = max(code, rc)
                if rc != EXIT_DONE and not stopping:
                    stop(signal.SIGTERM, None)
                continue
            print(f"zeropipe worker: process {child.pid} ended ({exit_text(rc)}); restarting")
            children[n] = subprocess.Popen(argv, preexec_fn=_ignore_sigint)
    return code


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def exit_text(rc: int) -> str:
    """How a worker process ended, from its return code."""
    if rc < 0:
        try:
            return f"killed by {signal.Signals(-rc).name}"
        except ValueError:
            return f"signal {-rc}"
    return {EXIT_TIMEOUT: "a task timed out", EXIT_LOST: "lost the head"}.get(rc, f"exit code {rc}")


if __name__ == "__main__":
    sys.exit(main())


__all__ = ["Options", "Worker", "main", "serve"]
