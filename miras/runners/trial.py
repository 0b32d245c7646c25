"""One trial end to end: build the task and the model, train, evaluate, report. No Ray here."""

from __future__ import annotations

import json
import os
import traceback
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch
from pydantic import BaseModel, ConfigDict, Field

from ..config.schema import ModelConfig, Task, TrainingConfig
from ..models import LanguageModel, architecture
from ..space import MirasSpec, Variant
from .scan_choice import apply_scan_impl, choose_scan_impl
from .tasks import build_task
from .trainer import CHECKPOINT, EvalCallback, Trainer, TrainResult

DEFAULT_CACHE = Path.home() / ".cache" / "miras"
RECORD = "trial.json"
"""Written beside the checkpoint (``<workdir>/trial.json``): the resolved :class:`TrialConfig` and
the vocabulary size, all :func:`load_trained` needs to rebuild the model."""


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
    scan_impl: str = ""
    """What the memory layers ran (:func:`miras.runners.scan_choice.choose_scan_impl`)."""
    scan_reason: str = ""

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
        result.scan_impl, result.scan_reason = choose_scan_impl(model, config.model.impl, config.training.steps, device)
        if result.scan_impl == "compiled":
            apply_scan_impl(model, "compiled")
        if config.workdir is not None:
            write_record(config, task.vocab_size, model)
        trainer = Trainer(
            model,
            task,
            config.training,
            seed=config.seed,
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


def write_record(config: TrialConfig, vocab_size: int, model: LanguageModel) -> Path:
    """Write ``<workdir>/trial.json`` (:data:`RECORD`) atomically; returns its path."""
    if config.workdir is None:
        raise ValueError("a trial without a workdir has no record")
    config.workdir.mkdir(parents=True, exist_ok=True)
    record = {
        "config": config.model_dump(mode="json"),
        "vocab_size": vocab_size,
        "architecture": model.arch.name,
        "n_params": model.num_params(),
        "checkpoint": CHECKPOINT,
    }
    path = config.workdir / RECORD
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(record, indent=1) + "\n")
    os.replace(tmp, path)
    return path


def _current(config: dict[str, Any]) -> dict[str, Any]:
    """A recorded trial config in today's schema: records written before the learning rate lived
    only in ``training.lr`` carry a top-level ``lr`` that overrode it."""
    lr = config.get("lr")
    rest = {name: value for name, value in config.items() if name != "lr"}
    if lr is not None:
        rest["training"] = {**rest.get("training", {}), "lr": lr}
    return rest


def load_trained(folder: Path | str, device: str = "cpu") -> tuple[LanguageModel, TrialConfig]:
    """The model a trial trained, from its folder (``trial.json`` and ``checkpoint.pt``: a trial's
    workdir, or the ``checkpoint`` artifact of its MLflow run), with its resolved config."""
    folder = Path(folder)
    record = json.loads((folder / RECORD).read_text())
    config = TrialConfig.model_validate(_current(record["config"]))
    model = build_model(config, record["vocab_size"])
    state = torch.load(folder / record.get("checkpoint", CHECKPOINT), map_location=device, weights_only=False)
    model.load_state_dict(state["model"])
    return model.to(device), config
