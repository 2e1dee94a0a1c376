"""The engine layer's errors: transient (try again later) or permanent (fix something first).

The pipelines translate these into job errors; nothing here knows of jobs. Every message is
meant for a person: it says what failed, quotes the engine's own words and, where there is
one, names the node (id, class_type, title). Messages never carry credentials: build them
with `redact.safe_url` and pass known secrets through `redact.scrub`.
"""

from __future__ import annotations

from typing import Any


class EngineError(Exception):
    """Something an engine (ComfyUI, Ollama) did or could not do. Permanent by default."""

    code = "engine_failed"
    transient = False

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        # Machine-readable context (node id, class_type, the engine's error type ...).
        self.details = details or {}


class TransientEngineError(EngineError):
    """Worth retrying with backoff: unreachable, timed out, 5xx, restarted, socket lost."""

    code = "engine_unavailable"
    transient = True


class EngineUnreachable(TransientEngineError):
    """No connection, a timeout, or an answer in the 5xx range."""


class PromptLost(TransientEngineError):
    """The prompt vanished from ComfyUI (restarted server): neither queued, running nor done."""

    code = "engine_prompt_lost"


class PermanentEngineError(EngineError):
    """Retrying will not help until a person changes a workflow, a model or a setting."""


class WorkflowInvalid(PermanentEngineError):
    """Our own check of a workflow file or its placeholders failed before ComfyUI saw it."""

    code = "workflow_invalid"


class MissingNode(PermanentEngineError):
    """The workflow names a node class the ComfyUI server does not have."""

    code = "engine_missing_node"


class MissingModel(PermanentEngineError):
    """The workflow names a model file the ComfyUI server does not list."""

    code = "engine_missing_model"


class WorkflowRejected(PermanentEngineError):
    """ComfyUI refused the prompt (a 400, or a 200 whose node_errors is not empty)."""

    code = "engine_workflow_rejected"


class ExecutionFailed(PermanentEngineError):
    """A node raised while ComfyUI ran the prompt."""

    code = "engine_execution_failed"


class PromptInterrupted(PermanentEngineError):
    """ComfyUI interrupted the prompt (someone pressed cancel on the ComfyUI side, or we did)."""

    code = "engine_interrupted"


class PromptCancelled(EngineError):
    """We cancelled the prompt (should_cancel said so) and ComfyUI let go of it."""

    code = "engine_cancelled"


class OutputTooLarge(PermanentEngineError):
    """An output file is larger than the download limit."""

    code = "engine_output_too_large"


class OutputMissing(PermanentEngineError):
    """The prompt finished but produced none of the files it should have."""

    code = "engine_output_missing"


class ModelNotPulled(PermanentEngineError):
    """Ollama does not have the model (it answered 404)."""

    code = "engine_model_missing"


class EngineAnswerInvalid(PermanentEngineError):
    """The engine answered something that is not its protocol (wrong server at that URL?)."""

    code = "engine_answer_invalid"
