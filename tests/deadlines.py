"""Run a call that might block forever, failing the test instead of hanging it."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

TERM_TIMEOUT_S = 10.0


def with_deadline(fn: Callable[[], Any], timeout: float = TERM_TIMEOUT_S) -> None:
    """Run ``fn`` in a helper thread; raise if it is still blocked after ``timeout``."""
    errors: list[BaseException] = []

    def run() -> None:
        try:
            fn()
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=run, name="deadline", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise AssertionError(f"{fn!r} still blocked after {timeout} s")
    if errors:
        raise errors[0]


def term_with_deadline(ctx: Any, timeout: float = TERM_TIMEOUT_S) -> None:
    """``ctx.term()``, failing instead of hanging."""
    with_deadline(ctx.term, timeout)
