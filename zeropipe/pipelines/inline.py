"""In-process runs: the same checks, codecs, retries and dead letters, in the caller's thread.

Meant for unit tests of a pipeline's functions: deterministic (tasks run in source order, one
at a time) and fast (no process, no socket). Every task and result still goes through its
edge's codec, so a value a codec cannot carry fails here as it would between processes. A
per-task timeout cannot stop a function running in this thread, so it is not applied."""

from __future__ import annotations

import time
import traceback
from typing import Any

from .builder import Plan
from .head import DeadLetter, RunResult, StageStats
from .payload import BatchError, Packer


def run_inline(plan: Plan) -> RunResult:
    result = RunResult(plan.name, stages=[StageStats(s.name) for s in plan.stages])
    started = time.monotonic()
    opened = []
    try:
        for stage in plan.stages:
            if stage.init is not None:
                stage.init[0]()
            opened.append(stage)
        results = _results(plan, result)
        if plan.sink is None:
            result.results = list(results)
        elif plan.sink_stream:
            result.value = plan.sink(results)
            for _ in results:
                pass
        else:
            for item in results:
                plan.sink(item)
    finally:
        for stage in opened:
            if stage.close is not None:
                stage.close[0]()
    result.elapsed = time.monotonic() - started
    return result


def _results(plan: Plan, result: RunResult) -> Any:
    ins = [Packer(s.inbound) for s in plan.stages]
    outs = [Packer(s.outbound) for s in plan.stages]
    source = plan.source(*plan.source_args, **plan.source_kwargs)
    for task_id, task in enumerate(source):
        result.tasks += 1
        value = task
        for k, stage in enumerate(plan.stages):
            stats = result.stages[k]
            attempts = 0
            while True:
                attempts += 1
                try:
                    arg = _through(ins[k], value, "task")
                    out = _through(outs[k], stage.fn(arg), "result")
                    break
                except Exception as exc:
                    stats.failures += 1
                    if attempts >= (stage.max_attempts if plan.acks else 1):
                        error = f"{type(exc).__name__}: {exc}"
                        tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
                        letter = DeadLetter(task_id, stage.name, value, error, tb, attempts)
                        result.dead_letters.append(letter)
                        stats.dead += 1
                        if plan.dead_letter is not None:
                            plan.dead_letter(letter)
                        out = _FAILED
                        break
                    stats.retried += 1
            if out is _FAILED:
                break
            stats.done += 1
            value = out
        else:
            if result.first_result is None:
                result.first_result = 0.0
            result.delivered += 1
            yield value


_FAILED = object()


def _through(packer: Packer, value: Any, what: str) -> Any:
    frames, bad = packer.encode([value])
    if bad:
        raise TypeError(f"cannot encode the {what}: {bad[0][1]}")
    try:
        return packer.decode(frames, 1)[0]
    except BatchError as exc:
        raise TypeError(f"cannot decode the {what}: {exc}") from None
