"""The step both engine pipelines share: run one graph on ComfyUI for a job's attempt.

The prompt's identity (prompt id, client id, output prefixes, the server) is stored in
the job's result before the prompt is submitted, so when a worker is lost the next
attempt re-attaches to the prompt still queued, running or finished in ComfyUI
instead of paying for the GPU work again; only a prompt ComfyUI no longer knows (it
restarted) is submitted anew. A cancel deletes or interrupts exactly that prompt, and the
job ends cancelled once ComfyUI confirms the prompt stopped (waited for up to the server's
patience: ComfyUI 0.3 stops a training prompt only when its training node returns).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from ...engines.comfyui import ComfyUI, Submission
from ...engines.errors import EngineError, PromptCancelled, TransientEngineError
from .base import Cancelled, PipelineError, Reporter, TransientError
from .engine_progress import ProgressListener

log = logging.getLogger(__name__)

# Graph = a filled API-format workflow; built from the prefixes the prompt writes under.
GraphFor = Callable[[Mapping[str, str]], dict[str, Any]]


@contextlib.contextmanager
def engine_errors() -> Iterator[None]:
    """Engine errors as the runner knows them: transient ones are retried, others fail."""
    try:
        yield
    except PromptCancelled:
        raise Cancelled from None
    except EngineError as exc:
        if exc.transient:
            raise TransientError(exc.message, code=exc.code) from None
        raise PipelineError(exc.message, code=exc.code) from None


def prefixes_for(job: Mapping[str, Any]) -> dict[str, str]:
    """Output prefixes unique to this attempt (ComfyUI's output subfolder `myspinbot`)."""
    # The run number: `attempt` leaves out runs handed back on shutdown, `resumed` counts them.
    stem = f"{job['id']}-{job['attempt'] + job.get('resumed', 0)}"
    return {"prefix": f"myspinbot/{stem}", "lora_prefix": f"loras/myspinbot/{stem}"}


def run_graph(
    engine: ComfyUI,
    graph_for: GraphFor,
    job: Mapping[str, Any],
    outputs: Path,
    reporter: Reporter,
    span: tuple[int, int],
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Run (or re-attach to) this job's prompt; (its /history entry, the graph it ran).

    `span` is the share of the job's progress the prompt fills, in percent.
    """
    stored = (job.get("result") or {}).get("comfyui") or {}
    if stored.get("prompt_id") and stored.get("server") == engine.server.shown:
        graph = graph_for(stored)
        listener = ProgressListener(reporter, graph, outputs, *span, comfyui=stored)
        reporter.report(span[0], "re-attaching to ComfyUI")
        submission = _submission(stored)
        entry = _followed(engine, stored, lambda: engine.attach(submission, graph, listener))
        if entry is not None:
            return entry, graph
    info = {**prefixes_for(job), "server": engine.server.shown}
    graph = graph_for(info)
    wait_until_reachable(engine, reporter, span[0])
    engine.preflight(graph)  # a missing node or model fails the job now, naming it
    submission = engine.new_submission()
    info.update(prompt_id=submission.prompt_id, client_id=submission.client_id, ahead=None)
    # Stored before the prompt exists, so no attempt can lose track of it.
    reporter.report(span[0], "sending to ComfyUI", result={"comfyui": info})
    listener = ProgressListener(reporter, graph, outputs, *span, comfyui=info)
    entry = _followed(engine, info, lambda: engine.run(graph, submission, listener))
    assert entry is not None
    return entry, graph


def wait_until_reachable(engine: ComfyUI, reporter: Reporter, percent: int) -> None:
    """Ride out a ComfyUI that is away (restarting) for up to the server's patience."""
    deadline = time.monotonic() + engine.server.reconnect_seconds
    delay = 0.5
    while True:
        try:
            engine.http.version()
            return
        except TransientEngineError as exc:
            if time.monotonic() >= deadline:
                raise
            reporter.report(percent, f"waiting for ComfyUI ({exc.message})")
        until = time.monotonic() + delay
        while time.monotonic() < until:  # a cancel or a stop is noticed while waiting
            reporter.check()
            time.sleep(0.25)
        delay = min(delay * 2, 10.0)


def _followed(
    engine: ComfyUI, info: Mapping[str, Any], follow: Callable[[], dict[str, Any] | None]
) -> dict[str, Any] | None:
    """Follow the prompt; on a cancel of the job, take exactly this prompt off ComfyUI."""
    try:
        return follow()
    except Cancelled:
        with contextlib.suppress(EngineError):  # gone already, or ComfyUI is away: no harm
            engine.cancel(info["prompt_id"])
            stopped = engine.wait_until_stopped(info["prompt_id"], engine.server.reconnect_seconds)
            if not stopped:
                log.warning(
                    "ComfyUI at %s did not confirm it stopped prompt %s within %g s",
                    engine.server.shown,
                    info["prompt_id"],
                    engine.server.reconnect_seconds,
                )
        raise


def _submission(info: Mapping[str, Any]) -> Submission:
    return Submission(prompt_id=info["prompt_id"], client_id=info["client_id"])
