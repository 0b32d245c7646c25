"""The sweep YAML schema: typed sections, each field with a default, a constraint and a description.

Pydantic validation checks the structure, types and ranges, and the rules between fields of a
section (``d_model % n_heads``, ``low < high``, ...). Checks against the axis registries and
presets, which plugins can extend, are in :meth:`SweepConfig.problems`. :func:`miras.config.load_config`
runs both and reports every problem at once; docs/config.md is the reference of this module.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from ..space import (
    AXES,
    BASELINES,
    PRESETS,
    REGISTRIES,
    AxisChoice,
    MirasSpec,
    RegistryError,
    Variant,
    swap_axis,
    swap_gate,
)
from ..space.gates import GateKind
from ..space.registry import suggest
from .errors import Problem, pydantic_problems
from .incompatible import incompatible_combinations

T = TypeVar("T")


def _not_boolean(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError(f"expected a number, got the boolean {str(value).lower()}")
    return value


Int = Annotated[int, BeforeValidator(_not_boolean)]
"""An integer field: YAML's ``true`` is not 1 here."""
Float = Annotated[float, BeforeValidator(_not_boolean)]
"""A number field: not a boolean, and finite (``Section`` refuses ``.inf`` and ``.nan``)."""


class Section(BaseModel):
    """Base of every config model: unknown keys are errors, numbers are finite and not booleans."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


def _unique(values: list[T]) -> list[T]:
    repeated = sorted({repr(v) for v in values if values.count(v) > 1})
    if repeated:
        raise ValueError(f"values must be unique; repeated: {', '.join(repeated)}")
    return values


def _base_dir(info: ValidationInfo) -> Path:
    """Folder that relative paths are resolved against: the config file's, else the working directory."""
    return Path((info.context or {}).get("base_dir") or ".").resolve()


def _text_source(value: str, info: ValidationInfo) -> str:
    """``shakespeare``, ``hf:<dataset>``, or a local file/folder made absolute (relative to the
    config file's folder when loaded from a file)."""
    if value == "shakespeare":
        return value
    if value.startswith("hf:"):
        if not value[3:].strip():
            raise ValueError("'hf:' needs a dataset name, e.g. 'hf:roneneldan/TinyStories'")
        return value
    path = (_base_dir(info) / Path(value).expanduser()).resolve()
    if not path.exists():
        raise ValueError(
            f"no such file or folder: {path} (give 'shakespeare', 'hf:<dataset>' or an existing path; "
            "relative paths are resolved against the config file's folder)"
        )
    return str(path)


TextSource = Annotated[str, AfterValidator(_text_source)]

DATASET_FILES = (".json", ".jsonl", ".parquet")
"""Suffixes of the local files a text source reads through ``datasets``."""
DATASET_FOLDER_MARKERS = ("dataset_dict.json", "state.json")
"""Files ``save_to_disk`` writes into a folder (a ``DatasetDict``, a ``Dataset``)."""


def reads_through_datasets(source: str) -> bool:
    """Whether a (validated) text source is read by ``datasets``: ``hf:<name>``, a local
    ``.json``/``.jsonl``/``.parquet`` file, or a folder written by ``save_to_disk``."""
    if source.startswith("hf:"):
        return True
    path = Path(source)
    if path.is_file():
        return path.suffix in DATASET_FILES
    return path.is_dir() and any((path / marker).is_file() for marker in DATASET_FOLDER_MARKERS)


class DatasetOptions(Section):
    """How a text source read by ``datasets`` becomes documents: one per row of ``text_column``."""

    config: str | None = Field(None, min_length=1, description="the dataset's configuration (subset); hf: only")
    split: str = Field("train", min_length=1, description="the split to train on")
    held_out_split: str | None = Field(
        None, min_length=1, description="the split to validate on; null: validation, else test, else every 10th row"
    )
    text_column: str = Field("text", min_length=1, description="the column that holds each row's text")


# --- task ------------------------------------------------------------------------------------


