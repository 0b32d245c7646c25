"""The sweep's MLflow records without Ray: the experiment's kind, the parent's summary, provenance
tags, and a trial's checkpoint reachable from its run (a real sqlite store in tmp_path)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import torch
from mlflow import MlflowClient

from miras.config.schema import ModelConfig, MqarTask, TrainingConfig
from miras.provenance import ROOT, git_state, provenance_tags
from miras.runners.trial import TrialConfig, load_trained, run_trial
from miras.search.tracking import CHECKPOINT_LIMIT, EXPERIMENT_KIND, MODEL_TRAINING, SweepStore


@pytest.fixture
def uri(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'mlflow.db'}"


def store_in(uri: str, tmp_path: Path, experiment: str = "exp", sweep: str = "sw") -> SweepStore:
    return SweepStore(uri, experiment, sweep, (tmp_path / "mlartifacts").as_uri())


def test_the_experiment_opens_in_the_model_training_view(uri, tmp_path):
    store = store_in(uri, tmp_path)
    client = MlflowClient(uri)
    assert MODEL_TRAINING == "custom_model_development"
    assert client.get_experiment(store.experiment_id).tags[EXPERIMENT_KIND] == MODEL_TRAINING
    untagged = client.create_experiment("older", artifact_location=(tmp_path / "a").as_uri())
    store_in(uri, tmp_path, experiment="older")
    assert client.get_experiment(untagged).tags[EXPERIMENT_KIND] == MODEL_TRAINING
    chosen = client.create_experiment("chosen", tags={EXPERIMENT_KIND: "genai_development"})
    store_in(uri, tmp_path, experiment="chosen")
    assert client.get_experiment(chosen).tags[EXPERIMENT_KIND] == "genai_development"  # a kind set by hand stays


def _trial(store: SweepStore, parent: str, name: str, combination: str, status: str, **metrics: float) -> str:
    run_id = store.start_trial(parent, name, name, combination, {"seed": "0"}, {"miras.device": "cpu"})
    store.log_metrics(run_id, metrics)
    store.end_trial(run_id, status, None if status == "finished" else "why")
    return run_id


def test_the_parent_run_summarises_the_sweep_and_a_resume_updates_it(uri, tmp_path):
    store = store_in(uri, tmp_path)
    parent = store.open_parent({"miras.git_commit": "abc", "miras.device": "cpu"})
    objectives = [("test_accuracy", "max"), ("tokens_per_second", "max")]
    _trial(store, parent, "a-s0", "a", "finished", best_test_accuracy=0.5, tokens_per_second=10.0)
    _trial(store, parent, "a-s1", "a", "finished", best_test_accuracy=0.7, tokens_per_second=5.0)
    _trial(store, parent, "b[p=2]-s0", "b[p=2]", "finished", best_test_accuracy=0.6, tokens_per_second=20.0)
    _trial(store, parent, "b[p=2]-s1", "b[p=2]", "diverged", best_test_accuracy=0.9)  # not a result
    _trial(store, parent, "c-s0", "c", "failed")
    _trial(store, parent, "c-s1", "c", "stopped")
    summary = store.summarize(parent, objectives, planned=8)

    run = MlflowClient(uri).get_run(parent)
    metrics, tags = run.data.metrics, run.data.tags
    assert metrics["trials_planned"] == 8
    assert (metrics["trials_finished"], metrics["trials_diverged"], metrics["trials_failed"]) == (3, 1, 1)
    assert metrics["trials_stopped"] == 1
    assert metrics["best_test_accuracy"] == 0.7 and tags["miras.best_trial"] == "a-s1"
    assert metrics["best_test_accuracy/a"] == 0.7 and metrics["best_test_accuracy/b_p_2_"] == 0.6
    assert "best_test_accuracy/c" not in metrics
    assert metrics["best_tokens_per_second"] == 20.0 and metrics["best_tokens_per_second/a"] == 10.0
    assert tags["miras.device"] == "cpu" and tags["miras.git_commit"] == "abc"
    logged = json.loads(Path(MlflowClient(uri).download_artifacts(parent, "summary.json", str(tmp_path))).read_text())
    assert logged == json.loads(json.dumps(summary))
    assert logged["best"]["test_accuracy"]["by_combination"]["b[p=2]"]["trial"] == "b[p=2]-s0"

    # resumed: the same parent, a new trial beats the best, the counts grow
    again = store_in(uri, tmp_path)
    assert again.open_parent() == parent
    _trial(again, parent, "c-s2", "c", "finished", best_test_accuracy=0.8, tokens_per_second=1.0)
    again.summarize(parent, objectives, planned=8)
    metrics = MlflowClient(uri).get_run(parent).data.metrics
    assert (metrics["trials_finished"], metrics["best_test_accuracy"], metrics["best_test_accuracy/c"]) == (4, 0.8, 0.8)
    assert MlflowClient(uri).get_run(parent).data.tags["miras.best_trial"] == "c-s2"


def test_provenance_names_the_checkout_of_the_package_not_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a Ray trial's working directory: not a checkout
    tags = provenance_tags("cpu")
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "diff", "--quiet", "HEAD"], cwd=ROOT).returncode != 0
    assert tags["miras.git_commit"] == head and len(head) == 40
    assert tags["miras.git_dirty"] == str(dirty).lower()
    assert tags["miras.version.torch"] == torch.__version__
    for name in ("miras", "triton", "ray", "optuna", "mlflow", "python"):
        assert tags[f"miras.version.{name}"], name
    assert tags["miras.device"] == "cpu"
    assert git_state(tmp_path) is None and git_state(ROOT / "miras") is None  # not a checkout's top folder


TASK = MqarTask(vocab_size=64, seq_len=32, num_kv_pairs=4, train_examples=64, test_examples=16)
MODEL = ModelConfig(d_model=16, n_layers=1, n_heads=2, gate_rank=4)
TRAINING = TrainingConfig(steps=3, batch_size=8, warmup_steps=1, eval_every=3, checkpoint_every=3)


def test_a_trials_checkpoint_is_an_artifact_up_to_the_limit_else_a_path_tag(uri, tmp_path):
    workdir = tmp_path / "trials" / "key1"
    config = TrialConfig(
        task=TASK, model=MODEL, training=TRAINING, architecture="gated_deltanet", workdir=workdir, cache_dir=tmp_path
    )
    assert run_trial(config, progress=False).status == "finished"
    store = store_in(uri, tmp_path)
    parent = store.open_parent()
    client = MlflowClient(uri)

    small = store.start_trial(parent, "small", "key1", "gated_deltanet", {})
    assert CHECKPOINT_LIMIT == 50 * 2**20 and store.log_checkpoint(small, workdir)
    assert sorted(a.path for a in client.list_artifacts(small, "checkpoint")) == [
        "checkpoint/checkpoint.pt",
        "checkpoint/trial.json",
    ]
    assert client.get_run(small).data.tags["miras.checkpoint_path"] == str(workdir / "checkpoint.pt")
    folder = Path(client.download_artifacts(small, "checkpoint", str(tmp_path / "down")))
    model, loaded = load_trained(folder)
    assert loaded.architecture == "gated_deltanet" and loaded.model == MODEL and loaded.task == TASK
    state = torch.load(workdir / "checkpoint.pt", weights_only=False)["model"]
    assert all(torch.equal(model.state_dict()[k], v) for k, v in state.items())

    large = store.start_trial(parent, "large", "key1", "gated_deltanet", {})
    assert not store.log_checkpoint(large, workdir, limit=100)
    assert [a.path for a in client.list_artifacts(large, "checkpoint")] == ["checkpoint/trial.json"]
    assert client.get_run(large).data.tags["miras.checkpoint_path"] == str(workdir / "checkpoint.pt")

    none = store.start_trial(parent, "none", "key2", "gated_deltanet", {})
    assert not store.log_checkpoint(none, tmp_path / "trials" / "key2")
    assert "miras.checkpoint_path" not in client.get_run(none).data.tags
