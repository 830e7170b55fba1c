"""Errors of the pipeline builder and runner."""

from __future__ import annotations


class PipelineError(Exception):
    """A pipeline that cannot run: a bad declaration, file, function, type, codec or endpoint.

    Raised when the pipeline is built or validated, before any process starts."""


class WorkerRefused(PipelineError):
    """The head refused this worker (another pipeline, another schema), or the worker refused
    the stage the head offered (its functions' types differ from the head's)."""


class PipelineAborted(Exception):
    """A run that could not finish: no worker could start a stage, or a second Ctrl-C."""
