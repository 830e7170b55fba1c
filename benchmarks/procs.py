"""Child-process plumbing: starting workers, bounding their lifetime, reporting their errors."""

from __future__ import annotations

import os
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
    """The sender child of a receiver; killed by pid when the receiver is done with it."""

    def __init__(self, args: list[str]) -> None:
        self._stderr: IO[str] = tempfile.TemporaryFile("w+")  # noqa: SIM115 (closed in stop)
        self.proc = subprocess.Popen(
            worker_command(*args),
            cwd=ROOT,
            env=worker_env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=self._stderr,
        )

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
        return note

    def _describe(self, code: int | None, grace_s: float) -> str:
        if code is None:
            return f"sender still running after {grace_s:.1f} s; killed"
        return f"sender exited with code {code}: {last_line(self.stderr())}"
