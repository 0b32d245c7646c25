"""The Triton linear-memory scan (run by Triton's CPU interpreter) equals the reference loop:
outputs, final state, and the gradients of q, k, v, every gate and the initial state."""

from __future__ import annotations

import os

os.environ.setdefault("TRITON_INTERPRET", "1")  # read by triton.jit when the kernels are defined

import pytest
import torch
import torch.nn.functional as F

pytest.importorskip("triton")

from scan_checks import kernel_scan, random_leaves, run, scan_args

from miras.bench.peers import rel_rms
from miras.ops import reference_scan
from miras.ops.chunked import state_free
from miras.ops.common import prepare
from miras.ops.kernels import linear
from miras.ops.kernels.linear import linear_unsupported
from miras.space import PRESETS, Components, MirasSpec
from miras.space.biases import L2
from miras.space.registry import NoParams

linear_scan = kernel_scan(linear.scan, linear_unsupported)
TOLERANCE = 1e-5
"""Relative RMS error of the fp32 kernel against the fp64 reference."""
BATCH, HEADS, WIDTH = 1, 2, 16
LENGTH = 40
"""Tokens of a mini-batch (b = 16) or chunked case: the last chunk is short."""
ONLINE_LENGTH = 10
"""Tokens of a b = 1 case (one chunk per token: slow in the interpreter)."""


def spec_of(bias: str | dict = "l2", retention: str = "l2", algorithm: str = "gd", **params: object) -> MirasSpec:
    """A linear-memory spec; ``params`` go to the algorithm (``batch_size`` defaults to 16)."""
    params = {"batch_size": 16} | params
    return MirasSpec.of("linear", bias, retention, {"name": algorithm, "params": params})


def make_leaves(
    spec: MirasSpec, *, channel: tuple[str, ...] = (), init: bool = True, d_v: int = WIDTH, seed: int = 0
) -> dict[str, torch.Tensor]:
    """fp64 leaves ``q``, ``k`` (unit norm), ``v``, ``gate.<name>`` (channel-wise for names in
    ``channel``) and, with ``init``, ``state.<name>``."""
    c = spec.resolve()
    length = ONLINE_LENGTH if c.algorithm.params.batch_size == 1 and not state_free(c) else LENGTH
    values = {
        "lr": lambda raw: 0.5 * torch.sigmoid(raw),
        "decay": lambda raw: torch.exp(F.logsigmoid(raw + 2)),
        "momentum": torch.sigmoid,
        "delta": lambda raw: 0.5 * torch.exp(raw),
    }
    return random_leaves(
        spec,
        (BATCH, length, HEADS, WIDTH, d_v),
        lambda name, raw: values[name](raw),
        width=lambda name: (d_v if name in ("lr", "delta") else WIDTH) if name in channel else None,
        state_scale=0.5 if init else None,
        seed=seed,
    )


def check(spec: MirasSpec, leaves: dict[str, torch.Tensor], **kwargs: object) -> dict[str, float]:
    """The fp32 kernel against the fp64 reference, every result within :data:`TOLERANCE`."""
    want = run(reference_scan, spec, leaves)
    got = run(linear_scan, spec, {n: x.float() for n, x in leaves.items()}, **kwargs)
    assert got.keys() == want.keys()
    assert all(got[n].dtype == torch.float32 for n in got)
    errors = {name: rel_rms(got[name], want[name]) for name in want}
    assert all(e <= TOLERANCE for e in errors.values()), f"relative RMS errors: {errors}"
    return errors


