"""run_trial end to end on MQAR, and `miras train` from a config file."""

import json

import pytest
import torch

from miras.cli import main
from miras.config.schema import ModelConfig, MqarTask, TrainingConfig
from miras.models.mixer import MirasMixer
from miras.runners.trial import RECORD, TrialConfig, build_model, load_trained, run_trial
from miras.space import BASELINES, PRESETS

TASK = MqarTask(vocab_size=64, seq_len=32, num_kv_pairs=4, train_examples=512, test_examples=64)
MODEL = ModelConfig(d_model=16, n_layers=2, n_heads=2, gate_rank=8, swa_window=8)
TRAINING = TrainingConfig(steps=30, batch_size=32, lr=1e-2, warmup_steps=3, eval_every=15, checkpoint_every=None)


@pytest.mark.parametrize("name", sorted(PRESETS) + sorted(BASELINES))
def test_every_preset_trains_with_decreasing_loss(name, tmp_path):
    config = TrialConfig(task=TASK, model=MODEL, training=TRAINING, architecture=name, cache_dir=tmp_path)
    result = run_trial(config, progress=False)
    assert result.status == "finished", result.reason
    first, last = sum(result.losses[:5]) / 5, sum(result.losses[-5:]) / 5
    assert last < first - 0.05, (first, last)
    assert [h["step"] for h in result.history] == [15.0, 30.0]
    assert 0.0 <= result.final["test_accuracy"] <= 1.0
    assert result.params > 0 and result.state_size > 0 and result.flops_per_token > 0


def test_a_broken_trial_reports_failed_with_the_reason(tmp_path):
    config = TrialConfig(task=TASK, model=MODEL, training=TRAINING, architecture="titanz", cache_dir=tmp_path)
    result = run_trial(config, progress=False)
    assert result.status == "failed" and "unknown model 'titanz'" in result.reason


def test_miras_train_runs_and_resumes(tmp_path, capsys):
    config = tmp_path / "sweep.yaml"
    config.write_text(
        """
name: one
task: {name: mqar, vocab_size: 64, seq_len: 32, num_kv_pairs: 4, train_examples: 256, test_examples: 32}
model: {d_model: 16, n_layers: 1, n_heads: 2, gate_rank: 8}
training: {steps: 4, batch_size: 8, warmup_steps: 1, eval_every: 2, checkpoint_every: 2}
space: {presets: [deltanet, titans]}
"""
    )
    args = [
        "train",
        str(config),
        "--combination",
        "titans",
        "--workdir",
        str(tmp_path / "w"),
        "--cache-dir",
        str(tmp_path),
    ]
    assert main(args) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["status"] == "finished" and first["architecture"] == "titans" and first["steps"] == 4
    assert main(args) == 0  # the finished checkpoint is found: nothing is trained again
    again = json.loads(capsys.readouterr().out)
    assert again["final"] == first["final"] and again["tokens_per_second"] == 0.0


def test_miras_train_lr_is_the_recorded_training_lr_and_an_older_record_still_loads(tmp_path, capsys):
    config = tmp_path / "sweep.yaml"
    config.write_text(
        "name: one\ntask: {name: mqar, vocab_size: 64, seq_len: 32, train_examples: 64, test_examples: 16}\n"
        "model: {d_model: 16, n_layers: 1, n_heads: 2, gate_rank: 8}\n"
        "training: {steps: 2, batch_size: 4, warmup_steps: 1, eval_every: 2, checkpoint_every: 2, lr: 0.01}\n"
        "space: {presets: [deltanet]}\n"
    )
    workdir = tmp_path / "w"
    assert main(["train", str(config), "--lr", "0.003", "--workdir", str(workdir), "--cache-dir", str(tmp_path)]) == 0
    capsys.readouterr()
    record_path = workdir / RECORD
    record = json.loads(record_path.read_text())
    assert record["config"]["training"]["lr"] == 0.003 and "lr" not in record["config"]
    _, loaded = load_trained(workdir)
    assert loaded.training.lr == 0.003
    record["config"]["training"]["lr"] = 0.01  # as written before: the override beside training.lr
    record["config"]["lr"] = 0.003
    record_path.write_text(json.dumps(record))
    model, loaded = load_trained(workdir)
    assert loaded.training.lr == 0.003 and model.arch.name == "deltanet"


def test_miras_train_rejects_an_unknown_combination(tmp_path, capsys):
    config = tmp_path / "sweep.yaml"
    config.write_text("name: one\ntask: {name: mqar}\nspace: {presets: [deltanet]}\n")
    assert main(["train", str(config), "--combination", "nope"]) == 2
    assert "choose one of: 0=deltanet" in capsys.readouterr().err


def test_miras_train_picks_one_width_of_a_ladder(tmp_path, capsys):
    config = tmp_path / "sweep.yaml"
    config.write_text(
        "name: ladder\ntask: {name: mqar, vocab_size: 64, seq_len: 32, train_examples: 64, test_examples: 16}\n"
        "model: {d_model: [16, 32], n_layers: 1, n_heads: 2, gate_rank: 8}\n"
        "training: {steps: 2, batch_size: 4, warmup_steps: 1, eval_every: 2, checkpoint_every: null}\n"
        "space: {presets: [deltanet]}\n"
    )
    common = ["train", str(config), "--cache-dir", str(tmp_path)]
    assert main([*common, "--d-model", "32"]) == 0
    assert json.loads(capsys.readouterr().out)["status"] == "finished"
    assert main([*common, "--d-model", "48"]) == 2
    assert "not in this config's model.d_model [16, 32]" in capsys.readouterr().err


def test_model_impl_reaches_every_mixer_and_compiled_equals_chunked():
    """``model.impl`` picks every mixer's scan; the compiled scan gives the chunked loss and gradients."""
    ids = torch.randint(0, TASK.vocab_size, (2, TASK.seq_len), generator=torch.Generator().manual_seed(0))
    results = {}
    for impl in ("chunked", "compiled"):
        model_config = MODEL.model_copy(update={"impl": impl})
        config = TrialConfig(task=TASK, model=model_config, training=TRAINING, architecture="titans")
        torch.manual_seed(0)
        model = build_model(config, TASK.vocab_size)
        assert {m.impl for m in model.modules() if isinstance(m, MirasMixer)} == {impl}
        logits = model(ids[:, :-1])
        loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), ids[:, 1:].flatten())
        results[impl] = [loss.detach(), *torch.autograd.grad(loss, list(model.parameters()))]
    for got, want in zip(results["compiled"], results["chunked"], strict=True):
        assert (got - want).norm() <= 1e-4 * want.norm()  # fp32: inductor reorders sums