class MqarTask(Section):
    """Multi-query associative recall, compatible with zoology's generator."""

    primary_metric: ClassVar[tuple[str, Literal["max", "min"]]] = ("test_accuracy", "max")

    name: Literal["mqar"] = Field("mqar", description="task name")
    vocab_size: Int = Field(8192, ge=8, description="token vocabulary (keys from the lower half, values the upper)")
    seq_len: Int = Field(64, ge=4, description="sequence length; even and smaller than vocab_size")
    num_kv_pairs: Int = Field(4, ge=1, description="key-value pairs per sequence; 4 * num_kv_pairs <= seq_len")
    train_examples: Int = Field(20000, ge=1, description="training sequences")
    test_examples: Int = Field(1000, ge=1, description="held-out sequences (disjoint seed)")
    power_a: Float = Field(0.01, gt=0, description="power-law exponent a of the query gaps (zoology)")
    test_num_kv_pairs: Annotated[list[Annotated[Int, Field(ge=1)]], AfterValidator(_unique)] | None = Field(
        None, description="kv-pair counts of the test slices (test_accuracy_kv<k>); null: [num_kv_pairs]"
    )

    @field_validator("test_num_kv_pairs")
    @classmethod
    def _test_pairs_fit(cls, value: list[int] | None, info: ValidationInfo) -> list[int] | None:
        seq_len = info.data.get("seq_len")
        too_many = [k for k in value or () if seq_len is not None and 4 * k > seq_len]
        if too_many:
            raise ValueError(f"4 * each count must be <= seq_len {seq_len}; too many pairs: {too_many}")
        return value

    @field_validator("seq_len")
    @classmethod
    def _seq_len(cls, value: int, info: ValidationInfo) -> int:
        if value % 2:
            raise ValueError(f"must be even (got {value})")
        vocab = info.data.get("vocab_size")
        if vocab is not None and value >= vocab:
            raise ValueError(f"must be smaller than vocab_size {vocab} (got {value})")
        return value

    @field_validator("num_kv_pairs")
    @classmethod
    def _num_kv_pairs(cls, value: int, info: ValidationInfo) -> int:
        seq_len = info.data.get("seq_len")
        if seq_len is not None and 4 * value > seq_len:
            raise ValueError(f"4 * num_kv_pairs must be <= seq_len {seq_len} (got {value})")
        return value


NeedleKind = Literal["passkey", "number", "word"]


class NeedleTask(Section):
    """Single-needle retrieval: find a passkey / number / word hidden in a haystack of text."""

    primary_metric: ClassVar[tuple[str, Literal["max", "min"]]] = ("test_accuracy", "max")

    name: Literal["needle"] = Field("needle", description="task name")
    context_lengths: Annotated[list[Annotated[Int, Field(ge=64)]], AfterValidator(_unique)] = Field(
        [256, 512], min_length=1, description="context lengths (tokens) evaluated; unique, each >= 64"
    )
    kinds: Annotated[list[NeedleKind], AfterValidator(_unique)] = Field(
        ["passkey", "number", "word"], min_length=1, description="needle kinds; unique"
    )
    examples_per_length: Int = Field(100, ge=1, description="test examples per context length and kind")
    haystack: TextSource = Field("shakespeare", description="haystack text: 'shakespeare', 'hf:<dataset>' or a path")
    vocab_size: Int = Field(4096, ge=256, description="BPE vocabulary size of the haystack tokenizer")
    train_length: Int | None = Field(
        None, ge=64, description="length of the training examples; null: the largest context length"
    )


