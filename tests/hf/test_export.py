"""``miras export``: a trial of a real (tiny) text-LM sweep becomes a Hugging Face folder that
``AutoModelForCausalLM`` / ``AutoTokenizer`` load, with the trained weights and the trial's BPE."""

from __future__ import annotations

import importlib.util
import io
import json
import os
from pathlib import Path
from unittest import mock

import pytest
import torch

import miras
from miras.cli import main
from miras.runners.trial import load_trained

transformers = pytest.importorskip("transformers")
hf = pytest.importorskip("miras.hf")

SWEEP = {
    "name": "export",
    "task": {"name": "lm", "vocab_size": 300, "seq_len": 16, "token_budget": 20000, "eval_windows": 4},
    "model": {"d_model": 16, "n_layers": 2, "n_heads": 2, "gate_rank": 4},
    "training": {"steps": 8, "batch_size": 4, "warmup_steps": 2, "eval_every": 4, "checkpoint_every": 4},
    "space": {"presets": ["gated_deltanet", "transformer"]},
    "seeds": [0],
}


@pytest.fixture(scope="module")
def swept(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("export")
    with mock.patch.dict(os.environ):
        frame = miras.sweep(SWEEP, out=folder / "out", cache_dir=folder / "cache", report=False, stream=io.StringIO())
    assert set(frame["status"]) == {"finished"}
    return folder / "out"


def export(swept: Path, run: str, out: Path) -> tuple[int, str, str]:
    stdout, stderr = io.StringIO(), io.StringIO()
    uri = f"sqlite:///{swept / 'mlflow.db'}"
    with mock.patch("sys.stdout", stdout), mock.patch("sys.stderr", stderr):
        code = main(["export", "export", run, "--out", str(out), "--tracking-uri", uri])
    return code, stdout.getvalue(), stderr.getvalue()


def test_an_exported_trial_loads_with_its_weights_and_tokenizer(swept, tmp_path):
    code, stdout, stderr = export(swept, "gated_deltanet-s0", tmp_path / "hf")
    assert code == 0, stderr
    assert "exported gated_deltanet-s0" in stdout and str(tmp_path / "hf") in stdout
    model = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "hf")
    tokenizer = transformers.AutoTokenizer.from_pretrained(tmp_path / "hf")
    (trial_dir,) = [p.parent for p in (swept / "trials").glob("*/trial.json") if "gated_deltanet" in p.read_text()]
    trained, _ = load_trained(trial_dir)
    ids = tokenizer("To be, or not to be", return_tensors="pt").input_ids
    assert torch.equal(model(ids).logits, trained.eval()(ids))
    assert model.config.eos_token_id == tokenizer.eos_token_id == tokenizer.convert_tokens_to_ids("<|endoftext|>")
    assert model.config.miras_model["d_model"] == 16 and model.config.vocab_size == config_vocab(trial_dir)
    generated = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=5, do_sample=False)
    assert generated.shape[1] <= ids.shape[1] + 5 and torch.equal(generated[:, : ids.shape[1]], ids)
    origin = hf.read_origin(tmp_path / "hf")
    assert origin.trial == "gated_deltanet-s0" and origin.sweep == "export"


def config_vocab(trial_dir: Path) -> int:
    return json.loads((trial_dir / "trial.json").read_text())["vocab_size"]


def test_a_trial_named_by_its_combination_or_run_key_exports_too(swept, tmp_path):
    code, _, stderr = export(swept, "transformer", tmp_path / "by-label")
    assert code == 0, stderr
    assert hf.MirasConfig.from_pretrained(tmp_path / "by-label").miras_architecture["name"] == "transformer"


def test_the_checkpoint_artifacts_serve_when_the_trial_folder_is_gone(swept, tmp_path):
    moved = swept.parent / "trials-moved"
    (swept / "trials").rename(moved)
    try:
        code, _, stderr = export(swept, "transformer-s0", tmp_path / "from-artifacts")
    finally:
        moved.rename(swept / "trials")
    assert code == 0, stderr
    assert (tmp_path / "from-artifacts" / "model.safetensors").is_file()


def test_an_unknown_trial_is_a_user_error_listing_the_trials(swept, tmp_path):
    code, _, stderr = export(swept, "titans-s0", tmp_path / "none")
    assert code == 2
    assert "no trial 'titans-s0'" in stderr and "gated_deltanet-s0" in stderr and "transformer-s0" in stderr
    assert not (tmp_path / "none").exists()


def test_the_sweep_logs_each_finished_trial_as_a_model_once(swept, tmp_path):
    from mlflow import MlflowClient

    uri = f"sqlite:///{swept / 'mlflow.db'}"
    client = MlflowClient(uri)
    experiments = [experiment.experiment_id for experiment in client.search_experiments()]
    trials = [run for run in client.search_runs(experiments) if run.data.tags.get("miras.role") == "trial"]
    assert len(trials) == 2
    for run in trials:
        assert run.data.tags["miras.hf_model"] == "model"
        local = client.download_artifacts(run.info.run_id, "model", str(tmp_path / run.info.run_name))
        loaded = transformers.AutoModelForCausalLM.from_pretrained(local)
        assert loaded.config.miras_architecture["name"] in ("gated_deltanet", "transformer")
        assert hf.read_origin(local).run_id == run.info.run_id
    again = io.StringIO()
    with mock.patch.dict(os.environ):
        miras.sweep(SWEEP, out=swept, report=False, stream=again)
    assert "2 of 2 trials already finished" in again.getvalue() and "models:" not in again.getvalue()


@pytest.mark.skipif(importlib.util.find_spec("lm_eval") is None, reason="needs the miras[eval] extra")
def test_miras_eval_takes_a_trial_run_whose_model_the_sweep_logged(swept):
    from mlflow import MlflowClient

    uri = f"sqlite:///{swept / 'mlflow.db'}"
    client = MlflowClient(uri)
    experiments = [experiment.experiment_id for experiment in client.search_experiments()]
    (run,) = [r for r in client.search_runs(experiments) if r.info.run_name == "gated_deltanet-s0"]
    stdout = io.StringIO()
    with mock.patch("sys.stdout", stdout):
        args = ["--tasks", "miras_shakespeare_cloze", "--limit=4", f"--tracking-uri={uri}"]
        code = main(["eval", run.info.run_id, *args])
    assert code == 0, stdout.getvalue()
    assert client.get_run(run.info.run_id).data.metrics["eval/miras_shakespeare_cloze/sample_len"] == 4
