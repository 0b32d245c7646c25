"""A quickstart-shaped sweep end to end (in process, local Ray): the MLflow layout of docs/sweeps.md."""

from __future__ import annotations

import json
import math
import os
import platform
import subprocess
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

import pytest
import torch
from mlflow import MlflowClient
from mlflow.entities import Run

from miras.provenance import package_version
from miras.runners.trial import load_trained
from miras.search.command import main

from .conftest import ROOT, trial_runs, write_sweep

PRESETS, SEEDS, RATES = ["gated_deltanet", "transformer"], [0, 1], [3e-3, 1e30]
FINAL = ("n_params", "state_size", "flops_per_token", "tokens_per_second", "peak_memory_mb", "wall_seconds")


@dataclass
class Swept:
    out: Path
    uri: str
    code: int
    stdout: str
    parents: list[Run]
    children: list[Run]


@pytest.fixture(scope="module")
def swept(tmp_path_factory: pytest.TempPathFactory) -> Swept:
    """2 presets x 2 seeds x 2 learning rates (the second diverges at once), 10 steps each."""
    folder = tmp_path_factory.mktemp("sweep")
    config = write_sweep(folder / "quick.yaml", "quick", space={"presets": PRESETS}, seeds=SEEDS, search={"lr": RATES})
    out = folder / "out"
    stdout = folder / "stdout.txt"
    with mock.patch.dict(os.environ), stdout.open("w") as stream, mock.patch("sys.stdout", stream):
        code = main([str(config), "--out", str(out), "--cache-dir", str(folder / "cache")])
    uri = f"sqlite:///{out / 'mlflow.db'}"
    return Swept(out, uri, code, stdout.read_text(), *trial_runs(uri, "quick"))


def test_the_sweep_completes_and_prints_how_to_browse(swept):
    assert swept.code == 0, swept.stdout
    assert "0 of 8 trials already finished; launching 8" in swept.stdout
    assert f"mlflow ui --backend-store-uri {swept.uri}" in swept.stdout


def test_the_sweep_ends_by_writing_its_report(swept):
    report = swept.out / "report" / "report.html"
    assert f"report:   {report}" in swept.stdout
    assert report.stat().st_size > 0 and (swept.out / "report" / "report.md").exists()


def test_one_parent_with_the_config_and_trial_list(swept):
    assert len(swept.parents) == 1
    parent = swept.parents[0]
    assert parent.info.run_name == "quick" and parent.info.status == "FINISHED"
    assert parent.data.tags["miras.sweep"] == "quick"
    client = MlflowClient(swept.uri)
    artifacts = sorted(a.path for a in client.list_artifacts(parent.info.run_id))
    assert artifacts == ["config.yaml", "report", "summary.json", "trials.json"]
    listed = json.loads(Path(client.download_artifacts(parent.info.run_id, "trials.json", str(swept.out))).read_text())
    assert len(listed) == 8 and {entry["lr"] for entry in listed} == set(RATES)


def test_one_child_per_trial_with_tags_and_params(swept):
    names = sorted(run.info.run_name for run in swept.children)
    expected = sorted(f"{p}-s{s}-lr{lr:.3g}" for p in PRESETS for s in SEEDS for lr in RATES)
    assert names == expected
    parent_id = swept.parents[0].info.run_id
    assert len({run.data.tags["miras.run_key"] for run in swept.children}) == 8
    for run in swept.children:
        tags, params = run.data.tags, run.data.params
        assert tags["mlflow.parentRunId"] == parent_id and tags["miras.sweep"] == "quick"
        assert tags["miras.combination"] == params["model"] in PRESETS
        assert params["task"] == "mqar" and params["task.num_kv_pairs"] == "4"
        assert params["model.d_model"] == "16" and params["training.steps"] == "10"
        assert params["lr"] == params["training.lr"] and params["seed"] in ("0", "1")
    gdn = next(r for r in swept.children if r.data.params["model"] == "gated_deltanet").data.params
    assert (gdn["memory"], gdn["bias"], gdn["retention"], gdn["algorithm"]) == ("linear", "l2", "l2", "gd")
    assert gdn["algorithm.grad_at"] == "decayed"
    transformer = next(r for r in swept.children if r.data.params["model"] == "transformer").data.params
    assert transformer["memory"] == "-"


def test_the_experiment_opens_in_the_model_training_view(swept):
    client = MlflowClient(swept.uri)
    experiment = client.get_experiment_by_name("quick")
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    page = f"http://127.0.0.1:5000/#/experiments/{experiment.experiment_id}/runs?workflowType=machine_learning"
    assert f"then open {page}" in swept.stdout