class LmTask(Section):
    """Language modelling on real text with a locally trained byte-level BPE."""

    primary_metric: ClassVar[tuple[str, Literal["max", "min"]]] = ("val_loss", "min")

    name: Literal["lm"] = Field("lm", description="task name")
    source: TextSource = Field(
        "shakespeare",
        description="'shakespeare' (offline), a local text file or folder, a .json/.jsonl/.parquet file or "
        "save_to_disk folder, or 'hf:<dataset>'",
    )
    vocab_size: Int = Field(4096, ge=256, description="BPE vocabulary size (>= 256, the byte alphabet)")
    seq_len: Int = Field(256, ge=2, description="training sequence length (tokens)")
    token_budget: Int | None = Field(
        None, ge=1, description="at most this many tokens of the source are used for training; null: all"
    )
    eval_windows: Int = Field(64, ge=1, description="validation windows of seq_len tokens scored per evaluation")
    dataset: DatasetOptions | None = Field(
        None,
        description="split and column of a source read by datasets (hf:<name>, a .json/.jsonl/.parquet file "
        "or a save_to_disk folder); null: split train, column text",
    )

    @model_validator(mode="after")
    def _dataset_applies(self) -> LmTask:
        if self.dataset is None:
            return self
        if not reads_through_datasets(self.source):
            raise ValueError(
                f"dataset: applies to a source read by datasets (hf:<name>, a {'/'.join(DATASET_FILES)} file or a "
                f"save_to_disk folder), not to the plain text of {self.source!r}"
            )
        if self.dataset.config is not None and not self.source.startswith("hf:"):
            raise ValueError("dataset.config: only an hf:<name> source has configurations")
        return self


Task = Annotated[MqarTask | NeedleTask | LmTask, Field(discriminator="name")]


# --- model, training -------------------------------------------------------------------------


Width = Annotated[Int, Field(ge=8)]
Widths = Annotated[
    Annotated[Width, Tag("width")]
    | Annotated[Annotated[list[Width], Field(min_length=1), AfterValidator(_unique)], Tag("ladder")],
    Discriminator(lambda value: "ladder" if isinstance(value, list) else "width"),
]


class MatchConfig(Section):
    """A budget every combination is sized to: one of ``params`` and ``state_size``, within ``tolerance``."""

    params: Int | None = Field(None, ge=1, description="parameters of the whole model (n_params, embedding included)")
    state_size: Int | None = Field(
        None, ge=1, description="recurrent state per sequence (state_size: memories' weights and momenta, KV caches)"
    )
    tolerance: Float = Field(0.05, gt=0, lt=1, description="relative distance from the budget allowed (0.05: ±5%)")

    @model_validator(mode="after")
    def _one_budget(self) -> MatchConfig:
        if (self.params is None) == (self.state_size is None):
            raise ValueError("give exactly one of params and state_size")
        return self

    @property
    def budget(self) -> tuple[Literal["params", "state_size"], int]:
        """``(what, target)``."""
        return ("params", self.params) if self.params is not None else ("state_size", self.state_size)  # type: ignore[return-value]


