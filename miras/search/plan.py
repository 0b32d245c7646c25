"""A sweep's trials: combinations x widths x seeds x searched settings, each named and keyed.

A *cell* is one combination at one model width and one seed. Without ``search`` a cell is one
trial at ``training.lr``. With ``search``, each cell has the searched settings that apply to its
combination (``training.lr`` and ``search.params``): where every one is a list of values the cell
runs each point of their cross product once; where one is a range it runs
``search.trials_per_combination`` trials whose values its study samples (:mod:`miras.search.searcher`).

Every trial has a *run key*: a hash of its resolved config (task, model at its width, training
at its learning rate, architecture with every parameter filled in, seed, searched axis
parameters). The key names the trial's checkpoint folder and tags its MLflow run, so a resumed
sweep recognises finished work: :meth:`Work.left` is what remains, given the finished runs.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from ..config import ConfigError, ModelConfig, NeedleTask, SweepConfig, TrainingConfig
from ..config.schema import Task
from ..config.searched import Dimension, dimensions, split_values
from ..record import COMBINATION, RUN_KEY
from ..space import MirasSpec, Variant
from ..space.architecture import ModelChoice, architecture, shorthand, spec_of

if TYPE_CHECKING:
    from mlflow.entities import Run

    from ..models.budget import Sized
    from ..runners.trial import TrialConfig


@dataclass(frozen=True)
class Cell:
    """One combination at one width and seed: the part of a trial the searched settings do not change.
    Hashed by its label, width and seed (a label names one architecture in a sweep)."""

    combination: str
    architecture: ModelChoice = field(hash=False)
    d_model: int
    seed: int

    def to_config(self) -> dict[str, Any]:
        return asdict(self) | {"architecture": _architecture_json(self.architecture)}


@dataclass(frozen=True)
class Trial:
    """One trial: a cell at a learning rate and the values of the other searched settings
    (path -> value, e.g. ``{"bias.p": 2.5}``), with its run name and run key."""

    cell: Cell
    lr: float
    name: str
    key: str
    values: dict[str, Any] = field(default_factory=dict, hash=False)

    def to_config(self) -> dict[str, Any]:
        """A JSON-able form (the Tune config of the trial, an entry of ``trials.json``)."""
        return {"name": self.name, "key": self.key, **self.cell.to_config(), "lr": self.lr, "values": self.values}

    @classmethod
    def from_config(cls, data: dict[str, Any]) -> Trial:
        """Inverse of :meth:`to_config`."""
        architecture = data["architecture"]
        if isinstance(architecture, dict):
            kind = Variant if "base" in architecture else MirasSpec
            architecture = kind.model_validate(architecture)
        cell = Cell(data["combination"], architecture, data["d_model"], data["seed"])
        return cls(cell, data["lr"], data["name"], data["key"], dict(data.get("values") or {}))


@dataclass(frozen=True)
class TrialSettings:
    """What a trial trains with: the sweep's sections and architecture with its searched values applied."""

    model: ModelConfig
    training: TrainingConfig
    architecture: ModelChoice
    axis_params: dict[str, dict[str, Any]]
    """Searched axis parameters (axis -> name -> value), merged into the architecture's spec."""

    def trial_config(self, task: Task, **run: Any) -> TrialConfig:
        """The :class:`TrialConfig` of these settings on ``task``; ``run``: its other fields (seed,
        lr, workdir, cache_dir, device)."""
        from ..runners.trial import TrialConfig

        return TrialConfig(
            task=task,
            model=self.model,
            training=self.training,
            architecture=self.architecture,
            axis_params=self.axis_params,
            **run,
        )

    def spec(self) -> MirasSpec | None:
        """The Miras spec the trial trains (``None`` for an attention baseline)."""
        spec = spec_of(self.architecture)
        return None if spec is None else spec.with_params(self.axis_params)


