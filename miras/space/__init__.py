"""What a model IS: the four axis registries, typed specs, presets and plugins."""

from . import algorithms, biases, memories, retention  # noqa: F401  (register the built-ins)
from .algorithms import Algorithm, AlgorithmParams
from .biases import AttentionalBias
from .gates import GateKind, GateSpec
from .memories import Memory
from .presets import BASELINES, NOT_EXPRESSIBLE, PRESETS, TABLE1_ROWS, Preset, get_preset
from .registry import (
    AXES,
    BUILTIN,
    PLUGIN_FAILURES,
    PLUGIN_GROUP,
    REGISTRIES,
    NoParams,
    Option,
    Params,
    Registry,
    RegistryError,
    load_plugins,
    register_algorithm,
    register_bias,
    register_memory,
    register_retention,
)
from .retention import Retention
from .spec import AxisChoice, Components, MirasSpec, SpecError
from .variants import Variant, swap_axis, swap_gate

__all__ = [
    "AXES",
    "BASELINES",
    "BUILTIN",
    "NOT_EXPRESSIBLE",
    "PLUGIN_FAILURES",
    "PLUGIN_GROUP",
    "PRESETS",
    "REGISTRIES",
    "TABLE1_ROWS",
    "Algorithm",
    "AlgorithmParams",
    "AttentionalBias",
    "AxisChoice",
    "Components",
    "GateKind",
    "GateSpec",
    "Memory",
    "MirasSpec",
    "NoParams",
    "Option",
    "Params",
    "Preset",
    "Registry",
    "RegistryError",
    "Retention",
    "SpecError",
    "Variant",
    "get_preset",
    "load_plugins",
    "register_algorithm",
    "register_bias",
    "register_memory",
    "register_retention",
    "swap_axis",
    "swap_gate",
]
