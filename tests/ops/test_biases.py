"""Every built-in attentional bias: its closed-form error signal equals autograd of its loss, in
value and in the gradients the outer training loop takes (w.r.t. pred, target and every gate)."""

from __future__ import annotations

import json

import pytest
import torch

from miras.space import BUILTIN, REGISTRIES, AttentionalBias

# Every mode and smoothing of the built-ins with parameters (others run with their defaults only).
MODES: dict[str, list[dict]] = {
    "l1": [{"smooth": s} for s in ("none", "tanh", "sqrt")] + [{"smooth": "tanh", "sharpness": 2.0}],
    "lp": [{"p": p, "smooth": s} for p in (1.0, 1.5, 2.0, 3.0) for s in ("none", "sqrt")],
    "huber": [{"mode": m, "smooth": s} for m in ("coordinate", "norm", "token") for s in ("none", "tanh", "sqrt")]
    + [{"mode": m, "scale": "l2"} for m in ("norm", "token")],
    "robust": [{"radius": r} for r in (0.0, 0.1, 2.0)],
}
D_V = 5


def bias_cases() -> list[tuple[str, dict]]:
    cases = []
    for option in REGISTRIES["bias"]:
        if option.origin != BUILTIN:
            continue
        variants = [{}, *MODES.get(option.name, [])]
        unique = {json.dumps(option.params.model_validate(p).model_dump(), sort_keys=True): p for p in variants}
        cases += [(option.name, params) for params in unique.values()]
    return cases


def case_id(case: tuple[str, dict]) -> str:
    name, params = case
    return name + "".join(f"-{k}={v}" for k, v in params.items())


def gate_layouts(bias: AttentionalBias) -> list[str]:
    """``per_head`` always; ``channel`` when the bias accepts channel-wise gates."""
    probe = torch.zeros(1, D_V)
    try:
        bias.error(probe, probe, {gate.name: torch.ones(1, D_V) for gate in bias.gates})
    except ValueError:
        return ["per_head"]
    return ["per_head", "channel"] if bias.gates else ["per_head"]


def inputs(bias: AttentionalBias, layout: str) -> dict[str, torch.Tensor]:
    """``pred``, ``target`` ``[3, 4, D_v]`` and positive gates ``[3, 4, 1|D_v]``, all leaves."""
    gen = torch.Generator().manual_seed(0)
    x = {name: torch.randn(3, 4, D_V, generator=gen, dtype=torch.float64) for name in ("pred", "target")}
    width = D_V if layout == "channel" else 1
    for name in (gate.name for gate in bias.gates):  # thresholds around the size of the errors: both branches are taken
        x[f"gate.{name}"] = torch.exp(torch.randn(3, 4, width, generator=gen, dtype=torch.float64))
    return {name: t.requires_grad_() for name, t in x.items()}


def signal_and_grads(error, x: dict[str, torch.Tensor]) -> list[torch.Tensor]:
    gates = {name[len("gate.") :]: t for name, t in x.items() if name.startswith("gate.")}
    signal = error(x["pred"], x["target"], gates)
    weight = torch.randn(signal.shape, generator=torch.Generator().manual_seed(1), dtype=signal.dtype)
    grads = torch.autograd.grad((signal * weight).sum(), list(x.values()), allow_unused=True, materialize_grads=True)
    return [signal, *grads]


@pytest.mark.parametrize("case", bias_cases(), ids=case_id)
def test_closed_form_error_equals_autograd_of_loss(case: tuple[str, dict]) -> None:
    name, params = case
    bias = REGISTRIES["bias"].get(name).build(params)
    for layout in gate_layouts(bias):
        x = inputs(bias, layout)
        closed = signal_and_grads(bias.error, x)
        auto = signal_and_grads(lambda p, t, g: AttentionalBias.error(bias, p, t, g), x)
        for what, c, a in zip(["signal", *(f"d/d{n}" for n in x)], closed, auto, strict=True):
            torch.testing.assert_close(
                c, a, rtol=1e-12, atol=1e-12, msg=lambda m, w=what, lay=layout: f"{w} ({lay}): {m}"
            )


def test_every_builtin_bias_is_covered() -> None:
    assert {name for name, _ in bias_cases()} == {o.name for o in REGISTRIES["bias"] if o.origin == BUILTIN}
    for name, variants in MODES.items():
        for params in variants:
            REGISTRIES["bias"].get(name).params.model_validate(params)
