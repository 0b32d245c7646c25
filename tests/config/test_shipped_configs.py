"""Every config under configs/ validates and plans, and the study configs expand to the rows they promise."""

from __future__ import annotations

from pathlib import Path

import pytest

from miras.config import load_config
from miras.search.plan import Plan

CONFIGS = sorted((Path(__file__).resolve().parents[2] / "configs").glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda path: path.name)
def test_shipped_config_validates(path: Path) -> None:
    assert Plan(load_config(path)).total >= len(load_config(path).combinations())  # a budget is checked here


def test_the_yaad_ablation_has_the_papers_rows() -> None:
    config = load_config(next(p for p in CONFIGS if p.name == "ablation_yaad.yaml"))
    labels = [label for label, _ in config.combinations()]
    assert labels == [
        "yaad",
        "yaad -retention=none",
        "yaad -bias=l2",
        "yaad -bias=l1",
        "yaad -memory=linear",
        "yaad -gate.delta=constant",
    ]
    assert len(config.seeds) >= 3


def test_moneta_p_searches_p_and_q_with_tpe() -> None:
    plan = Plan(load_config(next(p for p in CONFIGS if p.name == "moneta_p.yaml")))
    assert [d.path for d in plan.dimensions(plan.cells[0])] == ["bias.p", "retention.q"]
    assert plan.searched_cells == plan.cells and len(plan.cells) >= 3


def test_iso_state_mqar_sizes_every_preset_to_one_state() -> None:
    plan = Plan(load_config(next(p for p in CONFIGS if p.name == "iso_state_mqar.yaml")))
    assert all(abs(sized.error) <= 0.05 and sized.target == 16384 for sized in plan.matched.values())
    assert len({sized.d_model for sized in plan.matched.values()}) > 1
