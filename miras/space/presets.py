"""Presets: the paper's models (Table 1, Mamba2, Moneta, Yaad, Memora) as points of the space.

A preset is data: a :class:`MirasSpec` plus how the mixer produces its gates and whether the
model is a hybrid with sliding-window attention. Rows of Table 1 the four axes cannot express
are listed in :data:`NOT_EXPRESSIBLE` with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .gates import GateKind
from .spec import MirasSpec

DEFAULT_SWA_WINDOW = 512
"""Sliding-window size of hybrid presets (the paper does not give one; our choice)."""


@dataclass(frozen=True)
class Preset:
    """A named model: its spec, gate parameterisation and optional SWA hybrid window."""

    name: str
    spec: MirasSpec
    description: str
    paper_row: str
    gates: dict[str, GateKind] = field(default_factory=dict)
    swa_window: int | None = None

    @property
    def hybrid(self) -> bool:
        return self.swa_window is not None


def _spec(memory, bias, retention, algorithm) -> MirasSpec:
    return MirasSpec.of(memory, bias, retention, algorithm)


_MLP = {"name": "mlp", "params": {"depth": 2, "expansion": 4}}
_B16 = 16
"""Mini-batch size of the deep-memory models (TTT, Titans, Miras: "usually 16 or 64")."""


def _base_presets() -> list[Preset]:
    return [
        Preset(
            "linear_attention",
            _spec("linear", "dot", "none", "gd"),
            "linear attention: W_t = W_{t-1} + v_t k_t^T",
            "LA",
            {"lr": "one"},
        ),
        Preset(
            "retnet",
            _spec("linear", "dot", "l2", "gd"),
            "RetNet: a learned constant decay per head",
            "RetNet",
            {"lr": "one", "decay": "constant"},
        ),
        Preset(
            "mamba2",
            _spec("linear", "dot", "l2", "gd"),
            "Mamba2: data-dependent scalar decay per head",
            "Mamba",
            {"lr": "data", "decay": "data"},
        ),
        Preset(
            "gla",
            _spec("linear", "dot", "l2", "gd"),
            "GLA: data-dependent channel-wise (key) decay",
            "GLA",
            {"lr": "one", "decay": "channel"},
        ),
        Preset(
            "deltanet",
            _spec("linear", "l2", "none", "gd"),
            "DeltaNet: the delta rule",
            "DeltaNet",
            {"lr": "data"},
        ),
        Preset(
            "gated_deltanet",
            _spec("linear", "l2", "l2", {"name": "gd", "params": {"grad_at": "decayed"}}),
            "Gated DeltaNet: delta rule at the decayed state",
            "Gated DeltaNet",
            {"lr": "data", "decay": "data"},
        ),
        Preset(
            "rwkv7",
            _spec("linear", "l2", "l2", {"name": "gd", "params": {"grad_at": "decayed"}}),
            "RWKV-7 style: delta rule with channel-wise decay (same key for removal and write)",
            "RWKV-7",
            {"lr": "data", "decay": "channel"},
        ),
        Preset(
            "deltaproduct",
            _spec("linear", "l2", "l2", {"name": "gd", "params": {"grad_at": "decayed", "steps": 2}}),
            "DeltaProduct style: two GD steps per token (on the same key and value)",
            "DeltaProduct",
            {"lr": "data", "decay": "data"},
        ),
        Preset(
            "longhorn",
            _spec("linear", "l2", "none", "implicit_gd"),
            "Longhorn: implicit online learning",
            "Longhorn",
            {"lr": "data"},
        ),
        Preset(
            "ttt_linear",
            _spec("linear", "l2", "none", {"name": "gd", "params": {"batch_size": _B16}}),
            "TTT-Linear: linear memory, mini-batch GD",
            "TTT-Linear",
            {"lr": "data"},
        ),
        Preset(
            "ttt_mlp",
            _spec(_MLP, "l2", "none", {"name": "gd", "params": {"batch_size": _B16}}),
            "TTT-MLP: 2-layer MLP memory, mini-batch GD",
            "TTT-MLP",
            {"lr": "data"},
        ),
        Preset(
            "titans",
            _spec(_MLP, "l2", "l2", {"name": "momentum", "params": {"batch_size": _B16}}),
            "Titans-LMM: deep memory, decay and momentum",
            "Titans-LMM",
            {"lr": "data", "decay": "data", "momentum": "data"},
        ),
        Preset(
            "moneta",
            _spec(
                _MLP,
                {"name": "lp", "params": {"p": 3.0, "smooth": "sqrt"}},
                {"name": "lq", "params": {"q": 4.0}},
                {"name": "gd", "params": {"batch_size": _B16}},
            ),
            "(3, 4)-Moneta: lp bias (p=3), lq retention (q=4)",
            "Moneta",
            {"lr": "channel", "decay": "data"},
        ),
        Preset(
            "yaad",
            _spec(
                _MLP,
                {"name": "huber", "params": {"mode": "token"}},
                "l2",
                {"name": "gd", "params": {"batch_size": _B16}},
            ),
            "Yaad: Huber bias with a data-dependent threshold, l2 retention",
            "Yaad",
            {"lr": "channel", "decay": "data", "delta": "data"},
        ),
        Preset(
            "memora",
            _spec(
                _MLP,
                "l2",
                "kl",
                {"name": "gd", "params": {"batch_size": _B16, "lag_token": True}},
            ),
            "Memora: l2 bias, KL retention (softmax weights), lag-token chunks",
            "Memora",
            {"lr": "channel", "decay": "data"},
        ),
    ]


HYBRID_BASES = ("gated_deltanet", "titans", "moneta", "yaad", "memora")


def _hybrids(base: dict[str, Preset]) -> list[Preset]:
    out = []
    for name in HYBRID_BASES:
        p = base[name]
        out.append(
            Preset(
                f"{name}_h",
                p.spec,
                f"{p.description}; each layer followed by sliding-window attention",
                f"{p.paper_row}-H",
                dict(p.gates),
                DEFAULT_SWA_WINDOW,
            )
        )
    return out


def _all() -> dict[str, Preset]:
    base = {p.name: p for p in _base_presets()}
    return base | {p.name: p for p in _hybrids(base)}


PRESETS: dict[str, Preset] = _all()

NOT_EXPRESSIBLE: dict[str, str] = {
    "Transformer": "non-parametric memory (a KV cache); provided as the transformer baseline model",
    "DFW": "decay (beta_t alpha_t^T) acts on both sides of the matrix; retention gates act on one side",
    "HGRN2": "its key is tied to the decay gate (v_t (1 - alpha_t)^T), which is a mixer choice, not an axis",
}


BASELINES: dict[str, str] = {
    "transformer": "Transformer++: softmax attention with RoPE in every layer",
    "swa": "sliding-window softmax attention with RoPE in every layer",
}
"""Attention baselines, usable by name wherever a preset is (they are not Miras memories)."""

TABLE1_ROWS: dict[str, str] = {
    "RetNet": "retnet",
    "LA": "linear_attention",
    "Lightning": "retnet",
    "GLA": "gla",
    "Mamba": "mamba2",
    "DeltaNet": "deltanet",
    "Longhorn": "longhorn",
    "TTT-Linear": "ttt_linear",
    "Gated DeltaNet": "gated_deltanet",
    "RWKV-7": "rwkv7",
    "DeltaProduct": "deltaproduct",
    "TTT-MLP": "ttt_mlp",
    "Titans-LMM": "titans",
    "Moneta": "moneta",
    "Yaad": "yaad",
    "Memora": "memora",
}
"""Rows of the paper's Table 1 -> the preset that expresses them (Lightning = RetNet's spec with a
matrix memory; the Mamba row is expressed by Mamba2's data-dependent scalar decay)."""


def get_preset(name: str) -> Preset:
    """The preset ``name``; ``KeyError`` lists the known presets."""
    if name not in PRESETS:
        raise KeyError(f"unknown preset {name!r}; known: {', '.join(sorted(PRESETS))}")
    return PRESETS[name]


__all__ = ["BASELINES", "DEFAULT_SWA_WINDOW", "NOT_EXPRESSIBLE", "PRESETS", "TABLE1_ROWS", "Preset", "get_preset"]
