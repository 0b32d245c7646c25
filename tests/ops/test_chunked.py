"""The chunked scan equals the reference loop for every registered combination of the four axes:
outputs, final state, and the gradients of q, k, v, every gate and the initial state."""

from __future__ import annotations

import itertools
import json
import random
from collections.abc import Iterator
from dataclasses import dataclass, replace

import pytest
import torch
import torch.nn.functional as F
from scan_checks import assert_close, errors_above, random_leaves, run, scan_args

from miras.bench.peers import rel_rms
from miras.ops import chunked_scan, reference_scan
from miras.space import AXES, PRESETS, REGISTRIES, Components, MirasSpec
from miras.space.memories import LinearMemory

# Interesting non-default parameters per option; every other option runs with its defaults.
VARIANTS: dict[str, dict[str, list[dict]]] = {
    "memory": {
        "mlp": [
            {"expansion": 1, "activation": "silu"},  # equal input widths: channel-wise decay is valid
            {"depth": 1, "residual": False, "layernorm": False},
            {"depth": 3, "expansion": 1, "layernorm": False},
        ],
    },
    "bias": {
        "l1": [{"smooth": "tanh"}, {"smooth": "sqrt"}],
        "lp": [{"p": 1.5, "smooth": "sqrt"}, {"p": 2.0}],
        "huber": [{"mode": "norm"}, {"mode": "token"}, {"mode": "token", "smooth": "tanh"}],
        "robust": [{"radius": 0.5}],
    },
    "retention": {
        "elastic_net": [{"smooth": True}],
        "lq": [{"link": "pnorm"}, {"q": 3.0}],
        "kl": [{"axis": "out"}, {"axis": "all", "scale": 2.0}],
    },
    "algorithm": {
        "gd": [
            {"batch_size": 3},
            {"steps": 2},
            {"grad_at": "decayed"},
            {"batch_size": 3, "grad_at": "decayed"},
            {"read": "before_write"},
            {"batch_size": 3, "read": "before_write"},
            {"batch_size": 3, "lag_token": True},
        ],
        "momentum": [{"batch_size": 3}, {"batch_size": 3, "grad_at": "decayed", "read": "before_write"}],
        "implicit_gd": [{"grad_at": "decayed"}],
    },
}

INIT_SCALE = 1.0
"""Standard deviation of random initial states (a near-uniform softmax memory, Memora, is ill-conditioned)."""
TOLERANCE = {torch.float64: 1e-10, torch.float32: 1e-5}


# ----------------------------------------------------------------------------- cases


@dataclass(frozen=True)
class Case:
    """One scan problem: a spec and the sizes of its inputs."""

    spec: MirasSpec
    length: int
    heads: int = 2
    d_k: int = 4
    d_v: int = 4
    batch: int = 2
    channel: bool = False
    """Channel-wise gates wherever the spec allows them (else per head)."""
    init: bool = True
    """Random initial state (always for deep memories: a zero MLP is a fixed point)."""
    lr_scale: float = 1.0
    decay_scale: float = 1.0
    """Multiplies the log-decay: 0.01 keeps almost everything, 10 forgets almost everything."""

    def id(self) -> str:
        flags = ("-chan" if self.channel else "") + ("-init" if self.init else "")
        flags += f"-lr{self.lr_scale:g}" * (self.lr_scale != 1) + f"-logdecay{self.decay_scale:g}" * (
            self.decay_scale != 1
        )
        return f"{self.spec.shorthand()}-T{self.length}-B{self.batch}-H{self.heads}-K{self.d_k}-V{self.d_v}{flags}"


def choices(axis: str) -> list[dict]:
    """Every registered option of ``axis`` with its default parameters."""
    return [{"name": option.name, "params": {}} for option in REGISTRIES[axis]]


def valid(choice: dict[str, dict]) -> MirasSpec | None:
    spec = MirasSpec(**choice)
    return None if spec.problems() else spec


def first_valid(fixed: dict[str, dict]) -> MirasSpec | None:
    """``fixed`` axes completed with the first valid default options of the other axes."""
    free = [axis for axis in AXES if axis not in fixed]
    for combo in itertools.product(*(choices(axis) for axis in free)):
        spec = valid(fixed | dict(zip(free, combo, strict=True)))
        if spec is not None:
            return spec
    return None


