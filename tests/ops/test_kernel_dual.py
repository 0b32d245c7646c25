"""The Triton dual-form read equals :func:`miras.ops.chunked.dual_linear` (values and every
gradient), and :func:`miras.ops.kernels.dual.scan` equals the reference scan for the MLP-memory presets.

Runs in Triton's CPU interpreter (``TRITON_INTERPRET=1``, set before the kernels are imported),
so the shapes are tiny."""

from __future__ import annotations

import os

os.environ.setdefault("TRITON_INTERPRET", "1")

import pytest
import torch
import torch.nn.functional as F

pytest.importorskip("triton")

from scan_checks import assert_close, errors_above, kernel_scan, random_leaves, run, scan_args

from miras.bench.peers import rel_rms
from miras.ops import chunked_scan, reference_scan
from miras.ops.chunked import Coefficients, _products, dual_linear
from miras.ops.common import prepare
from miras.ops.kernels import dual
from miras.space import PRESETS, MirasSpec

mlp_scan = kernel_scan(dual.scan, dual.dual_unsupported)
TOLERANCE = 1e-4
"""Relative RMS error allowed in fp32."""


# ----------------------------------------------------------------------------- the read


def read_leaves(channel: bool, momentum: bool, rows: int, n: int = 16) -> dict[str, torch.Tensor]:
    """Inputs of one dual read, ``B = 2``, ``H = 2``, ``in = 24``, ``out = 40``, coefficients from
    random gates (so ``C`` is causal), every tensor a leaf."""
    batch, heads, width_in, width_out = 2, 2, 24, 40
    alpha = 0.5 + 0.5 * torch.rand(batch, heads, 1, n, width_in if channel else 1)
    coef = _products(alpha, torch.rand_like(alpha) if momentum else None)
    leaves = {
        "x": torch.randn(batch, heads, rows, width_in),
        "start": torch.randn(batch, heads, width_out, width_in),
        "left": torch.randn(batch, heads, n, width_out),
        "right": torch.randn(batch, heads, n, width_in),
        "decay": coef.decay[:, :, 0],
        "mix": coef.mix[:, :, 0],
    }
    if momentum:
        leaves |= {"mom": torch.randn(batch, heads, width_out, width_in), "carry": coef.carry[:, :, 0]}
    return {name: x.clone().requires_grad_() for name, x in leaves.items()}


def read(make, leaves: dict[str, torch.Tensor]) -> torch.Tensor:
    """``make`` (a dual-read builder) applied to ``leaves``' ``x``."""
    coef = Coefficients(leaves["decay"], leaves["mix"], leaves.get("carry"), None, None)
    factors = {"W": (leaves["left"], leaves["right"])}
    mom = {"W": leaves["mom"]} if "mom" in leaves else {}
    return make({"W": leaves["start"]}, mom, factors, coef, leaves["x"].shape[2])("W", leaves["x"])


