"""End to end: a real tiny sweep (Ray Tune + MLflow, about 30 s on 2 CPUs) read back into a report."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest
from mlflow import MlflowClient

pytest.importorskip("ray")
pytest.importorskip("miras.search.command", reason="the sweep runner (miras.search) is not installed")
RUN_SWEEP = Path(__file__).resolve().parents[2] / "run_sweep.py"

from miras.analysis import find_parent_run  # noqa: E402  (after the skips)
from miras.reports import write_report  # noqa: E402

CONFIG = """\
name: tiny
task: {name: mqar, vocab_size: 64, seq_len: 16, num_kv_pairs: 2, train_examples: 256, test_examples: 64}
model: {d_model: [16, 32], n_layers: 1, n_heads: 2, gate_rank: 4}
training: {steps: 10, batch_size: 8, warmup_steps: 2, eval_every: 5, checkpoint_every: null}
space: {presets: [deltanet, linear_attention]}
seeds: [0]
search: {lr: [0.001, 0.003]}
resources: {cpu: 1}
"""


def test_report_of_a_real_sweep(tmp_path: Path) -> None:
    config = tmp_path / "tiny.yaml"
    config.write_text(textwrap.dedent(CONFIG))
    runs = tmp_path / "runs" / "tiny"
    # a subprocess, as a user runs it (Ray pickles the progress callback, which holds the real stdout)
    argv = [sys.executable, str(RUN_SWEEP), str(config), "--out", str(runs), "--cache-dir", str(tmp_path / "cache")]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr

    uri = f"sqlite:///{runs / 'mlflow.db'}"
    report = write_report("tiny", uri, runs / "report")
    trials = pd.read_csv(report.folder / "tables" / "trials.csv")
    assert len(trials) == 8 and set(trials["status"]) == {"finished"}
    assert set(trials["model.d_model"]) == {16, 32}
    summary = pd.read_csv(report.folder / "tables" / "summary.csv")
    assert len(summary) == 4 and (summary["n"] == 1).all()  # best of the two learning rates per cell
    assert {"scaling_d_model.png", "curves.png", "frontier_state_size.png"} <= {p.name for p in report.figures}
    health = pd.read_csv(report.folder / "tables" / "health.csv")
    assert len(health) == 8 and (health["grad_norm_max"] > 0).all() and (health["loss_vs_chance"] > 0).all()
    assert "gradient_norms.png" in {p.name for p in report.figures}
    header = report.markdown.read_text().split("## Ranking")[0]
    assert "task: mqar (vocab_size 64, seq_len 16, num_kv_pairs 2, train_examples 256" in header
    assert "training: steps 10, batch_size 8" in header
    assert "learning rates searched (`search.lr`): 1e-3, 3e-3, each tried for every cell and seed" in header
    client = MlflowClient(uri)
    run_id = trials.loc[trials["combination"] == "deltanet", "run_id"].iloc[0]
    metrics = set(client.get_run(run_id).data.metrics)
    assert {"health/grad_norm", "health/layer0/error_rms", "health/layer0/gate/lr/p95", "vocab_size"} <= metrics
    logged = {a.path for a in client.list_artifacts(find_parent_run(client, "tiny").info.run_id, "report")}
    assert "report/report.html" in logged


DESIGN_CONFIG = """\
name: tiny_design
task: {name: mqar, vocab_size: 64, seq_len: 16, num_kv_pairs: 2, train_examples: 256, test_examples: 64}
model: {d_model: 16, n_layers: 1, n_heads: 2, gate_rank: 4}
training: {steps: 10, batch_size: 8, warmup_steps: 2, eval_every: 5, checkpoint_every: null}
space:
  presets: [transformer]
  ablations: [{base: deltanet, swap: {retention: [l2]}, gates: {lr: one}}]
search:
  params: {training.weight_decay: {low: 0.0, high: 0.2}, algorithm.batch_size: [1, 4]}
  trials_per_combination: 2
  objectives: [{metric: test_accuracy, mode: max}, {metric: tokens_per_second, mode: max}]
seeds: [0, 1]
resources: {cpu: 1}
"""


def test_ablations_a_conditional_search_and_two_objectives_end_to_end(tmp_path: Path) -> None:
    config = tmp_path / "tiny_design.yaml"
    config.write_text(DESIGN_CONFIG)
    runs = tmp_path / "runs" / "tiny_design"
    argv = [sys.executable, str(RUN_SWEEP), str(config), "--out", str(runs), "--cache-dir", str(tmp_path / "cache")]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr

    report = write_report("tiny_design", f"sqlite:///{runs / 'mlflow.db'}", runs / "report", log=False)
    trials = pd.read_csv(report.folder / "tables" / "trials.csv")
    assert len(trials) == 4 * 2 * 2 and set(trials["status"]) == {"finished"}
    # the conditional search: every trial samples the weight decay, only Miras models the batch size
    assert trials["training.weight_decay"].between(0.0, 0.2).all()
    miras = trials["combination"] != "transformer"
    assert set(trials.loc[miras, "algorithm.batch_size"]) <= {1, 4}
    assert trials.loc[~miras, "algorithm"].eq("-").all()

    table = pd.read_csv(report.folder / "tables" / "ablations.csv").set_index("variant")
    assert list(table.index) == ["deltanet -retention=l2", "deltanet -gate.lr=one"]
    best = trials.groupby(["combination", "seed"])["best_test_accuracy"].max().unstack("combination")
    for variant, row in table.iterrows():
        diff = best[variant] - best["deltanet"]
        assert row["n_pairs"] == 2 and row["base"] == "deltanet"
        assert row["effect"] == pytest.approx(diff.mean(), abs=1e-12)
        assert row["wins"] == int((diff > 0).sum())

    objectives = trials[["best_test_accuracy", "tokens_per_second"]].to_numpy()
    brute = {
        run
        for run, point in zip(trials["run_id"], objectives, strict=True)
        if not any((other >= point).all() and (other > point).any() for other in objectives)
    }
    front = pd.read_csv(report.folder / "tables" / "pareto_trials.csv")
    assert set(front["run_id"]) == brute
    assert len(pd.read_csv(report.folder / "tables" / "pareto_cells.csv")) == 4
    text = report.markdown.read_text()
    assert "## Ablations" in text and "## Pareto front" in text
    header = text.split("## Ranking")[0]
    assert "learning rate: 1e-3 (`training.lr`), not searched" in header
    assert (
        "also searched (`search.params`): training.weight_decay uniform over [0, 0.2]; algorithm.batch_size 1, 4"
        in (header)
    )
    assert "search: 2 trials per cell and seed (Optuna TPE)" in header
    assert "pareto_objectives.png" in {p.name for p in report.figures}
