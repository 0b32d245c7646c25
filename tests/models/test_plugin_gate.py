"""A plugin bias that declares its own per-token gate: the mixer builds it, the scans check and pass
it, the model trains through it, and a gate given by name only is refused at registration."""

import math

import pytest
import torch
import torch.nn.functional as F

from miras.bench.inputs import gate_values
from miras.config.schema import ModelConfig
from miras.models import LanguageModel, architecture
from miras.ops import chunked_scan, reference_scan
from miras.space import REGISTRIES, AttentionalBias, GateSpec, MirasSpec, RegistryError, register_bias
from miras.space.gates import DELTA
from miras.space.registry import registering_as

TEMPERATURE = GateSpec("temperature", "softplus", 0.5)


@pytest.fixture
def tempered_spec():
    """``tempered_l2`` (``t/2 ||pred - target||^2``, ``t`` a per-token gate), registered by a plugin
    for the test's duration."""
    with registering_as("miras-tempered-test"):

        @register_bias("tempered_l2", description="l2 scaled by a per-token temperature gate")
        class TemperedL2(AttentionalBias):
            gates = (TEMPERATURE,)

            def loss(self, pred, target, gates):
                return 0.5 * gates["temperature"].squeeze(-1) * ((pred - target) ** 2).sum(-1)

    yield MirasSpec.of("linear", "tempered_l2", "none", "gd")
    REGISTRIES["bias"].unregister("tempered_l2")


def test_the_spec_lists_the_plugin_gate_after_lr(tempered_spec):
    specs = tempered_spec.resolve().gate_specs()
    assert [s.name for s in specs] == ["lr", "temperature"]
    assert specs[1] is TEMPERATURE


def test_chunked_matches_the_reference_through_the_plugin_gate(tempered_spec):
    gen = torch.Generator().manual_seed(0)
    batch, length, heads, dim = 2, 12, 2, 4
    q, k = (
        F.normalize(torch.randn(batch, length, heads, dim, generator=gen, dtype=torch.float64), dim=-1) for _ in "qk"
    )
    v = torch.randn(batch, length, heads, dim, generator=gen, dtype=torch.float64)
    gates = {
        spec.name: gate_values(spec, torch.randn(batch, length, heads, generator=gen, dtype=torch.float64), False)
        for spec in tempered_spec.resolve().gate_specs()
    }
    leaves = [q, k, v, *gates.values()]
    for leaf in leaves:
        leaf.requires_grad_()
    results = []
    for scan in (reference_scan, chunked_scan):
        out, _ = scan(q, k, v, tempered_spec, gates)
        results.append((out, torch.autograd.grad(out.pow(2).sum(), leaves)))
    (want, want_grads), (got, got_grads) = results
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)
    for got_grad, want_grad in zip(got_grads, want_grads, strict=True):
        torch.testing.assert_close(got_grad, want_grad, rtol=1e-10, atol=1e-12)
    temperature_grad = want_grads[-1]
    assert temperature_grad.abs().max() > 1e-6  # the output depends on the gate


def test_a_model_trains_through_the_plugin_gate(tempered_spec):
    torch.manual_seed(0)
    config = ModelConfig(d_model=32, n_layers=1, n_heads=2, gate_rank=8, mlp=False)
    model = LanguageModel(architecture(tempered_spec), 64, config)
    gate = model.blocks[0].mixer.gates["temperature"]
    assert gate.up.bias.detach().allclose(torch.full_like(gate.up.bias, math.log(math.expm1(0.5))))
    ids = torch.randint(0, 64, (8, 24))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(30):
        logits = model(ids[:, :-1])
        loss = F.cross_entropy(logits.flatten(0, 1), ids[:, 1:].flatten())
        optimizer.zero_grad()
        loss.backward()
        if not losses:
            assert gate.up.weight.grad.abs().max() > 0 and gate.up.bias.grad.abs().max() > 0
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] - 0.5, losses


def test_a_gate_given_by_name_only_is_refused_at_registration():
    with pytest.raises(RegistryError, match=r"gates must list miras\.space\.GateSpec entries .*not 'delta'"):

        @register_bias("named_gate_test", description="declares its gate by name")
        class NamedGate(AttentionalBias):
            gates = ("delta",)

    assert "named_gate_test" not in REGISTRIES["bias"]


def test_one_gate_declared_twice_differently_is_an_error():
    with registering_as("miras-tempered-test"):

        @register_bias("own_momentum_test", description="declares a momentum gate of its own")
        class OwnMomentum(AttentionalBias):
            gates = (GateSpec("momentum", "sigmoid", 0.5), DELTA)

    try:
        alone = MirasSpec.of("linear", "own_momentum_test", "none", "gd").resolve()
        assert [s.name for s in alone.gate_specs()] == ["lr", "momentum", "delta"]
        with pytest.raises(ValueError, match="gate 'momentum' is declared twice, differently"):
            MirasSpec.of("linear", "own_momentum_test", "none", "momentum").resolve().gate_specs()
    finally:
        REGISTRIES["bias"].unregister("own_momentum_test")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "t", "activation": "sigmoid", "start": 1.5}, r"a sigmoid gate starts in \(0, 1\), not 1.5"),
        ({"name": "t", "activation": "tanh", "start": 0.5}, "activation must be one of sigmoid, decay, softplus"),
        ({"name": "t t", "activation": "sigmoid", "start": 0.5}, "must be an identifier"),
        ({"name": "t", "activation": "softplus", "start": 1.0, "acts_on": "keys"}, "acts_on must be"),
    ],
)
def test_a_bad_gate_spec_names_its_field(kwargs, message):
    with pytest.raises(ValueError, match=message):
        GateSpec(**kwargs)