class ModelConfig(Section):
    """Size of the language model around each mixer."""

    d_model: Widths = Field(
        64, description="model width; a list of widths is a scaling ladder: every combination at every width"
    )
    n_layers: Int = Field(2, ge=1, description="number of blocks")
    n_heads: Int = Field(2, ge=1, description="memory heads; must divide d_model")
    attention_heads: Int | None = Field(
        None,
        ge=1,
        description="heads of the attention layers (transformer, swa, the hybrids' window layers); must divide "
        "d_model; null: n_heads. Attention's heads cost no state, a memory's split it (H heads of d/H: d^2/H)",
    )
    gate_rank: Int = Field(32, ge=1, description="rank of the low-rank projection that produces the gates")
    conv_size: Int = Field(4, ge=1, description="kernel of the depthwise causal conv on q, k, v (1: none)")
    swa_window: Int | None = Field(
        None, ge=1, description="sliding-window size of hybrid (*_h) presets and the swa baseline; null: 512"
    )
    impl: Literal["auto", "reference", "chunked", "delta", "compiled", "triton"] = Field(
        "auto",
        description="scan implementation of every Miras mixer (docs/ops.md); auto: delta where it applies, "
        "the Triton kernels on CUDA where they apply, else chunked, and a trial of >= 1000 steps on the CPU "
        "compiles its chunked layers; compiled: chunked under torch.compile; a named one that does not "
        "apply to a layer fails the trial at its start with the reason",
    )
    qk_norm: Literal["auto", "l2", "rms"] = Field(
        "auto",
        description="q and k: l2 (unit norm, the paper's wording) or rms (unit RMS, norm sqrt(head_dim)); "
        "auto: rms for memories with a normalised output (the LayerNorm MLP) whose weights are free "
        "(not kl, bregman_sigmoid), else l2 (docs/semantics.md)",
    )
    value_norm: Literal["auto", "none", "rms"] = Field(
        "auto",
        description="values before the memory learns them: rms (RMSNorm per head, the scale of a normalised "
        "memory output) or none; auto: rms for memories with a normalised output, else none",
    )
    mlp: bool = Field(True, description="a SwiGLU MLP after the mixer in every block; false: mixers only (zoology)")
    match: MatchConfig | None = Field(
        None,
        description="size every combination to one budget {params: N} or {state_size: N} (tolerance 0.05) by "
        "choosing its d_model (a multiple of n_heads and attention_heads); d_model is then unused; null: every "
        "combination at d_model",
    )
    embed_scale: Literal["one", "sqrt_d"] = Field(
        "one",
        description="multiplier of the token embedding (tied, std 0.02) before the first block: one, or sqrt_d "
        "(sqrt(d_model), as Vaswani et al.: a token's identity then stays at the scale the mixers add to the "
        "residual stream; docs/semantics.md)",
    )

    @field_validator("n_heads", "attention_heads")
    @classmethod
    def _divides(cls, value: int | None, info: ValidationInfo) -> int | None:
        if value is None:
            return value
        d_model = info.data.get("d_model")
        widths = d_model if isinstance(d_model, list) else [d_model] if d_model is not None else []
        bad = [width for width in widths if width % value]
        if bad:
            raise ValueError(f"must divide d_model {', '.join(map(str, bad))} (got {value})")
        return value

    @field_validator("match")
    @classmethod
    def _not_with_a_ladder(cls, value: MatchConfig | None, info: ValidationInfo) -> MatchConfig | None:
        if value is not None and isinstance(info.data.get("d_model"), list):
            raise ValueError("match chooses each combination's width: give d_model one width, not a ladder")
        return value

    @property
    def heads_of_attention(self) -> int:
        """Heads of an attention layer: ``attention_heads``, else ``n_heads``."""
        return self.attention_heads or self.n_heads

    @property
    def width_step(self) -> int:
        """The widths every head count divides: multiples of this."""
        return math.lcm(self.n_heads, self.heads_of_attention)

    @property
    def widths(self) -> list[int]:
        """The model widths: ``d_model`` as a list."""
        return self.d_model if isinstance(self.d_model, list) else [self.d_model]

    def at(self, width: int) -> ModelConfig:
        """This config with the single width ``width`` (one rung of a ladder)."""
        return self.model_copy(update={"d_model": width})


class TrainingConfig(Section):
    """The outer training loop (AdamW with warmup and cosine decay)."""

    steps: Int = Field(300, ge=1, description="optimiser steps")
    batch_size: Int = Field(32, ge=1, description="sequences per step")
    lr: Float = Field(1e-3, gt=0, description="peak learning rate (replaced by search.lr when searching)")
    weight_decay: Float = Field(0.1, ge=0, description="AdamW weight decay")
    warmup_steps: Int = Field(20, ge=0, validate_default=True, description="linear warmup steps; <= steps")
    grad_clip: Float | None = Field(1.0, gt=0, description="gradient-norm clip; null: no clipping")
    eval_every: Int = Field(100, ge=1, description="evaluate every this many steps (and at the end)")
    precision: Literal["fp32", "bf16"] = Field("fp32", description="fp32, or bf16 autocast")
    checkpoint_every: Int | None = Field(100, ge=1, description="checkpoint every this many steps; null: never")

    @field_validator("warmup_steps")
    @classmethod
    def _warmup(cls, value: int, info: ValidationInfo) -> int:
        steps = info.data.get("steps")
        if steps is not None and value > steps:
            default = cls.model_fields["warmup_steps"].default
            raise ValueError(f"must be <= steps {steps} (got {value}; it is {default} when not set)")
        return value


# --- space -----------------------------------------------------------------------------------

Entries = Annotated[list[AxisChoice], Field(min_length=1)]


def _entry_problems(path: str, axis: str, choice: AxisChoice) -> list[Problem]:
    """An unknown option, or bad params, of one axis entry at ``path``."""
    try:
        choice.validated(axis)
    except RegistryError as error:
        return [(path, str(error))]
    except ValidationError as error:
        return pydantic_problems(error, REGISTRIES[axis].get(choice.name).params, f"{path}.params")
    return []


