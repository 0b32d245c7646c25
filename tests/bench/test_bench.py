"""``miras bench``: checked before timed, honest records, and clear errors."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

from miras.bench import grid, timing
from miras.bench.grid import BenchConfig, Cell, run_grid
from miras.bench.peers import check_fla_gated_delta
from miras.bench.report import speedup, write_section
from miras.cli import main

TINY = ["--lengths", "16", "--batch", "1", "--heads", "1", "--dim", "8", "--repeats", "1"]


def test_bench_writes_json_and_a_markdown_section(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = tmp_path / "benchmarks.md"
    doc.write_text("# Benchmarks\n\nHand-written analysis stays.\n")
    argv = ["bench", "--presets", "titans", "--impls", "reference", "chunked", "delta", "titans_pytorch", *TINY]
    argv += ["--json", str(tmp_path / "bench.json"), "--markdown", str(doc)]
    assert main(argv) == 0
    record = json.loads((tmp_path / "bench.json").read_text())
    cells = {c["impl"]: c for c in record["cells"]}
    assert set(cells) == {"reference", "chunked", "titans_pytorch"}  # delta does not apply to an MLP memory
    for cell in cells.values():
        assert cell["status"] == "ok" and cell["length"] == 16 and cell["repeats"] == 1
        assert cell["fwd_ms"] > 0 and cell["fwd_bwd_ms"] > 0 and cell["tokens_per_s"] > 0
        assert cell["tokens_per_s"] == pytest.approx(16 / (cell["fwd_bwd_ms"] / 1000))
        assert cell["peak_mib"] > 0
    assert cells["reference"]["speedup_vs_reference"] == 1.0
    env = record["environment"]
    assert env["device"] == "cpu" and env["commit"] and env["versions"]["torch"]
    assert env["shape"] == {"batch": 1, "heads": 1, "dim": 8, "dtype": "float32"}
    checks = "\n".join(record["checks"])
    assert "titans / chunked: matches the reference" in checks
    assert "titans / delta: not applicable (the delta rule needs the linear memory)" in checks
    text = doc.read_text()
    assert text.startswith("# Benchmarks\n\nHand-written analysis stays.\n")
    assert "<!-- miras bench: cpu -->" in text and "| titans | chunked | 16 |" in text
    out = capsys.readouterr().out
    assert out.count("| titans | chunked | 16 |") == 1  # printed as measured, with its ratio, and not again
    assert "| titans | chunked | 16 |" in out.split("| titans | reference")[1]


def test_a_baseline_measured_later_prints_the_table_again(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--presets", "deltanet", "--impls", "chunked", "reference", *TINY]) == 0
    assert capsys.readouterr().out.count("| deltanet | chunked | 16 |") == 2


def test_the_profiler_notices_are_dropped_and_other_stderr_kept(capfd: pytest.CaptureFixture[str]) -> None:
    with timing.profiler_notices_dropped():
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]):
            torch.ones(2).sum()
        os.write(2, b"USDT:2026-12-02 04:12:43 10421:10421 SyncActivityProfilerHandler.cpp:52] profiler_start\n")
        os.write(2, b"a real warning\n")
    err = capfd.readouterr().err
    assert "profiler_start" not in err and "profiler_stop" not in err
    assert "a real warning" in err


def test_write_section_replaces_only_its_own_section(tmp_path: Path) -> None:
    doc = tmp_path / "doc.md"
    write_section(doc, "cpu", "first\n")
    write_section(doc, "cuda", "gpu\n")
    doc.write_text(doc.read_text() + "tail\n")
    write_section(doc, "cpu", "second\n")
    text = doc.read_text()
    assert "first" not in text and text.count("second") == 1 and "gpu" in text and text.endswith("tail\n")


def test_a_failed_check_reports_no_number(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(grid, "check_scan", lambda preset, impl, device: (0.5, 1e-8))
    config = BenchConfig(presets=["mamba2"], impls=["chunked"], lengths=[16], batch=1, heads=1, dim=8, repeats=1)
    cells, notes = run_grid(config)
    assert cells == []
    assert notes == ["mamba2 / chunked: check FAILED (rel-RMS 5.0e-01 > 1e-08); no speed reported"]


def test_a_cell_past_its_budget_skips_the_longer_lengths() -> None:
    config = BenchConfig(
        presets=["titans"], impls=["reference"], lengths=[2048, 4096], batch=1, heads=1, dim=8, max_seconds=0.05
    )
    cells, _ = run_grid(config)
    assert [(c.length, c.status, c.fwd_bwd_ms) for c in cells] == [
        (2048, "skipped (budget)", None),
        (4096, "skipped (budget)", None),
    ]


def test_speedup_uses_the_same_preset_or_the_only_peer() -> None:
    ref = Cell("titans", "reference", 64, "ok", tokens_per_s=100.0)
    ours = Cell("titans", "chunked", 64, "ok", tokens_per_s=400.0)
    fla = Cell("gated_deltanet", "fla_gated_delta", 64, "ok", tokens_per_s=800.0)
    assert speedup(ours, [ref, ours, fla], "reference") == 4.0
    assert speedup(ours, [ref, ours, fla], "fla_gated_delta") == 0.5
    assert speedup(ours, [ours], "reference") is None


def test_fla_alignment_on_cpu_with_its_naive_twin() -> None:
    """The GPU peer's alignment (g = log decay, beta = lr, scale 1, S = W^T), checked on the CPU
    with fla's naive recurrence, which takes the chunk kernel's keywords."""
    naive = pytest.importorskip("fla.ops.gated_delta_rule.naive")
    assert check_fla_gated_delta("cpu", naive.naive_recurrent_gated_delta_rule) < 1e-5


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_a_gpu_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--device", "cuda"]) == 2
    assert "CUDA is not available" in capsys.readouterr().err


@pytest.mark.parametrize("option", ["--lengths", "--batch", "--heads", "--dim", "--repeats"])
def test_non_positive_sizes_exit_2(option: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", option, "0"]) == 2
    assert f"{option}: must be positive" in capsys.readouterr().err


def test_unknown_impl_is_rejected_by_the_parser() -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["bench", "--impls", "fast"])
    assert exit_.value.code == 2
