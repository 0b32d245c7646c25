"""Searched settings (``search.lr`` and ``search.params``): which apply to a combination, their checks,
and how a trial's values change its model, training and spec.

A path is ``training.<field>``, ``model.<field>`` or ``<axis>.<param>`` (``bias.p``,
``algorithm.batch_size``). An axis parameter applies only to combinations whose option on that
axis has it (define-by-run: Moneta's ``bias.p`` is searched, the transformer's is not there to
search); ``training.*`` and ``model.*`` apply to every combination.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from ..space import AXES, REGISTRIES
from ..space.architecture import ModelChoice, spec_of
from ..space.registry import suggest
from .errors import Problem, pydantic_problems
from .schema import LrRange, ModelConfig, ParamRange, SearchConfig, TrainingConfig

SECTIONS: dict[str, type[BaseModel]] = {"training": TrainingConfig, "model": ModelConfig}
FINAL_MEASUREMENTS = (
    "tokens_per_second",
    "n_params",
    "state_size",
    "flops_per_token",
    "peak_memory_mb",
    "wall_seconds",
)
"""What a trial measures once, at its end (an objective may be one of them)."""
NOT_SEARCHABLE = {
    "model.d_model": "the width is the ladder axis: give model.d_model a list of widths",
    "model.impl": "the scan implementation does not change what is computed",
    "model.match": "it chooses the width for a budget; search other settings",
}


@dataclass(frozen=True)
class Dimension:
    """One searched setting: a range (sampled) or a list of values (each tried)."""

    path: str
    values: LrRange | ParamRange | list[Any]

    @property
    def is_range(self) -> bool:
        return not isinstance(self.values, list)


def applies(path: str, architecture: ModelChoice) -> bool:
    """Whether the setting at ``path`` exists for this combination."""
    section, name = path.split(".", 1)
    if section in SECTIONS:
        return True
    spec = spec_of(architecture)
    return spec is not None and name in REGISTRIES[section].get(getattr(spec, section).name).params.model_fields


def dimensions(search: SearchConfig | None, architecture: ModelChoice) -> list[Dimension]:
    """The searched settings that apply to a combination, in the order given (``training.lr`` first)."""
    if search is None:
        return []
    return [Dimension(path, values) for path, values in search.searched.items() if applies(path, architecture)]


def split_values(values: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any], dict[str, dict[str, Any]]]:
    """A trial's values -> ``(model fields, training fields, axis -> params)``."""
    model, training, axes = {}, {}, {}
    for path, value in values.items():
        section, name = path.split(".", 1)
        target = model if section == "model" else training if section == "training" else axes.setdefault(section, {})
        target[name] = value
    return model, training, axes


def search_problems(
    search: SearchConfig, architectures: list[ModelChoice], sections: dict[str, BaseModel]
) -> list[Problem]:
    """Paths that are not settings or apply to no combination, values the setting refuses (checked
    with the sweep's own ``sections``, e.g. ``model`` and ``training``), and a ``trials_per_combination``
    with nothing to sample."""
    problems: list[Problem] = []
    if "training.lr" in search.params and "lr" in search.model_fields_set:
        problems.append(
            ("search.params.training.lr", "search.lr is the shorthand of this setting: give one of the two")
        )
    for path, values in search.params.items():
        problems += _path_problems(path, values, architectures, sections)
    first = search.objectives[0].metric if search.objectives else search.metric
    if search.scheduler == "asha" and first in FINAL_MEASUREMENTS:
        problems.append(
            (
                "search.scheduler",
                f"asha stops trials by the first objective at every evaluation, and {first} is measured only at "
                "the end: put an evaluation metric first",
            )
        )
    if search.trials_per_combination is not None and not any(
        Dimension(path, values).is_range for path, values in search.searched.items()
    ):
        lr = f" (search.lr is a list of {len(search.lr)} values)" if isinstance(search.lr, list) else ""
        message = f"every searched setting is a list of values, each tried once{lr}: remove this key"
        problems.append(("search.trials_per_combination", message))
    return problems


def _path_problems(
    path: str, values: ParamRange | list[Any], architectures: list[Any], sections: dict[str, BaseModel]
) -> list[Problem]:
    where = f"search.params.{path}"
    section, _, name = path.partition(".")
    known = [*SECTIONS, *AXES]
    if section not in known or not name:
        return [(where, f"expected <section>.<name> with a section of {', '.join(known)}{suggest(section, known)}")]
    if path in NOT_SEARCHABLE:
        return [(where, f"not searchable: {NOT_SEARCHABLE[path]}")]
    if section in SECTIONS:
        model = SECTIONS[section]
        if name not in model.model_fields:
            fields = list(model.model_fields)
            return [(where, f"{section} has no field {name!r}; fields: {', '.join(fields)}{suggest(name, fields)}")]
        return _value_problems(where, model, name, values, sections[section].model_dump())
    options = {}
    for architecture in architectures:
        spec = spec_of(architecture)
        if spec is not None and applies(path, architecture):
            choice = getattr(spec, section)
            options[choice.name] = REGISTRIES[section].get(choice.name).params
    if not options:
        used = sorted({getattr(spec_of(a), section).name for a in architectures if spec_of(a) is not None})
        shown = ", ".join(f"{o} ({', '.join(REGISTRIES[section].get(o).params.model_fields) or 'none'})" for o in used)
        return [
            (where, f"no combination's {section} option has a parameter {name!r}; their parameters: {shown or '-'}")
        ]
    return [problem for model in options.values() for problem in _value_problems(where, model, name, values, {})]


def _value_problems(
    where: str, model: type[BaseModel], name: str, values: ParamRange | list[Any], base: dict[str, Any]
) -> list[Problem]:
    """Each end of a range, or each listed value, validated as the field ``name`` of ``model`` with
    the other fields at ``base`` (a rule between fields, e.g. warmup <= steps, names the other field)."""
    points = (
        {"low": values.low, "high": values.high}
        if isinstance(values, ParamRange)
        else {f"[{i}]": value for i, value in enumerate(values)}
    )
    problems: list[Problem] = []
    for label, value in points.items():
        if isinstance(values, ParamRange) and values.int:
            value = int(value)
        try:
            model.model_validate(base | {name: value})
        except ValidationError as error:
            at = f"{where}.{label}" if not label.startswith("[") else f"{where}{label}"
            for path, message in pydantic_problems(error, model):
                problems.append((at, message if path == name else f"{path}: {message}"))
    return problems


__all__ = ["Dimension", "applies", "dimensions", "search_problems", "spec_of", "split_values"]
