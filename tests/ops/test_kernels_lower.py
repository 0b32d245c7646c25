"""Every Triton kernel lowers to an sm_90 (H100) cubin, without a GPU.

Runs ``benchmarks/compile_kernels.py --quick`` in a subprocess (it replaces the process's Triton
driver, and the kernels must not be imported under ``TRITON_INTERPRET=1``, which the interpreter
tests set): Titans and Gated DeltaNet at D = 64 in fp32, which launch every kernel of
:mod:`miras.ops.kernels.dual` and :mod:`miras.ops.kernels.linear` once, forward and backward.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("triton")

ROOT = Path(__file__).resolve().parents[2]
KERNELS = {
    "_scores_kernel",
    "_read_kernel",
    "_score_grad_kernel",
    "_input_grad_kernel",
    "_weight_grad_kernel",
    "_forward_kernel",
    "_backward_kernel",
}


def test_every_kernel_compiles_for_sm90(tmp_path: Path) -> None:
    """Each kernel, at the launchers' own specialization, gives a cubin (spills are reported by the
    script, not failed here: the linear kernels' are known)."""
    out = tmp_path / "compiled.json"
    env = {name: value for name, value in os.environ.items() if name != "TRITON_INTERPRET"}
    script = ROOT / "benchmarks" / "compile_kernels.py"
    done = subprocess.run(
        [sys.executable, str(script), "--quick", "--json", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    results = json.loads(out.read_text())
    assert {r["kernel"] for r in results} == KERNELS
    assert all(r["error"] is None and r["cubin_bytes"] > 0 for r in results), results
