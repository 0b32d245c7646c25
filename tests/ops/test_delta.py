"""The WY/UT delta scan equals the reference loop: outputs, final state and every gradient,
for the delta-rule family and for the dot-product (linear-attention) family it also covers."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from scan_checks import assert_close, random_leaves, run, scan_args

from miras.bench.peers import rel_rms
from miras.ops import delta_scan, reference_scan
from miras.ops.common import prepare
from miras.ops.delta import delta_unsupported
from miras.space import PRESETS, MirasSpec

PRESET_NAMES = ("deltanet", "gated_deltanet", "longhorn", "deltaproduct", "linear_attention", "retnet", "mamba2")
# (T, H, D_k, D_v, chunk_size, with initial state)
SHAPES = [
    (1, 2, 8, 8, 64, False),
    (7, 1, 4, 6, 4, True),
    (63, 2, 8, 8, 16, True),
    (100, 3, 16, 8, 32, False),
    (100, 1, 8, 16, None, True),
    (40, 2, 8, 8, None, False),  # shorter than the default chunk: one chunk of 40
]
TOLERANCE = {torch.float64: 1e-10, torch.float32: 1e-5}


def make_inputs(spec, batch, length, heads, d_k, d_v, dtype, *, init, lr_scale=1.0, decay_scale=1.0):
    """Leaves ``q, k, v`` ``[B, T, H, D]`` (unit norm q, k), per-head gates and, with ``init``, the
    initial state, in ``dtype``."""

    def value(name, raw):
        if name == "decay":  # log-decay in (-inf, 0), stressed by decay_scale
            return torch.exp(decay_scale * F.logsigmoid(raw + 2))
        return lr_scale * torch.sigmoid(raw)

    leaves = random_leaves(spec, (batch, length, heads, d_k, d_v), value, state_scale=0.5 if init else None, seed=42)
    return {n: x.to(dtype) for n, x in leaves.items()}


def case_id(shape):
    length, heads, d_k, d_v, chunk, init = shape
    return f"T{length}-H{heads}-K{d_k}-V{d_v}-C{chunk}" + ("-init" if init else "")


@pytest.mark.parametrize("shape", SHAPES, ids=case_id)
@pytest.mark.parametrize("preset", PRESET_NAMES)
def test_delta_equals_reference_fp64(preset, shape):
    check_against_reference(preset, shape, torch.float64)


@pytest.mark.parametrize("shape", [SHAPES[2], SHAPES[3]], ids=case_id)
@pytest.mark.parametrize("preset", PRESET_NAMES)
def test_delta_equals_reference_fp32(preset, shape):
    check_against_reference(preset, shape, torch.float32)


def check_against_reference(preset, shape, dtype):
    length, heads, d_k, d_v, chunk, init = shape
    spec = PRESETS[preset].spec
    leaves = make_inputs(spec, 2, length, heads, d_k, d_v, dtype, init=init)
    ref = run(reference_scan, spec, leaves)
    got = run(delta_scan, spec, leaves, chunk_size=chunk)
    assert all(x.dtype == dtype for x in got.values())
    assert_close(got, ref, TOLERANCE[dtype])


@pytest.mark.parametrize("decay_scale", [0.01, 1.0, 10.0])
@pytest.mark.parametrize(("preset", "lr_scale"), [
    ("gated_deltanet", 0.0), ("gated_deltanet", 1.99), ("deltaproduct", 1.99), ("longhorn", 1e4), ("deltanet", 0.0),
])  # fmt: skip
def test_extreme_gates_are_finite_and_exact(preset, lr_scale, decay_scale):
    """Log-decays scaled by 0.01..10, lr 0 and at the edge of stability (|1 - lr ||k||^2| ~ 1)."""
    spec = PRESETS[preset].spec
    args = dict(init=True, lr_scale=lr_scale, decay_scale=decay_scale)
    leaves = make_inputs(spec, 1, 70, 2, 8, 8, torch.float64, **args)
    ref = run(reference_scan, spec, leaves)
    got = run(delta_scan, spec, leaves, chunk_size=32)
    assert all(torch.isfinite(x).all() for x in got.values())
    assert_close(got, ref, 1e-9)
    leaves32 = make_inputs(spec, 1, 70, 2, 8, 8, torch.float32, **args)
    got32 = run(delta_scan, spec, leaves32, chunk_size=32)
    assert all(torch.isfinite(x).all() for x in got32.values())


def test_default_chunk_and_no_final_state():
    spec = PRESETS["gated_deltanet"].spec
    leaves = make_inputs(spec, 1, 130, 2, 8, 8, torch.float64, init=False)
    gates, _ = scan_args(leaves)
    out, final = delta_scan(leaves["q"], leaves["k"], leaves["v"], spec, gates)
    ref, _ = reference_scan(leaves["q"], leaves["k"], leaves["v"], spec, gates)
    assert final is None
    assert rel_rms(out, ref) <= 1e-10


def _spec(memory="linear", bias="l2", retention="l2", algorithm=None):
    return MirasSpec.of(memory, bias, retention, algorithm or {"name": "gd", "params": {"grad_at": "decayed"}})


UNSUPPORTED = {
    "mlp memory": (PRESETS["ttt_mlp"].spec, {}, "linear memory"),
    "l1 bias": (_spec(bias="l1"), {}, "l2 or dot attentional bias"),
    "dot bias, decay, mini-batch": (
        _spec(bias="dot", algorithm={"name": "gd", "params": {"batch_size": 4}}),
        {},
        "batch_size 1",
    ),
    "lq retention": (_spec(retention="lq"), {}, "retention none or l2"),
    "momentum": (_spec(algorithm="momentum"), {}, "no momentum"),
    "mini-batch": (PRESETS["ttt_linear"].spec, {}, "batch_size 1"),
    "grad at previous": (_spec(algorithm="gd"), {}, "grad_at 'decayed'"),
    "read before write": (
        _spec(algorithm={"name": "gd", "params": {"grad_at": "decayed", "read": "before_write"}}),
        {},
        "read 'after_write'",
    ),
    "channel-wise lr": (PRESETS["deltanet"].spec, {"lr": 8}, "channel-wise lr"),
    "channel-wise decay": (PRESETS["rwkv7"].spec, {"decay": 8}, "channel-wise decay"),
}


@pytest.mark.parametrize("case", sorted(UNSUPPORTED))
def test_unsupported_problems_say_why(case):
    spec, widths, reason = UNSUPPORTED[case]
    batch, length, heads, dim = 1, 3, 2, 8
    x = torch.randn(batch, length, heads, dim)
    gates = {
        name: torch.rand(batch, length, heads, *([widths[name]] if name in widths else []))
        for name in spec.resolve().required_gates()
    }
    message = delta_unsupported(prepare(x, x, x, spec, gates))
    assert message is not None and reason in message and "\n" not in message
    with pytest.raises(ValueError, match="impl 'delta' does not apply to this spec"):
        delta_scan(x, x, x, spec, gates)


@pytest.mark.parametrize("preset", PRESET_NAMES)
def test_supported_presets(preset):
    spec = PRESETS[preset].spec
    leaves = make_inputs(spec, 1, 3, 2, 8, 8, torch.float32, init=False)
    gates, _ = scan_args(leaves)
    assert delta_unsupported(prepare(leaves["q"], leaves["k"], leaves["v"], spec, gates)) is None


@pytest.mark.parametrize("preset", ["gated_deltanet", "deltaproduct"])
def test_decay_of_exactly_zero(preset):
    """A decay of 0 wipes the memory; the gradients stay finite and equal the reference's."""
    spec = PRESETS[preset].spec
    leaves = make_inputs(spec, 1, 40, 2, 8, 8, torch.float64, init=True)
    leaves["gate.decay"][:, [0, 5, 16, 17]] = 0
    ref = run(reference_scan, spec, leaves)
    got = run(delta_scan, spec, leaves, chunk_size=16)
    assert all(torch.isfinite(x).all() for x in got.values())
    assert_close(got, ref, 1e-10)


@pytest.mark.parametrize("params", [{"batch_size": 4}, {"batch_size": 4, "lag_token": True}, {"steps": 2}])
def test_dot_bias_without_decay_ignores_minibatches(params):
    """Linear attention's gradient does not depend on the state: any mini-batch cut gives the same
    sum, so the delta scan runs it at every batch size (and equals the reference there)."""
    spec = _spec(bias="dot", retention="none", algorithm={"name": "gd", "params": params})
    leaves = make_inputs(spec, 2, 37, 2, 8, 6, torch.float64, init=True)
    ref = run(reference_scan, spec, leaves)
    got = run(delta_scan, spec, leaves, chunk_size=16)
    assert_close(got, ref, 1e-10)


def test_chunk_size_must_be_positive():
    spec = PRESETS["deltanet"].spec
    leaves = make_inputs(spec, 1, 3, 1, 4, 4, torch.float32, init=False)
    gates, _ = scan_args(leaves)
    with pytest.raises(ValueError, match="chunk_size must be a positive"):
        delta_scan(leaves["q"], leaves["k"], leaves["v"], spec, gates, chunk_size=0)
