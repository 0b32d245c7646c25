"""The training-step benchmark: the parts it times, the check that gates its numbers, its script."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import miras.models.mixer as mixer_module
from miras.bench.step import PARTS, models_of, time_step
from miras.config import load_config

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "train_step.py"
TINY = {
    "name": "tiny_step",
    "task": {"name": "mqar", "vocab_size": 32, "seq_len": 16, "num_kv_pairs": 2},
    "model": {"d_model": 16, "n_layers": 2, "n_heads": 2},
    "training": {"steps": 4, "batch_size": 2, "warmup_steps": 1},
    "space": {"presets": ["transformer", "linear_attention", "gated_deltanet", "titans"]},
    "seeds": [0],
}


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    path = tmp_path / "tiny_step.yaml"
    path.write_text(yaml.safe_dump(TINY))
    return path


def test_every_combination_is_checked_then_timed_by_part(config_path: Path) -> None:
    config = load_config(config_path)
    builders = models_of(config)
    assert list(builders) == ["transformer", "linear_attention", "gated_deltanet", "titans"]  # lr fixed to one
    for name, build in builders.items():
        timing = time_step(config, name, build, repeats=1, max_seconds=30)
        assert timing.ok and timing.step_ms is not None and timing.step_ms > 0, timing.check
        assert timing.tokens == 2 * 16 and timing.tokens_per_s is not None
        memory = {"qkv", "gates", "scan", "output"}
        expected = {"embed+head", "mlp", "optimizer", "other"} | ({"attention"} if name == "transformer" else memory)
        assert set(timing.parts_ms) == expected and expected <= set(PARTS)
        assert all(ms > 0 for part, ms in timing.parts_ms.items() if part != "other")
        if name == "transformer":
            assert "nothing to check" in timing.check
        else:
            assert timing.check.startswith("matches the reference")


def test_a_scan_that_differs_from_the_reference_is_not_timed(config_path, monkeypatch) -> None:
    honest = mixer_module.miras_scan

    def off_by_a_percent(*args, impl: str = "auto", **kwargs):
        out, state = honest(*args, impl=impl, **kwargs)
        return (out if impl == "reference" else 1.01 * out), state

    monkeypatch.setattr(mixer_module, "miras_scan", off_by_a_percent)
    config = load_config(config_path)
    timing = time_step(config, "gated_deltanet", models_of(config, ["gated_deltanet"])["gated_deltanet"], repeats=1)
    assert not timing.ok and timing.step_ms is None and not timing.parts_ms
    assert "DOES NOT match" in timing.check


def test_an_unknown_combination_is_named_with_the_known_ones(config_path: Path) -> None:
    with pytest.raises(KeyError, match="no combination mamba9 in tiny_step; known: transformer, linear_attention"):
        models_of(load_config(config_path), ["mamba9"])


def test_the_script_prints_and_writes_its_table(config_path: Path, tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("# Benchmarks\n")
    argv = [sys.executable, str(SCRIPT), str(config_path), "training.batch_size=3", "--combinations", "titans"]
    done = subprocess.run(
        [*argv, "--repeats", "1", "--threads", "1", "--markdown", str(page)],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    assert "miras commit" in done.stdout and "batch 3 x 16 tokens" in done.stdout
    rows = [line for line in done.stdout.splitlines() if line.startswith("| titans |")]
    assert len(rows) == 1 and "not timed" not in rows[0]
    written = page.read_text()
    assert written.startswith("# Benchmarks\n") and "<!-- miras bench: step -->" in written and rows[0] in written


def test_the_script_refuses_an_unknown_combination_with_exit_2(config_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), str(config_path), "--combinations", "mamba9"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 2 and "no combination mamba9" in done.stderr
