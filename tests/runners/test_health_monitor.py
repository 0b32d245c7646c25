"""Health diagnostics: gradient norms by layer, the memory's errors as the scan sees them, the monitor."""

import math

import pytest
import torch
from torch import nn

from miras.config.schema import ModelConfig
from miras.models import LanguageModel, architecture
from miras.ops import miras_scan
from miras.ops.probe import observe_errors
from miras.runners.health import HealthMonitor, gradient_norms, parameter_group
from miras.space import PRESETS, MirasSpec

VOCAB = 32


def build(name: str, **options) -> LanguageModel:
    torch.manual_seed(0)
    config = ModelConfig(d_model=16, n_layers=2, n_heads=2, gate_rank=4, **options)
    return LanguageModel(architecture(name), VOCAB, config)


def backward(model: LanguageModel, length: int = 20) -> None:
    ids = torch.randint(0, VOCAB, (2, length + 1))
    logits = model(ids[:, :-1])
    nn.functional.cross_entropy(logits.flatten(0, 1), ids[:, 1:].flatten()).backward()


def test_parameter_groups() -> None:
    assert parameter_group("blocks.3.mixer.proj.q.weight") == "layer3"
    assert parameter_group("embed.weight") == "embed"
    assert parameter_group("norm.weight") == "norm"


def test_gradient_norms_by_layer_add_up_to_the_clipped_norm() -> None:
    model = build("titans")
    backward(model)
    norms = gradient_norms(model)
    assert set(norms) == {"grad_norm", "grad_norm/embed", "grad_norm/layer0", "grad_norm/layer1", "grad_norm/norm"}
    total = nn.utils.clip_grad_norm_(model.parameters(), 1e9).item()
    assert norms["grad_norm"] == pytest.approx(total, rel=1e-5)
    layers = [v for k, v in norms.items() if k != "grad_norm"]
    assert math.sqrt(sum(v * v for v in layers)) == pytest.approx(total, rel=1e-5)


def test_the_probe_sees_the_errors_at_the_minibatch_start_weights() -> None:
    """One mini-batch (T = b): every prediction is the memory at its initial weights."""
    torch.manual_seed(0)
    spec = MirasSpec.of("mlp", "l2", "none", {"name": "gd", "params": {"batch_size": 8}})
    components = spec.resolve()
    q, k, v = (torch.randn(1, 8, 2, 4, dtype=torch.float64) for _ in range(3))
    k = nn.functional.normalize(k, dim=-1)
    gates = {"lr": torch.rand(1, 8, 2, dtype=torch.float64)}
    start = {n: torch.randn(1, 2, o, i, dtype=torch.float64) for n, (o, i) in components.memory.shapes(4, 4).items()}
    seen = []
    with observe_errors(lambda pred, target, g: seen.append((pred, target))):
        miras_scan(q, k, v, components, gates, initial_state=start, impl="chunked")
    assert len(seen) == 1
    pred, target = seen[0]
    torch.testing.assert_close(target, v.transpose(1, 2))
    torch.testing.assert_close(pred, components.memory.forward(start, k.transpose(1, 2)))
    with observe_errors(lambda *_: pytest.fail("observers are removed on exit")):
        pass
    miras_scan(q, k, v, components, gates, initial_state=start, impl="chunked")


def test_huber_l2_share_counts_the_tokens_within_the_threshold() -> None:
    bias = PRESETS["yaad"].spec.resolve().bias
    pred = torch.zeros(1, 1, 4, 9)
    target = torch.tensor([0.5, 1.5, 3.0, 0.0]).view(1, 1, 4, 1).expand(1, 1, 4, 9)  # error RMS 0.5, 1.5, 3, 0
    delta = torch.ones(1, 1, 4, 1)
    assert bias.diagnostics(pred, target, {"delta": delta})["l2_share"].item() == 0.5
    assert bias.diagnostics(pred, target, {"delta": 2 * delta})["l2_share"].item() == 0.75


def test_model_health_reports_every_miras_layer() -> None:
    model = build("yaad")
    stats = model.health(torch.randint(0, VOCAB, (2, 24)))
    for layer in ("layer0", "layer1"):
        assert stats[f"{layer}/value_rms"] == pytest.approx(1.0, abs=1e-3)  # value_norm auto: rms for the MLP
        assert 0.0 <= stats[f"{layer}/l2_share"] <= 1.0
        assert stats[f"{layer}/nonfinite"] == 0.0
        assert stats[f"{layer}/error_rms"] > 0
        assert stats[f"{layer}/gate/delta/p05"] <= stats[f"{layer}/gate/delta/mean"] <= stats[f"{layer}/gate/delta/p95"]
        assert f"{layer}/gate/delta/upper" not in stats  # softplus: unbounded
        assert stats[f"{layer}/gate/decay/upper"] == 1.0 and stats[f"{layer}/gate/lr/upper"] == 1.0
    assert build("transformer").health(torch.randint(0, VOCAB, (2, 24))) == {}


def test_gates_fixed_by_construction_are_not_reported() -> None:
    stats = build("linear_attention").health(torch.randint(0, VOCAB, (2, 24)))
    assert not any("/gate/lr/" in name for name in stats)


def test_monitor_reports_the_peak_since_the_last_evaluation() -> None:
    model = build("gated_deltanet")
    monitor = HealthMonitor()
    peaks = []
    for scale in (1.0, 100.0, 1.0):
        model.zero_grad()
        backward(model)
        for p in model.parameters():
            p.grad.mul_(scale)
        peaks.append(monitor.after_backward(model))
    inputs = torch.randint(0, VOCAB, (8, 24))
    metrics = monitor.metrics(model, inputs)
    assert metrics["health/grad_norm_max"] == pytest.approx(max(peaks))
    assert metrics["health/grad_norm"] == pytest.approx(peaks[-1])
    assert "health/layer1/error_rms" in metrics and model.training
    assert monitor.metrics(model, inputs)["health/grad_norm_max"] == 0.0  # reset at every evaluation