class GridConfig(Section):
    """A cross-product of the four axes; each entry an option name or ``{name, params}``."""

    memory: Entries = Field(description="memory architectures")
    bias: Entries = Field(description="attentional biases")
    retention: Entries = Field(description="retention gates")
    algorithm: Entries = Field(description="memory learning algorithms")

    def specs(self) -> Iterator[MirasSpec]:
        """Every point of the grid, in axis order (memory slowest)."""
        for choices in itertools.product(*(getattr(self, axis) for axis in AXES)):
            yield MirasSpec(**dict(zip(AXES, choices, strict=True)))

    def problems(self) -> list[Problem]:
        """Unknown options and bad params of each entry; else the incompatible combinations."""
        problems = [
            problem
            for axis in AXES
            for i, choice in enumerate(getattr(self, axis))
            for problem in _entry_problems(f"space.grid.{axis}[{i}]", axis, choice)
        ]
        return problems or incompatible_combinations([getattr(self, axis) for axis in AXES])


Axis = Literal["memory", "bias", "retention", "algorithm"]


class AblationConfig(Section):
    """A preset and its one-change variants: each ``swap`` value and each ``gates`` entry is one variant."""

    base: str = Field(description="the Miras preset the variants start from (`miras list presets`)")
    swap: dict[Axis, Entries] = Field(
        {}, description="axis -> options; each option makes one variant with that axis changed, the rest kept"
    )
    gates: dict[str, GateKind] = Field(
        {}, description="gate -> kind (data, channel, constant, one); each makes one variant with that gate changed"
    )

    @model_validator(mode="after")
    def _some_change(self) -> AblationConfig:
        if not self.swap and not self.gates:
            raise ValueError("give swap and/or gates: the changes that make the variants")
        return self

    def variants(self) -> list[Variant]:
        """Every variant, swaps first (in axis order as written), then gates (valid base only)."""
        swaps = [swap_axis(self.base, axis, choice) for axis, choices in self.swap.items() for choice in choices]
        return swaps + [swap_gate(self.base, gate, kind) for gate, kind in self.gates.items()]

    def problems(self, path: str) -> list[Problem]:
        """An unknown base; unknown options, bad params and incompatible specs of the swaps; gates the
        base does not read, ``one`` for a gate other than lr; a variant equal to its base."""
        if self.base not in PRESETS:
            known = sorted(PRESETS)
            what = (
                f"{self.base!r} is an attention baseline, with no Miras axes to ablate"
                if self.base in BASELINES
                else f"unknown preset {self.base!r}"
            )
            return [(f"{path}.base", f"{what}; Miras presets: {', '.join(known)}{suggest(self.base, known)}")]
        preset = PRESETS[self.base]
        problems: list[Problem] = []
        for axis, choices in self.swap.items():
            for i, choice in enumerate(choices):
                where = f"{path}.swap.{axis}[{i}]"
                found = _entry_problems(where, axis, choice)
                if found:
                    problems += found
                    continue
                spec = swap_axis(self.base, axis, choice).spec
                if spec.canonical() == preset.spec.canonical():
                    problems.append(
                        (where, f"{self.base} already has {axis} {choice.name!r} with these params: no change")
                    )
                elif incompatible := spec.problems():
                    problems.append((where, "; ".join(message for _, message in incompatible)))
        reads = preset.spec.resolve().required_gates()
        for gate, kind in self.gates.items():
            where = f"{path}.gates.{gate}"
            if gate not in reads:
                problems.append((where, f"{self.base} reads the gates {', '.join(reads)}; not {gate!r}"))
            elif kind == "one" and gate != "lr":
                problems.append((where, f"only the lr gate can be fixed to one, not {gate!r}"))
            elif preset.gates.get(gate, "data") == kind:
                problems.append((where, f"{self.base} already produces {gate} as {kind!r}: no change"))
        return problems


