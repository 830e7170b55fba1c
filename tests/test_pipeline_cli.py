"""`zeropipe run` and `zeropipe worker` as a user runs them: real processes, signals, exit codes."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
SUMMARY = re.compile(r"pipeline (\S+): (\d+)/(\d+) results, (\d+) dead letters")


def pipeline_file(tmp_path: Path, n: int, workers: int = 2, bind: str | None = None) -> Path:
    path = tmp_path / "pipe.toml"
    bind_line = f'bind = "{bind}"\n' if bind else ""
    path.write_text(
        f'[pipeline]\nname = "cli-test"\nheartbeat = 0.2\nheartbeat_timeout = 3.0\n{bind_line}'
        f'[source]\nfn = "cli_tasks:numbers"\nargs = [{n}]\n'
        f'[[map]]\nfn = "cli_tasks:slow_square"\nworkers = {workers}\nbatch = 1\n'
    )
    return path


def env(tmp_path: Path, seconds: float) -> dict[str, str]:
    marks = tmp_path / "marks"
    marks.mkdir(exist_ok=True)
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(TESTS), *sys.path]),
        "CLI_TASK_DIR": str(marks),
        "CLI_TASK_SECONDS": str(seconds),
    }


def zeropipe(*args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "zeropipe.cli", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


@pytest.fixture
def procs() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=10)


def wait_for(predicate: object, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.02)


def started_tasks(tmp_path: Path) -> set[int]:
    return {int(p.name.split(".")[0]) for p in (tmp_path / "marks").iterdir()}


def test_run_prints_a_summary_and_exits_0(tmp_path: Path, procs: list) -> None:
    proc = zeropipe("run", str(pipeline_file(tmp_path, 40)), env=env(tmp_path, 0))
    procs.append(proc)
    out, err = proc.communicate(timeout=50)
    assert proc.returncode == 0, err
    match = SUMMARY.search(out)
    assert match, out
    assert match.groups() == ("cli-test", "40", "40", "0")


def test_ctrl_c_drains_the_tasks_in_flight(tmp_path: Path, procs: list) -> None:
    proc = zeropipe("run", str(pipeline_file(tmp_path, 400)), env=env(tmp_path, 0.05))
    procs.append(proc)
    wait_for(lambda: len(started_tasks(tmp_path)) >= 6)
    os.killpg(proc.pid, signal.SIGINT)  # as a terminal's Ctrl-C: the whole process group
    out, err = proc.communicate(timeout=50)
    assert proc.returncode == 1, err  # finished, but not every task was read
    assert "interrupted" in out
    assert "draining" in err
    match = SUMMARY.search(out)
    assert match, out
    delivered, issued = int(match.group(2)), int(match.group(3))
    assert delivered == issued  # everything dispatched reached the sink
    assert 6 <= issued < 400
    assert started_tasks(tmp_path) >= set(range(issued))


def test_a_second_ctrl_c_stops_at_once(tmp_path: Path, procs: list) -> None:
    proc = zeropipe("run", str(pipeline_file(tmp_path, 100)), env=env(tmp_path, 30))
    procs.append(proc)
    wait_for(lambda: len(started_tasks(tmp_path)) >= 2)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=20)  # the tasks would take 30 s each
    assert proc.returncode == 130, err
    workers = {int(p.name.split(".")[1]) for p in (tmp_path / "marks").iterdir()}
    for pid in workers:  # the local workers were killed with it
        wait_for(lambda pid=pid: not _alive(pid), timeout=10)


def test_sigterm_drains_too(tmp_path: Path, procs: list) -> None:
    proc = zeropipe("run", str(pipeline_file(tmp_path, 400)), env=env(tmp_path, 0.05))
    procs.append(proc)
    wait_for(lambda: len(started_tasks(tmp_path)) >= 4)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=50)
    assert proc.returncode == 1, err
    match = SUMMARY.search(out)
    assert match, out
    assert match.group(2) == match.group(3)


def test_a_bad_file_is_a_clear_error(tmp_path: Path, procs: list) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(
        '[pipeline]\nname = "x"\n[source]\nfn = "cli_tasks:nope"\n[[map]]\nfn = "a:b"\n'
    )
    proc = zeropipe("run", str(path), env=env(tmp_path, 0))
    procs.append(proc)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 2
    assert "cli_tasks has no nope" in err


def test_workers_join_from_another_command(tmp_path: Path, procs: list) -> None:
    e = env(tmp_path, 0.01)
    head = zeropipe(
        "run", str(pipeline_file(tmp_path, 60, workers=0, bind="tcp://127.0.0.1:*")), env=e
    )
    procs.append(head)
    endpoint = None
    assert head.stderr is not None
    for line in head.stderr:  # "pipeline cli-test at tcp://...: more workers can join with"
        if m := re.search(r"at (tcp://\S+):", line):
            endpoint = m.group(1)
            break
    assert endpoint
    worker = zeropipe(
        "worker", "--connect", endpoint, "--pipeline", "cli-test", "--procs", "2", env=e
    )
    procs.append(worker)
    out, _ = head.communicate(timeout=50)
    assert head.returncode == 0
    match = SUMMARY.search(out)
    assert match
    assert match.group(2) == match.group(3) == "60"
    _, err = worker.communicate(timeout=20)
    assert worker.returncode == 0, err
    assert len({p.name.split(".")[1] for p in (tmp_path / "marks").iterdir()}) == 2


def test_inprocess_runs_in_the_command(tmp_path: Path, procs: list) -> None:
    proc = zeropipe("run", "--inprocess", str(pipeline_file(tmp_path, 10)), env=env(tmp_path, 0))
    procs.append(proc)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert {p.name.split(".")[1] for p in (tmp_path / "marks").iterdir()} == {str(proc.pid)}
    assert SUMMARY.search(out)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
