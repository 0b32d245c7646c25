"""Run lm-evaluation-harness on an exported model (its ``hf`` model type, through
``AutoModelForCausalLM``) and log the metrics to the trial's MLflow run.

Local tasks (:data:`LOCAL_TASKS`) are passed to lm-eval as their definitions and read their items
from files shipped with miras; any other name is an lm-eval task, whose dataset may need the
Hugging Face Hub.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import cloze

LOCAL_TASKS: dict[str, Callable[[], dict[str, Any]]] = {cloze.TASK: cloze.task_config}
"""Task name -> its lm-eval definition, for the tasks that need no download."""
EVAL_EXTRA = "evaluation needs lm-evaluation-harness: pip install 'miras[eval]'"


class TaskUnavailableError(RuntimeError):
    """A task whose dataset could not be loaded (unknown, or on the Hub while offline)."""


@dataclass(frozen=True)
class Evaluation:
    """Each task's metrics (``{task: {metric: value}}``, stderr entries left out) and, per task, the
    log-likelihood lm-eval computed for every choice of every item (``[[loglik per choice] per item]``)."""

    metrics: dict[str, dict[str, float]]
    logliks: dict[str, list[list[float]]]

    def flat(self) -> dict[str, float]:
        """``eval/<task>/<metric>`` -> value, as logged to MLflow."""
        return {f"eval/{task}/{name}": value for task, values in self.metrics.items() for name, value in values.items()}


def evaluate(model_dir: Path | str, tasks: list[str], limit: int | None = None, batch_size: int = 8) -> Evaluation:
    """Evaluate the exported model in ``model_dir`` (``miras export``) on ``tasks`` (local task names
    or lm-eval's), in the dtype it was saved in, on the CPU unless CUDA is available, the first
    ``limit`` items of each task. Only local tasks: the Hugging Face Hub is not contacted."""
    import torch
    from lm_eval import simple_evaluate

    import miras.hf  # noqa: F401  (registers the miras model type with AutoModelForCausalLM)

    requested = [LOCAL_TASKS[name]() if name in LOCAL_TASKS else name for name in tasks]
    if all(name in LOCAL_TASKS for name in tasks):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    device = "cuda" if torch.cuda.is_available() else "cpu"
    logging.getLogger("lm_eval").setLevel(logging.WARNING)
    try:
        results = simple_evaluate(
            model="hf",
            model_args={"pretrained": str(model_dir), "backend": "causal"},
            tasks=requested,
            limit=limit,
            batch_size=batch_size,
            device=device,
            log_samples=True,
            bootstrap_iters=0,
        )
    except (ConnectionError, OSError, KeyError, ValueError) as error:
        unavailable = [name for name in tasks if name not in LOCAL_TASKS]
        if not unavailable:
            raise
        raise TaskUnavailableError(
            f"task {', '.join(map(repr, unavailable))} could not be loaded ({type(error).__name__}: {error}); "
            f"an lm-eval task's dataset comes from the Hugging Face Hub, which needs the internet. Local tasks: "
            f"{', '.join(LOCAL_TASKS)}"
        ) from error
    metrics = {
        task: {
            name.split(",")[0]: float(value)
            for name, value in values.items()
            if isinstance(value, int | float) and "stderr" not in name and not math.isnan(float(value))
        }
        for task, values in results["results"].items()
    }
    logliks = {
        task: [[float(response[0][0]) for response in sample["resps"]] for sample in samples]
        for task, samples in results.get("samples", {}).items()
    }
    return Evaluation(metrics, logliks)


def log_evaluation(tracking_uri: str, run_id: str, evaluation: Evaluation) -> None:
    """Log ``evaluation``'s metrics to the run ``run_id`` (``eval/<task>/<metric>``)."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri)
    for name, value in evaluation.flat().items():
        client.log_metric(run_id, name, value)
