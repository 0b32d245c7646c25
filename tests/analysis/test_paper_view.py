"""The paper's numbers are transcribed consistently and shown only beside a matching setting."""

from __future__ import annotations

import pandas as pd
import pytest

from miras.analysis import Sweep, paper_view
from miras.analysis.paper import LM_RESULTS, NIAH_CELLS, NIAH_RESULTS, PRESET_OF_ROW, YAAD_ABLATION, lm_table
from miras.space import BASELINES, PRESETS


@pytest.mark.parametrize("size", sorted(LM_RESULTS))
def test_lm_avg8_is_the_mean_of_the_eight_accuracies(size: str) -> None:
    for model, values in LM_RESULTS[size].items():
        assert len(values) == 11, model
        assert sum(values[2:10]) / 8 == pytest.approx(values[10], abs=0.006), model


def test_niah_and_ablation_shapes() -> None:
    assert all(len(values) == len(NIAH_CELLS) for values in NIAH_RESULTS.values())
    # the spec's own check: the baselines' reported averages equal the mean of their nine cells
    assert sum(NIAH_RESULTS["Mamba2"]) / 9 == pytest.approx(52.0, abs=0.01)
    assert YAAD_ABLATION["Yaad"][0] - YAAD_ABLATION["− Retention Gate (β = 1)"][0] == pytest.approx(3.35)


def test_paper_rows_map_to_real_presets() -> None:
    assert set(PRESET_OF_ROW.values()) <= set(PRESETS) | set(BASELINES)
    assert lm_table("340M").set_index("paper_model").loc["Moneta", "wiki_ppl"] == 26.19


def test_tiny_sweeps_reproduce_no_paper_setting(ablation: Sweep, scaling: Sweep) -> None:
    for sweep in (ablation, scaling):
        view = paper_view(sweep)
        assert not view.tables
        assert view.notes[0].startswith("No paper setting is reproduced")


def _sweep(task: str, rows: list[dict[str, object]], metric: str, mode: str) -> Sweep:
    trials = pd.DataFrame(rows).assign(
        status="finished", lr=1e-3, task=task, run_id=lambda f: [str(i) for i in f.index]
    )
    return Sweep("s", "p", "0", "", metric, mode, trials, pd.DataFrame())


def test_lm_at_340m_is_shown_beside_the_paper() -> None:
    rows = [
        {"combination": name, "seed": seed, "n_params": 3.5e8, "best_val_loss": loss, "val_perplexity": ppl}
        for name, loss, ppl in (("moneta", 3.0, 20.0), ("transformer", 3.2, 24.5))
        for seed in (0, 1)
    ]
    view = paper_view(_sweep("lm", rows, "val_loss", "min"))
    table = view.tables["Language modelling at 340M"].set_index("combination")
    assert table.loc["moneta", "paper_wiki_ppl"] == 26.19
    assert table.loc["transformer", "paper_model"] == "Transformer++"
    assert table.loc["moneta", "our_val_perplexity"] == 20.0
    assert "only the ordering" in view.notes[0]


def test_niah_cells_are_matched_by_kind_and_length() -> None:
    rows = [
        {"combination": "moneta", "seed": 0, "best_test_accuracy": 0.5, "test_accuracy_passkey_2048": 0.75},
        {"combination": "moneta", "seed": 1, "best_test_accuracy": 0.5, "test_accuracy_passkey_2048": 0.25},
    ]
    view = paper_view(_sweep("needle", rows, "test_accuracy", "max"))
    table = view.tables["S-NIAH (accuracy %)"].set_index("combination")
    assert table.loc["moneta", "our PK-2K"] == pytest.approx(50.0)
    assert table.loc["moneta", "paper PK-2K"] == 99.4
    assert "does not state its model size" in view.notes[0]
