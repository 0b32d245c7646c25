"""Every model as a ``transformers`` causal LM: save_pretrained -> from_pretrained gives the same
logits exactly (fp64), and greedy ``generate`` (the recurrent state as the cache) equals
step-by-step decoding and the argmax of the full forward, token by token."""

from __future__ import annotations

import pytest
import torch

from miras.config.schema import ModelConfig
from miras.models import LanguageModel, architecture
from miras.space import AxisChoice, MirasSpec
from miras.space.presets import BASELINES, PRESETS
from miras.space.variants import swap_axis

transformers = pytest.importorskip("transformers")
hf = pytest.importorskip("miras.hf")

VOCAB, PROMPT, NEW = 23, 5, 6
CHOICES = {
    **{name: name for name in sorted(PRESETS) + sorted(BASELINES)},
    "grid point": MirasSpec.of("mlp", "huber", "l2", "momentum"),
    "variant": swap_axis("yaad", "bias", AxisChoice(name="l1")),
}


def tiny(choice) -> LanguageModel:
    torch.manual_seed(0)
    config = ModelConfig(d_model=16, n_heads=2, n_layers=2, swa_window=4)
    return LanguageModel(architecture(choice, window=config.swa_window), VOCAB, config).double().eval()


def greedy_by_full_forward(model: LanguageModel, prompt: torch.Tensor, steps: int) -> torch.Tensor:
    ids = prompt
    for _ in range(steps):
        ids = torch.cat([ids, model(ids)[:, -1].argmax(-1, keepdim=True)], dim=1)
    return ids


def greedy_by_steps(model: LanguageModel, prompt: torch.Tensor, steps: int) -> torch.Tensor:
    cache, ids = model.empty_cache(prompt.shape[0]), prompt
    for t in range(prompt.shape[1]):
        logits, cache = model.step(prompt[:, t], cache)
    for _ in range(steps):
        token = logits.argmax(-1)
        ids = torch.cat([ids, token[:, None]], dim=1)
        logits, cache = model.step(token, cache)
    return ids


@pytest.mark.parametrize("label", list(CHOICES))
def test_round_trip_and_generate(label, tmp_path):
    model = tiny(CHOICES[label])
    hf.to_hf(model).save_pretrained(tmp_path)
    loaded = transformers.AutoModelForCausalLM.from_pretrained(tmp_path)
    assert isinstance(loaded, hf.MirasForCausalLM) and loaded.dtype == torch.float64
    assert loaded.config.miras_architecture["name"] == model.arch.name
    ids = torch.randint(0, VOCAB, (2, 12), generator=torch.Generator().manual_seed(1))
    assert torch.equal(loaded(ids).logits, model(ids))
    for name, tensor in model.state_dict().items():
        assert torch.equal(loaded.lm.state_dict()[name], tensor), name

    prompt = ids[:, :PROMPT]
    generated = loaded.generate(prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=NEW, do_sample=False)
    assert torch.equal(generated, greedy_by_steps(model, prompt, NEW))
    assert torch.equal(generated, greedy_by_full_forward(model, prompt, NEW))


@pytest.mark.parametrize("label", ["gated_deltanet", "titans", "gated_deltanet_h"])
def test_beam_search_and_sampling_over_the_cache_match_the_uncached_parallel_forward(label):
    model = hf.to_hf(tiny(CHOICES[label]))
    prompt = torch.randint(0, VOCAB, (2, PROMPT), generator=torch.Generator().manual_seed(4))
    options = {"attention_mask": torch.ones_like(prompt), "max_new_tokens": NEW}
    beams = {"num_beams": 3, "num_return_sequences": 2, "do_sample": False} | options
    assert torch.equal(model.generate(prompt, **beams), model.generate(prompt, use_cache=False, **beams))
    sampled = []
    for use_cache in (True, False):
        torch.manual_seed(5)
        sampled.append(model.generate(prompt, do_sample=True, num_return_sequences=2, use_cache=use_cache, **options))
    assert torch.equal(*sampled)


def test_the_config_describes_the_model_without_the_preset_table(tmp_path):
    model = tiny("titans")
    config = hf.config_of(model)
    spec = config.miras_architecture["spec"]
    assert spec["bias"]["name"] == "l2" and "params" in spec["memory"]
    assert config.miras_model["impl"] == "auto" and config.miras_plugins == []
    rebuilt = hf.language_model(config).arch
    assert rebuilt.spec.canonical() == model.arch.spec.canonical()
    assert (rebuilt.name, rebuilt.gate_kinds, rebuilt.window) == (model.arch.name, model.arch.gate_kinds, None)


def test_the_cached_forward_matches_the_parallel_one_and_counts_tokens():
    model = hf.to_hf(tiny("gated_deltanet"))
    ids = torch.randint(0, VOCAB, (3, 9), generator=torch.Generator().manual_seed(2))
    parallel = model(ids).logits
    first = model(ids[:, :4], use_cache=True)
    rest = model(ids[:, 4:], past_key_values=first.past_key_values)
    assert rest.past_key_values.get_seq_length() == 9
    torch.testing.assert_close(torch.cat([first.logits, rest.logits], dim=1), parallel, rtol=0, atol=1e-10)


def test_labels_give_the_next_token_loss_and_ignore_minus_100():
    model = hf.to_hf(tiny("deltanet"))
    ids = torch.randint(0, VOCAB, (2, 8), generator=torch.Generator().manual_seed(3))
    labels = ids.clone()
    labels[:, :3] = -100
    out = model(ids, labels=labels)
    expected = torch.nn.functional.cross_entropy(out.logits[:, 2:-1].reshape(-1, VOCAB), ids[:, 3:].reshape(-1))
    torch.testing.assert_close(out.loss, expected)


def test_left_padding_is_refused_with_the_fix():
    model = hf.to_hf(tiny("deltanet"))
    ids = torch.zeros(2, 4, dtype=torch.long)
    mask = torch.tensor([[0, 1, 1, 1], [1, 1, 1, 1]])
    with pytest.raises(ValueError, match="right padding only"):
        model(ids, attention_mask=mask)
    model(ids, attention_mask=mask.flip(1))  # right padding is fine for the parallel forward
    with pytest.raises(ValueError, match="cannot skip padding"):
        model.generate(ids, attention_mask=mask.flip(1), max_new_tokens=2)
    with pytest.raises(ValueError, match="cached steps keep no gradient"):
        model(ids, labels=ids, use_cache=True)