def registry_specs() -> Iterator[MirasSpec]:
    """Every valid combination of options with default parameters; then every parameter variant
    paired with every option of each other axis (the rest completed to a valid spec)."""
    for combo in itertools.product(*(choices(axis) for axis in AXES)):
        spec = valid(dict(zip(AXES, combo, strict=True)))
        if spec is not None:
            yield spec
    for axis, by_option in VARIANTS.items():
        for name, variants in by_option.items():
            for params in variants:
                for other in (a for a in AXES if a != axis):
                    for choice in choices(other):
                        spec = first_valid({axis: {"name": name, "params": params}, other: choice})
                        if spec is not None:
                            yield spec


def unique(specs: Iterator[MirasSpec]) -> list[MirasSpec]:
    seen: dict[str, MirasSpec] = {}
    for spec in specs:
        seen.setdefault(json.dumps(spec.canonical(), sort_keys=True), spec)
    return list(seen.values())


def deep(spec: MirasSpec) -> bool:
    return type(spec.resolve().memory) is not LinearMemory


def registry_cases() -> list[Case]:
    """Small odd shapes for the big product, drawn per case from a seeded generator."""
    cases = []
    for i, spec in enumerate(unique(registry_specs())):
        rng = random.Random(i)
        d_k = rng.choice((3, 4, 5))
        d_v = d_k if deep(spec) else rng.choice((3, 4, 6))
        cases.append(
            Case(
                spec,
                length=rng.choice((1, 7, 8)),
                heads=rng.choice((1, 2)),
                d_k=d_k,
                d_v=d_v,
                batch=rng.choice((1, 2)),
                channel=rng.random() < 0.5,
                init=deep(spec) or rng.random() < 0.5,
            )
        )
    return cases


BASE_PRESETS = [name for name, preset in PRESETS.items() if not preset.hybrid]
PRESET_SHAPES = [  # (T, H, D, init)
    (1, 2, 8, False),
    (7, 1, 6, True),
    (63, 2, 4, True),
    (100, 1, 4, False),
]


def preset_case(name: str, length: int, heads: int, dim: int, init: bool) -> Case:
    spec = PRESETS[name].spec
    return Case(spec, length, heads, dim, dim, channel=True, init=init or deep(spec))


# ----------------------------------------------------------------------------- inputs


def gate_width(c: Components, name: str, d_k: int, d_v: int) -> int | None:
    """Width of a channel-wise gate ``name`` when the spec accepts one, else ``None``."""
    acts_on = {spec.name: spec.acts_on for spec in c.gate_specs()}[name]
    if acts_on == "values":
        if name == "lr":
            return d_v
        probe = torch.zeros(1, d_v)
        try:
            c.bias.error(probe, probe, {name: torch.ones(1, d_v)})
        except ValueError:
            return None
        return d_v
    widths = {i for _, i in c.memory.shapes(d_k, d_v).values()}
    return widths.pop() if len(widths) == 1 else None


def gate_value(name: str, raw: torch.Tensor, lr_scale: float, decay_scale: float) -> torch.Tensor:
    """lr in (0, lr_scale), decay in (0, 1) with log-decay scaled by decay_scale, momentum in (0, 1), delta > 0."""
    if name == "lr":
        return lr_scale * torch.sigmoid(raw)
    if name == "decay":
        return torch.exp(decay_scale * F.logsigmoid(raw + 2))
    if name == "delta":
        return torch.exp(raw)
    return torch.sigmoid(raw)


def make_leaves(case: Case, dtype: torch.dtype, seed: int = 0) -> dict[str, torch.Tensor]:
    """Leaf tensors: ``q``, ``k`` (unit norm), ``v``, ``gate.<name>`` and ``state.<name>``."""
    c = case.spec.resolve()
    leaves = random_leaves(
        case.spec,
        (case.batch, case.length, case.heads, case.d_k, case.d_v),
        lambda name, raw: gate_value(name, raw, case.lr_scale, case.decay_scale),
        width=lambda name: gate_width(c, name, case.d_k, case.d_v) if case.channel else None,
        state_scale=INIT_SCALE if case.init else None,
        seed=seed,
    )
    return {name: x.to(dtype).requires_grad_() for name, x in leaves.items()}


