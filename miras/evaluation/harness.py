"""Run lm-evaluation-harness on an exported model (its ``hf`` model type, through
``AutoModelForCausalLM``) and log the metrics to the trial's MLflow run.

Local tasks (:data:`LOCAL_TASKS`) are passed to lm-eval as their definitions and read their items
from files shipped with miras; any other name is an lm-eval task, whose dataset may need the
Hugging Face Hub.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import cloze

LOCAL_TASKS: dict[str, Callable[[], dict[str, Any]]] = {cloze.TASK: cloze.task_config}
"""Task name -> its lm-eval definition, for the tasks that need no download."""


class TaskUnavailableError(RuntimeError):
    """A task whose dataset could not be loaded (unknown, or on the Hub while offline)."""


@dataclass(frozen=True)
class Evaluation:
    """Each task's metrics (``{task: {metric: value}}``; a metric under a filter other than lm-eval's
    ``none`` is ``<metric>/<filter>``; stderr entries left out) and, per task of log-likelihood
    requests, the log-likelihood lm-eval computed for every choice of every item."""

    metrics: dict[str, dict[str, float]]
    logliks: dict[str, list[list[float]]]

    def flat(self) -> dict[str, float]:
        """``eval/<task>/<metric>`` -> value, as logged to MLflow."""
        return {f"eval/{task}/{name}": value for task, values in self.metrics.items() for name, value in values.items()}


def requested_tasks(tasks: list[str]) -> list[str | dict[str, Any]]:
    """``tasks`` as lm-eval takes them (a local task as its definition), each checked to load first:
    :class:`TaskUnavailableError` names the tasks that need a download when one cannot."""
    from lm_eval.tasks import TaskManager

    requested = [LOCAL_TASKS[name]() if name in LOCAL_TASKS else name for name in tasks]
    try:
        TaskManager().load(requested)
    except Exception as error:  # lm-eval and datasets raise many kinds for an unknown or unreachable task
        unavailable = [name for name in tasks if name not in LOCAL_TASKS]
        if not unavailable:
            raise
        raise TaskUnavailableError(
            f"task {', '.join(map(repr, unavailable))} could not be loaded ({type(error).__name__}: {error}); "
            "an lm-eval task's dataset comes from the Hugging Face Hub, which needs the internet. Local tasks: "
            f"{', '.join(LOCAL_TASKS)}"
        ) from error
    return requested


def _metric_name(key: str) -> str:
    """lm-eval's ``acc,none`` -> ``acc``; ``exact_match,strict-match`` -> ``exact_match/strict-match``."""
    metric, _, filtered = key.partition(",")
    return metric if filtered in ("", "none") else f"{metric}/{filtered}"


def evaluate(model_dir: Path | str, tasks: list[str], limit: int | None = None, batch_size: int = 8) -> Evaluation:
    """Evaluate the exported model in ``model_dir`` (``miras export``) on ``tasks`` (local task names
    or lm-eval's), in the dtype it was saved in, on the CPU unless CUDA is available, the first
    ``limit`` items of each task."""
    import torch
    from lm_eval import simple_evaluate

    import miras.hf  # noqa: F401  (registers the miras model type with AutoModelForCausalLM)

    requested = requested_tasks(tasks)
    logging.getLogger("lm_eval").setLevel(logging.WARNING)
    results = simple_evaluate(
        model="hf",
        model_args={"pretrained": str(model_dir), "backend": "causal"},
        tasks=requested,
        limit=limit,
        batch_size=batch_size,
        device="cuda" if torch.cuda.is_available() else "cpu",
        log_samples=True,
        bootstrap_iters=0,
    )
    metrics = {
        task: {
            _metric_name(key): float(value)
            for key, value in values.items()
            if isinstance(value, int | float) and "_stderr" not in key and not math.isnan(float(value))
        }
        for task, values in results["results"].items()
    }
    logliks = {
        task: [[float(r[0][0]) for r in sample["resps"]] for sample in samples]
        for task, samples in results.get("samples", {}).items()
        if samples and all(isinstance(r[0], tuple | list) and len(r[0]) == 2 for r in samples[0]["resps"])
    }
    return Evaluation(metrics, logliks)


def log_evaluation(tracking_uri: str, run_id: str, evaluation: Evaluation) -> None:
    """Log ``evaluation``'s metrics to the run ``run_id`` (``eval/<task>/<metric>``)."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri)
    for name, value in evaluation.flat().items():
        client.log_metric(run_id, name, value)
