"""What each layer of a model is, from a combination: a preset or baseline name, a free spec or an
ablation variant. The one place a combination is resolved (torch-free: the planner, the config
checks and the models all read it)."""

from __future__ import annotations

from dataclasses import dataclass

from .gates import GateKind
from .presets import BASELINES, DEFAULT_SWA_WINDOW, PRESETS
from .spec import MirasSpec
from .variants import Variant

ModelChoice = str | MirasSpec | Variant
"""A combination of a sweep: a preset or baseline name, a free spec, or an ablation variant."""


@dataclass(frozen=True)
class Architecture:
    """What each layer's mixer is: a Miras memory (``spec``), attention (no ``spec``; full, or
    sliding with ``window``), or both alternating (a ``spec`` and a ``window``: a hybrid)."""

    name: str
    spec: MirasSpec | None = None
    gate_kinds: dict[str, GateKind] | None = None
    window: int | None = None

    def layer_kinds(self, n_layers: int) -> list[str]:
        if self.spec is None:
            return ["attention"] * n_layers
        if self.window is None:
            return ["miras"] * n_layers
        if n_layers < 2:
            raise ValueError(f"hybrid {self.name!r} alternates Miras and SWA layers: needs n_layers >= 2")
        return ["miras" if i % 2 == 0 else "attention" for i in range(n_layers)]


def architecture(name_or_spec: ModelChoice, window: int | None = None) -> Architecture:
    """A preset name, a baseline name (``transformer``, ``swa``), a free spec or an ablation variant
    (a hybrid base's variant keeps its window) -> its architecture."""
    if isinstance(name_or_spec, MirasSpec):
        return Architecture(name_or_spec.shorthand(), name_or_spec)
    if isinstance(name_or_spec, Variant):
        base = architecture(name_or_spec.base, window)
        return Architecture(name_or_spec.label, name_or_spec.spec, dict(name_or_spec.gates), base.window)
    name = name_or_spec
    if name == "transformer":
        return Architecture(name)
    if name == "swa":
        return Architecture(name, window=window or DEFAULT_SWA_WINDOW)
    if name not in PRESETS:
        known = sorted(PRESETS) + sorted(BASELINES)
        raise KeyError(f"unknown model {name!r}; known: {', '.join(known)}")
    preset = PRESETS[name]
    return Architecture(
        name,
        preset.spec,
        dict(preset.gates),
        window=(window or preset.swa_window) if preset.hybrid else None,
    )


def spec_of(choice: ModelChoice) -> MirasSpec | None:
    """The Miras spec of a combination (``None`` for an attention baseline)."""
    return architecture(choice).spec


def shorthand(choice: ModelChoice) -> str:
    """The spec shorthand of a preset, grid point or ablation variant (``lin-l2-l2-gd[grad_at=decayed]``,
    ``+swa512`` for hybrids and their variants), or ``attention`` for a baseline."""
    arch = architecture(choice)
    if arch.spec is None:
        return "attention"
    return arch.spec.shorthand() + (f"+swa{arch.window}" if arch.window is not None else "")


__all__ = ["Architecture", "ModelChoice", "architecture", "shorthand", "spec_of"]
