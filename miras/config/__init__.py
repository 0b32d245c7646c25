"""The sweep config: a typed schema for the sweep YAML, and its validation with readable problems."""

from .errors import ConfigError, Problem, format_problems
from .load import apply_overrides, load_config, resolved_text, validate_config
from .schema import (
    AblationConfig,
    Combination,
    GridConfig,
    LmTask,
    LrRange,
    ModelConfig,
    MqarTask,
    NeedleTask,
    Objective,
    ParamRange,
    ResourcesConfig,
    SearchConfig,
    SpaceConfig,
    SweepConfig,
    TrackingConfig,
    TrainingConfig,
)

__all__ = [
    "AblationConfig",
    "Combination",
    "ConfigError",
    "GridConfig",
    "LmTask",
    "LrRange",
    "ModelConfig",
    "MqarTask",
    "NeedleTask",
    "Objective",
    "ParamRange",
    "Problem",
    "ResourcesConfig",
    "SearchConfig",
    "SpaceConfig",
    "SweepConfig",
    "TrackingConfig",
    "TrainingConfig",
    "apply_overrides",
    "format_problems",
    "load_config",
    "resolved_text",
    "validate_config",
]
