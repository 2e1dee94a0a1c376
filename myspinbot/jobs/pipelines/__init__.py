"""Pipelines turn a job's input into artifacts; the queue code only knows this interface."""

from .base import Cancelled, Pipeline, PipelineError, Reporter, TransientError

__all__ = ["Cancelled", "Pipeline", "PipelineError", "Reporter", "TransientError"]
