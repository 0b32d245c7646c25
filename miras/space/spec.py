"""``MirasSpec``: one point of the design space, and its validation."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from .algorithms import Algorithm
from .biases import L2, AttentionalBias
from .gates import DECAY, LR, GateSpec
from .memories import LinearMemory, Memory
from .registry import AXES, REGISTRIES, Option, Params, RegistryError
from .retention import Retention


class SpecError(ValueError):
    """An invalid spec. ``problems`` holds ``(field path, message)`` pairs."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{path}: {message}" for path, message in problems))


class AxisChoice(BaseModel):
    """An option of one axis by registry name, with its parameters (``"l2"`` is short for
    ``{name: l2}``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    params: dict[str, Any] = {}

    @model_validator(mode="before")
    @classmethod
    def _from_name(cls, value: Any) -> Any:
        return {"name": value} if isinstance(value, str) else value

    def validated(self, axis: str) -> tuple[Option, Params]:
        """The registered option of this choice on ``axis`` and its validated parameters (each distinct
        parameter set is validated once per process); raises :class:`RegistryError` for an unknown
        name and pydantic's ``ValidationError`` for bad parameters."""
        option = REGISTRIES[axis].get(self.name)
        key = (option.params, json.dumps(self.params, sort_keys=True, default=repr))
        if key not in _VALIDATED:
            _VALIDATED[key] = option.params.model_validate(self.params)
        return option, _VALIDATED[key]


_VALIDATED: dict[tuple[type[Params], str], Params] = {}
"""Validated parameters by parameter model and the given parameters' JSON (:meth:`AxisChoice.validated`)."""


@dataclass(frozen=True)
class Components:
    """A resolved spec: the four axis implementations with validated parameters."""

    memory: Memory
    bias: AttentionalBias
    retention: Retention
    algorithm: Algorithm

    def gate_specs(self) -> tuple[GateSpec, ...]:
        """The per-token gates of this spec: ``lr`` (in the retention's ``lr_range``), ``decay``
        (a retention with a decay), then the algorithm's and the bias's own; ``ValueError`` when two
        options declare one name differently."""
        specs = {LR.name: replace(LR, scale=self.retention.lr_range)}
        if self.retention.uses_decay:
            specs[DECAY.name] = DECAY
        for gate in (*self.algorithm.gates, *self.bias.gates):
            if specs.setdefault(gate.name, gate) != gate:
                raise ValueError(f"gate {gate.name!r} is declared twice, differently: {specs[gate.name]} and {gate}")
        return tuple(specs.values())

    def required_gates(self) -> tuple[str, ...]:
        """Names of the per-token gates :func:`miras.ops.miras_scan` needs for this spec."""
        return tuple(gate.name for gate in self.gate_specs())


class MirasSpec(BaseModel):
    """A point of the Miras design space: memory, attentional bias, retention, algorithm."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    memory: AxisChoice
    bias: AxisChoice
    retention: AxisChoice
    algorithm: AxisChoice

    @classmethod
    def of(cls, memory: Any, bias: Any, retention: Any, algorithm: Any) -> MirasSpec:
        """Build from names or ``(name, params)`` dicts: ``MirasSpec.of("linear", "l2", "none", "gd")``."""
        return cls(memory=memory, bias=bias, retention=retention, algorithm=algorithm)

    def with_params(self, params: dict[str, dict[str, Any]]) -> MirasSpec:
        """This spec with ``params`` (axis -> name -> value) merged into its options' parameters."""
        updates = {
            axis: getattr(self, axis).model_copy(update={"params": getattr(self, axis).params | values})
            for axis, values in params.items()
        }
        return self.model_copy(update=updates)

    def problems(self) -> list[tuple[str, str]]:
        """Every problem of this spec as ``(path, message)``; empty when valid."""
        return self._check()[0]

    def resolve(self) -> Components:
        """Validate and build the four implementations; raises :class:`SpecError`."""
        problems, components = self._check()
        if components is None:
            raise SpecError(problems)
        return components

    def _check(self) -> tuple[list[tuple[str, str]], Components | None]:
        """The problems, and the built implementations when there are none."""
        problems: list[tuple[str, str]] = []
        built: dict[str, Any] = {}
        for axis in AXES:
            try:
                option, params = getattr(self, axis).validated(axis)
                built[axis] = option.build(params)
            except RegistryError as error:
                problems.append((f"{axis}.name", str(error)))
            except ValidationError as error:
                for item in error.errors():
                    loc = ".".join(str(part) for part in item["loc"])
                    problems.append((f"{axis}.params.{loc}", _pydantic_message(item)))
        if problems:
            return problems, None
        components = Components(**built)
        problems = [("spec", message) for message in incompatibilities(components)]
        return problems, None if problems else components

    def canonical(self) -> dict[str, dict[str, Any]]:
        """The spec with every parameter filled in with its default (stable for hashing)."""
        out = {}
        for axis in AXES:
            choice: AxisChoice = getattr(self, axis)
            out[axis] = {"name": choice.name, "params": choice.validated(axis)[1].model_dump()}
        return out

    def shorthand(self) -> str:
        """Readable run name, e.g. ``mlp-lp[p=3]-lq-gd[batch_size=16]``: non-default params only."""
        parts = []
        for axis in AXES:
            option, params = getattr(self, axis).validated(axis)
            given = params.model_dump()
            defaults = option.params().model_dump()
            changed = [f"{k}={_fmt(v)}" for k, v in given.items() if v != defaults[k]]
            parts.append(option.shorthand + (f"[{','.join(changed)}]" if changed else ""))
        return "-".join(parts)


def _fmt(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _pydantic_message(item: dict[str, Any]) -> str:
    if item["type"] == "extra_forbidden":
        return "unknown parameter"
    return item["msg"]


def incompatibilities(c: Components) -> list[str]:
    """Sentences that say why a combination of the four axes cannot work."""
    out = []
    alg = c.algorithm.params
    if c.algorithm.implicit:
        if not isinstance(c.memory, LinearMemory) or not isinstance(c.bias, L2):
            out.append("implicit GD has a closed form only for a linear memory under the l2 bias (Longhorn)")
        if alg.batch_size != 1:
            out.append("implicit GD solves each token exactly, so it needs algorithm batch_size 1")
        if not c.retention.identity:
            out.append("implicit GD needs an identity mirror map: use retention none or l2")
        if c.retention.uses_decay and alg.grad_at != "decayed":
            out.append("implicit GD solves around the decayed state alpha*W: set algorithm grad_at 'decayed'")
    if c.algorithm.steps > 1 and alg.batch_size != 1:
        out.append("several GD steps per token need algorithm batch_size 1")
    if alg.lag_token and alg.batch_size < 2:
        out.append("lag_token splits off the first token of each b-chunk, so it needs batch_size >= 2")
    for impl in (c.memory, c.bias, c.retention, c.algorithm):
        check = getattr(impl, "incompatibility", None)
        message = check(c) if check is not None else None
        if message:
            out.append(message)
    return out


__all__ = ["AxisChoice", "Components", "MirasSpec", "SpecError", "incompatibilities"]
