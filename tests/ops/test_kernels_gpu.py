"""The Triton kernels on a GPU: fla's shape grid in fp32, bf16 and fp16, with fla's tolerances.

Skipped without CUDA (this suite's CI has none); ``benchmarks/gpu_check.sh`` runs them on a
device. The CPU suite checks every kernel against the reference in Triton's interpreter
(tests/ops/test_kernel_linear.py, test_kernel_dual.py); here the compiled kernels run at
realistic shapes against the fp32 chunked scan (itself equal to the reference, tests/ops/test_chunked.py).
Error metric as fla's tests: ``rms(got - want) / rms(want)``.
"""

from __future__ import annotations

import pytest
import torch

from miras.bench.inputs import make_inputs, scan_outputs, weighted_sum
from miras.bench.peers import check_fla_gated_delta, rel_rms
from miras.ops import select_impl
from miras.space import PRESETS

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]

SHAPES = [(1, 63, 1, 64), (2, 500, 3, 60), (2, 1000, 3, 64), (3, 1024, 4, 128), (4, 2048, 8, 64)]
"""``(B, T, H, D)`` as fla's chunk tests: odd lengths, a non-power-of-two width."""
TOLERANCE = {torch.float32: 1e-4, torch.bfloat16: 8e-3, torch.float16: 5e-3}
"""fla allows 5e-3 to 8e-3 relative error for its half-precision kernels."""
KERNEL_PRESETS = ["linear_attention", "mamba2", "titans", "moneta", "yaad", "memora"]
"""The linear kernel (linear_attention, mamba2) and the Triton dual read (the MLP memories)."""


@pytest.mark.parametrize("dtype", list(TOLERANCE), ids=lambda d: str(d).removeprefix("torch."))
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "B{}-T{}-H{}-D{}".format(*s))
@pytest.mark.parametrize("preset", KERNEL_PRESETS)
def test_triton_matches_the_fp32_chunked_scan(preset: str, shape: tuple[int, int, int, int], dtype) -> None:
    batch, length, heads, dim = shape
    leaves = make_inputs(preset, batch, length, heads, dim, dtype, "cuda")
    gates = {n.removeprefix("gate."): x for n, x in leaves.items() if n.startswith("gate.")}
    assert select_impl(leaves["q"], leaves["k"], leaves["v"], PRESETS[preset].spec, gates)[0] == "triton"
    want_leaves = {n: x.detach().float().requires_grad_() for n, x in leaves.items()}
    results = []
    for impl, run in (("triton", leaves), ("chunked", want_leaves)):
        outputs = scan_outputs(preset, impl, run, final_state=True)
        results.append([*outputs, *torch.autograd.grad(weighted_sum(outputs), list(run.values()))])
    names = ["o", "final state", *(f"d{n}" for n in leaves)]
    errors = {n: rel_rms(got, want) for n, got, want in zip(names, *results, strict=False)}
    assert max(errors.values()) <= TOLERANCE[dtype], errors


def test_fla_peer_is_aligned_on_the_gpu() -> None:
    assert check_fla_gated_delta("cuda") <= 5e-3
