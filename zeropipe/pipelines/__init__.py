"""Pipelines: a ventilator, map stages on worker processes, and a sink, with no lost work.

::

    from zeropipe.pipelines import Pipeline

    result = Pipeline("squares").source(numbers, args=(1000,)).map(square, workers=4).run()

See docs/pipelines.md (the user's guide) and docs/pipeline-protocol.md (the wire protocol).
The names below are imported on first use: a worker process needs none of the head's code.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .builder import Pipeline, Plan, from_dict, load
    from .errors import PipelineAborted, PipelineError, WorkerRefused
    from .head import DeadLetter, RunResult, StageStats, run

_WHERE = {
    "Pipeline": "builder",
    "Plan": "builder",
    "from_dict": "builder",
    "load": "builder",
    "PipelineAborted": "errors",
    "PipelineError": "errors",
    "WorkerRefused": "errors",
    "DeadLetter": "head",
    "RunResult": "head",
    "StageStats": "head",
    "run": "head",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


__all__ = [
    "DeadLetter",
    "Pipeline",
    "PipelineAborted",
    "PipelineError",
    "Plan",
    "RunResult",
    "StageStats",
    "WorkerRefused",
    "from_dict",
    "load",
    "run",
]
