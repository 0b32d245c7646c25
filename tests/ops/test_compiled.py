"""``impl="compiled"``: the chunked scan with a ``torch.compile``-d chunk step equals the reference."""

from __future__ import annotations

import pytest
import torch
from torch._dynamo.utils import counters

from miras.bench.grid import check_scan


@pytest.mark.parametrize("preset", ["titans", "memora", "mamba2"])
def test_compiled_equals_the_reference_forward_and_backward(preset: str) -> None:
    """fp64 outputs, final state and the gradients of q, k, v, every gate and the initial state
    (memora: lag-token mini-batches of 1 and b - 1 tokens; mamba2: state-free chunks of 64), traced
    whole: the closed-form factors' autograd.Function and its backward break no graph."""
    graphs = counters["stats"]["unique_graphs"]
    breaks = sum(counters["graph_break"].values())
    error, _ = check_scan(preset, "compiled", "cpu")
    assert error <= 1e-10
    assert counters["stats"]["unique_graphs"] > graphs, "nothing was compiled"
    assert sum(counters["graph_break"].values()) == breaks, dict(counters["graph_break"])


def test_compiled_runs_under_no_grad() -> None:
    from miras.bench.inputs import make_inputs, scan_outputs

    leaves = make_inputs("titans", 1, 20, 1, 8, torch.float32, "cpu")
    with torch.no_grad():
        out = scan_outputs("titans", "compiled", leaves, final_state=False)["o"]
        want = scan_outputs("titans", "reference", leaves, final_state=False)["o"]
    torch.testing.assert_close(out, want, rtol=1e-4, atol=1e-5)
