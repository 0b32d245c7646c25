"""``miras train``: Ctrl-C ends it with one line saying what was saved and how to resume."""

from __future__ import annotations

import textwrap

import pytest

import miras.runners.trial
from miras.cli import main

CONFIG = """\
name: tiny
task: {name: mqar, vocab_size: 64, seq_len: 16, num_kv_pairs: 2, train_examples: 64, test_examples: 16}
model: {d_model: 16, n_layers: 1, n_heads: 2, gate_rank: 4}
training: {steps: 4, batch_size: 4, warmup_steps: 1, eval_every: 2, checkpoint_every: 2}
space: {presets: [deltanet]}
"""


@pytest.mark.parametrize("workdir", [True, False])
def test_ctrl_c_ends_with_one_line(tmp_path, capsys, monkeypatch, workdir):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(miras.runners.trial, "run_trial", interrupted)
    path = tmp_path / "sweep.yaml"
    path.write_text(textwrap.dedent(CONFIG))
    argv = ["train", str(path)] + (["--workdir", str(tmp_path / "w")] if workdir else [])
    assert main(argv) == 130
    err = capsys.readouterr().err.splitlines()
    assert err[-1].startswith("interrupted: ") and "Traceback" not in "\n".join(err)
    if workdir:
        assert err[-1].endswith(f"checkpoints every 2 steps are in {tmp_path / 'w'}: rerun the same command to resume")
    else:
        assert "nothing was saved" in err[-1]
