"""Every config under configs/ validates, and the study configs expand to the rows they promise."""

from __future__ import annotations

from pathlib import Path

import pytest

from miras.config import load_config

CONFIGS = sorted((Path(__file__).resolve().parents[2] / "configs").glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda path: path.name)
def test_shipped_config_validates(path: Path) -> None:
    assert load_config(path).combinations()


def test_the_yaad_ablation_has_the_papers_rows() -> None:
    config = load_config(next(p for p in CONFIGS if p.name == "ablation_yaad.yaml"))
    labels = [label for label, _ in config.combinations()]
    assert labels == [
        "yaad",
        "yaad -retention=none",
        "yaad -bias=l2",
        "yaad -bias=l1",
        "yaad -memory=linear",
        "yaad -gate.delta=constant",
    ]
    assert len(config.seeds) >= 3