def _count(n: int, noun: str) -> str:
    """``1 seed``, ``2 seeds``."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _value_text(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


class Plan:
    """The trials of a validated sweep config.

    Each cell has its own searched settings (:func:`miras.config.searched.dimensions`): where all of
    them are lists it runs their cross product, each point once (fixed trials); where one is a range
    it runs ``search.trials_per_combination`` trials sampled by its study (a searched cell).
    """

    def __init__(self, config: SweepConfig) -> None:
        """Raises :class:`ConfigError` (``model.match``) when a combination cannot meet the budget."""
        self.config = config
        self.matched: dict[str, Sized] = matched_widths(config)
        """Per combination label, the width chosen for ``model.match`` (empty without it)."""
        self.cells = [
            Cell(label, architecture, width, seed)
            for label, architecture in config.combinations()
            for width in ([self.matched[label].d_model] if self.matched else config.model.widths)
            for seed in config.seeds
        ]
        self._dimensions = {
            label: dimensions(config.search, architecture) for label, architecture in config.combinations()
        }

    def dimensions(self, cell: Cell) -> list[Dimension]:
        """The settings searched in ``cell`` (``training.lr`` first when searched)."""
        return self._dimensions[cell.combination]

    def searched(self, cell: Cell) -> bool:
        """Whether a study samples this cell's trials (some setting is a range)."""
        return any(d.is_range for d in self.dimensions(cell))

    @property
    def searched_cells(self) -> list[Cell]:
        return [cell for cell in self.cells if self.searched(cell)]

    @property
    def budget(self) -> int:
        """Trials per searched cell."""
        return self.config.search.trials if self.config.search is not None else 1

    @property
    def total(self) -> int:
        return len(self.fixed_trials()) + self.budget * len(self.searched_cells)

    def fixed_trials(self) -> list[Trial]:
        """Every trial of the cells that are not searched: the cross product of their listed values."""
        trials = []
        for cell in self.cells:
            if self.searched(cell):
                continue
            dims = self.dimensions(cell)
            for point in itertools.product(*(d.values for d in dims)):
                trials.append(self.trial(cell, dict(zip((d.path for d in dims), point, strict=True))))
        return trials

    def trial(self, cell: Cell, values: dict[str, Any]) -> Trial:
        """The trial of ``cell`` at the searched ``values`` (path -> value; ``training.lr`` missing:
        the config's rate)."""
        values = dict(values)
        lr = float(values.pop("training.lr", self.config.training.lr))
        return Trial(cell, lr, self.name(cell, lr, values), run_key(self.resolved(cell, lr, values)), values)

    def cell_name(self, cell: Cell) -> str:
        """``<label>[-d<width>]-s<seed>``: the width only for a ladder."""
        width = f"-d{cell.d_model}" if len(self.config.model.widths) > 1 else ""
        return f"{cell.combination}{width}-s{cell.seed}"

    def name(self, cell: Cell, lr: float, values: dict[str, Any] | None = None) -> str:
        """The MLflow run name: ``<label>[-d<width>]-s<seed>[-lr<lr>][-<path><value>...]`` (the rate
        only with ``search``, the other settings where searched)."""
        rate = f"-lr{lr:.3g}" if self.config.search is not None else ""
        return self.cell_name(cell) + rate + "".join(f"-{p}{_value_text(v)}" for p, v in (values or {}).items())

    def settings(self, cell: Cell, lr: float, values: dict[str, Any]) -> TrialSettings:
        """The model, training and architecture of a trial of ``cell`` at ``lr`` and ``values``."""
        return trial_settings(self.config, cell, lr, values)

    def resolved(self, cell: Cell, lr: float, values: dict[str, Any] | None = None) -> dict[str, Any]:
        """Everything that determines the trial's outcome, as plain data."""
        settings = self.settings(cell, lr, values or {})
        resolved = {
            "task": _task_json(self.config.task),
            "model": settings.model.model_dump(mode="json"),
            "training": settings.training.model_dump(mode="json"),
            "architecture": _architecture_json(cell.architecture, canonical=True),
            "seed": cell.seed,
        }
        if settings.axis_params:  # only then: the keys of trials without searched axis params stay as they were
            resolved["axis_params"] = settings.axis_params
        return resolved

    def listing(self) -> list[dict[str, Any]]:
        """Every trial as plain data (``trials.json``): fixed trials, then each searched cell with its
        searched settings and trial count."""
        fixed = [trial.to_config() | {"spec": shorthand(trial.cell.architecture)} for trial in self.fixed_trials()]
        searched = []
        for cell in self.searched_cells:
            space = {
                d.path: d.values if isinstance(d.values, list) else d.values.model_dump() for d in self.dimensions(cell)
            }
            search = {"space": space, "trials": self.budget, "sampler": "optuna-tpe"}
            searched.append(
                {
                    "name": self.cell_name(cell),
                    **cell.to_config(),
                    "search": search,
                    "spec": shorthand(cell.architecture),
                }
            )
        return fixed + searched

    def describe(self) -> str:
        """``4 combinations x 2 seeds x 3 learning rates = 24 trials`` (widths only for a ladder, the
        search only with ``search``; the searched settings when more than the learning rate)."""
        factors = [_count(len(self.config.combinations()), "combination")]
        if len(self.config.model.widths) > 1:
            factors.append(_count(len(self.config.model.widths), "width"))
        factors.append(_count(len(self.config.seeds), "seed"))
        paths = list(dict.fromkeys(d.path for cell in self.cells for d in self.dimensions(cell)))
        if paths == ["training.lr"] and self.searched_cells:
            factors.append(_count(self.budget, "searched learning rate"))
        elif paths == ["training.lr"]:
            factors.append(_count(len(self.dimensions(self.cells[0])[0].values), "learning rate"))
        text = f"{' x '.join(factors)} = {_count(self.total, 'trial')}"
        if self.matched:
            what, target = self.config.model.match.budget  # type: ignore[union-attr]
            widths = ", ".join(f"{label} {sized.d_model} ({sized.error:+.1%})" for label, sized in self.matched.items())
            text += f"; d_model matched to {what} {target:,}: {widths}"
        if paths and paths != ["training.lr"]:
            parts = (
                [f"{_count(len(self.searched_cells), 'cell')} x {self.budget} sampled"] if self.searched_cells else []
            )
            fixed = len(self.fixed_trials())
            parts += [_count(fixed, "grid point") if fixed else ""]
            text += f" (searching {', '.join(paths)}: {', '.join(p for p in parts if p)})"
        return text


