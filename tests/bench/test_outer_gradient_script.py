"""``benchmarks/outer_gradient.py`` prints one row per preset, one gradient norm per length."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "outer_gradient.py"


def test_the_script_prints_a_row_per_preset_with_its_growth() -> None:
    argv = [sys.executable, str(SCRIPT), "--presets", "deltanet", "titans", "--lengths", "8", "16", "--vocab", "32"]
    done = subprocess.run(
        [*argv, "--set", "model.d_model=16", "--set", "model.qk_norm=l2"],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    lines = done.stdout.splitlines()
    assert "commit" in lines[0] and "'d_model': 16" in lines[1] and "'qk_norm': 'l2'" in lines[1]
    rows = [line for line in lines if line.startswith("| deltanet") or line.startswith("| titans")]
    assert len(rows) == 2
    for row in rows:
        first, second, growth = (float(cell) for cell in row.strip("|").split("|")[1:])
        assert (
            first > 0 and second > 0 and growth == pytest.approx(second / first, rel=0.02)
        )  # each printed to 3 digits