BIASES = {
    "dot": "dot",
    "l2": "l2",
    "l1-tanh": {"name": "l1", "params": {"smooth": "tanh"}},
    "l1-sqrt": {"name": "l1", "params": {"smooth": "sqrt", "eps": 1e-2}},
    "lp3": {"name": "lp", "params": {"p": 3.0}},
    "lp3-sqrt": {"name": "lp", "params": {"p": 3.0, "smooth": "sqrt"}},
    "huber-coordinate": "huber",
    "huber-norm": {"name": "huber", "params": {"mode": "norm"}},
    "huber-token": {"name": "huber", "params": {"mode": "token"}},
    "huber-token-tanh": {"name": "huber", "params": {"mode": "token", "smooth": "tanh"}},
    "huber-norm-l2": {"name": "huber", "params": {"mode": "norm", "scale": "l2"}},
    "huber-token-l2": {"name": "huber", "params": {"mode": "token", "scale": "l2"}},
    "robust": {"name": "robust", "params": {"radius": 0.5}},
}


@pytest.mark.parametrize("bias", list(BIASES))
def test_biases(bias: str) -> None:
    """Every error signal and its pullback (channel-wise lr, and delta for coordinate Huber)."""
    spec = spec_of(BIASES[bias])
    channel = ("lr", "decay") + (("delta",) if bias == "huber-coordinate" else ())
    check(spec, make_leaves(spec, channel=channel, d_v=12))


@pytest.mark.parametrize("grad_at", ["previous", "decayed"])
@pytest.mark.parametrize("channel", [False, True], ids=["head", "channel"])
@pytest.mark.parametrize("algorithm", ["gd", "momentum"])
def test_algorithms(algorithm: str, channel: bool, grad_at: str) -> None:
    """GD and momentum, per-head and channel-wise decay (and momentum) gates, both gradient points."""
    spec = spec_of("l2", "l2", algorithm, grad_at=grad_at)
    check(spec, make_leaves(spec, channel=("decay", "momentum") if channel else ()))


SPLIT_CASES = {
    "l2-momentum-channel": (spec_of("l2", "l2", "momentum", grad_at="decayed"), ("decay", "momentum")),
    "l2-gd-head": (spec_of("l2", "l2"), ()),
    "huber-coordinate": (spec_of("huber"), ("lr", "delta")),
    "huber-token": (spec_of(BIASES["huber-token"], "l2", "momentum"), ()),
}


