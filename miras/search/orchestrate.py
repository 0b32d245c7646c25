"""Run the trials left with Ray Tune: a grid of fixed-rate trials, or TPE per cell; ASHA optional."""

from __future__ import annotations

import logging
import math
import os
from typing import Any, TextIO

from ray import tune
from ray.tune.experiment import Trial as TuneTrial
from ray.tune.schedulers import ASHAScheduler

from ..config import SweepConfig
from .callbacks import ProgressCallback, TrackingCallback
from .layout import Layout, SweepOptions, ray_session
from .plan import Plan, Work
from .searcher import CellSearch
from .trainable import OBJECTIVE, train


def run_trials(
    plan: Plan,
    work: Work,
    layout: Layout,
    options: SweepOptions,
    tracking: TrackingCallback,
    stream: TextIO,
) -> None:
    """Run ``work`` on Ray (local or ``options.address``), logging every trial through ``tracking``
    (which then knows how each trial ended, and which are still open: interrupted)."""
    config = plan.config
    metric, _ = config.objective
    with ray_session(options.address, layout.out) as where:
        slots = _parallel_slots(config)
        print(f"  running on {where}: up to {slots} trials at a time", file=stream, flush=True)
        os.environ.setdefault("TUNE_MAX_PENDING_TRIALS_PG", str(slots))
        os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
        os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # with verbose=0: no tables, our progress lines only
        logging.getLogger("ray.tune").setLevel(logging.ERROR)
        threads = max(1, int(config.resources.cpu))
        cache_dir = str(options.cache_dir.resolve()) if options.cache_dir else None
        trainable = tune.with_parameters(
            train, sweep=config, trials_dir=str(layout.trials_dir), cache_dir=cache_dir, threads=threads
        )
        resources = {"cpu": config.resources.cpu, "gpu": config.resources.gpu}
        if not work.budget:
            param_space: dict[str, Any] = {"trial": tune.grid_search([trial.to_config() for trial in work.trials])}
            search_alg, samples = None, 1
        else:
            param_space = {}
            modes = [mode for _, mode in config.objectives]
            search = CellSearch(plan, work.budget, layout.optuna_uri, work.done, modes, fixed=work.trials)
            search_alg, samples = search, work.count
        tuner = tune.Tuner(
            tune.with_resources(trainable, resources),
            param_space=param_space,
            tune_config=tune.TuneConfig(
                search_alg=search_alg,
                scheduler=_scheduler(config),
                num_samples=samples,
                reuse_actors=True,
                trial_name_creator=_name,
                trial_dirname_creator=_dirname,
            ),
            run_config=tune.RunConfig(
                name=config.name,
                storage_path=layout.storage,
                verbose=0,
                callbacks=[tracking, ProgressCallback(work.count, metric, stream)],
                failure_config=tune.FailureConfig(max_failures=1),
            ),
        )
        tuner.fit()


def _parallel_slots(config: SweepConfig) -> int:
    """Trials that fit the cluster at once (Ray's pending-trial limit)."""
    import ray

    total = ray.cluster_resources()
    slots = total.get("CPU", 1) / config.resources.cpu
    if config.resources.gpu:
        slots = min(slots, total.get("GPU", 0) / config.resources.gpu)
    return max(1, math.floor(slots))


def _scheduler(config: SweepConfig) -> ASHAScheduler | None:
    """ASHA over the evaluations (``search.scheduler: asha``); the final report is one more step."""
    if config.search is None or config.search.scheduler != "asha":
        return None
    _, mode = config.objective
    evaluations = math.ceil(config.training.steps / config.training.eval_every)
    return ASHAScheduler(
        time_attr="training_iteration", metric=OBJECTIVE, mode=mode, max_t=evaluations + 1, grace_period=1
    )


def _name(trial: TuneTrial) -> str:
    return trial.config["trial"]["name"]


def _dirname(trial: TuneTrial) -> str:
    return f"{trial.config['trial']['key']}_{trial.trial_id}"


__all__ = ["run_trials"]
