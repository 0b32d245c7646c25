"""A sweep's trials: combinations x widths x seeds x learning rates, each named and keyed.

A *cell* is one combination at one model width and one seed. Without ``search`` a cell is one
trial at ``training.lr``; with a list of learning rates it is one trial per rate; with a range
it is ``search.trials`` trials whose rates the searcher picks (:mod:`miras.search.searcher`).

Every trial has a *run key*: a hash of its resolved config (task, model at its width, training
at its learning rate, architecture with every parameter filled in, seed). The key names the
trial's checkpoint folder and tags its MLflow run, so a resumed sweep recognises finished work.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from typing import Any

from ..config import LrRange, SweepConfig
from ..space import BASELINES, PRESETS, MirasSpec, Variant

Architecture = str | MirasSpec | Variant


@dataclass(frozen=True)
class Cell:
    """One combination at one width and seed: the part of a trial the learning rate does not change."""

    combination: str
    architecture: Architecture
    d_model: int
    seed: int

    def to_config(self) -> dict[str, Any]:
        return asdict(self) | {"architecture": _architecture_json(self.architecture)}


@dataclass(frozen=True)
class Trial:
    """One trial: a cell at a learning rate, with its run name and run key."""

    cell: Cell
    lr: float
    name: str
    key: str

    def to_config(self) -> dict[str, Any]:
        """A JSON-able form (the Tune config of the trial, an entry of ``trials.json``)."""
        return {"name": self.name, "key": self.key, **self.cell.to_config(), "lr": self.lr}

    @classmethod
    def from_config(cls, data: dict[str, Any]) -> Trial:
        """Inverse of :meth:`to_config`."""
        architecture = data["architecture"]
        if isinstance(architecture, dict):
            kind = Variant if "base" in architecture else MirasSpec
            architecture = kind.model_validate(architecture)
        cell = Cell(data["combination"], architecture, data["d_model"], data["seed"])
        return cls(cell, data["lr"], data["name"], data["key"])


def _count(n: int, noun: str) -> str:
    """``1 seed``, ``2 seeds``."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


class Plan:
    """The trials of a validated sweep config."""

    def __init__(self, config: SweepConfig) -> None:
        self.config = config
        search = config.search
        self.lr_range: LrRange | None = None
        """The range the searcher samples, or ``None`` when every learning rate is fixed."""
        self.lrs: list[float] = [config.training.lr]
        """The fixed learning rates of every cell (empty for a range)."""
        if search is not None and isinstance(search.lr, LrRange):
            self.lr_range, self.lrs = search.lr, []
        elif search is not None:
            self.lrs = list(search.lr)
        self.per_cell = search.trials if search is not None else 1
        """Trials per cell."""
        self.cells = [
            Cell(label, architecture, width, seed)
            for label, architecture in config.combinations()
            for width in config.model.widths
            for seed in config.seeds
        ]

    @property
    def total(self) -> int:
        return len(self.cells) * self.per_cell

    def fixed_trials(self) -> list[Trial]:
        """Every trial when the learning rates are fixed (empty for a searched range)."""
        return [self.trial(cell, lr) for cell in self.cells for lr in self.lrs]

    def trial(self, cell: Cell, lr: float) -> Trial:
        """The trial of ``cell`` at ``lr``."""
        return Trial(cell, lr, self.name(cell, lr), run_key(self.resolved(cell, lr)))

    def cell_name(self, cell: Cell) -> str:
        """``<label>[-d<width>]-s<seed>``: the width only for a ladder."""
        width = f"-d{cell.d_model}" if len(self.config.model.widths) > 1 else ""
        return f"{cell.combination}{width}-s{cell.seed}"

    def name(self, cell: Cell, lr: float) -> str:
        """The MLflow run name: ``<label>[-d<width>]-s<seed>[-lr<lr>]`` (the rate only when searched)."""
        return self.cell_name(cell) + (f"-lr{lr:.3g}" if self.config.search is not None else "")

    def resolved(self, cell: Cell, lr: float) -> dict[str, Any]:
        """Everything that determines the trial's outcome, as plain data."""
        config = self.config
        return {
            "task": config.task.model_dump(mode="json"),
            "model": config.model.at(cell.d_model).model_dump(mode="json"),
            "training": config.training.model_copy(update={"lr": lr}).model_dump(mode="json"),
            "architecture": _architecture_json(cell.architecture, canonical=True),
            "seed": cell.seed,
        }

    def listing(self) -> list[dict[str, Any]]:
        """Every trial as plain data (``trials.json``); a searched cell lists its range and trial count."""
        if self.lr_range is None:
            return [trial.to_config() | {"spec": shorthand(trial.cell.architecture)} for trial in self.fixed_trials()]
        search = self.lr_range.model_dump() | {"trials": self.per_cell, "sampler": "optuna-tpe"}
        return [
            {"name": self.cell_name(cell), **cell.to_config(), "lr": search, "spec": shorthand(cell.architecture)}
            for cell in self.cells
        ]

    def describe(self) -> str:
        """``4 combinations x 2 seeds x 3 learning rates = 24 trials`` (widths only for a ladder, rates only
        with ``search``)."""
        factors = [_count(len(self.config.combinations()), "combination")]
        if len(self.config.model.widths) > 1:
            factors.append(_count(len(self.config.model.widths), "width"))
        factors.append(_count(len(self.config.seeds), "seed"))
        if self.lr_range is not None:
            factors.append(_count(self.per_cell, "searched learning rate"))
        elif self.config.search is not None:
            factors.append(_count(len(self.lrs), "learning rate"))
        return f"{' x '.join(factors)} = {_count(self.total, 'trial')}"


def shorthand(architecture: Architecture) -> str:
    """The spec shorthand of a preset, grid point or ablation variant (``lin-l2-l2-gd[grad_at=decayed]``,
    ``+swa512`` for hybrids and their variants), or ``attention`` for a baseline."""
    if isinstance(architecture, MirasSpec):
        return architecture.shorthand()
    if isinstance(architecture, Variant):
        base = PRESETS[architecture.base]
        return architecture.spec.shorthand() + (f"+swa{base.swa_window}" if base.hybrid else "")
    if architecture in BASELINES:
        return "attention"
    preset = PRESETS[architecture]
    return preset.spec.shorthand() + (f"+swa{preset.swa_window}" if preset.hybrid else "")


def run_key(resolved: dict[str, Any]) -> str:
    """16 hex digits of the SHA-256 of the resolved trial config (sorted-key JSON)."""
    return hashlib.sha256(json.dumps(resolved, sort_keys=True).encode()).hexdigest()[:16]


def _architecture_json(architecture: Architecture, canonical: bool = False) -> str | dict[str, Any]:
    if isinstance(architecture, str):
        return architecture
    if not canonical:
        return architecture.model_dump(mode="json")
    if isinstance(architecture, Variant):
        return architecture.model_dump(mode="json") | {"spec": architecture.spec.canonical()}
    return architecture.canonical()


__all__ = ["Cell", "Plan", "Trial", "run_key", "shorthand"]
