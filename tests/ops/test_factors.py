"""The closed-form gradient factors (miras/ops/factors.py) equal the autograd path
(:func:`miras.ops.chunked.autograd_factors`), forward and backward, in fp64: the factors and the
gradients the outer training loop takes through them (w.r.t. k, v, lr, the grad_at scale, the
bias's gates and every weight). The scan tests (test_chunked.py) check the whole scan against the
reference on every registered combination; these isolate the hand-written backward."""

from __future__ import annotations

import pytest
import torch

from miras.bench.peers import rel_rms
from miras.ops import chunked
from miras.ops.factors import ClosedFormFactors, closed_form_factors, structure
from miras.space import MirasSpec
from miras.space.memories import MLPMemory
from miras.space.registry import REGISTRIES, register_memory

MEMORIES = [
    {"name": "linear"},
    {"name": "mlp"},
    {"name": "mlp", "params": {"expansion": 1, "activation": "silu"}},
    {"name": "mlp", "params": {"depth": 1, "residual": False, "layernorm": False}},
    {"name": "mlp", "params": {"depth": 3, "expansion": 1, "layernorm": False}},
]
BIASES = [
    {"name": "l2"},
    {"name": "dot"},
    {"name": "huber", "params": {"mode": "token", "smooth": "tanh"}},
    {"name": "lp", "params": {"p": 3.0, "smooth": "sqrt"}},
    {"name": "robust"},
]
B, H, N, D = 2, 2, 5, 4


def spec_of(memory: dict, bias: dict) -> MirasSpec:
    return MirasSpec(memory=memory, bias=bias, retention={"name": "l2"}, algorithm={"name": "gd"})


def leaves(spec: MirasSpec, scaled: bool, channel_lr: bool, seed: int = 0) -> dict[str, torch.Tensor]:
    """fp64 leaves: weights ``W...`` ``[B, H, out, in]``, ``k``, ``v`` ``[B, H, N, D]``, ``lr``,
    ``scale`` (``grad_at: decayed``) and the bias's gates ``[B, H, N, 1]``."""
    gen = torch.Generator().manual_seed(seed)

    def randn(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=gen, dtype=torch.float64)

    c = spec.resolve()
    out = {name: randn(B, H, rows, cols) / cols**0.5 for name, (rows, cols) in c.memory.shapes(D, D).items()}
    out["k"] = torch.nn.functional.normalize(randn(B, H, N, D), dim=-1)
    out["v"] = randn(B, H, N, D)
    out["lr"] = torch.sigmoid(randn(B, H, N, D if channel_lr else 1))
    if scaled:
        out["scale"] = torch.sigmoid(randn(B, H, N, 1) + 2)
    for gate in c.bias.gates:
        out[gate.name] = torch.exp(randn(B, H, N, 1))
    return {name: x.requires_grad_() for name, x in out.items()}


def factors_and_grads(spec: MirasSpec, x: dict[str, torch.Tensor], closed: bool, fold: int) -> dict[str, torch.Tensor]:
    """The factors of a fixed random cotangent's loss and the gradient of every leaf."""
    c = spec.resolve()
    weights = {name: x[name] for name in c.memory.shapes(D, D)}
    gates = {name: x[name] for name in ("lr", *(g.name for g in c.bias.gates))}
    args = (weights, x.get("scale"), x["k"], x["v"], gates, fold, True)
    if closed:
        built_in = structure(c)
        assert built_in is not None
        factors, _ = closed_form_factors(c, built_in, *args)
    else:
        factors, _ = chunked.autograd_factors(c, *args)
    flat = {
        f"{name}.{side}": t for name, pair in factors.items() for side, t in zip(("left", "right"), pair, strict=True)
    }
    gen = torch.Generator().manual_seed(3)
    loss = sum((t * torch.randn(t.shape, generator=gen, dtype=t.dtype)).sum() for t in flat.values())
    grads = torch.autograd.grad(loss, list(x.values()), allow_unused=True, materialize_grads=True)
    return flat | {f"d.{name}": g for name, g in zip(x, grads, strict=True)}


@pytest.mark.parametrize("fold", [1, 3])
@pytest.mark.parametrize(("scaled", "channel_lr"), [(False, False), (True, True)], ids=["plain", "decayed-channel"])
@pytest.mark.parametrize("bias", BIASES, ids=lambda b: b["name"])
@pytest.mark.parametrize(
    "memory", MEMORIES, ids=lambda m: m["name"] + "".join(f"-{v}" for v in m.get("params", {}).values())
)
def test_closed_form_equals_autograd(memory: dict, bias: dict, scaled: bool, channel_lr: bool, fold: int) -> None:
    spec = spec_of(memory, bias)
    x = leaves(spec, scaled, channel_lr)
    want = factors_and_grads(spec, x, closed=False, fold=fold)
    got = factors_and_grads(spec, x, closed=True, fold=fold)
    errors = {name: rel_rms(got[name], want[name]) for name in want}
    assert all(e <= 1e-12 for e in errors.values()), errors
    assert any(g.abs().max() > 0 for name, g in want.items() if name.startswith("d.")), "nothing was differentiated"


def test_no_graph_gives_the_same_factors_detached() -> None:
    spec = spec_of({"name": "mlp"}, {"name": "l2"})
    c = spec.resolve()
    x = leaves(spec, scaled=False, channel_lr=False)
    weights = {name: x[name] for name in c.memory.shapes(D, D)}
    built_in = structure(c)
    assert built_in is not None
    with_graph, _ = closed_form_factors(c, built_in, weights, None, x["k"], x["v"], {"lr": x["lr"]}, 1, True)
    without, _ = closed_form_factors(c, built_in, weights, None, x["k"], x["v"], {"lr": x["lr"]}, 1, False)
    for name, (left, right) in without.items():
        assert left.grad_fn is None
        assert torch.equal(left, with_graph[name][0].detach()) and torch.equal(right, with_graph[name][1].detach())


def test_gradcheck() -> None:
    """The hand-written backward against finite differences (torch.autograd.gradcheck)."""
    spec = spec_of({"name": "mlp", "params": {"expansion": 1}}, {"name": "huber", "params": {"mode": "token"}})
    c = spec.resolve()
    built_in = structure(c)
    assert built_in is not None
    x = leaves(spec, scaled=True, channel_lr=False)
    order = ["k", "v", "lr", "scale", "delta", "W1", "W2"]

    def factors(*tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
        t = dict(zip(order, tensors, strict=True))
        out = ClosedFormFactors.apply(built_in, c.bias, ("delta",), 1, *tensors[:5], t["W1"], t["W2"])
        return out[:-1]

    assert torch.autograd.gradcheck(factors, tuple(x[name] for name in order))


def test_a_subclass_of_a_built_in_memory_keeps_the_autograd_path() -> None:
    @register_memory("mlp_subclass_for_test", description="a plugin subclassing the mlp memory")
    class Subclass(MLPMemory):
        pass

    try:
        spec = MirasSpec(
            memory={"name": "mlp_subclass_for_test"},
            bias={"name": "l2"},
            retention={"name": "l2"},
            algorithm={"name": "gd"},
        )
        assert structure(spec.resolve()) is None
        assert structure(spec_of({"name": "mlp"}, {"name": "l2"}).resolve()) is not None
    finally:
        REGISTRIES["memory"].unregister("mlp_subclass_for_test")