def trial_settings(config: SweepConfig, cell: Cell, lr: float, values: dict[str, Any]) -> TrialSettings:
    """The model (at the cell's width), training and architecture of a trial of ``cell`` at ``lr`` and the
    searched ``values`` (no plan needed: what a trial's worker builds)."""
    model, training, axes = split_values(values)
    return TrialSettings(
        config.model.at(cell.d_model).model_copy(update=model),
        config.training.model_copy(update={"lr": lr} | training),
        cell.architecture,
        axes,
    )


def task_shape(task: Task) -> tuple[int, int]:
    """``(vocab_size, sequence length)`` of a task config: what a model's parameters and state depend
    on (the needle task trains at ``train_length``, else its longest context)."""
    if isinstance(task, NeedleTask):
        return task.vocab_size, task.train_length or max(task.context_lengths)
    return task.vocab_size, task.seq_len


def matched_widths(config: SweepConfig) -> dict[str, Sized]:
    """Per combination, the width that meets ``model.match`` (empty without it); :class:`ConfigError`
    naming every combination that cannot."""
    match = config.model.match
    if match is None:
        return {}
    from ..models.budget import match_width  # sizing builds the models: torch only where a config matches widths

    what, target = match.budget
    vocab, length = task_shape(config.task)
    found, problems = {}, []
    for label, name_or_spec in config.combinations():
        arch = architecture(name_or_spec, window=config.model.swa_window)
        sized = match_width(arch, vocab, config.model, length, what, target)
        if abs(sized.error) > match.tolerance:
            problems.append(
                (
                    "model.match",
                    f"{label} cannot be sized to {what} {target:,} within ±{match.tolerance:.0%}: the closest "
                    f"d_model (a multiple of {config.model.width_step}, for the heads) is {sized.d_model}, with "
                    f"{sized.value:,} ({sized.error:+.1%}); widen model.match.tolerance or change n_heads",
                )
            )
        found[label] = sized
    if problems:
        raise ConfigError(problems)
    return found


def _task_json(task: Task) -> dict[str, Any]:
    """The task as plain data for the run key; ``dataset`` only when set, so the keys of tasks
    without it stay as they were before the field existed."""
    data = task.model_dump(mode="json")
    if data.get("dataset", {}) is None:
        del data["dataset"]
    return data


def run_key(resolved: dict[str, Any]) -> str:
    """16 hex digits of the SHA-256 of the resolved trial config (sorted-key JSON)."""
    return hashlib.sha256(json.dumps(resolved, sort_keys=True).encode()).hexdigest()[:16]


def _architecture_json(architecture: ModelChoice, canonical: bool = False) -> str | dict[str, Any]:
    if isinstance(architecture, str):
        return architecture
    if not canonical:
        return architecture.model_dump(mode="json")
    if isinstance(architecture, Variant):
        return architecture.model_dump(mode="json") | {"spec": architecture.spec.canonical()}
    return architecture.canonical()


@dataclass
class Work:
    """The trials left: fixed-rate trials by run key, or the remaining budget of each searched cell."""

    done: set[str]
    """Run keys of the finished trials."""
    trials: list[Trial] = field(default_factory=list)
    """Fixed trials (cells without a range) without a finished run."""
    budget: dict[Cell, int] = field(default_factory=dict)
    """Searched cells: trials still to sample."""

    @property
    def count(self) -> int:
        return len(self.trials) + sum(self.budget.values())

    @classmethod
    def left(cls, plan: Plan, finished: Sequence[Run]) -> Work:
        done = {run.data.tags.get(RUN_KEY, "") for run in finished}
        trials = [trial for trial in plan.fixed_trials() if trial.key not in done]
        searched = plan.searched_cells
        cells = {(cell.combination, cell.d_model, cell.seed): cell for cell in searched}
        used = Counter(cells.get(_identity(run)) for run in finished)
        return cls(done, trials, budget={cell: max(plan.budget - used[cell], 0) for cell in searched})


def _identity(run: Run) -> tuple[str | None, int, int]:
    """The cell of a trial's run: its combination tag, ``model.d_model`` and ``seed`` params."""
    params = run.data.params
    return run.data.tags.get(COMBINATION), int(params.get("model.d_model", -1)), int(params.get("seed", -1))


__all__ = [
    "Cell",
    "Plan",
    "Trial",
    "TrialSettings",
    "Work",
    "matched_widths",
    "run_key",
    "task_shape",
    "trial_settings",
]
