"""Pipelines under faults, on real worker processes: workers killed, stopped, leaving and
joining; tasks that raise, kill their worker or hang past their timeout.

Whatever happens, every task's result reaches the sink exactly once or the task is a dead
letter, and the run ends. Stage functions live in tests/fault_tasks.py; they log what each
process does to files, and the tests wait on those files (not on time) to act mid-run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import fault_tasks as f
import pytest

from zeropipe.pipelines import DeadLetter, Pipeline, RunResult

WAIT_S = 20.0  # hang guard of every wait on the workers
TESTS = Path(__file__).resolve().parent


@pytest.fixture(autouse=True)
def fault_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(f.DIR_ENV, str(tmp_path))
    monkeypatch.delenv("FAULT_GATE_FROM", raising=False)
    monkeypatch.delenv("FAULT_GATE2_AT", raising=False)
    f.reset()
    yield tmp_path
    f.reset()


def pipeline(name: str, n: int) -> Pipeline:
    return Pipeline(name, heartbeat=0.2, heartbeat_timeout=2.0).source(f.numbers, args=(n,))


def check_exactly_once(result: RunResult, delivered: Iterable[Any], n: int) -> None:
    """Each task's result was delivered exactly once, unless the task is a dead letter."""
    dead = [d.task for d in result.dead_letters]
    assert len(set(dead)) == len(dead), f"a task dead-lettered twice: {dead}"
    expected = Counter((x, x * x) for x in range(n) if x not in dead)
    got = Counter(tuple(item) for item in delivered)
    assert got == expected, f"missing {expected - got}, extra {got - expected}\n{result.summary()}"
    assert result.tasks == n
    assert result.delivered == n - len(dead)


def events(directory: Path) -> list[tuple[str, int, int]]:
    """The workers' log: (what, pid, task)."""
    path = directory / "log"
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        what, pid, x = line.split()
        out.append((what, int(pid), int(x)))
    return out


def attempts(directory: Path, x: int) -> int:
    path = directory / f"attempt-{x}"
    return path.stat().st_size if path.exists() else 0


def live_child(pid: int) -> bool:
    """Whether ``pid`` is a running (not dead, not zombie) child of this process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    fields = stat.rsplit(")", 1)[1].split()
    return fields[0] != "Z" and int(fields[1]) == os.getpid()


def wait_until(what: str, predicate: Callable[[], Any], timeout: float = WAIT_S) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)
    return value


def open_gate(directory: Path, name: str = "gate") -> None:
    (directory / name).touch()


class Background:
    """Runs ``fn`` in a thread; ``join`` re-raises what it raised."""

    def __init__(self, fn: Callable[[], None]) -> None:
        self.errors: list[BaseException] = []
        self.thread = threading.Thread(target=self._run, args=(fn,), daemon=True)
        self.thread.start()

    def _run(self, fn: Callable[[], None]) -> None:
        try:
            fn()
        except BaseException as exc:
            self.errors.append(exc)

    def join(self) -> None:
        self.thread.join(WAIT_S)
        assert not self.thread.is_alive(), "the helper thread is still running"
        if self.errors:
            raise self.errors[0]


def blocked_workers(directory: Path, count: int, gate_from: int) -> list[int]:
    """Waits until ``count`` live worker processes are waiting at the gate; their pids."""

    def blocked() -> list[int] | None:
        pids = []
        for what, pid, x in events(directory):
            if what == "start" and x >= gate_from and pid not in pids and live_child(pid):
                pids.append(pid)
        return pids if len(pids) >= count else None

    return list(wait_until(f"{count} workers at the gate", blocked))


# -- workers killed, stopped, leaving, joining --------------------------------------------


def test_kill_9_workers_mid_run(fault_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Three workers are killed with SIGKILL while they hold tasks (some of them at a gate,
    some computing); their tasks run again elsewhere and each result arrives once."""
    n, kills = 80, 3
    monkeypatch.setenv("FAULT_GATE_FROM", "30")
    killed: list[int] = []

    def killer() -> None:
        try:
            while len(killed) < kills:

                def victim() -> int | None:
                    for what, pid, _ in reversed(events(fault_dir)):
                        if what == "start" and pid not in killed and live_child(pid):
                            return pid
                    return None

                pid = wait_until("a live worker to kill", victim)
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
        finally:
            open_gate(fault_dir)

    helper: list[Background] = []
    result = (
        pipeline("kill9", n)
        .map(f.gated_pair, workers=2, max_attempts=kills + 2)
        .sink(f.collect)
        .run(progress=False, on_start=lambda _: helper.append(Background(killer)))
    )
    helper[0].join()
    check_exactly_once(result, f.SEEN, n)
    assert result.ok, result.summary()
    stats = result.stages[0]
    assert len(killed) == kills
    assert stats.workers_lost >= kills, result.summary()
    assert stats.workers_joined >= kills + 1, result.summary()
    assert stats.retried >= 1, result.summary()
    ran = {pid for what, pid, _ in events(fault_dir) if what == "done"}
    assert ran - set(killed), "no worker started after the kills finished any task"