class SpaceConfig(Section):
    """Which models the sweep trains: named presets and/or a grid over the four axes."""

    presets: list[str] = Field(
        [], description="preset or attention-baseline names (`miras list presets`: e.g. titans, transformer)"
    )
    grid: GridConfig | None = Field(None, description="cross-product of the four axes")
    ablations: list[AblationConfig] = Field(
        [], description="presets with one change at a time: each base runs with every variant"
    )

    @model_validator(mode="after")
    def _not_empty(self) -> SpaceConfig:
        if not self.presets and self.grid is None and not self.ablations:
            raise ValueError("give at least one of presets, grid and ablations")
        return self

    def problems(self, swa_window: int | None = None) -> list[Problem]:
        """Unknown presets, every grid problem, and a ``model.swa_window`` without a hybrid preset."""
        known = sorted(PRESETS) + sorted(BASELINES)
        problems = [
            (f"space.presets[{i}]", f"unknown preset {name!r}; known: {', '.join(known)}{suggest(name, known)}")
            for i, name in enumerate(self.presets)
            if name not in known
        ]
        windowed = [name for name in self.presets if name == "swa" or (name in PRESETS and PRESETS[name].hybrid)]
        if swa_window is not None and not windowed:
            problems.append(
                ("model.swa_window", "set, but space.presets has no hybrid (*_h) preset or swa baseline to apply it to")
            )
        problems += [p for i, ablation in enumerate(self.ablations) for p in ablation.problems(f"space.ablations[{i}]")]
        return problems + (self.grid.problems() if self.grid else [])


# --- search, resources, tracking -------------------------------------------------------------


class LrRange(Section):
    """A continuous learning-rate range sampled by the searcher (Optuna TPE)."""

    low: Float = Field(gt=0, description="smallest learning rate")
    high: Float = Field(gt=0, description="largest learning rate; > low")
    log: bool = Field(True, description="sample on a log scale")

    @field_validator("high")
    @classmethod
    def _above_low(cls, value: float, info: ValidationInfo) -> float:
        low = info.data.get("low")
        if low is not None and value <= low:
            raise ValueError(f"must be greater than low {low:g} (got {value:g})")
        return value


class ParamRange(Section):
    """A range of one searched setting: floats (``log`` for a log scale), or integers with ``int: true``."""

    low: Float = Field(description="smallest value")
    high: Float = Field(description="largest value; > low")
    log: bool = Field(False, description="sample on a log scale (low > 0)")
    int: bool = Field(False, description="integers from low to high (both whole numbers)")

    @model_validator(mode="after")
    def _consistent(self) -> ParamRange:
        if self.high <= self.low:
            raise ValueError(f"high must be greater than low {self.low:g} (got {self.high:g})")
        if self.log and self.low <= 0:
            raise ValueError(f"a log scale needs low > 0 (got {self.low:g})")
        if self.int and not (float(self.low).is_integer() and float(self.high).is_integer()):
            raise ValueError(f"int: true needs whole-number bounds (got {self.low:g}, {self.high:g})")
        return self


Choice = Annotated[Float | str, Field(union_mode="left_to_right")]
Choices = Annotated[list[Choice], Field(min_length=1), AfterValidator(_unique)]
ParamSpace = Annotated[
    Annotated[ParamRange, Tag("range")] | Annotated[Choices, Tag("values")],
    Discriminator(
        lambda value: (
            "range" if isinstance(value, dict | ParamRange) else "values" if isinstance(value, list) else None
        ),
        custom_error_type="param_space",
        custom_error_message="expected a range {low, high, log, int} or a list of values",
    ),
]


def _lr_kind(value: Any) -> str | None:
    if isinstance(value, dict | LrRange):
        return "range"
    return "values" if isinstance(value, list) else None


LrValues = Annotated[list[Annotated[Float, Field(gt=0)]], Field(min_length=1), AfterValidator(_unique)]
LrSpace = Annotated[
    Annotated[LrRange, Tag("range")] | Annotated[LrValues, Tag("values")],
    Discriminator(
        _lr_kind,
        custom_error_type="lr_space",
        custom_error_message="expected a range {low, high, log} or a list of learning rates",
    ),
]


