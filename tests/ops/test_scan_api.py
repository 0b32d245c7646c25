"""The public entry point: ``miras_scan`` and ``select_impl`` choose, run and reject clearly."""

from __future__ import annotations

import pytest
import torch

from miras.ops import IMPLS, miras_scan, reference_scan, select_impl, why_not
from miras.space import PRESETS, MirasSpec

B, T, H, D = 2, 6, 2, 4


def problem(spec: MirasSpec, d_k: int = D, d_v: int = D) -> tuple[torch.Tensor, ...]:
    """``q, k, v`` ``[B, T, H, D]`` and per-head gates in (0, 1) for ``spec``."""
    gen = torch.Generator().manual_seed(0)
    q, k = (torch.nn.functional.normalize(torch.randn(B, T, H, d_k, generator=gen), dim=-1) for _ in range(2))
    v = torch.randn(B, T, H, d_v, generator=gen)
    gates = {name: torch.rand(B, T, H, generator=gen) for name in spec.resolve().required_gates()}
    return q, k, v, gates


@pytest.mark.parametrize("preset", ["linear_attention", "deltanet", "gated_deltanet", "ttt_mlp", "titans", "memora"])
def test_select_impl_reports_its_choice(preset: str) -> None:
    spec = PRESETS[preset].spec
    q, k, v, gates = problem(spec)
    name, reason = select_impl(q, k, v, spec, gates)
    assert name in IMPLS and name != "reference"
    assert reason and "\n" not in reason
    if name == "chunked":
        assert "not delta:" in reason


def test_select_impl_says_how_chunked_cuts_the_sequence() -> None:
    for preset, words in (("ttt_mlp", "mini-batches"), ("gla", "chunk(s) of 64 tokens")):
        spec = PRESETS[preset].spec
        q, k, v, gates = problem(spec)
        if preset == "gla":  # a channel-wise decay: the delta scan does not apply
            gates["decay"] = torch.rand(B, T, H, D)
        name, reason = select_impl(q, k, v, spec, gates)
        assert name == "chunked" and words in reason


@pytest.mark.parametrize("impl", ["auto", "chunked", "reference"])
@pytest.mark.parametrize("preset", ["gated_deltanet", "titans"])
def test_miras_scan_matches_the_reference(preset: str, impl: str) -> None:
    spec = PRESETS[preset].spec
    q, k, v, gates = problem(spec)
    q, k, v = q.double(), k.double(), v.double()
    gates = {n: g.double() for n, g in gates.items()}
    state = {
        n: torch.randn(B, H, o, i, dtype=torch.float64) for n, (o, i) in spec.resolve().memory.shapes(D, D).items()
    }
    out, final = miras_scan(q, k, v, spec, gates, initial_state=state, output_final_state=True, impl=impl)
    want, want_final = reference_scan(q, k, v, spec, gates, initial_state=state, output_final_state=True)
    assert out.shape == (B, T, H, D)
    torch.testing.assert_close(out, want, rtol=1e-10, atol=1e-10)
    for name, value in want_final.items():
        torch.testing.assert_close(final[name], value, rtol=1e-10, atol=1e-10)


def test_final_state_only_on_request() -> None:
    spec = PRESETS["titans"].spec
    q, k, v, gates = problem(spec)
    out, final = miras_scan(q, k, v, spec, gates)
    assert final is None and out.shape == (B, T, H, D)
    _, final = miras_scan(q, k, v, spec, gates, output_final_state=True)
    assert set(final) == {"W1", "W2", "momentum.W1", "momentum.W2"}
    assert final["W1"].shape == (B, H, 4 * D, D)


def test_an_impl_that_does_not_apply_says_why() -> None:
    spec = PRESETS["titans"].spec
    with pytest.raises(ValueError, match="impl 'delta' does not apply"):
        miras_scan(*problem(spec)[:3], spec, problem(spec)[3], impl="delta")
    with pytest.raises(ValueError, match="unknown impl 'fast'"):
        miras_scan(*problem(spec)[:3], spec, problem(spec)[3], impl="fast")


GDN = PRESETS["gated_deltanet"].spec
MLP = PRESETS["ttt_mlp"].spec


