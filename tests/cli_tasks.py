"""Stage functions of the `zeropipe run` / `zeropipe worker` tests (test_pipeline_cli.py)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path


def numbers(n: int) -> Iterator[int]:
    return iter(range(n))


def slow_square(x: int) -> int:
    """x*x after CLI_TASK_SECONDS; notes its start in CLI_TASK_DIR (one file per task)."""
    marks = os.environ.get("CLI_TASK_DIR")
    if marks:
        Path(marks, f"{x}.{os.getpid()}").touch()
    time.sleep(float(os.environ.get("CLI_TASK_SECONDS", "0")))
    return x * x