def roundoff_sensitivity(
    case: Case,
    want: dict[str, torch.Tensor],
    dtype: torch.dtype = torch.float64,
    relative: float = 1e-15,
    draws: int = 1,
) -> dict[str, float]:
    """How far the reference, run in ``dtype``, lands from ``want`` when its inputs move by ``relative``
    (a few ulps): the largest error over ``draws`` perturbations."""
    leaves = make_leaves(case, torch.float64)
    worst = dict.fromkeys(want, 0.0)
    for draw in range(draws):
        gen = torch.Generator().manual_seed(1 + draw)
        noisy = {
            n: (x.detach() * (1 + relative * torch.randn(x.shape, generator=gen, dtype=x.dtype))).to(dtype)
            for n, x in leaves.items()
        }
        moved = run(reference_scan, case.spec, {n: x.requires_grad_() for n, x in noisy.items()})
        worst = {name: max(worst[name], rel_rms(moved[name].double(), want[name])) for name in want}
    return worst


def check(case: Case, **kwargs) -> None:
    """chunked == reference in fp64: within 1e-10, or for an ill-conditioned problem (where no
    reordering of the arithmetic can reach 1e-10) within 10x the reference's own roundoff sensitivity."""
    want = run(reference_scan, case.spec, make_leaves(case, torch.float64))
    got = run(chunked_scan, case.spec, make_leaves(case, torch.float64), **kwargs)
    tol = TOLERANCE[torch.float64]
    if errors_above(got, want, dict.fromkeys(want, tol)):
        sensitivity = roundoff_sensitivity(case, want)
        bad = errors_above(got, want, {name: max(tol, 10 * sensitivity[name]) for name in want})
        assert not bad, f"relative RMS errors (10x roundoff sensitivity {sensitivity}): {bad}"


# ----------------------------------------------------------------------------- tests

REGISTRY_CASES = registry_cases()


@pytest.mark.parametrize("case", REGISTRY_CASES, ids=Case.id)
def test_registry_combination(case: Case) -> None:
    check(case)


def test_registry_cases_cover_every_option_and_variant() -> None:
    specs = [case.spec for case in REGISTRY_CASES]
    for axis in AXES:
        used = {getattr(spec, axis).name for spec in specs}
        assert used == {option.name for option in REGISTRIES[axis]}, axis
    for axis, by_option in VARIANTS.items():
        for name, variants in by_option.items():
            for params in variants:
                REGISTRIES[axis].get(name).params.model_validate(params)  # a renamed parameter fails here
                assert any(getattr(s, axis).name == name and getattr(s, axis).params == params for s in specs)


@pytest.mark.parametrize("shape", PRESET_SHAPES, ids=lambda s: f"T{s[0]}-H{s[1]}-D{s[2]}" + ("-init" * s[3]))
@pytest.mark.parametrize("preset", BASE_PRESETS)
def test_preset_fp64(preset: str, shape: tuple[int, int, int, bool]) -> None:
    check(preset_case(preset, *shape))


@pytest.mark.parametrize("preset", BASE_PRESETS)
def test_preset_fp32(preset: str) -> None:
    """fp32 within 1e-5 of the fp64 reference, or (where the problem's conditioning does not allow
    it: Memora's LayerNorm over softmax rows) within 4x the fp32 reference's own error, the worst of
    four runs on inputs moved by half an fp32 ulp (one run's error varies 4x from draw to draw)."""
    case = preset_case(preset, 20, 2, 4, True)
    want = run(reference_scan, case.spec, make_leaves(case, torch.float64))
    got = run(chunked_scan, case.spec, make_leaves(case, torch.float32))
    tol = TOLERANCE[torch.float32]
    if errors_above(got, want, dict.fromkeys(want, tol)):
        own = roundoff_sensitivity(case, want, torch.float32, relative=6e-8, draws=4)
        bad = errors_above(got, want, {name: max(tol, 4 * own[name]) for name in want})
        assert not bad, f"relative RMS errors (4x the fp32 reference's {own}): {bad}"


@pytest.mark.parametrize("chunk_size", [1, 5, 64])
@pytest.mark.parametrize("preset", ["linear_attention", "gla"])
def test_chunk_size_does_not_change_state_free_scans(preset: str, chunk_size: int) -> None:
    check(preset_case(preset, 23, 2, 4, True), chunk_size=chunk_size)


