"""The Ray Tune function trainable: one :func:`miras.runners.trial.run_trial` per Tune trial."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..config import SweepConfig
from ..record import SCAN_IMPL, SCAN_REASON
from .messages import best, eval_report, final_report, worst
from .plan import Trial, trial_settings


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
        lr=trial.lr,
        workdir=Path(trials_dir) / trial.key,
        cache_dir=Path(cache_dir) if cache_dir else DEFAULT_CACHE,
    )
    provenance = provenance_tags(device_name(resolve_device(trial_config.device)))
    result = run_trial(trial_config, on_eval=on_eval, progress=False)
    if result.scan_impl:  # what its memories ran (model.impl auto may compile): tagged with the rest
        provenance |= {SCAN_IMPL: result.scan_impl, SCAN_REASON: result.scan_reason}
    tune.report(final_report(result, sweep.objectives, provenance))


__all__ = ["train"]
