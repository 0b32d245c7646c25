"""``model.impl: auto`` compiles a trial's chunked memories when the trial is long enough to pay."""

from __future__ import annotations

import pytest
import torch

import miras.runners.scan_choice as scan_choice
from miras.config.schema import ModelConfig, MqarTask, TrainingConfig
from miras.models.mixer import MirasMixer
from miras.runners.scan_choice import COMPILE_MIN_STEPS, choose_scan_impl
from miras.runners.trial import TrialConfig, build_model, run_trial

TASK = MqarTask(vocab_size=32, seq_len=16, num_kv_pairs=2, train_examples=64, test_examples=8)
MODEL = ModelConfig(d_model=16, n_layers=1, n_heads=2, gate_rank=8)
CPU = torch.device("cpu")


def model_of(name: str, impl: str = "auto"):
    config = TrialConfig(task=TASK, model=MODEL.model_copy(update={"impl": impl}), architecture=name)
    return build_model(config, TASK.vocab_size)


@pytest.fixture
def compiler(monkeypatch):
    monkeypatch.setattr(scan_choice.shutil, "which", lambda name: f"/usr/bin/{name}")


def test_a_long_trial_of_a_chunked_memory_compiles(compiler) -> None:
    impl, reason = choose_scan_impl(model_of("titans"), "auto", COMPILE_MIN_STEPS, CPU)
    assert impl == "compiled" and f">= {COMPILE_MIN_STEPS}" in reason


@pytest.mark.parametrize(
    ("name", "impl", "steps", "device", "want", "why"),
    [
        ("titans", "auto", COMPILE_MIN_STEPS - 1, CPU, "auto", "would not pay"),
        ("deltanet", "auto", 10_000, CPU, "auto", "auto runs delta: nothing to compile"),
        ("titans", "auto", 10_000, torch.device("cuda"), "auto", "on cuda"),
        ("titans", "chunked", 10_000, CPU, "chunked", "model.impl"),
        ("deltanet", "delta", 10_000, CPU, "delta", "model.impl"),
        ("titans", "reference", 10, CPU, "reference", "model.impl"),
        ("transformer", "auto", 10_000, CPU, "none", "no memory layer"),
    ],
)
def test_otherwise_the_trial_runs_what_model_impl_says(compiler, name, impl, steps, device, want, why) -> None:
    got, reason = choose_scan_impl(model_of(name, impl), impl, steps, device)
    assert got == want and why in reason


def test_a_named_impl_that_does_not_apply_fails_at_the_start_with_the_reason() -> None:
    with pytest.raises(ValueError, match=r"model\.impl 'delta' does not apply to memory layer 0: .*linear memory"):
        choose_scan_impl(model_of("titans", "delta"), "delta", 10, CPU)


def test_model_impl_names_every_implementation() -> None:
    from typing import get_args

    from miras.ops import IMPLS

    assert get_args(ModelConfig.model_fields["impl"].annotation) == ("auto", *IMPLS)


def test_without_a_cpp_compiler_nothing_compiles(monkeypatch) -> None:
    monkeypatch.setattr(scan_choice.shutil, "which", lambda name: None)
    impl, reason = choose_scan_impl(model_of("titans"), "auto", 10_000, CPU)
    assert impl == "auto" and "no C++ compiler" in reason


def test_run_trial_applies_and_reports_the_choice(compiler, monkeypatch, tmp_path) -> None:
    seen = []
    monkeypatch.setattr(scan_choice, "COMPILE_MIN_STEPS", 2)  # a 2-step trial pays here: compile tiny shapes
    monkeypatch.setattr(MirasMixer, "forward", record_impl(MirasMixer.forward, seen))
    training = TrainingConfig(steps=2, batch_size=4, warmup_steps=1, eval_every=2, checkpoint_every=None)
    config = TrialConfig(task=TASK, model=MODEL, training=training, architecture="titans", cache_dir=tmp_path)
    result = run_trial(config, progress=False)
    assert result.status == "finished", result.reason
    assert result.scan_impl == "compiled" and "compiled pays" in result.scan_reason
    assert set(seen) == {"compiled"}
    assert result.to_dict()["scan_impl"] == "compiled"


def record_impl(forward, seen: list[str]):
    def wrapped(self, x):
        seen.append(self.impl)
        return forward(self, x)

    return wrapped
