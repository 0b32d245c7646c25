"""Models: decoding equals the full forward for every preset and baseline; the state-size definition."""

import pytest
import torch

from miras.models import LanguageModel, MirasMixer, architecture
from miras.space import BASELINES, PRESETS, MirasSpec

VOCAB, D_MODEL, HEADS = 37, 16, 2


def build(name, n_layers=2, window=None):
    torch.manual_seed(0)
    return LanguageModel(architecture(name, window=window), VOCAB, D_MODEL, n_layers, HEADS, gate_rank=8).double()


def perturb(model):
    """Move every parameter off its initial value so gates and projections are data-dependent."""
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))


@pytest.mark.parametrize("name", sorted(PRESETS) + sorted(BASELINES))
def test_decode_equals_forward(name):
    model = build(name, window=5)
    perturb(model)
    ids = torch.randint(0, VOCAB, (2, 11))
    with torch.no_grad():
        full = model(ids)
    cache = model.empty_cache(2)
    steps = []
    for t in range(ids.shape[1]):
        logits, cache = model.step(ids[:, t], cache)
        steps.append(logits)
    torch.testing.assert_close(torch.stack(steps, 1), full, rtol=1e-9, atol=1e-9)


def test_hybrid_alternates_miras_and_sliding_window():
    model = build("yaad_h", n_layers=4, window=7)
    kinds = [type(block.mixer).__name__ for block in model.blocks]
    assert kinds == ["MirasMixer", "Attention", "MirasMixer", "Attention"]
    assert model.blocks[1].mixer.window == 7


def test_state_size_hand_count_linear_memory():
    # gated_deltanet: per head a D_v x D_k matrix, D = 16 / 2 = 8: 64 per head, 2 heads, 2 layers.
    model = build("gated_deltanet")
    assert model.state_size(seq_len=100) == 2 * 2 * 8 * 8


def test_state_size_hand_count_mlp_memory_with_momentum():
    # titans: per head W1 (32 x 8) + W2 (8 x 32) = 512, doubled by momentum; 2 heads, 2 layers.
    model = build("titans")
    assert model.state_size(seq_len=100) == 2 * 2 * 2 * (32 * 8 + 8 * 32)
    mixer = MirasMixer(D_MODEL, HEADS, MirasSpec.of("mlp", "l2", "none", "gd"))
    assert mixer.state_size() == 2 * (32 * 8 + 8 * 32)


def test_state_size_of_attention_is_its_kv_cache():
    assert build("transformer").state_size(seq_len=100) == 2 * (2 * 100 * D_MODEL)
    assert build("swa", window=5).state_size(seq_len=100) == 2 * (2 * 5 * D_MODEL)


def test_parameter_count_and_flops():
    model = build("moneta")
    assert model.num_params() == sum(p.numel() for p in model.parameters())
    assert model.num_params(non_embedding=True) == model.num_params() - VOCAB * D_MODEL
    assert model.flops_per_token(64) > 2 * model.num_params(non_embedding=True)


def test_channel_wise_decay_is_rejected_for_mlp_memory():
    spec = MirasSpec.of("mlp", "l2", "l2", "gd")
    mixer = MirasMixer(D_MODEL, HEADS, spec, {"decay": "channel"})
    with pytest.raises(ValueError, match="per-head gate"):
        mixer(torch.randn(1, 4, D_MODEL))
