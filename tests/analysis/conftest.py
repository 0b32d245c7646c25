"""Fixtures of the analysis tests: one synthetic MLflow store (written once per session) and its sweeps."""

from __future__ import annotations

from pathlib import Path

import pytest
from sweep_store import ABLATION, SCALING, make_store

from miras.analysis import Sweep, load_sweep


@pytest.fixture(scope="session")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Tracking URI of a sqlite store holding the ``ablation`` and ``scaling`` sweeps."""
    return make_store(tmp_path_factory.mktemp("mlflow"))


@pytest.fixture(scope="session")
def ablation(store: str) -> Sweep:
    return load_sweep(ABLATION, store)


@pytest.fixture(scope="session")
def scaling(store: str) -> Sweep:
    return load_sweep(SCALING, store)


@pytest.fixture
def out_dir(tmp_path: Path) -> Path:
    return tmp_path / "report"
