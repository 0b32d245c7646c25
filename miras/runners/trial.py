"""One trial end to end: build the task and the model, train, evaluate, report. No Ray here."""

from __future__ import annotations

import traceback
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch
from pydantic import BaseModel, ConfigDict, Field

from ..config.schema import ModelConfig, Task, TrainingConfig
from ..models import LanguageModel, architecture
from ..space import MirasSpec, Variant
from .tasks import build_task
from .trainer import EvalCallback, Trainer, TrainResult

DEFAULT_CACHE = Path.home() / ".cache" / "miras"


class TrialConfig(BaseModel):
    """Everything one trial needs: a single model (preset, baseline, spec or variant), seed and learning rate."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    task: Task
    model: ModelConfig = Field(default_factory=ModelConfig)
    training: TrainingConfig = Field(default_factory=TrainingConfig)
    architecture: str | MirasSpec | Variant = Field(
        description="a preset or baseline name, a MirasSpec, or an ablation Variant"
    )
    axis_params: dict[str, dict[str, Any]] = Field(
        {}, description="axis -> parameters merged into the architecture's spec (searched axis parameters)"
    )
    seed: int = Field(0, ge=0)
    lr: float | None = Field(None, gt=0, description="overrides training.lr")
    workdir: Path | None = Field(None, description="checkpoints go here; a rerun resumes from them")
    cache_dir: Path = Field(DEFAULT_CACHE, description="data and tokenizer caches")
    device: str = Field("auto", description="auto (CUDA when available), cpu or cuda")


@dataclass
class TrialResult(TrainResult):
    """A :class:`TrainResult` plus what was trained."""

    architecture: str = ""
    vocab_size: int = 0
    params: int = 0
    state_size: int = 0
    flops_per_token: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def build_model(config: TrialConfig, vocab_size: int) -> LanguageModel:
    arch = architecture(config.architecture, window=config.model.swa_window)
    if config.axis_params:
        if arch.spec is None:
            raise ValueError(f"{arch.name} is an attention baseline: it has no axis parameters to set")
        arch = replace(arch, spec=arch.spec.with_params(config.axis_params))
    return LanguageModel(arch, vocab_size, config.model)


def run_trial(config: TrialConfig, *, on_eval: EvalCallback | None = None, progress: bool | None = None) -> TrialResult:
    """Train one model; never raises for divergence, OOM or bad data (see ``status``/``reason``)."""
    device = resolve_device(config.device)
    if device.type == "cpu":
        torch.use_deterministic_algorithms(True, warn_only=True)
    torch.manual_seed(config.seed)
    result = TrialResult(status="failed")
    try:
        task = build_task(config.task, config.cache_dir)
        model = build_model(config, task.vocab_size)
        result.architecture = model.arch.name
        result.vocab_size = task.vocab_size
        result.params = model.num_params()
        result.state_size = model.state_size(task.seq_len)
        result.flops_per_token = model.flops_per_token(task.seq_len)
        trainer = Trainer(
            model,
            task,
            config.training,
            seed=config.seed,
            lr=config.lr,
            checkpoint_dir=config.workdir,
            on_eval=on_eval,
            progress=progress,
            device=device,
        )
        trained = trainer.run()
    except torch.OutOfMemoryError as error:
        result.status, result.reason = "oom", str(error).splitlines()[0]
        return result
    except Exception as error:  # a failing trial reports why instead of killing its caller
        result.status = "failed"
        result.reason = f"{type(error).__name__}: {error}\n{traceback.format_exc(limit=-3)}"
        return result
    for name, value in asdict(trained).items():
        setattr(result, name, value)
    return result
