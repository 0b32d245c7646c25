"""Models: decoding equals the full forward for every preset and baseline; the state-size definition."""

import pytest
import torch

from miras.config.schema import ModelConfig
from miras.models import LanguageModel, MirasMixer, architecture
from miras.models.layers import CausalConv
from miras.space import BASELINES, PRESETS, AxisChoice, MirasSpec, swap_axis, swap_gate

VOCAB, D_MODEL, HEADS = 37, 16, 2


def build(name, n_layers=2, window=None):
    torch.manual_seed(0)
    config = ModelConfig(d_model=D_MODEL, n_layers=n_layers, n_heads=HEADS, gate_rank=8)
    return LanguageModel(architecture(name, window=window), VOCAB, config).double()


def perturb(model):
    """Move every parameter off its initial value so gates and projections are data-dependent."""
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))


def assert_decoding_equals_forward(model, length):
    ids = torch.randint(0, VOCAB, (2, length))
    with torch.no_grad():
        full = model(ids)
    cache = model.empty_cache(2)
    steps = []
    for t in range(ids.shape[1]):
        logits, cache = model.step(ids[:, t], cache)
        steps.append(logits)
    torch.testing.assert_close(torch.stack(steps, 1), full, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("name", sorted(PRESETS) + sorted(BASELINES))
def test_decode_equals_forward(name):
    model = build(name, window=5)
    perturb(model)
    assert_decoding_equals_forward(model, 11)


def test_hybrid_alternates_miras_and_sliding_window():
    model = build("yaad_h", n_layers=4, window=7)
    kinds = [type(block.mixer).__name__ for block in model.blocks]
    assert kinds == ["MirasMixer", "Attention", "MirasMixer", "Attention"]
    assert model.blocks[1].mixer.window == 7


def test_an_ablation_variant_builds_its_change_and_keeps_the_rest():
    constant = build(swap_gate("yaad", "delta", "constant"))
    mixer = constant.blocks[0].mixer
    assert constant.arch.name == "yaad -gate.delta=constant"
    assert (mixer.gates["delta"].kind, mixer.gates["lr"].kind) == ("constant", "channel")
    linear = build(swap_axis("yaad_h", "memory", AxisChoice(name="linear")), n_layers=4, window=7)
    kinds = [type(block.mixer).__name__ for block in linear.blocks]
    assert kinds == ["MirasMixer", "Attention", "MirasMixer", "Attention"] and linear.blocks[1].mixer.window == 7
    assert list(linear.blocks[0].mixer.initial) == ["W"]  # the linear memory's one weight
    perturb(constant)
    assert_decoding_equals_forward(constant, 5)


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


@pytest.mark.parametrize("name", ["transformer", "gated_deltanet", "titans"])
def test_blocks_without_mlp(name):
    torch.manual_seed(0)
    config = ModelConfig(d_model=D_MODEL, n_layers=2, n_heads=HEADS, gate_rank=8, mlp=False)
    model = LanguageModel(architecture(name), VOCAB, config).double()
    assert all(block.mlp is None for block in model.blocks)
    assert model.num_params() < build(name).num_params()
    perturb(model)
    assert_decoding_equals_forward(model, 9)


@pytest.mark.parametrize("name", ["transformer", "gated_deltanet"])
def test_embed_scale_multiplies_the_embedding_in_forward_and_decoding(name):
    torch.manual_seed(0)
    config = ModelConfig(d_model=D_MODEL, n_layers=1, n_heads=HEADS, gate_rank=8, embed_scale="sqrt_d")
    model = LanguageModel(architecture(name), VOCAB, config).double()
    ids = torch.randint(0, VOCAB, (2, 5))
    start = model.blocks[0].register_forward_pre_hook(lambda _, args: seen.append(args[0]))
    seen: list[torch.Tensor] = []
    model(ids)
    start.remove()
    torch.testing.assert_close(seen[0], D_MODEL**0.5 * model.embed(ids))
    perturb(model)
    assert_decoding_equals_forward(model, 7)


@pytest.mark.parametrize(("name", "normalised"), [("titans", True), ("gated_deltanet", False)])
def test_scales_auto_follow_the_memory_output(name, normalised):
    """auto: unit-RMS q, k and v for the LayerNorm MLP memory; unit-norm q, k and raw v for a linear one."""
    mixer = build(name).blocks[0].mixer
    q, k, _ = mixer._qkv(torch.randn(2, 5, D_MODEL, dtype=torch.float64))
    head_dim = D_MODEL // HEADS
    expected = head_dim**0.5 if normalised else 1.0
    torch.testing.assert_close(k.norm(dim=-1), torch.full(k.shape[:-1], expected, dtype=torch.float64))
    torch.testing.assert_close(q.norm(dim=-1), torch.full(q.shape[:-1], expected, dtype=torch.float64))
    assert (mixer.value_norm is not None) == normalised
    config = ModelConfig(d_model=D_MODEL, n_layers=1, n_heads=HEADS, value_norm="rms", qk_norm="l2")
    mixer = LanguageModel(architecture("titans" if normalised else "gated_deltanet"), VOCAB, config).blocks[0].mixer
    assert mixer.value_norm is not None and mixer.qk_scale == 1.0


def test_causal_conv_equals_a_depthwise_conv1d():
    torch.manual_seed(0)
    conv = CausalConv(6, 4).double()
    x = torch.randn(2, 9, 6, dtype=torch.float64, requires_grad=True)
    padded = torch.nn.functional.pad(x.transpose(1, 2), (3, 0))
    ref = torch.nn.functional.silu(torch.nn.functional.conv1d(padded, conv.weight.unsqueeze(1), conv.bias, groups=6))
    ref = ref.transpose(1, 2)
    torch.testing.assert_close(conv(x), ref)
    grads = torch.autograd.grad(conv(x).pow(2).sum(), (x, conv.weight, conv.bias))
    ref_grads = torch.autograd.grad(ref.pow(2).sum(), (x, conv.weight, conv.bias))
    for got, want in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(got, want)


def test_a_deep_memory_starts_at_the_usual_weight_scale_whatever_its_mirror_map():
    """Moneta's lq map A -> A/||A||_4^2 would shrink N(0, 1/in) weights 3.4x; the initial accumulator
    is its inverse image instead, so the weights the memory starts from are N(0, 1/in) again."""
    torch.manual_seed(0)
    mixer = LanguageModel(architecture("moneta"), VOCAB, ModelConfig(d_model=64, n_layers=1, n_heads=2)).blocks[0].mixer
    for name, accumulator in mixer.initial.items():
        weights = mixer.components.retention.project(accumulator.detach())
        assert weights.std().item() == pytest.approx(accumulator.shape[-1] ** -0.5, rel=0.1), name


def test_attention_heads_set_the_attention_layers_only():
    """``model.attention_heads`` splits the hybrid's window layers; its memory keeps ``n_heads``."""
    config = ModelConfig(d_model=32, n_layers=2, n_heads=1, attention_heads=4, swa_window=8)
    model = LanguageModel(architecture("titans_h", window=8), 64, config)
    mixers = [block.mixer for block in model.blocks]
    assert [m.n_heads for m in mixers] == [1, 4]
    assert isinstance(mixers[0], MirasMixer) and not isinstance(mixers[1], MirasMixer)
    assert LanguageModel(architecture("transformer"), 64, config).blocks[0].mixer.n_heads == 4
    default = LanguageModel(architecture("transformer"), 64, config.model_copy(update={"attention_heads": None}))
    assert default.blocks[0].mixer.n_heads == 1


def test_attention_heads_must_divide_the_width():
    with pytest.raises(ValueError, match="must divide d_model 32"):
        ModelConfig(d_model=32, n_heads=2, attention_heads=3)
    assert ModelConfig(d_model=48, n_heads=4, attention_heads=3).width_step == 12