@pytest.mark.parametrize("case", list(SPLIT_CASES))
def test_value_blocks(case: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """D_v = 40 in blocks of 16 columns: three programs per head for a coordinate-wise error
    signal (their shares of dq, dk and the coefficients' gradients summed), one whole row for a
    row-norm bias."""
    monkeypatch.setattr(linear, "VALUE_BLOCK", 16)
    spec, channel = SPLIT_CASES[case]
    bias = linear._bias_setup(spec.resolve().bias, 40)[0]
    assert linear.value_block(bias, 40) == (64 if case == "huber-token" else 16)
    check(spec, make_leaves(spec, channel=channel, d_v=40))


def test_momentum_with_huber_token_without_initial_state() -> None:
    spec = spec_of({"name": "huber", "params": {"mode": "token"}}, "l2", "momentum", batch_size=8)
    check(spec, make_leaves(spec, init=False))


@pytest.mark.parametrize("retention", ["none", "l2"])
def test_implicit_gd(retention: str) -> None:
    """Implicit GD (b = 1: one chunk per token) only changes the learning rate."""
    grad_at = "decayed" if retention == "l2" else "previous"
    spec = spec_of("l2", retention, "implicit_gd", batch_size=1, grad_at=grad_at)
    check(spec, make_leaves(spec))


@pytest.mark.parametrize("chunk_size", [7, 16, 64])
def test_state_free_chunks(chunk_size: int) -> None:
    """Dot product with identity retention: chunks of chunk_size whatever b is."""
    spec = spec_of("dot", "l2", batch_size=1)
    check(spec, make_leaves(spec, channel=("decay",)), chunk_size=chunk_size)


def test_state_free_folded_steps() -> None:
    """Several GD steps of a state-independent gradient fold into one scaled update."""
    spec = spec_of("dot", "none", batch_size=1, steps=3)
    check(spec, make_leaves(spec, init=False), chunk_size=16)


PRESET_NAMES = ("linear_attention", "retnet", "mamba2", "gla", "deltanet", "gated_deltanet", "rwkv7", "longhorn")


@pytest.mark.parametrize("preset", (*PRESET_NAMES, "ttt_linear"))
def test_presets(preset: str) -> None:
    spec = PRESETS[preset].spec
    channel = ("decay",) if preset in ("gla", "rwkv7") else ()
    check(spec, make_leaves(spec, channel=channel), chunk_size=16)


@pytest.mark.parametrize("preset", ["gated_deltanet", "deltanet"])
def test_presets_at_b16(preset: str) -> None:
    """The delta rule as mini-batch GD (b = 16; the last chunk of 8 tokens is short)."""
    spec = PRESETS[preset].spec
    params = spec.algorithm.params | {"batch_size": 16}
    spec = MirasSpec(**spec.model_dump() | {"algorithm": {"name": spec.algorithm.name, "params": params}})
    check(spec, make_leaves(spec))


def test_low_precision_inputs() -> None:
    """bf16 inputs compute in fp32 and return bf16 outputs, state and gradients."""
    spec = spec_of("l2", "l2", grad_at="decayed")
    leaves = make_leaves(spec)
    want = run(reference_scan, spec, leaves)
    got = run(linear_scan, spec, {n: x.bfloat16() for n, x in leaves.items()})
    assert all(x.dtype == torch.bfloat16 for x in got.values())
    assert all(rel_rms(got[n], want[n]) < 0.05 for n in want)


def test_no_grad() -> None:
    spec = spec_of("l2", "l2", "momentum")
    leaves = {n: x.float() for n, x in make_leaves(spec).items()}
    gates, state = scan_args(leaves)
    with torch.no_grad():
        out, final = linear_scan(leaves["q"], leaves["k"], leaves["v"], spec, gates, initial_state=state)
    assert final is None and not out.requires_grad
    want, _ = reference_scan(leaves["q"], leaves["k"], leaves["v"], spec, gates, initial_state=state)
    assert rel_rms(out, want) <= TOLERANCE


class PluginL2(L2):
    """A bias the kernel does not know (same loss as l2)."""


BASE = spec_of("l2", "l2")


def reason(
    spec: MirasSpec, *, components: Components | None = None, d_v: int = WIDTH, dtype: torch.dtype = torch.float32
) -> str | None:
    """:func:`linear_unsupported` on inputs for ``spec`` (run as ``components`` when given)."""
    leaves = {n: x.to(dtype) for n, x in make_leaves(spec, d_v=d_v).items()}
    gates, _ = scan_args(leaves)
    problem = prepare(leaves["q"], leaves["k"], leaves["v"], components or spec.resolve(), gates)
    return linear_unsupported(problem)


def test_supported_specs_have_no_reason() -> None:
    assert reason(BASE) is None
    assert all(reason(PRESETS[name].spec) is None for name in PRESET_NAMES)


def test_unsupported_specs_give_a_reason() -> None:
    c = BASE.resolve()
    plugin = Components(c.memory, PluginL2(NoParams()), c.retention, c.algorithm)
    assert "PluginL2" in reason(BASE, components=plugin)
    cases = {
        "memory is MLPMemory": PRESETS["ttt_mlp"].spec,
        "non-identity mirror map": MirasSpec.of("linear", "l2", "lq", "gd"),
        "2 GD steps": PRESETS["deltaproduct"].spec,
        "read before": spec_of(read="before_write"),
        "lag-token": spec_of(lag_token=True),
    }
    for words, spec in cases.items():
        assert words in (reason(spec) or ""), words
    assert "fp64" in reason(BASE, dtype=torch.float64)
    assert "widths above" in reason(BASE, d_v=130)
    spec = MirasSpec.of("linear", "l2", "kl", "gd")
    leaves = {n: x.float() for n, x in make_leaves(spec).items()}
    with pytest.raises(ValueError, match="non-identity mirror map"):
        linear_scan(leaves["q"], leaves["k"], leaves["v"], spec, scan_args(leaves)[0])
