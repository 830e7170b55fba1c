"""Child-process plumbing: starting workers, bounding their lifetime, reporting their errors."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parent.parent  # the project root, so ``-m benchmarks`` works
STDERR_TAIL = 1500  # characters of a failed worker's stderr kept in the error message
WATCHDOG_EXIT = 3  # exit code of a worker stopped by its watchdog


class WorkerDied(Exception):
    """A worker process exited unexpectedly; ``detail`` holds the end of its stderr."""

    def __init__(self, message: str, detail: str = "") -> None:
        super().__init__(message)
        self.detail = detail


def worker_command(*args: str) -> list[str]:
    """Command line running ``python -m benchmarks.worker`` with ``args``."""
    return [sys.executable, "-m", "benchmarks.worker", *args]


def worker_env() -> dict[str, str]:
    """Environment for worker processes: the project root first on PYTHONPATH."""
    env = dict(os.environ)
    paths = [str(ROOT), *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))]
    env["PYTHONPATH"] = os.pathsep.join(paths)
    return env


def tail(text: str) -> str:
    """The last part of a worker's output, for error messages."""
    text = text.strip()
    return text if len(text) <= STDERR_TAIL else "..." + text[-STDERR_TAIL:]


def last_line(text: str) -> str:
    """The last non-empty line of a worker's output (usually the exception of a traceback)."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def start_watchdog(max_lifetime_s: float) -> None:
    """Exit this process if its parent disappears or it outlives ``max_lifetime_s``."""
    parent = os.getppid()
    deadline = time.monotonic() + max_lifetime_s

    def watch() -> None:
        while True:
            time.sleep(0.25)
            if os.getppid() != parent:
                os._exit(WATCHDOG_EXIT)
            if time.monotonic() > deadline:
                print(f"watchdog: still running after {max_lifetime_s:.0f} s", file=sys.stderr)
                os._exit(WATCHDOG_EXIT)

    threading.Thread(target=watch, name="bench-watchdog", daemon=True).start()


class SenderProcess:
    """The sender child of a receiver; killed by pid when the receiver is done with it.

    With ``report=True`` its stdout is a side channel of text lines to the receiver (read
    with ``SenderGroup.read_lines``); otherwise it is discarded.
    """

    def __init__(self, args: list[str], report: bool = False) -> None:
        self._stderr: IO[str] = tempfile.TemporaryFile("w+")  # noqa: SIM115 (closed in stop)
        self.proc = subprocess.Popen(
            worker_command(*args),
            cwd=ROOT,
            env=worker_env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE if report else subprocess.DEVNULL,
            stderr=self._stderr,
        )
        self._stdout_fd = self.proc.stdout.fileno() if self.proc.stdout else -1
        if self._stdout_fd >= 0:
            os.set_blocking(self._stdout_fd, False)
        self._partial = b""

    def stderr(self) -> str:
        self._stderr.seek(0)
        return self._stderr.read()

    def check_alive(self) -> None:
        """Raise ``WorkerDied`` if the sender has exited with an error."""
        code = self.proc.poll()
        if code is not None and code != 0:
            text = self.stderr()
            raise WorkerDied(f"sender exited with code {code}: {last_line(text)}", tail(text))

    def stop(self, grace_s: float) -> str:
        """Wait up to ``grace_s`` for the sender to exit, then kill it.

        Returns "" after a clean exit, otherwise a description for the results' warnings.
        """
        if self._stderr.closed:
            return ""
        try:
            code = self.proc.wait(timeout=grace_s) if grace_s > 0 else self.proc.poll()
        except subprocess.TimeoutExpired:
            code = None
        if code is None:
            self.proc.kill()
            self.proc.wait()
        note = "" if code == 0 else self._describe(code, grace_s)
        self._stderr.close()
        if self.proc.stdout:
            self.proc.stdout.close()
            self._stdout_fd = -1
        return note

    def readable_fd(self) -> int:
        """The side-channel fd while it may still deliver lines, else -1."""
        return self._stdout_fd

    def read_available(self) -> list[str]:
        """Complete lines that arrived on the side channel (never blocks)."""
        if self._stdout_fd < 0:
            return []
        try:
            chunk = os.read(self._stdout_fd, 65536)
        except BlockingIOError:
            return []
        if not chunk:  # EOF: the sender exited (or closed its stdout)
            self._stdout_fd = -1
            chunk = b"\n" if self._partial else b""
        *lines, self._partial = (self._partial + chunk).split(b"\n")
        return [line.decode() for line in lines if line]

    def _describe(self, code: int | None, grace_s: float) -> str:
        if code is None:
            return f"sender still running after {grace_s:.1f} s; killed"
        return f"sender exited with code {code}: {last_line(self.stderr())}"


class SenderGroup:
    """One or more sender processes, handled together by the receiver."""

    def __init__(self, arg_lists: list[list[str]], report: bool = False) -> None:
        self.procs: list[SenderProcess] = []
        try:
            for args in arg_lists:
                self.procs.append(SenderProcess(args, report))
        except BaseException:
            self.stop(0)
            raise

    def check_alive(self) -> None:
        """Raise ``WorkerDied`` if any sender has exited with an error."""
        for proc in self.procs:
            proc.check_alive()

    def stop(self, grace_s: float) -> str:
        """Give all senders up to ``grace_s`` in total to exit, kill the rest; notes joined."""
        deadline = time.monotonic() + grace_s
        notes = []
        for index, proc in enumerate(self.procs):
            note = proc.stop(max(0.0, deadline - time.monotonic()) if grace_s > 0 else 0)
            if note:
                notes.append(note if len(self.procs) == 1 else f"sender {index}: {note}")
        return "; ".join(notes)

    def read_lines(self, timeout_s: float) -> list[tuple[int, str]]:
        """Side-channel lines as (sender index, line), waiting up to ``timeout_s`` for some.

        Also raises ``WorkerDied`` when a sender has exited with an error.
        """
        fds = [p.readable_fd() for p in self.procs if p.readable_fd() >= 0]
        if fds:
            select.select(fds, [], [], timeout_s)
        else:
            time.sleep(timeout_s)
        lines = [(i, line) for i, p in enumerate(self.procs) for line in p.read_available()]
        if not lines:
            self.check_alive()
        return lines


def run_bounded(cmd: list[str], timeout_s: float) -> tuple[str, str, int, bool]:
    """Run ``cmd`` from the project root in its own process group, killing the whole group
    after ``timeout_s``; returns (stdout, stderr, exit code, whether it was killed)."""
    proc = subprocess.Popen(
        cmd,
        cwd=ROOT,
        env=worker_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    timed_out = False
    try:
        out, err = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        timed_out = True
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return out, err, proc.wait(), timed_out
