"""docs/config.md lists every field of the schema with its type, default, constraint and description."""

from __future__ import annotations

import re
import types
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import annotated_types as at
import pytest
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from miras.config import (
    AblationConfig,
    GridConfig,
    LmTask,
    LrRange,
    MatchConfig,
    ModelConfig,
    MqarTask,
    NeedleTask,
    Objective,
    ParamRange,
    ResourcesConfig,
    SearchConfig,
    SpaceConfig,
    SweepConfig,
    TrackingConfig,
    TrainingConfig,
)
from miras.config.schema import DatasetOptions
from miras.space import AxisChoice

DOC = Path(__file__).resolve().parents[2] / "docs" / "config.md"

SECTIONS: list[tuple[str, type[BaseModel]]] = [
    ("", SweepConfig),
    ("task.", MqarTask),
    ("task.", NeedleTask),
    ("task.", LmTask),
    ("task.dataset.", DatasetOptions),
    ("model.", ModelConfig),
    ("model.match.", MatchConfig),
    ("training.", TrainingConfig),
    ("space.", SpaceConfig),
    ("space.grid.", GridConfig),
    ("space.ablations.", AblationConfig),
    ("search.", SearchConfig),
    ("search.lr.", LrRange),
    ("search.params.<path>.", ParamRange),
    ("search.objectives.", Objective),
    ("resources.", ResourcesConfig),
    ("tracking.", TrackingConfig),
]


def _value(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list):
        return f"[{', '.join(_value(v) for v in value)}]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_value(v)}" for k, v in value.items()) + "}"
    return str(value)


def _constraint(metadata: list[Any]) -> str:
    parts = []
    for item in metadata:
        if isinstance(item, at.Ge):
            parts.append(f">= {item.ge}")
        elif isinstance(item, at.Gt):
            parts.append(f"> {item.gt}")
        elif isinstance(item, at.MinLen):
            parts.append("non-empty" if item.min_length == 1 else f"at least {item.min_length} items")
        elif getattr(item, "pattern", None):
            parts.append(f"matches `{item.pattern}`")
    return ", ".join(parts)


def _type(tp: Any) -> str:
    if get_origin(tp) is Annotated:
        inner, *meta = get_args(tp)
        infos = [m for m in meta if isinstance(m, FieldInfo)]
        constraint = _constraint([c for info in infos for c in info.metadata])
        if constraint == "non-empty":
            return f"non-empty {_type(inner)}"
        return f"{_type(inner)} {constraint}".strip()
    if tp is type(None):
        return "null"
    if get_origin(tp) in (Union, types.UnionType):
        return " or ".join(dict.fromkeys(_type(m) for m in get_args(tp)))
    if get_origin(tp) is Literal:
        return " or ".join(str(v) for v in get_args(tp))
    if get_origin(tp) is list:
        return f"list of {_type(get_args(tp)[0])}"
    if get_origin(tp) is dict:
        key, value = get_args(tp)
        return f"mapping of ({_type(key)}) to ({_type(value)})"
    if tp is AxisChoice:
        return "option name or {name, params}"
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return "mapping"
    return {int: "int", float: "number", str: "string", bool: "bool"}[tp]


def _default(field: FieldInfo) -> str:
    value = field.default_factory() if field.default_factory else field.default
    if isinstance(value, BaseModel):
        return _value(value.model_dump()) if value.model_fields_set else "{}"
    return _value(value)


def rows() -> list[str]:
    out = []
    for prefix, model in SECTIONS:
        for name, field in model.model_fields.items():
            default = "required" if field.is_required() else f"`{_default(field)}`"
            cells = [f"`{prefix}{name}`", _type(field.annotation), default]
            cells += [_constraint(field.metadata), field.description or ""]
            out.append("| " + " | ".join(cells) + " |")
    return out


@pytest.mark.parametrize("row", rows(), ids=lambda row: row.split("`")[1])
def test_every_field_has_its_row(row):
    assert row in DOC.read_text().splitlines()


def test_the_doc_has_no_other_field_rows():
    documented = [line for line in DOC.read_text().splitlines() if re.match(r"\| `[a-z_.<>]+` \|", line)]
    assert sorted(documented) == sorted(rows())