def test_stopped_worker_is_replaced_and_its_late_results_dropped(
    fault_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker frozen (SIGSTOP) past heartbeat_timeout is given up; its task runs elsewhere.
    Woken up (SIGCONT), it finishes the task and answers: the head must drop that answer.

    Three workers holding one task each wait at the gate; one is frozen, the gate opens. The
    last task waits for a second gate, opened once the woken worker has exited, so the run
    is still going when the late answer comes (and one worker is always free to take the
    frozen worker's task)."""
    n = 60
    monkeypatch.setenv("FAULT_GATE_FROM", "10")
    monkeypatch.setenv("FAULT_GATE2_AT", str(n - 1))
    stopped: list[int] = []
    held: set[int] = set()

    def scenario() -> None:
        try:
            pid = blocked_workers(fault_dir, 3, 10)[0]
            os.kill(pid, signal.SIGSTOP)
            stopped.append(pid)
            log = events(fault_dir)
            started = {x for what, p, x in log if p == pid and what == "start"}
            held.update(started - {x for what, p, x in log if p == pid and what == "done"})
            open_gate(fault_dir)

            def rerun() -> bool:
                return any(
                    what == "start" and p != pid and x in held for what, p, x in events(fault_dir)
                )

            wait_until("the stopped worker's task to run elsewhere", rerun)
            os.kill(pid, signal.SIGCONT)
            wait_until("the woken worker to exit", lambda: not live_child(pid))
        finally:
            for pid in stopped:
                try:
                    os.kill(pid, signal.SIGCONT)
                except ProcessLookupError:
                    pass
            open_gate(fault_dir)
            open_gate(fault_dir, "gate2")

    helper: list[Background] = []
    result = (
        pipeline("sigstop", n)
        .map(f.gated_pair, workers=3, batch=1, credit=1)
        .run(progress=False, on_start=lambda _: helper.append(Background(scenario)))
    )
    helper[0].join()
    assert result.results is not None
    check_exactly_once(result, result.results, n)
    assert result.ok, result.summary()
    assert result.stages[0].workers_lost >= 1, result.summary()
    assert len(held) == 1
    late = {x for what, p, x in events(fault_dir) if p == stopped[0] and what == "done"}
    assert held <= late, "the woken worker never finished its task (no late answer was made)"


def test_worker_leaving_on_sigterm(fault_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """SIGTERM: the worker finishes the task in hand, says BYE and exits through its close
    hook; what it held but had not started runs elsewhere, and no attempt counts as failed."""
    n = 40
    monkeypatch.setenv("FAULT_GATE_FROM", "10")
    leaver: list[int] = []

    def scenario() -> None:
        try:
            pid = blocked_workers(fault_dir, 2, 10)[0]
            os.kill(pid, signal.SIGTERM)
            leaver.append(pid)
        finally:
            open_gate(fault_dir)

    helper: list[Background] = []
    result = (
        pipeline("leave", n)
        .map(f.gated_pair, workers=2, batch=1, credit=2, close=f.close_hook)
        .sink(f.collect)
        .run(progress=False, on_start=lambda _: helper.append(Background(scenario)))
    )
    helper[0].join()
    check_exactly_once(result, f.SEEN, n)
    assert result.ok, result.summary()
    stats = result.stages[0]
    assert stats.failures == 0, result.summary()
    assert stats.dead == 0
    assert stats.workers_lost >= 1, result.summary()
    pid = leaver[0]
    mine = [(what, x) for what, p, x in events(fault_dir) if p == pid]
    assert mine[-1] == ("close", -1), mine
    started = Counter(x for what, x in mine if what == "start")
    finished = Counter(x for what, x in mine if what == "done")
    assert started == finished, f"the leaving worker dropped a task it had started: {mine}"


def test_workers_leaving_many_times(fault_dir: Path) -> None:
    """Local workers that leave cleanly (nine times, more than the head's budget for
    workers that fail to start) are replaced and the run completes: a worker that joined
    and then left did not fail to start."""
    n = 60
    result = (
        pipeline("leave-often", n)
        .map(f.leave_at, workers=1, batch=1, credit=2, close=f.close_hook)
        .sink(f.collect)
        .run(progress=False)
    )
    check_exactly_once(result, f.SEEN, n)
    assert result.ok, result.summary()
    stats = result.stages[0]
    assert stats.failures == 0, result.summary()
    assert stats.workers_lost == 9, result.summary()
    assert stats.workers_joined == 10, result.summary()
    assert sum(1 for what, _, _ in events(fault_dir) if what == "close") == 10


def test_worker_joining_late(fault_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """One local worker, then a second started by hand with ``python -m
    zeropipe.pipelines.worker --connect``: both work, and the late one exits 0 at the end.
    A worker insisting on another pipeline's name is refused (exit code 4)."""
    n = 30
    monkeypatch.setenv("FAULT_GATE_FROM", "1")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(TESTS), env.get("PYTHONPATH", "")])
    procs: dict[str, subprocess.Popen[bytes]] = {}
    outputs: dict[str, Path] = {}

    def start_worker(label: str, endpoint: str, name: str) -> subprocess.Popen[bytes]:
        out = outputs[label] = fault_dir / f"{label}.out"
        with open(out, "wb") as sink:
            proc = subprocess.Popen(
                [
                    *(sys.executable, "-m", "zeropipe.pipelines.worker"),
                    *("--connect", endpoint, "--pipeline", name),
                    *("--join-timeout", str(WAIT_S)),
                ],
                env=env,
                stdout=sink,
                stderr=subprocess.STDOUT,
            )
        procs[label] = proc
        return proc

    def scenario(endpoint: str) -> None:
        try:
            wait_until("the local worker's first task", lambda: events(fault_dir))
            wrong = start_worker("wrong", endpoint, "another-pipeline")
            late = start_worker("late", endpoint, "late-join")

            def late_started() -> bool:
                return any(p == late.pid and w == "start" for w, p, _ in events(fault_dir))

            wait_until("the late worker's first task", late_started)
            wait_until("the refused worker to exit", lambda: wrong.poll() is not None)
        finally:
            open_gate(fault_dir)

    helper: list[Background] = []
    try:
        result = (
            pipeline("late-join", n)
            .map(f.gated_pair, workers=1, batch=1, credit=1)
            .run(
                progress=False,
                on_start=lambda ep: helper.append(Background(lambda: scenario(ep))),
            )
        )
        helper[0].join()
        codes = {label: proc.wait(WAIT_S) for label, proc in procs.items()}
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    output = {label: path.read_text() for label, path in outputs.items()}
    assert codes == {"wrong": 4, "late": 0}, output
    assert "another-pipeline" in output["wrong"], output
    assert result.results is not None
    check_exactly_once(result, result.results, n)
    assert result.ok, result.summary()
    assert result.stages[0].workers_joined == 2, result.summary()
    worked = {p for what, p, _ in events(fault_dir) if what == "done"}
    assert procs["late"].pid in worked
    assert len(worked) == 2, worked


# -- tasks that fail ------------------------------------------------------------------


def test_task_raising(fault_dir: Path) -> None:
    """A task raising once is retried and succeeds; one that always raises becomes a dead
    letter after max_attempts, with its error and traceback; the others run once."""
    n = 30
    result = (
        pipeline("raises", n)
        .map(f.raise_for, workers=2, max_attempts=3)
        .sink(f.collect)
        .dead_letter(f.on_dead)
        .run(progress=False)
    )
    check_exactly_once(result, f.SEEN, n)
    assert not result.ok
    assert len(result.dead_letters) == 1, result.summary()
    letter = result.dead_letters[0]
    assert isinstance(letter, DeadLetter)
    assert (letter.id, letter.task, letter.stage, letter.attempts) == (13, 13, "raise_for", 3)
    assert letter.error == "ValueError: bad task 13"
    assert letter.traceback.startswith("Traceback (most recent call last)")
    assert "raise_for" in letter.traceback
    assert "ValueError: bad task 13" in letter.traceback
    dead = list(f.DEAD)
    assert dead == [letter]
    stats = result.stages[0]
    assert (stats.done, stats.failures, stats.retried, stats.dead) == (29, 4, 3, 1)
    assert attempts(fault_dir, 13) == 3
    assert attempts(fault_dir, 7) == 2
    assert all(attempts(fault_dir, x) == 1 for x in range(n) if x not in (7, 13))
    assert "dead letter: task 13" in result.summary()


def test_task_exiting_once(fault_dir: Path) -> None:
    """A task that kills its worker process once is run again (alone) and succeeds."""
    n = 30
    result = pipeline("exit-once", n).map(f.exit_once, workers=2).run(progress=False)
    assert result.results is not None
    check_exactly_once(result, result.results, n)
    assert result.ok, result.summary()
    assert attempts(fault_dir, 17) == 2
    assert result.stages[0].workers_lost >= 1, result.summary()


def test_task_always_exiting(fault_dir: Path) -> None:
    """A task that kills every worker running it is blamed alone: a dead letter after
    max_attempts; every other task is delivered."""
    n = 30
    result = (
        pipeline("exit-always", n)
        .map(f.exit_always, workers=2, max_attempts=3)
        .dead_letter(f.on_dead)
        .run(progress=False)
    )
    assert result.results is not None
    check_exactly_once(result, result.results, n)
    assert [(d.id, d.task, d.attempts) for d in result.dead_letters] == [(17, 17, 3)]
    error = result.dead_letters[0].error
    assert "exit code 3" in error, error
    dead = list(f.DEAD)
    assert dead == result.dead_letters
    # the first death may take a whole batch down (then no single task is blamed for it)
    assert 3 <= attempts(fault_dir, 17) <= 4
    stats = result.stages[0]
    assert stats.dead == 1
    assert stats.workers_lost >= 3, result.summary()


def test_task_hanging_past_timeout(fault_dir: Path) -> None:
    """A task running past ``timeout`` is ended with its worker: a TimeoutError dead letter
    when it always hangs, a result when only its first attempt hung."""
    n = 20
    result = (
        pipeline("hang", n)
        .map(f.hang_for, workers=2, timeout=0.5, max_attempts=2)
        .run(progress=False)
    )
    assert result.results is not None
    check_exactly_once(result, result.results, n)
    assert [(d.id, d.task, d.attempts) for d in result.dead_letters] == [(5, 5, 2)]
    error = result.dead_letters[0].error
    assert error.startswith("TimeoutError"), error
    assert "0.5" in error, error
    assert attempts(fault_dir, 8) == 2
    assert attempts(fault_dir, 5) >= 2
    stats = result.stages[0]
    assert stats.workers_lost >= 3, result.summary()


def test_collecting_stream_sink_under_kills(
    fault_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stream sink sees each result once while a worker dies mid-run, in source order."""
    n = 40
    monkeypatch.setenv("FAULT_GATE_FROM", "15")

    def killer() -> None:
        try:
            pid = blocked_workers(fault_dir, 1, 15)[0]
            os.kill(pid, signal.SIGKILL)
        finally:
            open_gate(fault_dir)

    helper: list[Background] = []
    result = (
        Pipeline("stream-kill", ordered=True, heartbeat=0.2, heartbeat_timeout=2.0)
        .source(f.numbers, args=(n,))
        .map(f.gated_pair, workers=2, batch=2)
        .sink(f.collect_all)
        .run(progress=False, on_start=lambda _: helper.append(Background(killer)))
    )
    helper[0].join()
    assert result.ok, result.summary()
    assert result.value == [[x, x * x] for x in range(n)]
    assert result.stages[0].workers_lost >= 1
