"""Child processes for tests: a command whose stdout and stderr are read line by line.

Each output pipe is read by a thread (so a chatty child never blocks on a full pipe), and
every wait has a deadline, so a child that hangs fails the test instead of hanging it.
"""

from __future__ import annotations

import subprocess
import threading
from pathlib import Path
from typing import Any, TypeVar

REPO = Path(__file__).resolve().parent.parent


class Stream:
    """The lines of one output pipe of a child, collected by a thread.

    ``wait_s`` is the default deadline of the waits (a hang guard, not a speed bound).
    """

    def __init__(self, pipe: Any, wait_s: float) -> None:
        self.lines: list[str] = []
        self.eof = False
        self.wait_s = wait_s
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._read, args=(pipe,), daemon=True)
        self._thread.start()

    def _read(self, pipe: Any) -> None:
        for line in pipe:
            with self._cond:
                self.lines.append(line.rstrip("\n"))
                self._cond.notify_all()
        with self._cond:
            self.eof = True
            self._cond.notify_all()

    def wait_for(self, count: int, timeout: float | None = None) -> list[str]:
        """The first ``count`` lines; fails if they do not come."""
        with self._cond:
            self._cond.wait_for(
                lambda: len(self.lines) >= count or self.eof,
                self.wait_s if timeout is None else timeout,
            )
            lines = list(self.lines)
        if len(lines) < count:
            raise AssertionError(f"expected {count} lines, got {lines!r}")
        return lines[:count]

    def wait_more(self, count: int, timeout: float) -> bool:
        """Wait up to ``timeout`` for ``count`` lines in all (a pacer for probe loops)."""
        with self._cond:
            return self._cond.wait_for(lambda: len(self.lines) >= count or self.eof, timeout)

    def close(self, timeout: float | None = None) -> list[str]:
        """Every line, once the pipe is closed (or the deadline has passed)."""
        self._thread.join(self.wait_s if timeout is None else timeout)
        return list(self.lines)


class Child:
    """``argv`` running in a child process from the repository's root, in text mode.

    ``label`` names it in failure messages; ``stdin`` is written to its standard input, which
    is otherwise /dev/null (not a terminal).
    """

    def __init__(
        self, argv: list[str], label: list[str], wait_s: float, stdin: str | None = None
    ) -> None:
        self.args = label
        self.wait_s = wait_s
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=REPO,
        )
        self.out = Stream(self.proc.stdout, wait_s)
        self.err = Stream(self.proc.stderr, wait_s)
        if stdin is not None:
            assert self.proc.stdin is not None
            self.proc.stdin.write(stdin)
            self.proc.stdin.close()

    def wait_exit(self, timeout: float | None = None) -> tuple[int, list[str], list[str]]:
        """Wait for the exit; (status, stdout lines, stderr lines). A child still running
        at the deadline is killed and fails the test."""
        if timeout is None:
            timeout = self.wait_s
        try:
            status = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(
                f"{self.args} still running after {timeout} s; "
                f"stdout {self.out.lines!r}, stderr {self.err.lines!r}"
            ) from None
        return status, self.out.close(), self.err.close()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


C = TypeVar("C", bound=Child)


class Children:
    """Every child a test started, to be killed at teardown if still running."""

    def __init__(self) -> None:
        self._started: list[Child] = []

    def add(self, child: C) -> C:
        self._started.append(child)
        return child

    def kill_all(self) -> None:
        for child in self._started:
            child.kill()