def online(spec: MirasSpec) -> MirasSpec:
    """``spec`` with b = 1 (and no lag token)."""
    params = {k: v for k, v in spec.algorithm.params.items() if k != "lag_token"} | {"batch_size": 1}
    algorithm = {"name": spec.algorithm.name, "params": params}
    return MirasSpec(memory=spec.memory, bias=spec.bias, retention=spec.retention, algorithm=algorithm)


@pytest.mark.parametrize("preset", BASE_PRESETS)
def test_b1_equals_exact_recurrence(preset: str) -> None:
    """With b = 1 every token is its own mini-batch: the exact online update."""
    case = preset_case(preset, 9, 2, 4, True)
    check(replace(case, spec=online(case.spec)))


@pytest.mark.parametrize("preset", BASE_PRESETS)
def test_two_calls_equal_one(preset: str) -> None:
    """Carrying the final state into a second call equals one call, split at a mini-batch boundary."""
    case = preset_case(preset, 40, 2, 4, True)
    leaves = {n: x.detach() for n, x in make_leaves(case, torch.float64).items()}
    gates, state = scan_args(leaves)
    q, k, v = leaves["q"], leaves["k"], leaves["v"]
    whole, whole_state = chunked_scan(q, k, v, case.spec, gates, initial_state=state, output_final_state=True)
    split = 32
    first, mid = chunked_scan(
        q[:, :split],
        k[:, :split],
        v[:, :split],
        case.spec,
        {n: g[:, :split] for n, g in gates.items()},
        initial_state=state,
        output_final_state=True,
    )
    second, end = chunked_scan(
        q[:, split:],
        k[:, split:],
        v[:, split:],
        case.spec,
        {n: g[:, split:] for n, g in gates.items()},
        initial_state=mid,
        output_final_state=True,
    )
    assert_close({"out": torch.cat([first, second], dim=1)} | end, {"out": whole} | whole_state, 1e-12)


@pytest.mark.parametrize("preset", ["ttt_mlp", "titans", "memora", "deltanet"])
def test_no_grad_inference(preset: str) -> None:
    """Without autograd (inference) the chunked scan computes the same values."""
    case = preset_case(preset, 20, 2, 4, True)
    leaves = {n: x.detach() for n, x in make_leaves(case, torch.float64).items()}
    gates, state = scan_args(leaves)
    args = (leaves["q"], leaves["k"], leaves["v"], case.spec, gates)
    with torch.no_grad():
        got, got_state = chunked_scan(*args, initial_state=state, output_final_state=True)
    want, want_state = reference_scan(*args, initial_state=state, output_final_state=True)
    assert not got.requires_grad
    assert_close({"out": got} | got_state, {"out": want} | want_state, 1e-10)


EXTREME = [(0.0, 1.0), (1.0, 0.01), (1.0, 10.0), (4.0, 1.0), (4.0, 10.0)]  # (lr scale, log-decay scale)


@pytest.mark.parametrize(("lr_scale", "decay_scale"), EXTREME, ids=lambda x: f"{x:g}")
@pytest.mark.parametrize("preset", BASE_PRESETS)
def test_extreme_gates_stay_finite(preset: str, lr_scale: float, decay_scale: float) -> None:
    case = replace(preset_case(preset, 40, 2, 8, True), lr_scale=lr_scale, decay_scale=decay_scale)
    results = run(chunked_scan, case.spec, make_leaves(case, torch.float32))
    bad = [name for name, x in results.items() if not torch.isfinite(x).all()]
    assert not bad, f"non-finite: {bad}"


@pytest.mark.parametrize("decay_scale", [0.01, 10.0], ids=lambda x: f"logdecay{x:g}")
@pytest.mark.parametrize("preset", ["gla", "mamba2", "gated_deltanet", "rwkv7", "titans", "moneta"])
def test_extreme_decays_match_the_reference(preset: str, decay_scale: float) -> None:
    """Products of tiny decays stay exact (no exp(cumsum(log)) cancellation)."""
    check(replace(preset_case(preset, 40, 2, 4, True), decay_scale=decay_scale))