def test_every_run_carries_its_provenance(swept):
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    for run in [*swept.parents, *swept.children]:
        tags = run.data.tags
        assert tags["miras.git_commit"] == head and tags["miras.git_dirty"] in ("true", "false")
        assert tags["miras.device"] == "cpu", run.info.run_name
        assert tags["miras.version.torch"] == torch.__version__
        assert tags["miras.version.python"] == platform.python_version()
        for name in ("miras", "triton", "ray", "optuna", "mlflow"):
            assert tags[f"miras.version.{name}"] == package_version(name, "absent"), name
    ran = {"gated_deltanet": ("auto", "auto runs delta"), "transformer": ("none", "no memory layer")}
    for run in swept.children:
        impl, why = ran[run.data.tags["miras.combination"]]
        assert run.data.tags["miras.scan_impl"] == impl and why in run.data.tags["miras.scan_reason"]


def test_the_parent_run_holds_the_sweeps_summary(swept):
    parent = swept.parents[0].data
    metrics = parent.metrics
    assert (metrics["trials_planned"], metrics["trials_finished"], metrics["trials_diverged"]) == (8, 4, 4)
    assert metrics["trials_failed"] == 0
    finished = [run for run in swept.children if run.data.tags["miras.status"] == "finished"]
    for preset in PRESETS:
        best = max(r.data.metrics["best_test_accuracy"] for r in finished if r.data.tags["miras.combination"] == preset)
        assert metrics[f"best_test_accuracy/{preset}"] == best, preset
    best_run = max(finished, key=lambda r: r.data.metrics["best_test_accuracy"])
    assert metrics["best_test_accuracy"] == best_run.data.metrics["best_test_accuracy"]
    assert parent.tags["miras.best_trial"] in {r.info.run_name for r in finished}


def test_a_trials_checkpoint_and_config_are_reachable_from_its_run(swept):
    client = MlflowClient(swept.uri)
    finished = [run for run in swept.children if run.data.tags["miras.status"] == "finished"]
    run = next(r for r in finished if r.data.params["model"] == "gated_deltanet")
    checkpoint = swept.out / "trials" / run.data.tags["miras.run_key"] / "checkpoint.pt"
    assert run.data.tags["miras.checkpoint_path"] == str(checkpoint)
    folder = Path(client.download_artifacts(run.info.run_id, "checkpoint", str(swept.out / "download")))
    assert sorted(p.name for p in folder.iterdir()) == ["checkpoint.pt", "trial.json"]
    model, config = load_trained(folder)
    assert config.architecture == "gated_deltanet" and config.model.d_model == 16 and config.training.steps == 10
    assert config.seed == int(run.data.params["seed"]) and config.training.lr == float(run.data.params["lr"])
    saved = torch.load(checkpoint, weights_only=False)["model"]
    assert all(torch.equal(model.state_dict()[k], v) for k, v in saved.items())


def test_finished_trials_have_metrics_at_every_evaluation(swept):
    client = MlflowClient(swept.uri)
    finished = [run for run in swept.children if run.data.params["lr"] == "0.003"]
    assert len(finished) == 4
    for run in finished:
        assert run.info.status == "FINISHED" and run.data.tags["miras.status"] == "finished"
        assert "miras.reason" not in run.data.tags
        assert (swept.out / "trials" / run.data.tags["miras.run_key"] / "checkpoint.pt").exists()
        metrics = run.data.metrics
        for name in FINAL:
            assert metrics[name] > 0, name
        for name in ("test_accuracy", "test_accuracy_kv4", "train_loss"):
            assert [m.step for m in client.get_metric_history(run.info.run_id, name)] == [5, 10], name
        best = max(m.value for m in client.get_metric_history(run.info.run_id, "test_accuracy"))
        assert metrics["best_test_accuracy"] == best


def test_a_diverging_trial_is_recorded_and_the_rest_complete(swept):
    diverged = [run for run in swept.children if run.data.params["lr"] == "1e+30"]
    assert len(diverged) == 4
    for run in diverged:
        assert run.info.status == "FINISHED" and run.data.tags["miras.status"] == "diverged"
        assert "nan" in run.data.tags["miras.reason"] or "inf" in run.data.tags["miras.reason"]
        assert "best_test_accuracy" not in run.data.metrics or math.isfinite(run.data.metrics["best_test_accuracy"])
    assert "4 diverged, 4 finished" in swept.stdout
