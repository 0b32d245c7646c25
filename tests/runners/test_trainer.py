"""Trainer: exact continuation from a checkpoint, divergence and bad-data statuses, learning."""

from collections.abc import Iterator

import pytest
import torch

from miras.config.schema import ModelConfig, TrainingConfig
from miras.models import LanguageModel, architecture
from miras.runners.trainer import Trainer

VOCAB, SEQ = 16, 12


class CopyTask:
    """Predict the previous token: a tiny deterministic stand-in for a task."""

    name, vocab_size, seq_len = "copy", VOCAB, SEQ

    def __init__(self, kill_at: int | None = None, bad_at: int | None = None) -> None:
        self.kill_at, self.bad_at = kill_at, bad_at

    def batch(self, batch_size: int, seed: int, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        g = torch.Generator().manual_seed(seed * 100_003 + step)
        inputs = torch.randint(0, VOCAB, (batch_size, SEQ), generator=g)
        targets = torch.full_like(inputs, -100)
        targets[:, 1:] = inputs[:, :-1]
        return inputs, targets

    def train_batches(self, batch_size: int, seed: int, start_step: int = 0) -> Iterator:
        step = start_step
        while True:
            if step == self.kill_at:
                raise KeyboardInterrupt("killed")
            inputs, targets = self.batch(batch_size, seed, step)
            if step == self.bad_at:
                inputs[0, 0] = VOCAB + 5
            yield inputs, targets
            step += 1

    def evaluate(self, predict, batch_size: int) -> dict[str, float]:
        inputs, targets = self.batch(batch_size, seed=999, step=0)
        logits = predict(inputs)
        mask = targets != -100
        accuracy = (logits.argmax(-1)[mask] == targets[mask]).float().mean()
        return {"test_accuracy": float(accuracy)}


def make(name="gated_deltanet", task=None, **overrides):
    torch.manual_seed(0)
    model = LanguageModel(architecture(name), VOCAB, ModelConfig(d_model=16, n_layers=1, n_heads=2, gate_rank=4))
    settings = {"steps": 6, "batch_size": 4, "lr": 3e-3, "warmup_steps": 2, "eval_every": 3, "checkpoint_every": 3}
    cfg = TrainingConfig(**(settings | overrides))
    return model, task or CopyTask(), cfg


def test_resume_from_checkpoint_gives_the_same_losses(tmp_path):
    model, task, cfg = make()
    straight = Trainer(model, task, cfg, seed=1, progress=False).run()

    model, _, cfg = make()
    with pytest.raises(KeyboardInterrupt):
        Trainer(model, CopyTask(kill_at=4), cfg, seed=1, checkpoint_dir=tmp_path, progress=False).run()
    model, _, cfg = make()  # a fresh process: new model, state only from the checkpoint
    resumed = Trainer(model, task, cfg, seed=1, checkpoint_dir=tmp_path, progress=False).run()

    assert resumed.status == straight.status == "finished"
    assert resumed.losses == straight.losses
    assert [h["test_accuracy"] for h in resumed.history] == [h["test_accuracy"] for h in straight.history]


def test_finished_run_is_not_trained_again(tmp_path):
    model, task, cfg = make()
    first = Trainer(model, task, cfg, seed=1, checkpoint_dir=tmp_path, progress=False).run()
    model, task, cfg = make()
    again = Trainer(model, CopyTask(kill_at=0), cfg, seed=1, checkpoint_dir=tmp_path, progress=False).run()
    assert again.status == "finished" and again.losses == first.losses


def test_divergence_ends_with_status_diverged():
    model, task, cfg = make(lr=1e6, grad_clip=None, warmup_steps=0)
    with torch.no_grad():
        model.embed.weight.mul_(1e30)
    result = Trainer(model, task, cfg, seed=1, progress=False).run()
    # a non-finite gradient is caught before it is applied, with or without clipping
    assert result.status == "diverged" and result.reason == "gradient norm is nan at step 0"
    assert result.steps < cfg.steps and len(result.losses) == result.steps


def test_bad_data_is_reported_not_trained_on():
    model, _, cfg = make()
    with pytest.raises(ValueError, match=r"input ids must be in \[0, 16\)"):
        Trainer(model, CopyTask(bad_at=2), cfg, seed=1, progress=False).run()


@pytest.mark.parametrize("name", ["gated_deltanet", "titans", "transformer"])
def test_loss_decreases(name):
    model, task, cfg = make(name, steps=40, eval_every=40, checkpoint_every=None, lr=1e-2)
    result = Trainer(model, task, cfg, seed=0, progress=False).run()
    assert result.status == "finished"
    first, last = sum(result.losses[:5]) / 5, sum(result.losses[-5:]) / 5
    assert last < first - 0.1, (first, last)
    assert result.tokens_per_second > 0 and result.peak_memory_mb > 0


def test_without_a_terminal_progress_is_a_line_every_twentieth_of_the_run(capsys):
    model, task, cfg = make(steps=40, eval_every=40, checkpoint_every=None)
    Trainer(model, task, cfg, seed=0, progress=None).run()
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("step ")]
    assert len(lines) == 20 and lines[-1].startswith("step 40/40: loss ") and lines[-1].endswith(" tokens/s")
    model, task, cfg = make(steps=4, eval_every=4, checkpoint_every=None)
    Trainer(model, task, cfg, seed=0, progress=False).run()
    assert "step " not in capsys.readouterr().err
