"""Ablation variants: a preset with one thing changed (one axis swapped, or one gate's kind).

The paper's ablation tables start from a model and remove one component at a time; a
:class:`Variant` is one such row, named as the paper writes it (``yaad -bias=l2``,
``yaad -gate.delta=constant``). Everything the change does not touch (the other axes with their
parameters, the gate kinds, the hybrid window) is the base preset's.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from .gates import GateKind
from .presets import PRESETS
from .spec import AxisChoice, MirasSpec


class Variant(BaseModel):
    """``base`` with ``change`` applied: its ``spec`` and ``gates`` (gate name -> kind)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    base: str
    change: str
    """``<axis>=<option>`` or ``gate.<name>=<kind>``."""
    spec: MirasSpec
    gates: dict[str, GateKind]

    @property
    def label(self) -> str:
        """The ablation row's name: ``<base> -<change>``."""
        return f"{self.base} -{self.change}"


def choice_text(choice: AxisChoice) -> str:
    """``l2``, or ``lp[p=2]`` with the parameters given (as written, not the defaults)."""
    if not choice.params:
        return choice.name
    return f"{choice.name}[{','.join(f'{key}={_text(value)}' for key, value in sorted(choice.params.items()))}]"


def _text(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def swap_axis(base: str, axis: str, choice: AxisChoice) -> Variant:
    """Preset ``base`` with ``axis`` set to ``choice`` (its gate kinds kept; gates the new spec does not
    read are ignored by the mixer, gates it adds get the mixer's default kind)."""
    preset = PRESETS[base]
    spec = preset.spec.model_copy(update={axis: choice})
    return Variant(base=base, change=f"{axis}={choice_text(choice)}", spec=spec, gates=dict(preset.gates))


def swap_gate(base: str, gate: str, kind: GateKind) -> Variant:
    """Preset ``base`` with gate ``gate`` produced as ``kind`` (``data|channel|constant|one``)."""
    preset = PRESETS[base]
    return Variant(base=base, change=f"gate.{gate}={kind}", spec=preset.spec, gates=dict(preset.gates) | {gate: kind})


__all__ = ["Variant", "choice_text", "swap_axis", "swap_gate"]
