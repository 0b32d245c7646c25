"""The MLflow params of a trial: every axis option and parameter by registry name, and every setting.

Values are strings as MLflow stores them: strings as they are, everything else as JSON
(``null``, ``true``, ``0.001``, ``[1, 2]``).
"""

from __future__ import annotations

import json
from typing import Any

from ..config import SweepConfig
from ..space import AXES, Variant
from .plan import Trial, trial_settings

NO_AXIS = "-"
"""The axis value of an attention baseline, which is not a Miras memory."""


def trial_params(config: SweepConfig, trial: Trial) -> dict[str, str]:
    """``model`` (a preset name, ``grid`` or ``ablation``), the four axes and their ``<axis>.<param>``
    (searched values included), for an ablation variant ``ablation.base`` and ``ablation.change``,
    ``seed``, ``lr``, ``task``, and every ``task.*``, ``model.*`` and ``training.*`` field as the trial
    resolves it."""
    cell = trial.cell
    architecture = cell.architecture
    settings = trial_settings(config, cell, trial.lr, trial.values)
    params: dict[str, Any] = {"model": architecture if isinstance(architecture, str) else "grid"}
    if isinstance(architecture, Variant):
        params |= {"model": "ablation", "ablation.base": architecture.base, "ablation.change": architecture.change}
    spec = settings.spec()
    if spec is None:
        params |= dict.fromkeys(AXES, NO_AXIS)
    else:
        for axis, choice in spec.canonical().items():
            params[axis] = choice["name"]
            params |= {f"{axis}.{name}": value for name, value in choice["params"].items()}
    task = config.task.model_dump(mode="json")
    params |= {"seed": cell.seed, "lr": trial.lr, "task": task.pop("name")}
    params |= _prefixed("task", task)
    params |= _prefixed("model", settings.model.model_dump(mode="json"))
    params |= _prefixed("training", settings.training.model_dump(mode="json"))
    return {key: _text(value) for key, value in params.items()}


def _prefixed(prefix: str, fields: dict[str, Any]) -> dict[str, Any]:
    return {f"{prefix}.{name}": value for name, value in fields.items()}


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


__all__ = ["NO_AXIS", "trial_params"]
