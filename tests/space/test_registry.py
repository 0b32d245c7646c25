"""Registry: decorator registration, origins, duplicate detection, lookups and spec validation."""

import pytest

from miras.space import (
    BUILTIN,
    REGISTRIES,
    AttentionalBias,
    MirasSpec,
    Params,
    RegistryError,
    SpecError,
    register_bias,
)
from miras.space.registry import registering_as


@pytest.fixture
def temporary_bias():
    names = []
    yield names
    for name in names:
        REGISTRIES["bias"].unregister(name)


def test_decorator_registers_with_params_description_and_origin(temporary_bias):
    class ScaleParams(Params):
        scale: float = 2.0

    @register_bias("scaled_l2_test", params=ScaleParams, description="test bias", shorthand="sl2")
    class ScaledL2(AttentionalBias):
        def loss(self, pred, target, gates):
            return self.params.scale * ((pred - target) ** 2).sum(-1)

    temporary_bias.append("scaled_l2_test")
    option = REGISTRIES["bias"].get("scaled_l2_test")
    assert option.impl is ScaledL2 and option.origin == BUILTIN and option.shorthand == "sl2"
    assert option.build({"scale": 3.0}).params.scale == 3.0
    spec = MirasSpec.of("linear", {"name": "scaled_l2_test", "params": {"scale": 0.5}}, "none", "gd")
    assert spec.problems() == []
    assert spec.shorthand() == "lin-sl2[scale=0.5]-none-gd"


def test_duplicate_name_names_both_origins(temporary_bias):
    with registering_as("first-dist"):

        @register_bias("dup_test", description="first")
        class First(AttentionalBias):
            pass

    temporary_bias.append("dup_test")
    with (
        pytest.raises(RegistryError, match="registered by first-dist and again by second-dist"),
        registering_as("second-dist"),
    ):

        @register_bias("dup_test", description="second")
        class Second(AttentionalBias):
            pass


@pytest.mark.parametrize("axis", ["memory", "bias", "retention", "algorithm"])
def test_an_implementation_must_subclass_its_axis_class(axis):
    with pytest.raises(RegistryError, match=f"{axis} option 'not_a_subclass_test'.*must subclass miras.space"):

        @REGISTRIES[axis].register("not_a_subclass_test", description="a plain class")
        class Plain:
            pass

    assert "not_a_subclass_test" not in REGISTRIES[axis].names()


def test_duplicate_of_builtin_is_an_error():
    with pytest.raises(RegistryError, match="duplicate bias option 'l2'"):

        @register_bias("l2", description="again")
        class Again(AttentionalBias):
            pass


@pytest.mark.parametrize("name", ["Bad", "has space", "1abc", ""])
def test_bad_names_are_rejected(name):
    with pytest.raises(RegistryError):
        register_bias(name, description="x")


def test_description_must_be_one_line():
    with pytest.raises(RegistryError, match="one-line description"):
        register_bias("two_lines", description="a\nb")


def test_unknown_option_lists_known_and_suggests():
    with pytest.raises(RegistryError) as error:
        REGISTRIES["bias"].get("hubr")
    message = str(error.value)
    assert "registered: dot, huber, l1, l2, lp, robust" in message
    assert "did you mean 'huber'?" in message


def test_every_axis_has_its_builtins():
    assert {"linear", "mlp"} <= set(REGISTRIES["memory"].names())
    assert {"dot", "l2", "l1", "lp", "huber", "robust"} <= set(REGISTRIES["bias"].names())
    assert {"none", "l2", "elastic_net", "lq", "kl", "bregman_sigmoid"} <= set(REGISTRIES["retention"].names())
    assert {"gd", "momentum", "implicit_gd"} <= set(REGISTRIES["algorithm"].names())
    for registry in REGISTRIES.values():
        for option in registry:
            assert option.description and "\n" not in option.description
            assert option.shorthand


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        (("mlp", "l2", "none", "implicit_gd"), "implicit GD has a closed form only for a linear memory"),
        (("linear", "l1", "none", "implicit_gd"), "under the l2 bias"),
        (("linear", "l2", "kl", "implicit_gd"), "identity mirror map"),
        (("linear", "l2", "l2", "implicit_gd"), "grad_at 'decayed'"),
        (("linear", "l2", "none", {"name": "gd", "params": {"steps": 2, "batch_size": 4}}), "batch_size 1"),
        (("linear", "l2", "none", {"name": "gd", "params": {"lag_token": True}}), "batch_size >= 2"),
    ],
)
def test_incompatible_combinations_say_why(spec, fragment):
    problems = MirasSpec.of(*spec).problems()
    assert any(fragment in message for _, message in problems), problems
    with pytest.raises(SpecError):
        MirasSpec.of(*spec).resolve()


def test_bad_params_name_the_field():
    problems = MirasSpec.of("linear", {"name": "lp", "params": {"p": 0.5, "q": 1}}, "none", "gd").problems()
    paths = [path for path, _ in problems]
    assert "bias.params.p" in paths and "bias.params.q" in paths
    assert dict(problems)["bias.params.q"] == "unknown parameter"


def test_unknown_option_in_spec():
    problems = MirasSpec.of("lineer", "l2", "none", "gd").problems()
    assert problems[0][0] == "memory.name" and "did you mean 'linear'" in problems[0][1]


def test_a_choice_is_validated_once_per_parameter_set(temporary_bias):
    calls = []

    class CountedParams(Params):
        scale: float = 1.0

        def model_post_init(self, context: object) -> None:
            calls.append(self.scale)

    @register_bias("counted", params=CountedParams, description="counts its validations")
    class Counted(AttentionalBias):
        """Never trained: only its parameters are validated here."""

    temporary_bias.append("counted")
    spec = MirasSpec.of("linear", {"name": "counted", "params": {"scale": 2.0}}, "none", "gd")
    spec.resolve(), spec.canonical(), spec.shorthand(), spec.problems()
    again = MirasSpec.of("linear", {"name": "counted", "params": {"scale": 2.0}}, "none", "gd")
    option, params = again.bias.validated("bias")
    assert calls.count(2.0) == 1 and option.impl is Counted and params.scale == 2.0  # (shorthand builds the defaults)
    assert again.bias.validated("bias")[1] is params
    other = MirasSpec.of("linear", {"name": "counted", "params": {"scale": 3.0}}, "none", "gd")
    assert other.bias.validated("bias")[1].scale == 3.0 and calls.count(3.0) == 1
    with pytest.raises(RegistryError, match="did you mean 'counted'"):
        MirasSpec.of("linear", "countd", "none", "gd").bias.validated("bias")
