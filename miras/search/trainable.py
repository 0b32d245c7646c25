"""The Ray Tune function trainable, and what a trial reports to the driver through ``tune.report``.

:func:`train` runs one :func:`miras.runners.trial.run_trial` per Tune trial; the rest is both
ends of its reports. Every report has ``objective`` (what the searcher and the scheduler optimise)
and ``miras``: either an evaluation (``step`` and the task's metrics) or, once, the final outcome
(status, reason, the whole evaluation history with ``train_loss``, and the final measurements).
The history is repeated at the end because a trial resumed from a checkpoint does not evaluate its
earlier steps again. ``miras.provenance`` (:func:`miras.provenance.provenance_tags` as the trial's
worker sees them: its checkout, packages and device) rides along with every report.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..config import SweepConfig
from ..record import FINISHED, SCAN_IMPL, SCAN_REASON, Mode
from .plan import Trial, trial_settings

if TYPE_CHECKING:
    from ..runners.trial import TrialResult

OBJECTIVE = "objective"
"""The result key the searcher and the scheduler optimise (the first objective)."""


def objective_keys(count: int) -> list[str]:
    """The result keys of ``count`` objectives: ``objective``, ``objective_1``, ..."""
    return [OBJECTIVE] + [f"{OBJECTIVE}_{i}" for i in range(1, count)]


def worst(mode: Mode) -> float:
    """The objective of a trial that diverged, ran out of memory or failed."""
    return -math.inf if mode == "max" else math.inf


def best(values: list[float], mode: Mode) -> float | None:
    """The best finite value, or ``None``."""
    finite = [v for v in values if math.isfinite(v)]
    return (max if mode == "max" else min)(finite) if finite else None


@dataclass
class Evaluation:
    """One evaluation: the training step and the task's metrics."""

    step: int
    metrics: dict[str, float]


@dataclass
class Outcome:
    """The end of a trial: its status, why (unless finished), every evaluation and the measurements."""

    status: str
    reason: str | None = None
    history: list[Evaluation] = field(default_factory=list)
    summary: dict[str, float] = field(default_factory=dict)


def eval_report(
    step: int, metrics: dict[str, float], objective: float, provenance: dict[str, str] | None = None
) -> dict[str, Any]:
    return {OBJECTIVE: objective, "miras": {"eval": {"step": step, "metrics": metrics}, **_carried(provenance)}}


def _carried(provenance: dict[str, str] | None) -> dict[str, Any]:
    return {"provenance": provenance} if provenance else {}


def final_report(
    result: TrialResult, objectives: list[tuple[str, Mode]], provenance: dict[str, str] | None = None
) -> dict[str, Any]:
    """The last report of a trial: per objective (:func:`objective_keys`), the best value of its metric
    over the evaluations, or the final measurement of that name (``tokens_per_second``), if the trial
    finished; else the worst value. ``best_<metric>`` goes to the summary for every evaluated metric."""
    history = []
    previous = 0
    for entry in result.history:
        step = int(entry["step"])
        metrics = {k: v for k, v in entry.items() if k != "step"}
        losses = result.losses[previous:step]
        if losses:
            metrics["train_loss"] = sum(losses) / len(losses)
        history.append({"step": step, "metrics": metrics})
        previous = step
    summary = {
        "vocab_size": result.vocab_size,
        "n_params": result.params,
        "state_size": result.state_size,
        "flops_per_token": result.flops_per_token,
        "tokens_per_second": result.tokens_per_second,
        "peak_memory_mb": result.peak_memory_mb,
        "wall_seconds": result.wall_seconds,
    }
    values = {}
    for key, (metric, mode) in zip(objective_keys(len(objectives)), objectives, strict=True):
        found = best([e["metrics"][metric] for e in history if metric in e["metrics"]], mode)
        if found is not None:
            summary[f"best_{metric}"] = found
        else:
            found = summary.get(metric)
        values[key] = found if result.status == FINISHED and found is not None else worst(mode)
    outcome = {"status": result.status, "reason": result.reason, "history": history, "summary": summary}
    return {**values, "miras": {"outcome": outcome, **_carried(provenance)}}


def read_eval(result: dict[str, Any]) -> Evaluation | None:
    """The evaluation carried by a Tune result, if it is one."""
    data = result.get("miras", {}).get("eval")
    return Evaluation(data["step"], data["metrics"]) if data else None


def read_provenance(result: dict[str, Any]) -> dict[str, str]:
    """The trial's provenance tags carried by a Tune result (empty if none)."""
    return dict(result.get("miras", {}).get("provenance") or {})


def read_outcome(result: dict[str, Any]) -> Outcome | None:
    """The outcome carried by a Tune result, if it is the final one."""
    data = result.get("miras", {}).get("outcome")
    if not data:
        return None
    history = [Evaluation(e["step"], e["metrics"]) for e in data["history"]]
    return Outcome(data["status"], data["reason"], history, data["summary"])


def train(config: dict[str, Any], *, sweep: SweepConfig, trials_dir: str, cache_dir: str | None, threads: int) -> None:
    """Train the trial described by ``config["trial"]`` (:meth:`Trial.to_config`), reporting every
    evaluation and then the outcome, each with the worker's provenance tags (its checkout, package
    versions and device). Checkpoints go to ``<trials_dir>/<run key>`` (``checkpoint.pt``, beside
    ``trial.json``: the resolved config), so a trial started again (after an interruption, on any
    node that sees that folder) resumes there."""
    import torch
    from ray import tune

    from ..provenance import device_name, provenance_tags
    from ..runners.trial import DEFAULT_CACHE, resolve_device, run_trial

    torch.set_num_threads(threads)
    trial = Trial.from_config(config["trial"])
    metric, mode = sweep.objective
    seen: list[float] = []

    def on_eval(step: int, metrics: dict[str, float]) -> None:
        if metric in metrics:
            seen.append(metrics[metric])
        found = best(seen, mode)
        tune.report(eval_report(step, metrics, worst(mode) if found is None else found, provenance))

    trial_config = trial_settings(sweep, trial.cell, trial.lr, trial.values).trial_config(
        sweep.task,
        seed=trial.cell.seed,
        workdir=Path(trials_dir) / trial.key,
        cache_dir=Path(cache_dir) if cache_dir else DEFAULT_CACHE,
    )
    provenance = provenance_tags(device_name(resolve_device(trial_config.device)))
    result = run_trial(trial_config, on_eval=on_eval, progress=False)
    if result.scan_impl:  # what its memories ran (model.impl auto may compile): tagged with the rest
        provenance |= {SCAN_IMPL: result.scan_impl, SCAN_REASON: result.scan_reason}
    tune.report(final_report(result, sweep.objectives, provenance))


__all__ = [
    "OBJECTIVE",
    "Evaluation",
    "Outcome",
    "best",
    "eval_report",
    "final_report",
    "objective_keys",
    "read_eval",
    "read_outcome",
    "read_provenance",
    "train",
    "worst",
]
