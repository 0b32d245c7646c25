"""``miras.sweep(...)`` from Python: a config dict in, the trials frame out; resumes; refuses bad configs."""

from __future__ import annotations

import io

import pytest

import miras
from miras.config import ConfigError

from .conftest import TINY, trial_runs


def test_a_sweep_from_python_returns_its_trials_and_resumes(tmp_path):
    config = {"name": "api", **TINY, "space": {"presets": ["deltanet", "transformer"]}, "seeds": [0]}
    options = {"out": tmp_path / "out", "cache_dir": tmp_path / "cache", "report": False}
    trials = miras.sweep(config, ["training.steps=4", "training.eval_every=2"], stream=io.StringIO(), **options)
    assert sorted(trials["combination"]) == ["deltanet", "transformer"]
    assert set(trials["status"]) == {"finished"} and (trials["training.steps"] == 4).all()
    assert trials["best_test_accuracy"].between(0, 1).all()
    again = io.StringIO()
    resumed = miras.sweep(config, ["training.steps=4", "training.eval_every=2"], stream=again, **options)
    assert "2 of 2 trials already finished; launching 0" in again.getvalue()
    assert sorted(resumed["run_id"]) == sorted(trials["run_id"])
    (parent,), _ = trial_runs(f"sqlite:///{tmp_path / 'out' / 'mlflow.db'}", "api")  # summarised again, unchanged
    assert (parent.data.metrics["trials_finished"], parent.data.metrics["trials_planned"]) == (2, 2)
    assert parent.data.metrics["best_test_accuracy"] == trials["best_test_accuracy"].max()


def test_a_bad_config_raises_before_anything_runs(tmp_path):
    config = {"name": "api", **TINY, "space": {"presets": ["deltanett"]}}
    with pytest.raises(ConfigError, match=r"space.presets\[0\]: unknown preset 'deltanett'"):
        miras.sweep(config, out=tmp_path / "out")
    assert not (tmp_path / "out").exists()
