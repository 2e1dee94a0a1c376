"""Thin Huey tasks: they carry a job id and hand it to this process's runner."""

from __future__ import annotations

from ..queues import generate_queue, train_queue
from .runtime import runtime


@train_queue.task(name="train")
def run_train(job_id: str) -> None:
    runtime().runner.run("train", job_id)


@generate_queue.task(name="generate")
def run_generate(job_id: str) -> None:
    runtime().runner.run("generate", job_id)


@train_queue.on_startup()
def _serve_train() -> None:
    runtime().serving("train")


@generate_queue.on_startup()
def _serve_generate() -> None:
    runtime().serving("generate")


TASKS = {"train": run_train, "generate": run_generate}