def bad_inputs(case: str) -> tuple[tuple, dict]:
    """Arguments of ``miras_scan`` with one mistake, and extra keyword arguments."""
    spec = MLP if case.startswith("mlp") else GDN
    q, k, v, gates = problem(spec)
    kwargs: dict = {}
    if case == "q not 4-d":
        q = q[0]
    elif case == "k shape differs from q":
        k = k[:, :, :, :3]
    elif case == "v with another T":
        v = v[:, :3]
    elif case == "missing gate":
        del gates["decay"]
    elif case == "unexpected gate":
        gates["momentum"] = gates["lr"]
    elif case == "gate with another T":
        gates["lr"] = gates["lr"][:, :3]
    elif case == "lr of the wrong width":
        gates["lr"] = torch.rand(B, T, H, D + 1)
    elif case == "decay of the wrong width":
        gates["decay"] = torch.rand(B, T, H, D + 1)
    elif case == "mlp channel-wise decay on unequal widths":
        spec = PRESETS["titans"].spec
        q, k, v, gates = problem(spec)
        gates["decay"] = torch.rand(B, T, H, D)
    elif case == "initial state of the wrong shape":
        kwargs["initial_state"] = {"W": torch.zeros(B, H, D, D + 1)}
    elif case == "unknown initial state entry":
        kwargs["initial_state"] = {"W2": torch.zeros(B, H, D, D)}
    elif case == "mlp residual with D_k != D_v":
        q, k, v, gates = problem(spec, d_k=D, d_v=D + 2)
    elif case == "chunk_size 0":
        spec = PRESETS["linear_attention"].spec
        q, k, v, gates = problem(spec)
        kwargs["chunk_size"] = 0
    return (q, k, v, spec, gates), kwargs


BAD = {
    "q not 4-d": r"q, k, v must be \[B, T, H, D\]",
    "k shape differs from q": "q and k must have the same shape",
    "v with another T": r"v must be \[B, T, H, D_v\]",
    "missing gate": r"missing \['decay'\]",
    "unexpected gate": r"unexpected \['momentum'\]",
    "gate with another T": "gate 'lr' must be",
    "lr of the wrong width": "acts on values: width must be D_v=4",
    "decay of the wrong width": "acts on the input dimension of every memory weight",
    "mlp channel-wise decay on unequal widths": "use a per-head gate",
    "initial state of the wrong shape": r"initial_state\['W'\] must be \[B, H, out, in\]",
    "unknown initial state entry": r"unknown entries \['W2'\]",
    "mlp residual with D_k != D_v": "needs D_k == D_v",
    "chunk_size 0": "chunk_size must be a positive number",
}


@pytest.mark.parametrize("impl", ["auto", "chunked"])
@pytest.mark.parametrize("case", list(BAD))
def test_bad_arguments_raise_clear_errors(case: str, impl: str) -> None:
    args, kwargs = bad_inputs(case)
    with pytest.raises(ValueError, match=BAD[case]):
        miras_scan(*args, impl=impl, **kwargs)


def test_why_not_says_which_impl_applies() -> None:
    spec = PRESETS["titans"].spec
    q, k, v, gates = problem(spec)
    assert why_not("chunked", q, k, v, spec, gates) is None
    assert why_not("compiled", q, k, v, spec, gates) is None
    assert "linear memory" in why_not("delta", q, k, v, spec, gates)
    doubles = {n: g.double() for n, g in gates.items()}
    assert "fp64" in why_not("triton", q.double(), k.double(), v.double(), spec, doubles)
    with pytest.raises(ValueError, match="unknown impl 'fast'"):
        why_not("fast", q, k, v, spec, gates)


def test_auto_never_picks_triton_off_cuda() -> None:
    spec = PRESETS["titans"].spec
    name, reason = select_impl(*problem(spec)[:3], spec, problem(spec)[3])
    assert name == "chunked" and "not triton: not on CUDA" in reason


@pytest.mark.parametrize(("preset", "kernel"), [("mamba2", "one kernel"), ("titans", "dual-form read")])
def test_triton_impl_runs_the_kernel_that_applies(preset: str, kernel: str) -> None:
    """Wiring only (the kernels' own tests are tests/ops/test_kernel_*.py), in the interpreter."""
    pytest.importorskip("triton")
    from miras.ops import IMPLEMENTATIONS
    from miras.ops.common import prepare

    spec = PRESETS[preset].spec
    q, k, v, gates = problem(spec)
    _, what = IMPLEMENTATIONS["triton"].choose(prepare(q, k, v, spec, gates), None)
    assert kernel in what
    out, final = miras_scan(q, k, v, spec, gates, impl="triton", output_final_state=True)
    want, want_final = reference_scan(q, k, v, spec, gates, output_final_state=True)
    torch.testing.assert_close(out, want, rtol=1e-4, atol=1e-5)
    for name, value in want_final.items():
        torch.testing.assert_close(final[name], value, rtol=1e-4, atol=1e-5)