class Objective(Section):
    """One objective of a multi-objective search: a metric and which way is better."""

    metric: str = Field(
        description="an evaluation metric (test_accuracy, val_loss; its best over the evaluations) or a final "
        "measurement (tokens_per_second, n_params, state_size, flops_per_token, peak_memory_mb, wall_seconds)"
    )
    mode: Literal["max", "min"] = Field(description="max or min")


class SearchConfig(Section):
    """Inner hyper-parameter search run for every combination (best-of-LR)."""

    lr: LrSpace = Field(
        default_factory=lambda: LrRange(low=1e-4, high=1e-2),
        description="the learning rate (training.lr): a range {low, high, log}, or a list of values each tried "
        "once; searched when given, or when params is empty",
    )
    trials_per_combination: Int | None = Field(
        None,
        ge=1,
        description="trials per combination and seed where a searched setting is a range (null: 4); "
        "not when every one is a list",
    )
    metric: str | None = Field(None, description="metric to optimise; null: the task's primary metric")
    mode: Literal["max", "min"] | None = Field(
        None, validate_default=True, description="max or min; required with a metric, else the primary metric's"
    )
    scheduler: Literal["none", "asha"] = Field("none", description="early stopping of bad trials: none or asha")
    objectives: list[Objective] = Field(
        [],
        description="two or more objectives optimised at once (Optuna's multi-objective TPE) instead of metric; "
        "the first ranks the tables, the report draws the Pareto front",
    )
    params: dict[str, ParamSpace] = Field(
        {},
        description="more searched settings: a dotted path (training.weight_decay, model.gate_rank, bias.p, "
        "algorithm.batch_size) -> a range or a list; an axis parameter only for combinations whose option has it",
    )

    @property
    def searched(self) -> dict[str, LrRange | ParamRange | list[Any]]:
        """Every searched setting by path: ``training.lr`` (``search.lr``, searched when given or when
        ``params`` is empty), then ``params``."""
        lr_given = "lr" in self.model_fields_set or not self.params or "training.lr" in self.params
        lr = {"training.lr": self.params.get("training.lr", self.lr)} if lr_given else {}
        return lr | {path: value for path, value in self.params.items() if path != "training.lr"}

    @field_validator("mode")
    @classmethod
    def _mode_with_metric(cls, value: str | None, info: ValidationInfo) -> str | None:
        metric = info.data.get("metric")
        if metric is not None and value is None:
            raise ValueError(f"say max or min for search.metric {metric!r}")
        if metric is None and value is not None:
            raise ValueError("only with search.metric: the task's primary metric comes with its own mode")
        return value

    @field_validator("objectives")
    @classmethod
    def _several(cls, value: list[Objective], info: ValidationInfo) -> list[Objective]:
        if len(value) == 1:
            raise ValueError("one objective is search.metric and search.mode: give two or more here")
        if value and info.data.get("metric") is not None:
            raise ValueError("give search.metric or search.objectives, not both")
        metrics = [o.metric for o in value]
        if len(set(metrics)) < len(metrics):
            raise ValueError(f"each metric once (got {', '.join(metrics)})")
        return value

    @property
    def trials(self) -> int:
        """Trials per combination and seed where some setting is a range."""
        return self.trials_per_combination or 4


def _gpu(value: float) -> float:
    if value > 1 and not value.is_integer():
        raise ValueError(f"a fraction of a GPU must be in (0, 1]; more than one must be a whole number (got {value})")
    return value


class ResourcesConfig(Section):
    """Resources of one trial (Ray Tune packs fractional GPUs)."""

    cpu: Float = Field(1.0, gt=0, description="CPUs per trial")
    gpu: Annotated[Float, AfterValidator(_gpu)] = Field(
        0.0, ge=0, description="GPUs per trial: 0, a fraction in (0, 1], or a whole number"
    )


def _tracking_uri(value: str | None, info: ValidationInfo) -> str | None:
    """A server or database URI; a relative sqlite path is made absolute like the task's paths."""
    if value is None:
        return value
    if "://" not in value or value.startswith("file:"):
        raise ValueError(
            f"expected an MLflow tracking URI such as sqlite:///mlflow.db or http://host:5000 "
            f"(file stores are deprecated; got {value!r})"
        )
    prefix = "sqlite:///"
    if value.startswith(prefix) and not value.startswith(prefix + "/"):
        return prefix + str(_base_dir(info) / value[len(prefix) :])
    return value