def read_and_grads(make, leaves: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    y = read(make, leaves)
    cotangent = torch.randn(y.shape, generator=torch.Generator().manual_seed(1))
    grads = torch.autograd.grad(y, list(leaves.values()), cotangent)
    return {"y": y} | {f"d.{name}": g for name, g in zip(leaves, grads, strict=True)}


@pytest.mark.parametrize("rows", [16, 11], ids=lambda r: f"r{r}")
@pytest.mark.parametrize("momentum", [False, True], ids=["gd", "momentum"])
@pytest.mark.parametrize("channel", [False, True], ids=["G1", "Gin"])
def test_read_matches_dual_linear(channel: bool, momentum: bool, rows: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Values and gradients wrt every input; 16-wide channel tiles so both widths span several
    tiles with a partial last one."""
    monkeypatch.setattr(dual, "CHANNEL_BLOCK", 16)
    torch.manual_seed(0)
    leaves = read_leaves(channel, momentum, rows)
    assert_close(read_and_grads(dual.dual_linear_triton, leaves), read_and_grads(dual_linear, leaves), TOLERANCE)


def test_read_in_bfloat16() -> None:
    """bf16 inputs are read in fp32 arithmetic; outputs and gradients come back in bf16."""
    torch.manual_seed(0)
    leaves = {n: x.detach().bfloat16() for n, x in read_leaves(True, True, 11).items()}
    got = read_and_grads(dual.dual_linear_triton, {n: x.requires_grad_() for n, x in leaves.items()})
    want = read_and_grads(dual_linear, {n: x.float().requires_grad_() for n, x in leaves.items()})
    assert all(x.dtype == torch.bfloat16 for x in got.values())
    assert max(rel_rms(got[n], want[n]) for n in want) <= 1e-2  # bf16 rounding of the results


def test_read_is_once_differentiable() -> None:
    """A second derivative raises instead of returning wrong values."""
    leaves = read_leaves(False, False, 4)
    y = read(dual.dual_linear_triton, leaves)
    cotangent = torch.randn_like(y, requires_grad=True)
    (dx,) = torch.autograd.grad(y, leaves["x"], cotangent, create_graph=True)
    with pytest.raises(RuntimeError, match="twice"):
        dx.sum().backward()


# ----------------------------------------------------------------------------- the scan

MLP_PRESETS = ["titans", "moneta", "yaad", "memora"]


def small(spec: MirasSpec, expansion: int = 2) -> MirasSpec:
    """``spec`` with an MLP of hidden width ``expansion * D_k``."""
    memory = {"name": spec.memory.name, "params": spec.memory.params | {"expansion": expansion}}
    return MirasSpec(memory=memory, bias=spec.bias, retention=spec.retention, algorithm=spec.algorithm)


def scan_leaves(preset: str, spec: MirasSpec, dim: int, length: int = 40, channel_decay: bool = False) -> dict:
    """``q``, ``k`` (unit norm), ``v``, ``gate.<name>`` (the preset's channel gates over ``D_v``,
    decay over ``D_k`` when ``channel_decay``) and a random ``state.<name>``; fp64 leaves."""

    def value(name: str, raw: torch.Tensor) -> torch.Tensor:
        if name == "decay":
            return torch.exp(F.logsigmoid(raw + 2))
        return torch.exp(raw) if name == "delta" else torch.sigmoid(raw)

    def width(name: str) -> int | None:
        wide = PRESETS[preset].gates.get(name) == "channel" or (name == "decay" and channel_decay)
        return dim if wide else None

    return random_leaves(spec, (2, length, 2, dim, dim), value, width=width)


def cast(leaves: dict[str, torch.Tensor], dtype: torch.dtype) -> dict[str, torch.Tensor]:
    return {name: x.to(dtype) for name, x in leaves.items()}


def check_scan(preset: str, spec: MirasSpec, dim: int, channel_decay: bool = False) -> None:
    """fp32 ``mlp_scan`` within :data:`TOLERANCE` of the fp64 reference; on an ill-conditioned
    problem (Memora's LayerNorm over softmax rows, where the fp32 reference itself is further off)
    within 4x the fp32 reference's error, and within :data:`TOLERANCE` of the fp32 chunked scan."""
    leaves = scan_leaves(preset, spec, dim, channel_decay=channel_decay)
    want = run(reference_scan, spec, leaves)
    got = run(mlp_scan, spec, cast(leaves, torch.float32))
    if not errors_above(got, want, dict.fromkeys(want, TOLERANCE)):
        return
    own = run(reference_scan, spec, cast(leaves, torch.float32))
    bad = errors_above(got, want, {name: max(TOLERANCE, 4 * rel_rms(own[name], want[name])) for name in want})
    assert not bad, bad
    assert_close(got, run(chunked_scan, spec, cast(leaves, torch.float32)), TOLERANCE)


@pytest.mark.parametrize("preset", MLP_PRESETS)
def test_mlp_scan_matches_reference(preset: str) -> None:
    """T = 40 at b = 16: two full mini-batches and a short one; D = 8, hidden 16."""
    check_scan(preset, small(PRESETS[preset].spec), dim=8)


def test_mlp_scan_channel_decay() -> None:
    """A channel-wise decay (``G = in``): an MLP of equal widths (expansion 1)."""
    check_scan("titans", small(PRESETS["titans"].spec, expansion=1), dim=8, channel_decay=True)


def test_unsupported_reason() -> None:
    """fp64 (the kernels compute in fp32) and chunks longer than the kernels' one block are refused."""
    spec = small(PRESETS["titans"].spec)
    leaves = scan_leaves("titans", spec, 4, length=3)
    gates, _ = scan_args(leaves)
    args = (leaves["q"], leaves["k"], leaves["v"], spec, gates)
    assert "fp32" in dual.dual_unsupported(prepare(*args))
    with pytest.raises(ValueError, match="does not apply"):
        mlp_scan(*args)
    fp32 = [x.float() for x in args[:3]], {n: x.float() for n, x in gates.items()}
    assert dual.dual_unsupported(prepare(*fp32[0], spec, fp32[1])) is None
    x = torch.randn(1, dual.MAX_TOKENS + 1, 1, 4)
    state_free = PRESETS["linear_attention"].spec  # chunks of chunk_size tokens
    problem = prepare(x, x, x, state_free, {"lr": torch.ones(x.shape[:3])})
    assert dual.dual_unsupported(problem, chunk_size=dual.MAX_TOKENS) is None
    assert "at most" in dual.dual_unsupported(problem, chunk_size=dual.MAX_TOKENS + 1)
