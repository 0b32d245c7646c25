"""``run_sweep.py`` before anything runs: dry run, invalid configs, resources."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from miras.search.command import main, register


def test_dry_run_lists_the_trials_and_writes_nothing(sweep_config, tmp_path, capsys):
    config = sweep_config(space={"presets": ["gated_deltanet", "transformer"]}, seeds=[0, 1])
    out = tmp_path / "out"
    assert main([str(config), "--out", str(out), "--dry-run"]) == 0
    text = capsys.readouterr().out
    assert "sweep tiny: 2 combinations x 2 seeds = 4 trials" in text
    assert f"results:  {out}" in text and f"sqlite:///{out}/mlflow.db" in text
    listed = [line.split()[0] for line in text.splitlines() if line.startswith("  ") and " seed " in line]
    assert listed == ["gated_deltanet-s0", "gated_deltanet-s1", "transformer-s0", "transformer-s1"]
    assert "lin-l2-l2-gd[grad_at=decayed]" in text and "lr 0.001" in text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.yaml"]


def test_dry_run_of_a_searched_range_shows_the_search(sweep_config, tmp_path, capsys):
    search = {"lr": {"low": 1e-4, "high": 1e-2}, "trials_per_combination": 3}
    config = sweep_config(space={"presets": ["gla"]}, search=search)
    assert main([str(config), "--out", str(tmp_path / "out"), "--dry-run"]) == 0
    assert "TPE x 3: lr ~ [0.0001, 0.01] log" in capsys.readouterr().out


@pytest.mark.parametrize(
    "sections, fragment",
    [
        ({"space": {"presets": ["titan"]}}, "space.presets[0]: unknown preset 'titan'"),
        ({"space": {"presets": ["gla"]}, "training": {"lrr": 1}}, "training.lrr: unknown key 'lrr'"),
    ],
)
def test_an_invalid_config_exits_2_and_writes_nothing(sweep_config, tmp_path, capsys, sections, fragment):
    config = sweep_config(**sections)
    assert main([str(config), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert fragment in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.yaml"]


def test_a_trial_larger_than_the_machine_exits_2(sweep_config, tmp_path, capsys):
    config = sweep_config(space={"presets": ["gla"]}, resources={"cpu": 4096})
    assert main([str(config), "--out", str(tmp_path / "out")]) == 2
    assert "resources.cpu" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_register_adds_the_sweep_subcommand(sweep_config, tmp_path, capsys):
    parser = argparse.ArgumentParser(prog="miras")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["sweep", str(sweep_config(space={"presets": ["gla"]})), "--dry-run"])
    assert args.func(args) == 0
    assert "sweep tiny: 1 combination x 1 seed = 1 trial" in capsys.readouterr().out


def test_run_sweep_py_is_the_sweep_command():
    text = (Path(__file__).resolve().parents[2] / "run_sweep.py").read_text()
    assert "from miras.search.command import main" in text