class TrackingConfig(Section):
    """Where MLflow records the sweep."""

    experiment: str | None = Field(None, description="MLflow experiment; null: the sweep name")
    uri: Annotated[str | None, AfterValidator(_tracking_uri)] = Field(
        None,
        description="MLflow tracking URI (a relative sqlite path is made absolute); "
        "null: mlflow.db in the output folder",
    )
    log_models: bool = Field(
        True,
        description="when the sweep ends, log each finished trial as a Hugging Face folder under its run's "
        "model/ artifacts (checkpoints up to 50 MiB; needs the miras[hf] extra, else skipped with a note)",
    )


# --- the sweep -------------------------------------------------------------------------------

Combination = tuple[str, MirasSpec | Variant | str]


class SweepConfig(Section):
    """A sweep: a task, a model size, training settings, the space to explore, seeds and search."""

    name: str = Field(pattern=r"^[A-Za-z0-9_-]+$", description="sweep name (letters, digits, _ and -)")
    task: Task = Field(description="the task, chosen by task.name: mqar, needle or lm")
    model: ModelConfig = Field(default_factory=ModelConfig, description="model size")
    training: TrainingConfig = Field(default_factory=TrainingConfig, description="outer training loop")
    space: SpaceConfig = Field(description="models to train: presets and/or a grid")
    seeds: Annotated[list[Annotated[Int, Field(ge=0)]], AfterValidator(_unique)] = Field(
        [0], min_length=1, description="seeds, each run for every combination; unique, >= 0"
    )
    search: SearchConfig | None = Field(None, description="inner search per combination; null: training.lr only")
    resources: ResourcesConfig = Field(default_factory=ResourcesConfig, description="resources per trial")
    tracking: TrackingConfig = Field(default_factory=TrackingConfig, description="MLflow tracking")

    @property
    def objective(self) -> tuple[str, Literal["max", "min"]]:
        """``(metric, mode)`` the search optimises (the first of several): ``search.metric``/``mode``, or
        ``search.objectives[0]``, else the task's primary metric."""
        return self.objectives[0]

    @property
    def objectives(self) -> list[tuple[str, Literal["max", "min"]]]:
        """Every ``(metric, mode)`` the search optimises: ``search.objectives``, else the one objective."""
        search = self.search
        if search is not None and search.objectives:
            return [(o.metric, o.mode) for o in search.objectives]
        if search is not None and search.metric is not None and search.mode is not None:
            return [(search.metric, search.mode)]
        return [self.task.primary_metric]

    def problems(self) -> list[Problem]:
        """Problems found against the registries and presets (empty when the config can run)."""
        return self.space.problems(self.model.swa_window)

    def combinations(self) -> list[Combination]:
        """``(label, preset name, MirasSpec or Variant)`` for every distinct combination: presets first,
        then the grid (equal specs, e.g. an option given with and without its default params, once),
        then each ablation's base (unless listed already) and its variants."""
        out: list[Combination] = [(name, name) for name in dict.fromkeys(self.space.presets)]
        specs: dict[str, MirasSpec] = {}
        for spec in self.space.grid.specs() if self.space.grid else ():
            specs.setdefault(json.dumps(spec.canonical(), sort_keys=True), spec)
        out += [(spec.shorthand(), spec) for spec in specs.values()]
        for ablation in self.space.ablations:
            out.append((ablation.base, ablation.base))
            out += [(variant.label, variant) for variant in ablation.variants()]
        return list({label: (label, architecture) for label, architecture in out}.values())


__all__ = [
    "AblationConfig",
    "Combination",
    "GridConfig",
    "LmTask",
    "LrRange",
    "MatchConfig",
    "ModelConfig",
    "MqarTask",
    "NeedleTask",
    "Objective",
    "ParamRange",
    "ResourcesConfig",
    "SearchConfig",
    "Section",
    "SpaceConfig",
    "SweepConfig",
    "Task",
    "TrackingConfig",
    "TrainingConfig",
]
