"""A deep memory starts at the usual weight scale: each retention's initial accumulator."""

import pytest
import torch

from miras.space import REGISTRIES

INVERTIBLE = [
    ("none", {}),
    ("l2", {}),
    ("lq", {}),
    ("lq", {"q": 2.5}),
    ("lq", {"link": "pnorm"}),
    ("elastic_net", {}),
]


def build(name: str, params: dict):
    option = REGISTRIES["retention"].get(name)
    return option.build(option.params.model_validate(params))


@pytest.mark.parametrize(("name", "params"), INVERTIBLE, ids=lambda x: str(x))
def test_the_mirror_map_of_the_initial_accumulator_gives_the_weights(name, params):
    torch.manual_seed(0)
    weights = torch.randn(2, 3, 16, 8, dtype=torch.float64) / 8**0.5
    retention = build(name, params)
    torch.testing.assert_close(retention.project(retention.initial_accumulator(weights)), weights)


def test_the_smooth_elastic_net_is_inverted_to_first_order():
    weights = torch.randn(2, 3, 16, 8, dtype=torch.float64) / 8**0.5
    retention = build("elastic_net", {"smooth": True})
    error = (retention.project(retention.initial_accumulator(weights)) - weights).abs().max().item()
    assert error < 1e-3  # O(gamma^2 / |W|) with gamma = 1e-3


def test_printed_lq_at_q_3_starts_at_unit_norm():
    weights = torch.randn(1, 1, 16, 8, dtype=torch.float64)
    retention = build("lq", {"q": 3.0})
    projected = retention.project(retention.initial_accumulator(weights))
    assert projected.abs().pow(3).sum().pow(1 / 3).item() == pytest.approx(1.0)


def test_kl_starts_from_peaked_log_weights():
    """Softmax rows of logits with std 4: far from uniform (uniform rows make the MLP output constant)."""
    torch.manual_seed(0)
    weights = torch.randn(1, 1, 128, 32) / 32**0.5
    retention = build("kl", {})
    accumulator = retention.initial_accumulator(weights)
    assert accumulator.std().item() == pytest.approx(4.0, rel=0.05)
    rows = retention.project(accumulator)
    torch.testing.assert_close(rows.sum(-1), torch.ones(1, 1, 128))
    assert rows.max(-1).values.mean().item() > 0.3  # a uniform row's largest weight is 1/32
