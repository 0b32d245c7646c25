"""Incompatible combinations of a grid, each reported once by the axis entries that cause it.

Every combination of the grid goes through :meth:`MirasSpec.problems`. A message is blamed on

- the axes where swapping the entry (for another grid entry, or any registered option at its
  defaults) removes the message, and
- the smallest set of axes whose entries alone imply the message within the grid,

so ``memory[1]=mlp x algorithm[0]=implicit_gd`` stands for every combination sharing those two
entries, instead of one line per combination.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence

from ..space import AXES, REGISTRIES, AxisChoice, MirasSpec
from .errors import Problem

Index = tuple[int, ...]


def incompatible_combinations(entries: Sequence[Sequence[AxisChoice]]) -> list[Problem]:
    """``space.grid`` problems of a grid given as one list of valid entries per axis (in ``AXES`` order)."""
    return _Blame(entries).problems()


class _Blame:
    def __init__(self, entries: Sequence[Sequence[AxisChoice]]) -> None:
        self.entries = entries
        self.alternatives = [
            [*axis_entries, *(AxisChoice(name=name) for name in REGISTRIES[axis].names())]
            for axis, axis_entries in zip(AXES, entries, strict=True)
        ]
        self.cache: dict[str, list[str] | None] = {}

    def messages(self, choices: Sequence[AxisChoice]) -> list[str] | None:
        """The incompatibility sentences of a spec; ``None`` if an option or its params are invalid."""
        key = json.dumps([c.model_dump() for c in choices], sort_keys=True, default=str)
        if key not in self.cache:
            problems = MirasSpec(**dict(zip(AXES, choices, strict=True))).problems()
            valid = all(path == "spec" for path, _ in problems)
            self.cache[key] = [message for _, message in problems] if valid else None
        return self.cache[key]

    def choices(self, index: Index) -> list[AxisChoice]:
        return [axis_entries[i] for axis_entries, i in zip(self.entries, index, strict=True)]

    def problems(self) -> list[Problem]:
        bad: dict[Index, list[str]] = {}
        for index in itertools.product(*(range(len(e)) for e in self.entries)):
            messages = self.messages(self.choices(index))
            if messages:
                bad[index] = messages
        blamed: dict[Index, list[str]] = {}  # entry index per axis (-1: not blamed) -> messages
        for index, messages in bad.items():
            for message in messages:
                axes = self.swappable(index, message) | self.implying(index, message, bad)
                key = tuple(i if k in axes else -1 for k, i in enumerate(index))
                if message not in blamed.setdefault(key, []):
                    blamed[key].append(message)
        return [("space.grid", f"{self.label(key)}: {'; '.join(messages)}") for key, messages in blamed.items()]

    def swappable(self, index: Index, message: str) -> set[int]:
        """Axes where another option removes ``message``."""
        choices = self.choices(index)
        axes = set()
        for k, alternatives in enumerate(self.alternatives):
            for alternative in alternatives:
                messages = self.messages([*choices[:k], alternative, *choices[k + 1 :]])
                if messages is not None and message not in messages:
                    axes.add(k)
                    break
        return axes

    def implying(self, index: Index, message: str, bad: dict[Index, list[str]]) -> set[int]:
        """The smallest set of axes whose entries at ``index`` give ``message`` wherever the others are."""
        slots = list(enumerate(zip(self.entries, index, strict=True)))
        for size in range(len(AXES) + 1):
            for axes in itertools.combinations(range(len(AXES)), size):
                ranges = [[i] if k in axes else range(len(e)) for k, (e, i) in slots]
                if all(message in bad.get(other, ()) for other in itertools.product(*ranges)):
                    return set(axes)
        raise AssertionError("unreachable: fixing all four axes gives the combination itself")

    def label(self, key: Index) -> str:
        slots = zip(AXES, self.entries, key, strict=True)
        return " x ".join(f"{axis}[{i}]={_entry(axis_entries[i])}" for axis, axis_entries, i in slots if i >= 0)


def _entry(choice: AxisChoice) -> str:
    """``gd`` or ``gd(steps=2, batch_size=4)``."""
    params = ", ".join(f"{key}={value}" for key, value in choice.params.items())
    return f"{choice.name}({params})" if params else choice.name


__all__ = ["incompatible_combinations"]
