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
    assert "training: steps 10, batch_size 8" in header and "search: lr [0.001, 0.003]" in header
    client = MlflowClient(uri)
    run_id = trials.loc[trials["combination"] == "deltanet", "run_id"].iloc[0]
    metrics = set(client.get_run(run_id).data.metrics)
    assert {"health/grad_norm", "health/layer0/error_rms", "health/layer0/gate/lr/p95", "vocab_size"} <= metrics
    logged = {a.path for a in client.list_artifacts(find_parent_run(client, "tiny").info.run_id, "report")}
    assert "report/report.html" in logged


ABLATION_CONFIG = """\
name: tiny_ablation
task: {name: mqar, vocab_size: 64, seq_len: 16, num_kv_pairs: 2, train_examples: 256, test_examples: 64}
model: {d_model: 16, n_layers: 1, n_heads: 2, gate_rank: 4}
training: {steps: 10, batch_size: 8, warmup_steps: 2, eval_every: 5, checkpoint_every: null}
space:
  ablations: [{base: deltanet, swap: {retention: [l2]}, gates: {lr: one}}]
seeds: [0, 1]
resources: {cpu: 1}
"""


def test_an_ablation_sweep_reports_each_variant_against_its_base(tmp_path: Path) -> None:
    config = tmp_path / "tiny_ablation.yaml"
    config.write_text(ABLATION_CONFIG)
    runs = tmp_path / "runs" / "tiny_ablation"
    argv = [sys.executable, str(RUN_SWEEP), str(config), "--out", str(runs), "--cache-dir", str(tmp_path / "cache")]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr

    report = write_report("tiny_ablation", f"sqlite:///{runs / 'mlflow.db'}", runs / "report", log=False)
    trials = pd.read_csv(report.folder / "tables" / "trials.csv")
    assert len(trials) == 6 and set(trials["status"]) == {"finished"}
    table = pd.read_csv(report.folder / "tables" / "ablations.csv").set_index("variant")
    assert list(table.index) == ["deltanet -retention=l2", "deltanet -gate.lr=one"]
    by_seed = trials.pivot_table(index="seed", columns="combination", values="best_test_accuracy")
    for variant, row in table.iterrows():
        diff = by_seed[variant] - by_seed["deltanet"]
        assert row["n_pairs"] == 2 and row["base"] == "deltanet"
        assert row["effect"] == pytest.approx(diff.mean(), abs=1e-12)
        assert row["wins"] == int((diff > 0).sum())
        assert row["ci_low"] <= row["effect"] <= row["ci_high"]
    assert "## Ablations" in report.markdown.read_text()
