"""Overrides on the command line: ``miras validate|train|sweep CONFIG key=value ...``."""

from __future__ import annotations

import json

import pytest
import yaml

from miras.cli import main
from miras.config import ConfigError, load_config, resolved_text

CONFIG = """\
name: tiny
task: {name: mqar, vocab_size: 64, seq_len: 16, num_kv_pairs: 2, train_examples: 64, test_examples: 16}
model: {d_model: 16, n_layers: 1, n_heads: 2, gate_rank: 4}
training: {steps: 4, batch_size: 4, warmup_steps: 1, eval_every: 2, checkpoint_every: null}
space: {presets: [deltanet]}
"""


def test_values_are_yaml_typed_and_missing_sections_are_created(write) -> None:
    path = write(CONFIG)
    config = load_config(path, ["training.steps=7", "space.presets=[deltanet, transformer]", "seeds=[0, 3]"])
    assert config.training.steps == 7
    assert config.space.presets == ["deltanet", "transformer"]
    assert config.seeds == [0, 3]
    config = load_config(path, ["search.lr=[1e-3, 3e-3]", "model.mlp=false", "training.grad_clip=null"])
    assert config.search.lr == [1e-3, 3e-3] and config.model.mlp is False and config.training.grad_clip is None


def test_an_override_is_validated_like_the_file(write) -> None:
    with pytest.raises(ConfigError) as found:
        load_config(write(CONFIG), ["training.steps=0", "model.d_model.width=3", "seeds", "model..x=1"])
    problems = dict(found.value.problems)
    assert "training.steps" in problems
    assert problems["model.d_model"] == "holds 16, not a mapping: cannot set model.d_model.width"
    assert "an override is key=value" in problems["seeds"]
    assert "an override is key=value" in problems["model..x=1"]


def test_validate_and_train_take_overrides(write, capsys) -> None:
    path = write(CONFIG)
    assert main(["validate", str(path), "seeds=[0, 1, 2]"]) == 0
    assert "1 combination x 3 seeds" in capsys.readouterr().out
    assert main(["validate", str(path), "training.warmup_steps=9"]) == 2
    assert "training.warmup_steps" in capsys.readouterr().err
    assert main(["train", str(path), "training.steps=2", "training.eval_every=1"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["status"] == "finished" and summary["steps"] == 2


def test_overrides_may_follow_the_options(write, tmp_path, capsys) -> None:
    path = write(CONFIG)
    argv = ["train", str(path), "--seed", "1", "--workdir", str(tmp_path / "w"), "training.steps=3"]
    assert main([*argv, "training.eval_every=1"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["steps"] == 3
    assert "(seed 1)" in captured.err
    with pytest.raises(SystemExit) as stopped:
        main([*argv, "--no-such-option"])
    assert stopped.value.code == 2
    assert "unrecognized arguments: --no-such-option" in capsys.readouterr().err


def test_the_recorded_config_is_the_resolved_one(write) -> None:
    path = write(CONFIG)
    assert resolved_text(path) == path.read_text()
    text = resolved_text(path, ["training.steps=9"])
    assert text.startswith(f"# {path} with overrides: training.steps=9\n")
    assert yaml.safe_load(text)["training"]["steps"] == 9
