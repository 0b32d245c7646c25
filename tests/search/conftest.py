"""Fixtures of the sweep tests: tiny sweep configs, the sweep command in and out of process, the MLflow store."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
import yaml
from mlflow import MlflowClient
from mlflow.entities import Run

ROOT = Path(__file__).resolve().parents[2]

TINY: dict[str, Any] = {
    "task": {
        "name": "mqar",
        "vocab_size": 64,
        "seq_len": 32,
        "num_kv_pairs": 4,
        "train_examples": 256,
        "test_examples": 64,
    },
    "model": {"d_model": 16, "n_layers": 1, "n_heads": 2, "gate_rank": 4},
    "training": {"steps": 10, "batch_size": 8, "warmup_steps": 2, "eval_every": 5, "checkpoint_every": 5},
}
"""A trial of a few seconds on one CPU core."""


@pytest.fixture(autouse=True)
def _restore_environ() -> Iterator[None]:
    """The sweep command sets Ray and Tune variables in its process; keep them out of other tests."""
    with mock.patch.dict(os.environ):
        yield


def write_sweep(path: Path, name: str, **sections: Any) -> Path:
    """Write a tiny sweep config (``TINY`` with ``sections`` replacing or adding top-level keys)."""
    path.write_text(yaml.safe_dump({"name": name, **TINY, **sections}, sort_keys=False))
    return path


def sweep_command(config: Path, *flags: str) -> list[str]:
    return [sys.executable, str(ROOT / "run_sweep.py"), str(config), *flags]


def run_sweep_process(config: Path, *flags: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """``python run_sweep.py CONFIG FLAGS`` to completion, output captured."""
    return subprocess.run(sweep_command(config, *flags), capture_output=True, text=True, env=env, timeout=300)


def trial_runs(uri: str, experiment: str) -> tuple[list[Run], list[Run]]:
    """``(parents, children)``: the live runs of ``experiment`` by ``miras.role``."""
    client = MlflowClient(uri)
    found = client.get_experiment_by_name(experiment)
    runs = client.search_runs([found.experiment_id]) if found else []
    parents = [r for r in runs if r.data.tags.get("miras.role") == "sweep"]
    children = [r for r in runs if r.data.tags.get("miras.role") == "trial"]
    return parents, children


@pytest.fixture
def sweep_config(tmp_path: Path) -> Callable[..., Path]:
    """Write a tiny sweep config in ``tmp_path``."""

    def _write(name: str = "tiny", **sections: Any) -> Path:
        return write_sweep(tmp_path / f"{name}.yaml", name, **sections)

    return _write


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A folder with a short path (Ray's socket paths must stay under 107 bytes), removed afterwards."""
    path = Path(tempfile.mkdtemp(prefix="miras-t-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)
