"""Pipelines: a ventilator, map stages on worker processes, and a sink, with no lost work.

::

    from zeropipe.pipelines import Pipeline

    result = Pipeline("squares").source(numbers, args=(1000,)).map(square, workers=4).run()

See docs/pipelines.md (the user's guide) and docs/pipeline-protocol.md (the wire protocol).
"""

from .builder import Pipeline, Plan, from_dict, load
from .errors import PipelineAborted, PipelineError, WorkerRefused
from .run import DeadLetter, RunResult, StageStats, run

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
