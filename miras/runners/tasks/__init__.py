"""Tasks of a trial: MQAR, single-needle retrieval and language modelling (docs/tasks.md)."""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from .base import IGNORE_INDEX, Batch, Predict, Task
from .mqar import MQAR
from .needle import Needle
from .text import TextLM

TASKS: dict[str, type] = {"mqar": MQAR, "needle": Needle, "lm": TextLM}


def build_task(config: BaseModel | Mapping[str, Any] | str, cache_dir: Path | str, **options: Any) -> Task:
    """Build a task from its config.

    Args:
        config: a task config model of :mod:`miras.config.schema` (``MqarTask``, ``NeedleTask``,
            ``LmTask``), a mapping with a ``name`` key and its fields, or just a task name.
        cache_dir: folder of the data, tokenizer and token caches (shared between trials).
        **options: fields added to or overriding the config's, including options that only the
            task classes take (``test_num_kv_pairs``, ``vocab_size`` and ``train_length`` for
            the needle task, ``eval_windows``).
    """
    if isinstance(config, BaseModel):
        fields = config.model_dump()
    elif isinstance(config, str):
        fields = {"name": config}
    else:
        fields = dict(config)
    fields |= options
    name = fields.pop("name", None)
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; known: {', '.join(TASKS)}")
    accepted = set(inspect.signature(TASKS[name]).parameters) - {"cache_dir"}
    unknown = sorted(set(fields) - accepted)
    if unknown:
        raise TypeError(f"task {name!r} has no option {', '.join(unknown)}; its options: {', '.join(sorted(accepted))}")
    return TASKS[name](cache_dir=Path(cache_dir), **fields)


__all__ = ["IGNORE_INDEX", "MQAR", "TASKS", "Batch", "Needle", "Predict", "Task", "TextLM", "build_task"]
