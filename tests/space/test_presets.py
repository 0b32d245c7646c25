"""The presets reproduce the paper's Table 1 (spec §6) row by row, with the paper's hyper-parameters."""

import pytest

from miras.space import NOT_EXPRESSIBLE, PRESETS, TABLE1_ROWS

# Table 1 of the paper as transcribed in the spec: model -> (memory, bias, retention, algorithm).
TABLE1 = {
    "RetNet": ("Vector", "Dot-product", "L2", "GD"),
    "Transformer": ("Matrix", "L2", "-", "Non-parametric"),
    "LA": ("Matrix", "Dot-product", "-", "GD"),
    "DFW": ("Matrix", "Dot-product", "L2", "GD"),
    "Lightning": ("Matrix", "Dot-product", "L2", "GD"),
    "GLA": ("Matrix", "Dot-product", "L2", "GD"),
    "Mamba": ("Matrix", "Dot-product", "L2", "GD"),
    "HGRN2": ("Matrix", "L1", "L2", "GD"),
    "DeltaNet": ("Matrix", "L2", "-", "GD"),
    "Longhorn": ("Matrix", "L2", "-", "Implicit GD"),
    "TTT-Linear": ("Matrix", "L2", "-", "GD"),
    "Gated DeltaNet": ("Matrix", "L2", "L2", "GD"),
    "RWKV-7": ("Matrix", "L2", "L2", "GD"),
    "DeltaProduct": ("Matrix", "L2", "L2", "MGD"),
    "TTT-MLP": ("2-layer MLP", "L2", "-", "GD"),
    "Titans-LMM": ("k-layer MLP", "L2", "L2", "GD + momentum"),
    "Moneta": ("2-layer MLP", "Lp", "Lq", "GD"),
    "Yaad": ("2-layer MLP", "Huber", "L2", "GD"),
    "Memora": ("2-layer MLP", "L2", "KL", "GD"),
}

MEMORY = {"Vector": "linear", "Matrix": "linear", "2-layer MLP": "mlp", "k-layer MLP": "mlp"}
BIAS = {"Dot-product": "dot", "L2": "l2", "L1": "l1", "Lp": "lp", "Huber": "huber"}
RETENTION = {"-": "none", "L2": "l2", "Lq": "lq", "KL": "kl"}
ALGORITHM = {"GD": "gd", "GD + momentum": "momentum", "Implicit GD": "implicit_gd", "MGD": "gd"}


def test_every_row_is_a_preset_or_explained():
    for row in TABLE1:
        assert (row in TABLE1_ROWS) != (row in NOT_EXPRESSIBLE), row
    assert set(TABLE1_ROWS) | set(NOT_EXPRESSIBLE) == set(TABLE1)


@pytest.mark.parametrize("row", sorted(TABLE1_ROWS))
def test_preset_matches_table1_row(row):
    memory, bias, retention, algorithm = TABLE1[row]
    spec = PRESETS[TABLE1_ROWS[row]].spec
    assert spec.memory.name == MEMORY[memory]
    assert spec.bias.name == BIAS[bias]
    assert spec.retention.name == RETENTION[retention]
    assert spec.algorithm.name == ALGORITHM[algorithm]
    assert not spec.problems()
    steps = spec.canonical()["algorithm"]["params"].get("steps", 1)
    assert (steps > 1) == (algorithm == "MGD")


def test_paper_hyperparameters():
    for name in ("moneta", "yaad", "memora"):
        memory = PRESETS[name].spec.canonical()["memory"]["params"]
        assert memory == {
            "depth": 2,
            "expansion": 4,
            "activation": "gelu",
            "residual": True,
            "layernorm": True,
            "ln_eps": 1e-5,
        }
    moneta = PRESETS["moneta"].spec.canonical()
    assert moneta["bias"]["params"]["p"] == 3
    assert moneta["retention"]["params"]["q"] == 4
    assert PRESETS["yaad"].spec.canonical()["bias"]["params"]["mode"] == "token"
    assert PRESETS["memora"].spec.canonical()["algorithm"]["params"]["lag_token"] is True
    assert PRESETS["gated_deltanet"].spec.canonical()["algorithm"]["params"]["grad_at"] == "decayed"


def test_required_presets_and_hybrids_exist():
    required = {
        "linear_attention", "retnet", "mamba2", "gla", "deltanet", "gated_deltanet", "longhorn",
        "ttt_linear", "ttt_mlp", "titans", "moneta", "yaad", "memora",
    }  # fmt: skip
    assert required <= set(PRESETS)
    for name in ("moneta", "yaad", "memora"):
        hybrid = PRESETS[f"{name}_h"]
        assert hybrid.hybrid and hybrid.spec == PRESETS[name].spec
        assert not PRESETS[name].hybrid


def test_listing_tells_presets_with_one_spec_apart(capsys):
    """mamba2, retnet and gla share lin-dot-l2-gd; the listing shows the gates that differ."""
    from miras.cli import main

    assert main(["list", "presets"]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines() if "lin-dot-l2-gd" in line}
    assert set(lines) >= {"mamba2", "retnet", "gla"}
    assert "gates: lr=one, decay=constant" in lines["retnet"]
    assert "gates: lr=data, decay=data" in lines["mamba2"]
    assert "gates: lr=one, decay=channel" in lines["gla"]
