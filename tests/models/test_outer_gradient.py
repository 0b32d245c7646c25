"""The outer gradient stays bounded as the sequence grows, and a Huber bias uses both branches.

At initialisation, the whole-model gradient norm of every preset may grow by at most
:data:`GROWTH` from T = 16 to T = 256: back-propagating through the memory's mini-batch
recurrence must not explode (it did, up to 1.6e10 for Yaad). For Yaad's Huber bias, some tokens
take each branch at initialisation and the value projection receives a gradient (the l1 branch
``delta * sign(e)`` alone gives it none).
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from miras.config.schema import ModelConfig
from miras.models import LanguageModel, MirasMixer, architecture
from miras.space import PRESETS

VOCAB = 64
CONFIG = ModelConfig(d_model=32, n_layers=2, n_heads=2, gate_rank=8, swa_window=16)
GROWTH = 10.0
HUBER = sorted(name for name, p in PRESETS.items() if p.spec.bias.name == "huber")


def build(name: str) -> LanguageModel:
    torch.manual_seed(0)
    return LanguageModel(architecture(name), VOCAB, CONFIG)


def ids(length: int) -> torch.Tensor:
    return torch.randint(0, VOCAB, (2, length + 1), generator=torch.Generator().manual_seed(1))


def gradient_norm(model: LanguageModel, length: int) -> float:
    model.zero_grad()
    tokens = ids(length)
    F.cross_entropy(model(tokens[:, :-1]).flatten(0, 1), tokens[:, 1:].flatten()).backward()
    return torch.sqrt(sum(p.grad.double().pow(2).sum() for p in model.parameters() if p.grad is not None)).item()


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_gradient_norm_is_bounded_in_the_sequence_length(name: str) -> None:
    model = build(name)
    short, long = gradient_norm(model, 16), gradient_norm(model, 256)
    assert long <= GROWTH * short, f"gradient norm {short:.3g} at T=16, {long:.3g} at T=256"


@pytest.mark.parametrize("name", HUBER)
def test_huber_takes_both_branches_and_values_get_a_gradient(name: str) -> None:
    model = build(name)
    stats = model.health(ids(128)[:, :-1])
    shares = [value for key, value in stats.items() if key.endswith("/l2_share")]
    assert shares and all(0.0 < share < 1.0 for share in shares), stats
    gradient_norm(model, 128)
    for block in model.blocks:
        if isinstance(block.mixer, MirasMixer):
            assert block.mixer.proj["v"].weight.grad.abs().sum() > 0
